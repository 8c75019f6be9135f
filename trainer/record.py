"""Record seed-format recordings from a microphone: `DATA/PREFIX_<speaker>_<n>.wav`, never overwriting one.

sounddevice (PortAudio) captures; a callback hands blocks to the main thread, which keeps a level meter current and
watches for clipping. Recording stops after `seconds` or when `stop` is set (the CLI sets it on Enter), so tests can
drive it through a virtual microphone without a keyboard.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shared.audio import AUDIO_SUFFIXES, SAMPLE_RATE, resample, write_wav_atomic

CLIP_LEVEL = 0.99
QUIET_PEAK = 0.02  # a take whose loudest sample is below this probably recorded nothing


class RecordError(RuntimeError):
    """The microphone cannot be used; str() is one line."""


@dataclass(frozen=True)
class RecordConfig:
    """What and how to record. seconds=None records until `stop` is set."""

    seconds: float | None = None
    device: int | str | None = None
    rate: int = SAMPLE_RATE
    block_s: float = 0.05
    max_seconds: float = 600.0


@dataclass
class Level:
    """The meter's reading for the latest block: RMS and peak in dBFS, and whether anything clipped so far."""

    rms_db: float
    peak_db: float
    clipped: bool
    elapsed: float


def next_path(data: Path, prefix: str, speaker: str) -> Path:
    """`DATA/PREFIX_<speaker>_<n>.wav` with n one more than the largest taken (counting any audio suffix)."""
    pat = re.compile(rf"^{re.escape(prefix)}_{re.escape(speaker)}_(\d+)$")
    taken = [int(m.group(1)) for p in Path(data).glob(f"{prefix}_{speaker}_*")
             if p.suffix.lower() in AUDIO_SUFFIXES and (m := pat.match(p.stem))]
    return Path(data) / f"{prefix}_{speaker}_{max(taken, default=0) + 1}.wav"


def save_take(data: Path, prefix: str, speaker: str, x: np.ndarray) -> Path:
    """Write a take under the next free number; if another process takes that number first, use the next."""
    for _ in range(1000):
        p = next_path(data, prefix, speaker)
        try:
            return write_wav_atomic(p, x)
        except FileExistsError:
            continue
    raise RecordError(f"{data}: could not find a free file name for {prefix}_{speaker}")


def parse_device(device: str | None) -> int | str | None:
    """PortAudio takes a device index or a substring of its name."""
    if device is None or device == "":
        return None
    return int(device) if device.isdigit() else device


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise RecordError(f"sounddevice cannot load PortAudio ({str(exc).splitlines()[0]}); "
                          "install libportaudio2 (scripts/setup.sh)") from None
    return sd


def list_devices() -> list[str]:
    """Input devices, one line each, for --device."""
    sd = _sd()
    try:
        devs = sd.query_devices()
    except Exception as exc:
        raise RecordError(f"cannot list audio devices ({str(exc).splitlines()[0]})") from None
    return [f"{i}: {d['name']} ({d['max_input_channels']} in, {d['default_samplerate']:.0f} Hz)"
            for i, d in enumerate(devs) if d["max_input_channels"] > 0]


def _open_stream(sd, cfg: RecordConfig, callback) -> tuple[object, int]:
    """Open at 16 kHz if the device can; otherwise at its own rate (resampled afterwards)."""
    try:
        info = sd.query_devices(cfg.device, "input")
    except Exception as exc:
        raise RecordError(f"input device {cfg.device if cfg.device is not None else '(default)'}: "
                          f"{str(exc).splitlines()[0]}") from None
    rates = [cfg.rate, int(info["default_samplerate"])]
    last = None
    for rate in dict.fromkeys(rates):
        try:
            stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=cfg.device,
                                    blocksize=int(rate * cfg.block_s), callback=callback)
            return stream, rate
        except Exception as exc:
            last = exc
    raise RecordError(f"input device {info['name']}: cannot open ({str(last).splitlines()[0]})")


def record(cfg: RecordConfig, on_level: Callable[[Level], None] | None = None,
           stop: threading.Event | None = None) -> tuple[np.ndarray, bool]:
    """Capture one take: (float32 mono at 16 kHz, clipped?). Stops after cfg.seconds or when `stop` is set."""
    sd = _sd()
    stop = stop or threading.Event()
    blocks: queue.Queue[np.ndarray] = queue.Queue()
    status_flags: list[str] = []

    def callback(indata, frames, t, status) -> None:  # runs on PortAudio's thread: copy and hand over only
        if status:
            status_flags.append(str(status))
        blocks.put(indata[:, 0].copy())

    stream, rate = _open_stream(sd, cfg, callback)
    got: list[np.ndarray] = []
    n = 0
    clipped = False
    limit = cfg.seconds if cfg.seconds is not None else cfg.max_seconds
    t0 = time.monotonic()
    try:
        with stream:
            while n < limit * rate and not stop.is_set():
                try:
                    b = blocks.get(timeout=0.5)
                except queue.Empty:
                    if time.monotonic() - t0 > limit + 5:
                        raise RecordError("the microphone delivers no audio") from None
                    continue
                got.append(b)
                n += b.size
                peak = float(np.max(np.abs(b))) if b.size else 0.0
                clipped = clipped or peak >= CLIP_LEVEL
                if on_level:
                    rms = float(np.sqrt(np.mean(b.astype(np.float64) ** 2))) if b.size else 0.0
                    on_level(Level(20 * np.log10(rms + 1e-9), 20 * np.log10(peak + 1e-9), clipped, n / rate))
    except RecordError:
        raise
    except Exception as exc:
        raise RecordError(f"recording failed ({str(exc).splitlines()[0]})") from None
    x = np.concatenate(got) if got else np.zeros(0, np.float32)
    if cfg.seconds is not None:
        x = x[: int(round(cfg.seconds * rate))]
    return resample(x, rate, SAMPLE_RATE), clipped


def meter(level: Level, width: int = 30) -> str:
    """A text level meter: -60..0 dBFS as a bar, with the peak and a clipping flag."""
    fill = int(np.clip((level.rms_db + 60) / 60, 0, 1) * width)
    bar = "#" * fill + "-" * (width - fill)
    flag = "  CLIPPING: move back or lower the gain" if level.clipped else ""
    return f"{level.elapsed:5.1f} s [{bar}] {level.rms_db:6.1f} dB (peak {level.peak_db:5.1f}){flag}"
