"""The one feature frontend: log-mel frames and per-frame energy, for a whole clip or incrementally on a stream.

Training and serving both call this module, and a hash of its config travels in every model bundle, so a model is
never fed features it was not trained on. Batch and streaming share `_analyse`, and the stream keeps the leftover
samples between calls, so both give the same numbers (tests/test_features.py checks it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE


class DictConfig:
    """to_dict/from_dict for the frozen config dataclasses stored in bundles and datasets; unknown keys are refused."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class FrontendConfig(DictConfig):
    """Everything that decides what the model sees; its `hash` is stored in bundles and checked on load."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    fmin: float = 60.0
    fmax: float = 4000.0  # FSDD is 8 kHz audio: above 4 kHz would teach the model bandwidth, not words
    log_eps: float = 1e-10
    stamp_frames: int = 98  # 1 s window: 1 + (16000 - 400) // 160
    # Frames of audio kept before and after a segment. The segmenter listens below 4 kHz, so it starts "six" at the
    # vowel: the /s/ before it lasts up to 200 ms (measured on Speech Commands). 12 after = the segmenter's 120 ms
    # hangover, frames the daemon already holds when a word ends, so the trailing context adds no latency.
    context_before: int = 20
    context_after: int = 12
    # > 0: every band of a stamp is floored this many dB below its loudest frame in the segment, so the quiet between
    # and around the sounds reads the same in a quiet room and a noisy one (make_stamp). 0 = off, as every bundle
    # before round 12.
    band_floor_db: float = 0.0
    # > 0: the whole stamp is floored this many dB below its loudest value, so digital silence (a synthetic voice, a
    # zero-padded file) reads as a very quiet room instead of sitting 100 dB or more under the word, far below any
    # microphone's noise (round 15). 0 = off, as every bundle before it.
    stamp_floor_db: float = 0.0
    # > 0: the stamp is per-channel energy normalisation (PCEN, Wang et al. 2017) of the segment's mel power instead
    # of its mean-removed log: each band divided by its own running average over about this many ms, then
    # compressed, so a steady background reads low whatever its level and colour and an onset stands out (make_stamp).
    # 0 = off, as every bundle before round 25.
    pcen_ms: float = 0.0

    @property
    def hash(self) -> str:
        d = self.to_dict()
        for f in dataclasses.fields(self):  # a key added later is hashed only when used: older bundles still match
            if f.name in _ADDED_LATER and d[f.name] == f.default:
                d.pop(f.name)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def stamp_shape(self) -> tuple[int, int]:
        return (self.stamp_frames, self.n_mels)


_ADDED_LATER = ("band_floor_db", "stamp_floor_db", "pcen_ms")  # hashed only when not at their default
# stamp options each bundle picks; the rest must be what this wordstamp computes
BUNDLE_CHOICES = ("band_floor_db", "stamp_floor_db", "pcen_ms")
# PCEN's fixed parts: gain exponent, bias and root (the paper's and librosa's defaults), and the floor under the
# running average, this many dB below the segment's loudest band value, so digital silence reads as a quiet room
PCEN_ALPHA, PCEN_DELTA, PCEN_ROOT, PCEN_FLOOR_DB = 0.98, 2.0, 0.5, 60.0


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular filters on the HTK mel scale, (n_fft//2+1, n_mels), each normalised to unit area."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    n_bins = cfg.n_fft // 2 + 1
    freqs = np.linspace(0.0, cfg.sample_rate / 2, n_bins)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    fb = np.zeros((n_bins, cfg.n_mels), dtype=np.float64)
    for m in range(cfg.n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    fb /= np.maximum(fb.sum(axis=0, keepdims=True), 1e-12)
    return fb.astype(np.float32)


class Frontend:
    """Turns audio into (log-mel, energy_db) frames. `compute` for a clip, `stream.push` for live audio."""

    def __init__(self, cfg: FrontendConfig | None = None) -> None:
        self.cfg = cfg or FrontendConfig()
        c = self.cfg
        self.window = np.hanning(c.win_length + 1)[:-1].astype(np.float32)
        self.fbank = mel_filterbank(c)
        freqs = np.linspace(0.0, c.sample_rate / 2, c.n_fft // 2 + 1)
        self.band = (freqs >= c.fmin) & (freqs <= c.fmax)
        band_sum = self.band.astype(np.float32) / np.float32(c.win_length * c.win_length)
        self._project = np.concatenate([self.fbank, band_sum[:, None]], axis=1).astype(np.float32)

    def n_frames(self, n_samples: int) -> int:
        c = self.cfg
        return 0 if n_samples < c.win_length else 1 + (n_samples - c.win_length) // c.hop_length

    def compute(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole clip: log-mel (T, n_mels) float32 and energy in dB (T,) float32; frame t starts at t*hop."""
        x = np.asarray(x, dtype=np.float32)
        n = self.n_frames(x.size)
        if n == 0:
            return np.zeros((0, self.cfg.n_mels), np.float32), np.zeros((0,), np.float32)
        return self._analyse(self._frames(x, n))

    def stream(self) -> "StreamingFrontend":
        return StreamingFrontend(self)

    def _frames(self, x: np.ndarray, n: int) -> np.ndarray:
        """A read-only (n, win_length) view of overlapping frames; x must be contiguous float32."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        # np.ndarray over x's buffer: the same view as as_strided, without its Python-level cost on every 20 ms block
        view = np.ndarray((n, self.cfg.win_length), np.float32, buffer=x, strides=(self.cfg.hop_length * 4, 4))
        view.flags.writeable = False
        return view

    def _analyse(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A float32 FFT (numpy 2 keeps float32; scipy.fft would add ~28 MB to the daemon's memory) and one matrix
        # product for the mel bands and the band energy together: the frontend was the daemon's costliest stage.
        spec = np.fft.rfft(frames * self.window, n=self.cfg.n_fft, axis=-1)
        out = (spec.real * spec.real + spec.imag * spec.imag) @ self._project
        mel = np.log(out[:, :-1] + np.float32(self.cfg.log_eps))
        energy = np.float32(10.0) * np.log10(out[:, -1] + np.float32(1e-10))
        return mel, energy


class StreamingFrontend:
    """Incremental frontend: push any number of samples, get the frames that became complete."""

    def __init__(self, frontend: Frontend) -> None:
        self.fe = frontend
        self.buf = np.zeros(0, dtype=np.float32)
        self.frames_out = 0  # index of the next frame

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.fe.cfg
        self.buf = np.concatenate([self.buf, np.asarray(x, dtype=np.float32).ravel()])
        n = self.fe.n_frames(self.buf.size)
        if n == 0:
            return np.zeros((0, c.n_mels), np.float32), np.zeros((0,), np.float32)
        mel, energy = self.fe._analyse(self.fe._frames(self.buf, n))
        self.buf = self.buf[n * c.hop_length:].copy()
        self.frames_out += n
        return mel, energy


def _ln_of_db(db: float) -> np.float32:
    """A level difference in dB as a difference of the log-mel's ln(power)."""
    return np.float32(db * np.log(10.0) / 10.0)


