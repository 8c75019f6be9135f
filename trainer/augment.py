"""Waveform and spectrogram augmentation, through the serving path (segment -> stamp) so training sees what serving sees.

Per clip: optionally another voice first (formants and pitch moved apart, `voice_p`), speed perturbation
(resampling), room reverberation (a synthetic decaying-noise impulse response), a microphone-like high-pass, gain, a
random low-pass at 4 kHz or lower (FSDD is 8 kHz audio: mixing bandwidths keeps bandwidth from being a cue),
background noise at a random SNR, a time shift of the stamp, then a mel-axis warp (a cheap pitch / vocal-tract
perturbation). SpecAugment masks are applied per epoch on the stamps.
Augmented copies are precomputed with a process pool (fork), since segmenting in Python is too slow for tf.data.
"""

from __future__ import annotations

import multiprocessing as mp
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, firwin2, sosfilt

from shared.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, read_audio, resample
from shared.features import Frontend, FrontendConfig
from shared.segment import SegmenterConfig, clip_stamp, word_span

DEFAULT_NOISE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "noise"


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of every perturbation; probabilities say how often each is applied."""

    speed: tuple[float, float] = (0.85, 1.15)
    gain_db: tuple[float, float] = (-20.0, 6.0)
    reverb_p: float = 0.3  # the recipe's voices are dry (TTS, close-talking FSDD); users' rooms are not
    rt60_s: tuple[float, float] = (0.15, 0.7)
    highpass_p: float = 0.25  # small microphones lose the low end
    highpass_hz: tuple[float, float] = (80.0, 400.0)
    lowpass_p: float = 0.5
    lowpass_hz: tuple[float, float] = (2500.0, 4000.0)
    eq_p: float = 0.0  # a random microphone colouring (random_eq); 0 = off, as the shipped recipe
    eq_db: float = 10.0
    noise_p: float = 0.6
    snr_db: tuple[float, float] = (0.0, 20.0)
    snr_ref: str = "clip"  # "speech": SNR against the word's loud frames (as bench/ and users mean it); "clip": whole clip
    # A copy that gets no background noise gets a noise recording this many dB under it instead, so the context around
    # the word is a quiet room, as the daemon always hears it, not digital silence. None = off (as the shipped recipe:
    # no random number drawn).
    quiet_snr_db: tuple[float, float] | None = None
    # How often a copy is driven past full scale (its peak this many dB over it) and hard-clipped, as a microphone set
    # too loud clips a user's word. 0 = off (as the shipped recipe: no random number drawn).
    clip_p: float = 0.0
    clip_db: tuple[float, float] = (1.0, 12.0)
    # How often a copy is said by another voice first (change_voice): its formants moved by a factor of `voice_formant`
    # and its pitch moved to a median drawn log-uniformly from `voice_pitch_hz`, its intonation's range scaled by
    # `voice_range`. Speed and the mel warp move pitch and formants together, so six male FSDD speakers never sound
    # like a woman or a child; this does, independently (round 16). 0 = off (no random number drawn).
    voice_p: float = 0.0
    voice_formant: tuple[float, float] = (0.88, 1.22)
    voice_pitch_hz: tuple[float, float] = (85.0, 300.0)
    voice_range: tuple[float, float] = (0.6, 1.5)
    shift_frames: int = 8
    warp: tuple[float, float] = (0.9, 1.1)  # mel-axis stretch factor
    time_masks: int = 1
    time_mask_max: int = 8
    freq_masks: int = 1
    freq_mask_max: int = 5


def load_noises(folder: Path | None, part: tuple[float, float] = (0.0, 0.7)) -> list[np.ndarray]:
    """The background recordings of `folder` (16 kHz float32), only the `part` of each (the rest is for testing)."""
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for f in sorted(Path(folder).iterdir()):
        if f.suffix.lower() in AUDIO_SUFFIXES:
            try:
                x = read_audio(f)
            except AudioError:
                continue
            out.append(x[int(part[0] * x.size):int(part[1] * x.size)])
    return [x for x in out if x.size > SAMPLE_RATE]


def perturb_audio(x: np.ndarray, rng: np.random.Generator, noises: list[np.ndarray], cfg: AugmentConfig) -> np.ndarray:
    """One random waveform perturbation of a word clip (16 kHz float32)."""
    if cfg.voice_p > 0 and rng.random() < cfg.voice_p:  # no draw when off: the shipped recipe's random stream is kept
        x = change_voice(x, float(rng.uniform(*cfg.voice_formant)),
                         float(np.exp(rng.uniform(*np.log(cfg.voice_pitch_hz)))), float(rng.uniform(*cfg.voice_range)))
    speed = rng.uniform(*cfg.speed)
    if abs(speed - 1.0) > 0.01:
        x = resample(x, int(round(SAMPLE_RATE * speed)), SAMPLE_RATE)
    if rng.random() < cfg.reverb_p:
        x = reverberate(x, rng, float(rng.uniform(*cfg.rt60_s)))
    if rng.random() < cfg.highpass_p:
        sos = butter(2, rng.uniform(*cfg.highpass_hz), btype="high", fs=SAMPLE_RATE, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    if rng.random() < cfg.lowpass_p:
        sos = butter(6, rng.uniform(*cfg.lowpass_hz), btype="low", fs=SAMPLE_RATE, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    if cfg.eq_p > 0 and rng.random() < cfg.eq_p:  # no draw when off: the shipped recipe's random stream is kept
        x = random_eq(x, rng, cfg.eq_db)
    pad = int(rng.integers(0, SAMPLE_RATE // 4))
    x = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(int(rng.integers(0, SAMPLE_RATE // 4)), np.float32)])
    snr_range = None
    if noises and rng.random() < cfg.noise_p:
        snr_range = cfg.snr_db
    elif noises and cfg.quiet_snr_db is not None:
        snr_range = cfg.quiet_snr_db
    if snr_range is not None:
        n = noises[int(rng.integers(len(noises)))]
        s = int(rng.integers(0, n.size - x.size)) if n.size > x.size else 0
        seg = np.resize(n[s:s + x.size], x.size)
        p_sig = (speech_power(x) if cfg.snr_ref == "speech" else float(np.mean(x**2))) + 1e-10
        p_noise = float(np.mean(seg**2)) + 1e-10
        snr = rng.uniform(*snr_range)
        x = x + seg * np.float32(np.sqrt(p_sig / (p_noise * 10 ** (snr / 10))))
    x = x * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
    if cfg.clip_p > 0 and rng.random() < cfg.clip_p:
        x = x * np.float32(10 ** (rng.uniform(*cfg.clip_db) / 20) / (float(np.max(np.abs(x))) + 1e-9))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def change_voice(x: np.ndarray, formant_ratio: float, pitch_hz: float, pitch_range: float = 1.0) -> np.ndarray:
    """The clip as another voice would say it: Praat's "Change gender" (PSOLA with formants moved by resampling, via
    parselmouth, a [train] dependency) moves its formants by `formant_ratio` and its median pitch to `pitch_hz`, its
    pitch range scaled by `pitch_range`, keeping its length and peak level (a pitch median of 0 keeps the pitch). A
    clip Praat cannot work on (silence) comes back unchanged."""
    import parselmouth
    from parselmouth.praat import call

    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    try:
        with warnings.catch_warnings():  # "no voiced segments found": then only the formants move
            warnings.simplefilter("ignore", parselmouth.PraatWarning)
            sound = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=SAMPLE_RATE)
            y = call(sound, "Change gender", 75.0, 600.0, formant_ratio, pitch_hz, pitch_range, 1.0).values[0]
    except parselmouth.PraatError:
        return x
    y_peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(y_peak) or y_peak == 0.0:  # an empty answer has no peak either
        return x
    return (y * (peak / y_peak)).astype(np.float32)


def random_eq(x: np.ndarray, rng: np.random.Generator, max_db: float, taps: int = 65) -> np.ndarray:
    """x through a random smooth colouring of up to ±max_db, as microphones and laptops give their users' voices:
    a tilt and two slower bumps on a log-frequency axis, as a linear-phase FIR (its delay removed)."""
    f = np.linspace(0.0, SAMPLE_RATE / 2, 33)
    u = np.log2(np.maximum(f, 50.0) / 50.0) / np.log2(SAMPLE_RATE / 2 / 50.0)
    db = sum(rng.uniform(-1.0, 1.0) * np.cos(np.pi * k * u) for k in (1, 2, 3))
    db = db / max(float(np.abs(db).max()), 1e-6) * rng.uniform(0.0, max_db)
    h = firwin2(taps, f, 10 ** (db / 20), fs=SAMPLE_RATE)
    return np.convolve(x, h, mode="same").astype(np.float32)


def speech_power(x: np.ndarray, hop: int = SAMPLE_RATE // 100, within_db: float = 20.0) -> float:
    """Mean power of the 10 ms frames within `within_db` of the loudest: the word itself, not the pauses or padding
    around it, so that an SNR means the same for a tight FSDD clip and a 1 s Speech Commands one."""
    n = x.size // hop
    if n == 0:
        return float(np.mean(x**2)) if x.size else 0.0
    e = np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1)
    loud = e[e >= e.max() * 10 ** (-within_db / 10)]
    return float(np.mean(loud))


def reverberate(x: np.ndarray, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """x in a random room: convolved with exponentially decaying noise (60 dB down after rt60_s) after a direct path,
    at a random direct-to-reverberant ratio; the tail is kept, and the level matches the dry clip's peak."""
    n = max(1, int(rt60_s * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    h *= 10 ** (-rng.uniform(0.0, 12.0) / 20) / (np.sqrt(np.sum(h**2)) + 1e-12)  # reverberant energy 0-12 dB below
    h[0] = 1.0
    y = fftconvolve(x, h)[: x.size + n // 2]
    peak = float(np.max(np.abs(y))) + 1e-12
    return (y * (float(np.max(np.abs(x))) / peak)).astype(np.float32)


def mel_warp(stamp: np.ndarray, factor: float) -> np.ndarray:
    """Stretch the mel axis by `factor` (>1 moves energy up), clamping at the edges."""
    m = stamp.shape[1]
    src = np.clip(np.arange(m) / factor, 0, m - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, m - 1)
    w = (src - lo).astype(np.float32)
    return stamp[:, lo] * (1 - w) + stamp[:, hi] * w


def augment_stamp(x: np.ndarray, rng: np.random.Generator, noises: list[np.ndarray], cfg: AugmentConfig,
                  frontend: Frontend, seg_cfg: SegmenterConfig) -> np.ndarray:
    """A word clip -> one augmented stamp, via the shared segment-then-stamp path."""
    y = perturb_audio(x, rng, noises, cfg)
    shift = int(rng.integers(-cfg.shift_frames, cfg.shift_frames + 1))
    stamp = clip_stamp(y, frontend, seg_cfg, shift=shift)
    return mel_warp(stamp, float(rng.uniform(*cfg.warp)))


def spec_augment(stamps: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Time and frequency masks (filled with each stamp's minimum, the stamp's own background) on a copy."""
    out = stamps.copy()
    n, t, f = out.shape
    fill = out.reshape(n, -1).min(axis=1)
    for _ in range(cfg.time_masks):
        w = rng.integers(0, cfg.time_mask_max + 1, n)
        s = rng.integers(0, t, n)
        mask = (np.arange(t)[None] >= s[:, None]) & (np.arange(t)[None] < (s + w)[:, None])
        out = np.where(mask[:, :, None], fill[:, None, None], out)
    for _ in range(cfg.freq_masks):
        w = rng.integers(0, cfg.freq_mask_max + 1, n)
        s = rng.integers(0, f, n)
        mask = (np.arange(f)[None] >= s[:, None]) & (np.arange(f)[None] < (s + w)[:, None])
        out = np.where(mask[:, None, :], fill[:, None, None], out)
    return out.astype(np.float32)


def mixup(x: np.ndarray, targets: list[np.ndarray], weights: np.ndarray, alpha: float,
          rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Mixup (Zhang et al. 2018): every stamp blended with a random partner, lambda ~ Beta(alpha, alpha), and its
    targets and sample weight blended alike, so that the net is asked for in-between confidence in between inputs
    rather than certainty everywhere. alpha <= 0: returned unchanged, drawing no random numbers."""
    if alpha <= 0:
        return x, targets, weights
    n = x.shape[0]
    lam = rng.beta(alpha, alpha, n).astype(np.float32)
    j = rng.permutation(n)

    def blend(a: np.ndarray) -> np.ndarray:
        w = lam.reshape((n,) + (1,) * (a.ndim - 1))
        return (w * a + (1 - w) * a[j]).astype(a.dtype)

    return blend(x), [blend(t) for t in targets], blend(weights)


def splice_words(clips: list[np.ndarray], labels: np.ndarray, speakers: np.ndarray, n: int,
                 rng: np.random.Generator, frontend: Frontend, seg_cfg: SegmenterConfig,
                 part: tuple[float, float] = (0.3, 0.7),
                 fade_s: float = 0.01) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` non-words made of two words: the start of one joined to the end of another the same speaker said; returns
    them and the index of the clip each starts with (its speaker is theirs).

    A model that names a word from its first sounds, or from its vowel, takes many other words for it (Speech
    Commands' "sheila" for zero, "wow" for one). A spliced "thr-ix" has a digit's parts in a digit's voice, so it
    can only be told from a digit by listening to the whole word; the trainer learns these as `_unknown_` (round 17).
    Each word is cut at a random `part` of its span (shared.segment.word_span, the stamp's own word), the second is
    brought to the first one's level (by 12 dB at most), and the two overlap by `fade_s` seconds.
    """
    by_speaker: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        by_speaker.setdefault(str(s), []).append(i)
    several = {s for s, idx in by_speaker.items() if len(set(labels[idx].tolist())) > 1}  # said two words or more
    firsts = [i for i in range(len(clips)) if str(speakers[i]) in several]
    if n <= 0 or not firsts:
        return [], np.zeros(0, int)
    hop = frontend.cfg.hop_length
    half = frontend.cfg.win_length // 2
    spans: dict[int, tuple[int, int, float]] = {}

    def span(i: int) -> tuple[int, int, float]:
        """Sample range of clip i's word and its level (RMS over the range)."""
        if i not in spans:
            mel, energy = frontend.compute(clips[i])
            a, b = word_span(mel, energy, frontend.cfg, seg_cfg, clips[i])
            lo, hi = a * hop + half, min(clips[i].size, b * hop + half)
            lo = min(lo, max(hi - 1, 0))
            spans[i] = (lo, hi, float(np.sqrt(np.mean(clips[i][lo:hi] ** 2))) + 1e-9)
        return spans[i]

    fade = max(1, int(fade_s * SAMPLE_RATE))
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out, starts = [], []
    for _ in range(n):
        a = firsts[int(rng.integers(len(firsts)))]
        starts.append(a)
        others = [j for j in by_speaker[str(speakers[a])] if labels[j] != labels[a]]
        b = others[int(rng.integers(len(others)))]
        (a0, a1, la), (b0, b1, lb) = span(a), span(b)
        cut_a = a0 + int(rng.uniform(*part) * (a1 - a0))
        cut_b = b0 + int(rng.uniform(*part) * (b1 - b0))
        head = clips[a][:cut_a + fade].astype(np.float32)
        gain = float(np.clip(la / lb, 0.25, 4.0))  # at most 12 dB: more would lift the second clip's room too
        tail = clips[b][max(cut_b - fade, 0):].astype(np.float32) * np.float32(gain)
        k = min(fade, head.size, tail.size)
        joint = head[head.size - k:] * ramp[::-1][fade - k:] + tail[:k] * ramp[:k] if k else np.zeros(0, np.float32)
        word = np.concatenate([head[:head.size - k], joint, tail[k:]])
        out.append(np.clip(word, -1.0, 1.0).astype(np.float32))
    return out, np.array(starts, int)


_JOB: dict = {}  # inherited by forked workers: the clips, noises and configs


def _work(args: tuple[list[int], int]) -> np.ndarray:
    idx, seed = args
    rng = np.random.default_rng(seed)
    j = _JOB
    fe = Frontend(j["fcfg"])
    return np.stack([augment_stamp(j["clips"][i], rng, j["noises"], j["cfg"], fe, j["seg"]) for i in idx])


def augment_many(clips: list[np.ndarray], copies: int, cfg: AugmentConfig, noises: list[np.ndarray], *, seed: int,
                 fcfg: FrontendConfig, seg_cfg: SegmenterConfig, workers: int = 2,
                 progress=None) -> tuple[np.ndarray, np.ndarray]:
    """`copies` augmented stamps of every clip -> (stamps (N*copies, T, M) float32, source index of each)."""
    order = np.tile(np.arange(len(clips)), copies)
    chunks = [order[a:a + 256].tolist() for a in range(0, order.size, 256)]
    _JOB.update(clips=clips, noises=noises, cfg=cfg, fcfg=fcfg, seg=seg_cfg)
    args = [(c, seed * 100_003 + k) for k, c in enumerate(chunks)]
    out = []
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for r in pool.imap(_work, args):
                out.append(r)
                if progress:
                    progress(len(r))
    else:
        for a in args:
            out.append(_work(a))
            if progress:
                progress(len(out[-1]))
    _JOB.clear()
    if not out:
        return np.zeros((0, *fcfg.stamp_shape), np.float32), order
    return np.concatenate(out).astype(np.float32), order
