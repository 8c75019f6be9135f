"""A tiny synthetic word corpus for the trainer tests: each 'word' is a tone pattern, each 'speaker' a pitch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import tone_word

WORDS = {"low": (150.0, 0.35), "mid": (300.0, 0.25), "high": (600.0, 0.45)}


def make_clips(root: Path, speakers: int = 4, takes: int = 6, seed: int = 0, words=WORDS) -> Path:
    """root/<word>/spk<k>_<word>_<i>.wav: tone words with silence around, 16 kHz."""
    rng = np.random.default_rng(seed)
    for w, (f0, dur) in words.items():
        (root / w).mkdir(parents=True, exist_ok=True)
        for s in range(speakers):
            for i in range(takes):
                x = tone_word(rng, seconds=dur * rng.uniform(0.85, 1.15), f0=f0 * (1 + 0.06 * s) * rng.uniform(0.97, 1.03))
                pad = np.zeros(int(0.3 * 16000), np.float32)
                y = np.concatenate([pad, x, pad]) + 0.001 * rng.standard_normal(2 * pad.size + x.size).astype(np.float32)
                sf.write(root / w / f"spk{s}_{w}_{i}.wav", y, 16000)
    return root