def pcen(mel: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """A segment's log-mel frames -> their PCEN values, (T, n_mels) float32.

    The power is first divided by the segment's loudest value, so the result does not depend on input gain, and the
    running average starts at the first frame (the segment's context before the word: its room). Computed per
    segment, so a clip and a stream give the same values (the segment's frames are the same).
    """
    from scipy.signal import lfilter

    e = np.exp(np.asarray(mel, np.float64) - float(np.max(mel)))
    s = 1.0 - np.exp(-cfg.hop_length / cfg.sample_rate * 1000.0 / cfg.pcen_ms)  # one-pole smoother, time constant
    smooth, _ = lfilter([s], [1.0, s - 1.0], e, axis=0, zi=(1.0 - s) * e[:1])
    floor = 10.0 ** (-PCEN_FLOOR_DB / 10.0)
    out = (e / (floor + smooth) ** PCEN_ALPHA + PCEN_DELTA) ** PCEN_ROOT - PCEN_DELTA ** PCEN_ROOT
    return out.astype(np.float32)


def make_stamp(mel: np.ndarray, cfg: FrontendConfig, shift: int = 0) -> np.ndarray:
    """A segment's log-mel frames -> the fixed (stamp_frames, n_mels) stamp the model sees.

    The segment is centred (plus `shift` frames, for augmentation), a longer one is cropped around its centre, and the
    rest of the window is filled with the segment's quietest value, so neighbouring words never leak in and the stamp
    needs no audio after the segment (low latency). Subtracting the mean makes it independent of input gain (each
    band's own mean, which would also cancel a microphone's colouring, measured worse: see models/README.md). A bundle
    with `band_floor_db` first floors each band that many dB under its loudest frame (Round 12; off when shipped), one
    with `stamp_floor_db` the whole stamp that many dB under its loudest value (Round 15; off when shipped), one with
    `pcen_ms` takes PCEN values (`pcen`) instead of the mean-removed log (Round 25; off when shipped).
    """
    S = cfg.stamp_frames
    mel = np.asarray(mel, dtype=np.float32)
    out_shape = (S, cfg.n_mels)
    if mel.shape[0] == 0:
        return np.zeros(out_shape, np.float32)
    if cfg.band_floor_db > 0:
        mel = np.maximum(mel, mel.max(axis=0, keepdims=True) - _ln_of_db(cfg.band_floor_db))
    if cfg.stamp_floor_db > 0:
        mel = np.maximum(mel, mel.max() - _ln_of_db(cfg.stamp_floor_db))
    x = pcen(mel, cfg) if cfg.pcen_ms > 0 else mel - np.float32(mel.mean())
    T = x.shape[0]
    if T > S:
        start = (T - S) // 2
        x, T = x[start:start + S], S
    out = np.full(out_shape, x.min(), dtype=np.float32)
    off = int(np.clip((S - T) // 2 + shift, 0, S - T))
    out[off:off + T] = x
    return out
