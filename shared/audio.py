"""Audio in and out: any readable file becomes mono float32 at 16 kHz, and writes are atomic.

Every reader in the project (trainer, daemon, tests) goes through `read_audio`, so bad input is refused in one place
with one kind of error, `AudioError`, whose message is a single line naming the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
MAX_SECONDS = 3 * 3600
MAX_PEAK = 1000.0  # float files may exceed 1.0 a little; 1e30 is not audio


class AudioError(Exception):
    """A file that cannot be used as audio; str() is one line: '<file>: <problem>'."""

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = str(path) if path is not None else "<audio>"
        self.problem = problem.splitlines()[0] if problem else "unreadable"
        super().__init__(f"{self.path}: {self.problem}")


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with libsoxr (high quality); float32 in, float32 out."""
    x = np.asarray(x, dtype=np.float32)
    if rate_in == rate_out or x.size == 0:
        return x
    return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels: (n, ch) -> (n,)."""
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def normalise(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """The seed's normalisation: remove DC, then scale so the largest sample is `peak`; silence stays silence."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x
    x = x - np.float32(x.mean())
    top = float(np.max(np.abs(x)))
    return x if top < 1e-8 else (x * np.float32(peak / top)).astype(np.float32)


def read_audio(path: str | os.PathLike, *, rate: int = SAMPLE_RATE, normalize: bool = False,
               max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Read wav/ogg/flac of any rate, depth and channel count as mono float32 at `rate`.

    Raises AudioError for anything that is not usable audio: missing, unreadable, empty, absurd rate, NaN/inf samples,
    or longer than `max_seconds` (so a hostile header cannot make us allocate gigabytes).
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "no such file")
    if p.is_dir():
        raise AudioError(p, "is a folder, not an audio file")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile's messages vary; keep the first line
        raise AudioError(p, f"not a readable audio file ({_first_line(exc)})") from None
    if not (MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE):
        raise AudioError(p, f"sample rate {info.samplerate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if info.channels < 1:
        raise AudioError(p, "has no channels")
    if info.frames > max_seconds * info.samplerate:
        raise AudioError(p, f"too long ({info.frames / info.samplerate:.0f} s > {max_seconds:.0f} s)")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(p, f"truncated or corrupt audio ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(p, "holds no samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(p, "holds NaN or infinite samples")
    peak = float(np.max(np.abs(data)))
    if peak > MAX_PEAK:
        raise AudioError(p, f"sample values reach {peak:.3g}, far beyond full scale (1.0)")
    x = to_mono(data)
    x = resample(x, sr, rate)
    return normalise(x) if normalize else x


QUIET_PEAK_DB = -40.0  # a clip whose loudest sample is under this: its quiet frames fall under the segmenter's floor
CLIPPED_FRACTION = 0.001  # this share of samples at full scale or more: driven past full scale
PADDING_S = 0.05  # this much exact digital silence at either end: zero-padded
LEVEL_ISSUES = {"quiet": f"peak under {QUIET_PEAK_DB:g} dBFS",
                "clipped": f"driven to full scale ({CLIPPED_FRACTION:.1%} of samples or more)",
                "zero-padded": f"start or end with {PADDING_S * 1000:g} ms or more of digital silence"}


def level_issues(x: np.ndarray, rate: int = SAMPLE_RATE) -> list[str]:
    """What about a clip's level and edges costs accuracy ("quiet", "clipped", "zero-padded"; models/README.md,
    `scripts.robustness`), so that `evaluate` can say which of a user's files are unlike a microphone's."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return []
    a = np.abs(x)
    out = []
    if 20 * np.log10(float(a.max()) + 1e-12) < QUIET_PEAK_DB:
        out.append("quiet")
    if float(np.mean(a >= 0.99)) >= CLIPPED_FRACTION:
        out.append("clipped")
    live = np.flatnonzero(a > 1e-7)
    edge = min(int(PADDING_S * rate), x.size)
    if live.size == 0 or live[0] >= edge or x.size - 1 - live[-1] >= edge:
        out.append("zero-padded")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], *, overwrite: bool = True) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename, so a crash leaves the old file or the
    new one. With overwrite=False an existing file is never replaced (FileExistsError), even one that appears while
    we write: recordings are never lost. The file gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists, not overwritten")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, p)
        else:
            os.link(tmp, p)  # fails if p appeared meanwhile: never clobber
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def write_wav_atomic(path: str | os.PathLike, x: np.ndarray, rate: int = SAMPLE_RATE, *,
                     overwrite: bool = False) -> Path:
    """16-bit PCM wav, written atomically; by default never over an existing file."""
    pcm = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return atomic_write(path, lambda fh: sf.write(fh, pcm, rate, subtype="PCM_16", format="WAV"), overwrite=overwrite)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically."""
    return atomic_write(path, lambda fh: fh.write(data))


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Audio files (wav/ogg/flac, any case) directly in `folder`, sorted."""
    f = Path(folder)
    return sorted(p for p in f.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
