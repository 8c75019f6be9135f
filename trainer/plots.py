"""PNG pictures for people checking the data: how a recording was cut, and a grid of stamps per word.

matplotlib with the Agg backend (no display needed); every picture is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from shared.audio import atomic_write_bytes  # noqa: E402
from shared.features import Frontend  # noqa: E402
from shared.segment import Segment, SegmenterConfig, StreamSegmenter  # noqa: E402


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def floor_trace(energy_db: np.ndarray, cfg: SegmenterConfig, frontend: Frontend) -> np.ndarray:
    """The segmenter's noise floor frame by frame, primed as the offline segmenter primes it."""
    e = np.asarray(energy_db, dtype=np.float64)
    if e.size == 0:
        return e
    prime = float(np.percentile(np.maximum(e, cfg.abs_floor_db), 5))
    seg = StreamSegmenter(dataclasses_replace_vad(cfg), frontend.cfg, initial_floor_db=prime)
    out = np.empty_like(e)
    for i in range(e.size):
        seg.push(e[i:i + 1])
        out[i] = seg.floor_db
    return out


def dataclasses_replace_vad(cfg: SegmenterConfig) -> SegmenterConfig:
    """The floor is an energy notion: trace it with the energy decider even if the split used webrtcvad."""
    import dataclasses

    return dataclasses.replace(cfg, vad="energy")


def plot_split(path: Path, x: np.ndarray, frontend: Frontend, segs: list[Segment], cfg: SegmenterConfig,
               words: list[str], title: str = "") -> Path:
    """Waveform, energy, noise floor and thresholds, and the cuts labelled with their words."""
    _, energy = frontend.compute(x)
    fc = frontend.cfg
    t_audio = np.arange(x.size) / fc.sample_rate
    t_frames = np.arange(energy.size) * fc.hop_length / fc.sample_rate
    floor = floor_trace(energy, cfg, frontend)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    step = max(1, x.size // 20000)
    ax1.plot(t_audio[::step], x[::step], lw=0.5, color="0.3")
    ax1.set_ylabel("amplitude")
    ax1.set_title(f"{title}: {len(segs)} segments, {len(words)} words expected")
    ax2.plot(t_frames, energy, lw=0.8, label="energy (dB)")
    ax2.plot(t_frames, floor, lw=0.8, color="k", label="noise floor")
    ax2.plot(t_frames, floor + cfg.on_db, lw=0.6, ls="--", color="g", label=f"start (+{cfg.on_db:g} dB)")
    ax2.plot(t_frames, floor + cfg.off_db, lw=0.6, ls=":", color="r", label=f"quiet (+{cfg.off_db:g} dB)")
    ax2.set_ylabel("dB")
    ax2.set_xlabel("seconds")
    for i, s in enumerate(segs):
        a, b = s.seconds(fc)
        for ax in (ax1, ax2):
            ax.axvspan(a, b, color="tab:orange" if len(segs) == len(words) else "tab:red", alpha=0.2)
        label = words[i] if len(segs) == len(words) else str(i + 1)
        ax1.text((a + b) / 2, 0.95, label, transform=ax1.get_xaxis_transform(), ha="center", va="top", fontsize=8)
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_stamp_grid(path: Path, stamps: np.ndarray, labels: np.ndarray, words: list[str], per_word: int = 6,
                    seed: int = 0) -> Path:
    """A few stamps of each word side by side: a glance shows misaligned or empty clips."""
    rng = np.random.default_rng(seed)
    rows = len(words)
    fig, axes = plt.subplots(rows, per_word, figsize=(1.3 * per_word, 1.1 * rows + 0.4), squeeze=False)
    for r, w in enumerate(words):
        idx = np.flatnonzero(labels == r)
        pick = rng.choice(idx, size=min(per_word, idx.size), replace=False) if idx.size else []
        for c in range(per_word):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(pick):
                ax.imshow(np.asarray(stamps[pick[c]], np.float32).T, origin="lower", aspect="auto", cmap="magma")
            if c == 0:
                ax.set_ylabel(w, fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path))
