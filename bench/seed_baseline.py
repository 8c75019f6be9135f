"""The seed's pipeline, re-implemented small and self-contained, as the baseline to beat.

The seed ("speech-MNIST") cut each word by energy, computed a 32-band log filterbank over the whole band, and
time-warped the word's frames to a fixed 64 frames: a 64 x 32 "stamp" for an MNIST-style CNN (trainer/nets.py
`baseline`: two 3x3 convs, 4x4 max-pool, dense). No context padding, no fixed time axis, no augmentation. It is
trained here on the very clips the shipped digits model trained on (the dataset's train split, read from its npz)
and tested on the same held-out clips as the shipped model, so the difference is the pipeline, not the data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

RATE = 16000
N_FFT = 512
HOP = 160
WIN = 400
BANDS = 32
FRAMES = 64


def _mel_matrix(bands: int = BANDS, n_fft: int = N_FFT, rate: int = RATE, fmin: float = 0.0,
                fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters over the whole band, as python_speech_features' fbank makes them."""
    fmax = fmax or rate / 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    pts = inv(np.linspace(mel(fmin), mel(fmax), bands + 2))
    bins = np.floor((n_fft + 1) * pts / rate).astype(int)
    fb = np.zeros((bands, n_fft // 2 + 1), np.float32)
    for i in range(bands):
        a, b, c = bins[i], bins[i + 1], bins[i + 2]
        if b > a:
            fb[i, a:b] = (np.arange(a, b) - a) / (b - a)
        if c > b:
            fb[i, b:c] = (c - np.arange(b, c)) / (c - b)
    return fb


_FB = _mel_matrix()
_WINDOW = np.hamming(WIN).astype(np.float32)


def fbank(x: np.ndarray) -> np.ndarray:
    """16 kHz audio -> (frames, 32) log filterbank energies (25 ms Hamming windows every 10 ms)."""
    x = np.asarray(x, np.float32)
    if x.size < WIN:
        x = np.pad(x, (0, WIN - x.size))
    n = 1 + (x.size - WIN) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * _WINDOW, N_FFT)) ** 2 / N_FFT
    return np.log(spec @ _FB.T + 1e-10).astype(np.float32)


def seed_stamp(x: np.ndarray, rel_db: float = 30.0) -> np.ndarray:
    """One word clip -> its 64 x 32 seed stamp: energy-trimmed frames, linearly resampled to 64, mean removed."""
    f = fbank(x)
    e = f.max(axis=1) * (10 / np.log(10))  # dB-ish of the loudest band
    loud = np.flatnonzero(e > e.max() - rel_db)
    f = f[loud[0]:loud[-1] + 1] if loud.size else f
    src = np.linspace(0, f.shape[0] - 1, FRAMES)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, f.shape[0] - 1)
    w = (src - lo)[:, None]
    s = f[lo] * (1 - w) + f[hi] * w
    return (s - s.mean()).astype(np.float32)


@dataclass
class SeedModel:
    """A trained baseline: the Keras model and its label order."""

    model: object
    words: list[str]
    train_seconds: float
    n_train: int

    def predict(self, stamps: np.ndarray) -> list[str]:
        p = self.model.predict(stamps, batch_size=256, verbose=0)[1]
        return [self.words[i] for i in p.argmax(1)]


def train_seed(stamps: np.ndarray, labels: list[str], epochs: int = 12, seed: int = 0) -> SeedModel:
    """The seed's CNN (trainer.nets baseline) on 64 x 32 stamps; Adam, plain cross-entropy, no augmentation."""
    import keras

    from trainer.nets import NetConfig, build_net

    t0 = time.time()
    words = sorted(set(labels))
    y = np.array([words.index(w) for w in labels])
    keras.utils.set_random_seed(seed)
    cfg = NetConfig(arch="baseline")
    model = build_net((FRAMES, BANDS), len(words), cfg)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=[None, "sparse_categorical_crossentropy"])
    model.fit(stamps, [np.zeros((len(y), cfg.embedding_dim), np.float32), y], batch_size=64, epochs=epochs,
              verbose=0, shuffle=True)
    return SeedModel(model, words, time.time() - t0, len(y))


def accuracy(model: SeedModel, stamps: np.ndarray, labels: list[str]) -> float:
    """Top-1 accuracy; a special label (_unknown_/_silence_) on a word counts as wrong, like a rejection."""
    if not len(labels):
        return float("nan")
    got = model.predict(stamps)
    return float(np.mean([g == w for g, w in zip(got, labels)]))
