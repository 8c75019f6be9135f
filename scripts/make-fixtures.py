#!/usr/bin/env python3
"""Make the test and demo recordings in tests/fixtures/: word sequences spoken by TTS voices held out of training,
with pauses of 0.3-1.5 s and synthesized pink or brown background noise, 16 kHz mono 16-bit, plus the expected words.

    .venv/bin/python scripts/make-fixtures.py [--out tests/fixtures]

Voices (none of them used to train the shipped models): festival ked_diphone, flite rms, espeak-ng en-gb-scotland and
a faster, higher variant of it. Each fixture `NAME.wav` has `NAME.json`: {"words": [...], "spans": [[start, end] s],
"voice": ..., "noise": ..., "snr_db": ...}. Deterministic for a given seed and installed voices.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.audio import SAMPLE_RATE, read_audio, write_wav_atomic  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ANIMALS = ["cat", "dog", "bird", "fox"]


def say(voice: str, text: str) -> np.ndarray:
    """One word from a held-out TTS voice, float32 16 kHz, silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "w.wav"
        if voice == "festival-ked":
            subprocess.run(["text2wave", "-eval", "(voice_ked_diphone)", "-o", str(out)], input=text.encode(),
                           check=True, capture_output=True)
        elif voice == "flite-rms":
            subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(out)], check=True, capture_output=True)
        elif voice == "espeak-scotland":
            subprocess.run(["espeak-ng", "-v", "en-gb-scotland", "-w", str(out), text], check=True,
                           capture_output=True)
        elif voice == "espeak-scotland-f":
            subprocess.run(["espeak-ng", "-v", "en-gb-scotland+f2", "-s", "150", "-p", "65", "-w", str(out), text],
                           check=True, capture_output=True)
        else:
            raise ValueError(f"unknown voice {voice}")
        x = read_audio(out)
    return trim(x)


def trim(x: np.ndarray, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing near-silence (TTS pads differently), keeping 20 ms either side."""
    hop = 160
    e = np.array([np.sqrt(np.mean(x[i:i + hop] ** 2) + 1e-12) for i in range(0, max(1, x.size - hop), hop)])
    on = np.nonzero(20 * np.log10(e / e.max()) > rel_db)[0]
    if on.size == 0:
        return x
    a = max(0, on[0] * hop - 320)
    b = min(x.size, (on[-1] + 1) * hop + 320)
    return x[a:b]


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) or brown (1/f^2) noise of unit RMS, shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1]
    spec[f < 40.0] = 0.0  # no infrasound: it would dominate the RMS while being inaudible
    y = np.fft.irfft(spec / np.sqrt(f), n)  # pink
    if kind == "brown":  # brown rumble over a pink bed (pure brown swings too much frame to frame: a room has both)
        b = np.fft.irfft(spec / f, n)
        y = y / np.sqrt(np.mean(y**2)) + 0.4 * b / np.sqrt(np.mean(b**2))
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def build(voice: str, words: list[str], noise: str, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Lead 1.2 s, words with 0.3-1.5 s pauses, tail 1.0 s; noise at `snr_db` below the speech RMS."""
    parts = [np.zeros(int(1.2 * SAMPLE_RATE), np.float32)]
    spans = []
    pos = parts[0].size
    speech_power = []
    for i, w in enumerate(words):
        x = say(voice, w)
        x = x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(0.35, 0.6)
        speech_power.append(np.mean(x**2))
        spans.append([round(pos / SAMPLE_RATE, 3), round((pos + x.size) / SAMPLE_RATE, 3)])
        parts.append(x.astype(np.float32))
        pos += x.size
        gap = int((1.0 if i == len(words) - 1 else rng.uniform(0.3, 1.5)) * SAMPLE_RATE)
        parts.append(np.zeros(gap, np.float32))
        pos += gap
    y = np.concatenate(parts)
    level = np.sqrt(np.mean(speech_power)) * 10 ** (-snr_db / 20)
    y = y + level * coloured_noise(y.size, noise, rng)
    y = np.clip(y, -0.99, 0.99).astype(np.float32)
    meta = {"words": words, "spans": spans, "voice": voice, "noise": noise, "snr_db": snr_db,
            "pauses_s": [0.3, 1.5], "sample_rate": SAMPLE_RATE}
    return y, meta


FIXTURES = [
    # name, voice, words, noise, snr
    ("digits_ked", "festival-ked", None, "pink", 25.0),
    ("digits_rms", "flite-rms", None, "brown", 26.0),
    ("digits_scotland", "espeak-scotland", None, "pink", 22.0),
    ("digits_scotland_f", "espeak-scotland-f", None, "brown", 26.0),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    todo = []
    for name, voice, words, noise, snr in FIXTURES:
        todo.append((name, voice, list(rng.permutation(DIGITS)), noise, snr))
    demo = ["three", "cat", "seven", "dog", "one", "bird", "nine", "fox", "five"]
    todo.append(("demo", "flite-rms", demo, "pink", 28.0))
    total = 0
    for name, voice, words, noise, snr in todo:
        y, meta = build(voice, [str(w) for w in words], noise, snr, rng)
        write_wav_atomic(out / f"{name}.wav", y, SAMPLE_RATE, overwrite=True)
        (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        size = (out / f"{name}.wav").stat().st_size
        total += size
        print(f"{name}.wav: {y.size / SAMPLE_RATE:.1f} s, {size // 1024} kB, {voice}, {noise} noise, "
              f"{' '.join(meta['words'])}")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
