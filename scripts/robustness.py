"""The same held-out clips as users' files may hold them: another rate and depth, quieter, zero-padded, with a DC
offset, recorded too hot. Accuracy of a bundle on each version (rejections count as wrong).

    python -m scripts.robustness models/digits [--folder data/recipe/sc-test] [--folder ~/.cache/wordstamp-bench/tts]

Each version is written as a wav file and read back by `wordstamp evaluate`'s own path (trainer.evaluate), so the
file reading, resampling and segmenting are measured too. Only folders of the bundle's words are used.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def versions(x: np.ndarray):
    """(name, samples, rate, soundfile subtype) of one 16 kHz clip."""
    from scipy.signal import resample_poly

    peak = float(np.max(np.abs(x))) + 1e-9
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
