"""Long test recordings with ground truth: held-out word clips joined by random pauses, noise mixed at a given SNR,
and the word error rate of a recognised word sequence against the truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.audio import SAMPLE_RATE, read_audio


@dataclass
class Stream:
    """A made-up recording: audio at 16 kHz and the words in it with their true [start, end) seconds."""

    audio: np.ndarray
    words: list[str] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.audio.size / SAMPLE_RATE


def speech_bounds(x: np.ndarray, rel_db: float = 30.0) -> tuple[int, int]:
    """First and last sample louder than `rel_db` below the clip's peak (10 ms frames): the word's true extent."""
    hop = SAMPLE_RATE // 100
    n = max(1, x.size // hop)
    e = np.array([np.mean(x[i * hop:(i + 1) * hop] ** 2) for i in range(n)]) + 1e-12
    db = 10 * np.log10(e)
    loud = np.flatnonzero(db > db.max() - rel_db)
    return int(loud[0] * hop), int(min(x.size, (loud[-1] + 1) * hop))


def make_stream(clips: list[tuple[str, Path]], rng: np.random.Generator, pause: tuple[float, float] = (0.3, 1.5),
                lead: float = 1.0) -> Stream:
    """Join (word, file) clips, each trimmed to its speech, with random pauses; silence leads and trails."""
    parts = [np.zeros(int(lead * SAMPLE_RATE), np.float32)]
    pos = parts[0].size
    s = Stream(np.zeros(0, np.float32))
    for word, path in clips:
        x = read_audio(path, normalize=True) * np.float32(rng.uniform(0.3, 1.0))
        a, b = speech_bounds(x)
        x = x[a:b]
        s.words.append(word)
        s.spans.append((pos / SAMPLE_RATE, (pos + x.size) / SAMPLE_RATE))
        gap = np.zeros(int(rng.uniform(*pause) * SAMPLE_RATE), np.float32)
        parts += [x, gap]
        pos += x.size + gap.size
    parts.append(np.zeros(int(lead * SAMPLE_RATE), np.float32))
    s.audio = np.concatenate(parts)
    return s


def mix_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator,
              speech_rms: float | None = None) -> np.ndarray:
    """Add a random stretch of `noise` (looped as needed) so that speech-to-noise is `snr_db`.

    The speech level is the RMS over the loud part of `x` (pauses do not dilute it)."""
    if speech_rms is None:
        loud = np.abs(x) > 1e-4
        speech_rms = float(np.sqrt(np.mean(x[loud] ** 2))) if loud.any() else 0.0
    reps = int(np.ceil((x.size + noise.size) / noise.size))
    n = np.tile(noise, reps)
    start = int(rng.integers(0, noise.size))
    n = n[start:start + x.size]
    n_rms = float(np.sqrt(np.mean(n ** 2))) + 1e-12
    gain = speech_rms / (n_rms * 10 ** (snr_db / 20))
    y = x + n * np.float32(gain)
    peak = float(np.max(np.abs(y)))
    return (y / peak * 0.95).astype(np.float32) if peak > 0.99 else y.astype(np.float32)


@dataclass(frozen=True)
class WordErrors:
    """Levenshtein alignment counts of a hypothesis against the reference."""

    substitutions: int
    deletions: int
    insertions: int
    n_ref: int

    @property
    def wer(self) -> float:
        return (self.substitutions + self.deletions + self.insertions) / max(1, self.n_ref)


def word_errors(ref: list[str], hyp: list[str]) -> WordErrors:
    """Minimum-edit alignment, then count each kind of error on the best path."""
    R, H = len(ref), len(hyp)
    d = np.zeros((R + 1, H + 1), dtype=np.int64)
    d[:, 0] = np.arange(R + 1)
    d[0, :] = np.arange(H + 1)
    for i in range(1, R + 1):
        for j in range(1, H + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j, s, de, ins = R, H, 0, 0, 0
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            s += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            de, i = de + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return WordErrors(int(s), de, ins, R)
