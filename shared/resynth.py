"""Log-mel frames back to audio, to hear what the model heard: mel inversion, then Griffin-Lim phase recovery.

The frames carry only the power in 40 mel bands up to 4 kHz, so the result is band-limited and phase-less speech:
recognisable, robotic. Mel inversion is the pseudo-inverse of shared.features.mel_filterbank (clipped to be
non-negative, then refined by a few multiplicative non-negative least-squares steps); Griffin-Lim (the fast variant
with momentum) runs on scipy.signal.ShortTimeFFT laid on exactly the frontend's frame grid (frame t = samples
[t*hop, t*hop + win)), so resynthesising and re-analysing gives back close to the same frames.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import ShortTimeFFT

from shared.features import Frontend, FrontendConfig, mel_filterbank


def mel_to_power(logmel: np.ndarray, cfg: FrontendConfig, refine: int = 30) -> np.ndarray:
    """(T, n_mels) log-mel -> (T, n_fft//2+1) non-negative power spectrum whose mel projection matches."""
    fb = mel_filterbank(cfg).astype(np.float64)  # (bins, mels)
    mel = np.maximum(np.exp(np.asarray(logmel, np.float64)) - cfg.log_eps, 0.0)
    power = np.maximum(mel @ np.linalg.pinv(fb), 0.0)
    power += 1e-6 * mel.mean(axis=1, keepdims=True) + 1e-20
    covered = fb.sum(axis=1) > 0  # bins no filter sees stay silent
    power[:, ~covered] = 0.0
    denom_cols = fb.sum(axis=1)[covered]
    for _ in range(refine):  # multiplicative update for min ||power @ fb - mel||, power >= 0
        approx = power @ fb + 1e-20
        power[:, covered] *= ((mel / approx) @ fb.T)[:, covered] / denom_cols
    return power


def _stft(cfg: FrontendConfig) -> ShortTimeFFT:
    win = np.hanning(cfg.win_length + 1)[:-1]  # the frontend's window
    return ShortTimeFFT(win, hop=cfg.hop_length, fs=cfg.sample_rate, mfft=cfg.n_fft)


def griffin_lim(magnitude: np.ndarray, cfg: FrontendConfig, n_iter: int = 60, momentum: float = 0.99,
                seed: int = 0) -> np.ndarray:
    """(T, bins) magnitudes on the frontend's frame grid -> float32 audio of (T-1)*hop + win samples."""
    T = magnitude.shape[0]
    if T == 0:
        return np.zeros(0, np.float32)
    stft = _stft(cfg)
    hop, mid = cfg.hop_length, cfg.win_length // 2
    # ShortTimeFFT centres slice p on sample p*hop; pad the front so slice t+lead covers frontend frame t.
    lead = -(-mid // hop)
    pad = lead * hop - mid
    n = pad + (T - 1) * hop + cfg.win_length
    p1 = stft.p_max(n)
    target = np.zeros((magnitude.shape[1], p1))
    target[:, lead:lead + T] = magnitude.T
    known = np.zeros(p1, bool)
    known[lead:lead + T] = True  # slices outside the frames (padding) are left free
    rng = np.random.default_rng(seed)
    spec = target * np.exp(2j * np.pi * rng.random(target.shape))
    prev = np.zeros_like(spec)
    for _ in range(n_iter):
        x = stft.istft(spec, k1=n)
        rebuilt = stft.stft(x, p0=0, p1=p1)
        accel = rebuilt + momentum * (rebuilt - prev) if momentum else rebuilt
        prev = rebuilt
        spec = np.where(known, target * np.exp(1j * np.angle(accel)), rebuilt)
    x = stft.istft(spec, k1=n)
    return np.asarray(x[pad:], np.float32)


def resynthesise(logmel: np.ndarray, cfg: FrontendConfig | None = None, n_iter: int = 60) -> np.ndarray:
    """Log-mel frames as the model saw them -> audio at cfg.sample_rate (float32, peak at most 0.99)."""
    cfg = cfg or FrontendConfig()
    logmel = np.asarray(logmel, np.float32)
    if logmel.ndim != 2 or logmel.shape[1] != cfg.n_mels:
        raise ValueError(f"expected (frames, {cfg.n_mels}) log-mel frames, got shape {logmel.shape}")
    x = griffin_lim(np.sqrt(mel_to_power(logmel, cfg)), cfg, n_iter=n_iter)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return x * np.float32(0.99 / top) if top > 0.99 else x


def mel_distance_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two log-mel matrices in dB (frames aligned from the start)."""
    n = min(a.shape[0], b.shape[0])
    return float(np.mean(np.abs(a[:n] - b[:n])) * 10.0 / np.log(10.0))


def roundtrip_error_db(x: np.ndarray, cfg: FrontendConfig | None = None, n_iter: int = 60) -> float:
    """Audio -> log-mel -> resynthesis -> log-mel: how far (dB) the frames move; a check of the whole inversion."""
    fe = Frontend(cfg)
    mel, _ = fe.compute(x)
    back, _ = fe.compute(resynthesise(mel, fe.cfg, n_iter=n_iter))
    return mel_distance_db(mel, back)
