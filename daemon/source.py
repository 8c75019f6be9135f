"""Audio sources that fill a Ring: a microphone (PortAudio callback) or a file (a thread, real-time paced or fast).

The microphone callback only copies into the preallocated ring and notes the time: no allocation, no locks, no
Python work that could stall the sound card. Resampling to 16 kHz happens later, on the worker thread.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from daemon.ring import Ring
from shared.audio import SAMPLE_RATE, read_audio


class SourceError(Exception):
    """The audio source cannot start; str() is one line."""


class Source:
    """What the worker sees of a source."""

    ring: Ring
    rate: int  # the ring's sample rate
    name: str  # the events' `device` field
    realtime: bool

    def __init__(self) -> None:
        self.finished = threading.Event()  # a file ended (never set for a microphone)
        self.error: str | None = None
        self.device_overflows = 0  # overruns reported by the device
        self.last_wall = time.time()  # wall time of the newest sample in the ring

    can_reopen = False  # a microphone can be reopened after it is lost; a file cannot

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def lost(self, stall_seconds: float) -> str | None:
        """Why the stream is gone, or None while it is healthy."""
        return self.error

    def reopen(self) -> None:
        raise SourceError("this source cannot be reopened")


class FileSource(Source):
    """A file, read at 16 kHz and written into the ring in blocks, at real-time pace or (fast) as space allows."""

    def __init__(self, path: str | Path, *, fast: bool = False, block_ms: int = 20, ring_seconds: float = 10.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.audio = read_audio(self.path)  # AudioError (one line) if unusable
        self.rate = SAMPLE_RATE
        self.ring = Ring(int(ring_seconds * self.rate))
        self.block = max(1, self.rate * block_ms // 1000)
        self.fast = fast
        self.realtime = not fast
        self.name = f"file:{self.path.name}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="file-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        pos = 0
        n = self.audio.size
        while pos < n and not self._stop.is_set():
            if self.fast:
                if self.ring.free() < self.block:
                    time.sleep(0.002)
                    continue
            else:
                due = t0 + (pos + self.block) / self.rate
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            chunk = self.audio[pos:pos + self.block]
            self.ring.write(chunk)
            self.last_wall = time.time()
            pos += chunk.size
        self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


def resolve_device(device: str | None) -> int | str | None:
    """A device given as an index ("3") or a name substring ("pulse") -> what sounddevice accepts; None = default."""
    if device is None or device == "":
        return None
    return int(device) if device.strip().isdigit() else device


class MicSource(Source):
    """A microphone through sounddevice's InputStream; 16 kHz if the device takes it, else its own rate."""

    def __init__(self, device: str | None = None, *, rate: int = 0, block_ms: int = 20,
                 ring_seconds: float = 10.0) -> None:
        super().__init__()
        import sounddevice as sd

        self._sd = sd
        dev = resolve_device(device)
        try:
            info = sd.query_devices(dev, "input")
        except Exception as exc:  # sounddevice raises ValueError / PortAudioError with multi-line text
            if dev is None:
                raise SourceError("no default microphone (no sound card or PulseAudio?); list the devices with "
                                  "`python -m sounddevice`, or read a file with --input") from None
            raise SourceError(f"microphone {device}: {str(exc).splitlines()[0]} "
                              "(list the devices with `python -m sounddevice`)") from None
        self.name = str(info["name"])
        self.realtime = True
        self.rate = int(rate) if rate else SAMPLE_RATE
        try:
            sd.check_input_settings(device=dev, channels=1, samplerate=self.rate, dtype="float32")
        except Exception as exc:
            if rate:
                raise SourceError(f"microphone {self.name}: cannot record at {rate} Hz "
                                  f"({str(exc).splitlines()[0]})") from None
            self.rate = int(info["default_samplerate"])
        self.ring = Ring(int(ring_seconds * self.rate))
        self._stopping = False
        self._device, self._block_ms = device, block_ms
        self.stream = self._open(dev)

    def _open(self, dev):
        try:
            return self._sd.InputStream(device=dev, channels=1, samplerate=self.rate, dtype="float32",
                                        blocksize=max(1, self.rate * self._block_ms // 1000),
                                        callback=self._callback, finished_callback=self._finished)
        except Exception as exc:
            raise SourceError(f"microphone {self.name}: cannot open ({str(exc).splitlines()[0]})") from None

    can_reopen = True

    def lost(self, stall_seconds: float) -> str | None:
        """Why the stream is gone (it stopped, or delivered nothing for `stall_seconds` after it had run), or None."""
        if self.error:
            return self.error
        if self.ring.written and time.time() - self.last_wall > stall_seconds:
            return f"no audio for {time.time() - self.last_wall:.1f} s (stalled)"
        return None

    def reopen(self) -> None:
        """Close the dead stream and open the same device again (PortAudio re-scanned, so a restarted sound server
        or a re-plugged card is found); SourceError if it is not back yet."""
        sd = self._sd
        self.stop()
        try:
            sd._terminate()
            sd._initialize()
            dev = resolve_device(self._device)
            sd.query_devices(dev, "input")
        except Exception as exc:
            raise SourceError(f"microphone {self.name}: not back yet ({str(exc).splitlines()[0]})") from None
        self.stream = self._open(dev)
        self.error = None
        self.last_wall = time.time()
        self.start()

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        # The real-time thread: copy and count, nothing else.
        if status.input_overflow:
            self.device_overflows += 1
        self.ring.write(indata[:, 0])
        self.last_wall = time.time()

    def _finished(self) -> None:
        if not self._stopping:
            self.error = "the audio stream stopped unexpectedly"

    def start(self) -> None:
        self._stopping = False
        try:
            self.stream.start()
        except Exception as exc:
            raise SourceError(f"microphone {self.name}: cannot start ({str(exc).splitlines()[0]})") from None

    def stop(self) -> None:
        self._stopping = True
        try:
            self.stream.abort()
            self.stream.close()
        except Exception:
            pass
