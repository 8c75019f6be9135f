"""The same held-out clips as users' files may hold them: another rate and depth, quieter, zero-padded, with a DC
offset, recorded too hot, in a longer recording with a click or a noise burst away from the word. Accuracy of a bundle
on each version (rejections count as wrong).

    python -m scripts.robustness models/digits [--folder data/recipe/sc-test] [--folder ~/.cache/wordstamp-bench/tts]

Each version is written as a wav file and read back by `wordstamp evaluate`'s own path (trainer.evaluate), so the
file reading, resampling and segmenting are measured too. Only folders of the bundle's words are used.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def _quietest(x: np.ndarray, w: int = 1600) -> np.ndarray | None:
    """The clip's quietest w samples (on a 10 ms grid), Hann-windowed; None for a clip no longer than that."""
    if x.size <= w:
        return None
    power = np.convolve(x.astype(np.float64) ** 2, np.ones(w), "valid")[::160]
    return x[int(np.argmin(power)) * 160:][:w] * np.hanning(w)


def _own_background(quiet: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of the clip's quietest stretch (`_quietest`), overlap-added with random signs: its room, for longer."""
    if quiet is None:
        return np.zeros(n)
    w = quiet.size
    out = np.zeros(n + 2 * w)
    for i in range(0, n + w, w // 2):
        out[i:i + w] += quiet * rng.choice([-1.0, 1.0])
    return out[w:w + n]  # every sample under two windows: no faded edge quieter than the room


def versions(x: np.ndarray):
    """(name, samples, rate, soundfile subtype) of one 16 kHz clip."""
    from scipy.signal import resample_poly

    peak = float(np.max(np.abs(x))) + 1e-9
    rng = np.random.default_rng(0)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-9
    quiet = _quietest(x)
    room = lambda seconds: _own_background(quiet, int(seconds * 16000), rng)  # noqa: E731
    click = np.zeros(160)
    click[:40] = 0.8 * np.hanning(80)[:40] * rng.choice([-1.0, 1.0], 40)  # 2.5 ms, near full scale
    burst = 0.3 * rms * rng.standard_normal(4000) * np.hanning(4000)  # 250 ms of noise 10 dB under the word
    yield "as recorded", x, 16000, "PCM_16"
    yield "44.1 kHz stereo 24-bit", np.stack([resample_poly(x, 441, 160)] * 2, 1), 44100, "PCM_24"
    yield "8 kHz", resample_poly(x, 1, 2), 8000, "PCM_16"
    yield "20 dB quieter", x * 0.1, 16000, "PCM_16"
    yield "40 dB quieter", x * 0.01, 16000, "PCM_16"
    yield "0.3 s of zeros either side", np.concatenate([np.zeros(4800), x, np.zeros(4800)]), 16000, "PCM_16"
    yield "1.5 s of zeros either side", np.concatenate([np.zeros(24000), x, np.zeros(24000)]), 16000, "PCM_16"
    yield "DC offset 0.02", x + 0.02, 16000, "PCM_16"
    yield "peak at -1 dBFS", x / peak * 0.89, 16000, "PCM_16"
    yield "driven 3.5 dB past full scale", x / peak * 1.5, 16000, "PCM_16"
    yield "driven 9.5 dB past full scale", x / peak * 3.0, 16000, "PCM_16"
    # a longer recording: the clip's own room around it, and a sound away from the word
    yield "1 s of its own room either side", np.concatenate([room(1.0), x, room(1.0)]), 16000, "PCM_16"
    a = room(1.0)
    a[4000:4160] += click
    yield "a click 0.75 s before it", np.concatenate([a, x, room(0.5)]), 16000, "PCM_16"
    b = room(1.5)
    b[2000:6000] += burst
    yield "a noise burst 1.2 s before it", np.concatenate([b, x, room(0.5)]), 16000, "PCM_16"
    c = room(1.5)
    c[-6000:-2000] += burst
    yield "a noise burst 1.2 s after it", np.concatenate([room(0.5), x, c]), 16000, "PCM_16"


def main(argv: list[str] | None = None) -> int:
    import soundfile as sf

    from shared.audio import read_audio
    from shared.bundle import load_bundle
    from trainer.dataset import find_clips
    from trainer.evaluate import evaluate_folder

    ap = argparse.ArgumentParser(prog="python -m scripts.robustness", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--folder", type=Path, action="append", default=None,
                    help="<word>/*.wav of held-out speakers (default: the recipe's sc-test and bench's TTS cache)")
    a = ap.parse_args(argv)
    folders = a.folder or [Path("data/recipe/sc-test"), Path.home() / ".cache/wordstamp-bench/tts"]
    words = set(load_bundle(a.bundle).manifest.words)
    names = [v[0] for v in versions(np.zeros(16000, np.float32))]
    table: dict[str, list[str]] = {n: [] for n in names}
    for folder in folders:
        clips = [(w, p) for w, p in find_clips(folder) if w in words]
        with tempfile.TemporaryDirectory(prefix="wordstamp-robust-") as tmp:
            for w, p in clips:
                for k, (_, y, rate, subtype) in enumerate(versions(read_audio(p))):
                    out = Path(tmp) / str(k) / w / p.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(out, np.clip(y, -1.0, 1.0), rate, subtype=subtype)
            for k, name in enumerate(names):
                r = evaluate_folder(a.bundle, Path(tmp) / str(k))
                table[name].append(f"{100 * r.accuracy:5.1f} % of {r.n}")
    print(f"{a.bundle}: accuracy on each version of the clips (rejections count as wrong)")
    print(f"{'version':<32}" + "".join(f"{f.name[:22]:>24}" for f in folders))
    for name, cells in table.items():
        print(f"{name:<32}" + "".join(f"{c:>24}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
