"""How well a stamp survives background noise, before any model: each clip's stamp with held-out noise mixed in is
matched (correlation) against the clean stamps of all the clips; how often is its own clean stamp the best match?

    python -m scripts.stamp_match [--folder data/recipe/sc-test] [--folder data/recipe/oov --limit 100]
        [--snr 20 10 5] [--band-floor 0 15 20 30 40]

A stamp option that keeps a word recognisable in noise should raise this; one that throws away what tells clips apart
would also make other clips look alike (the mean correlation with the others is printed beside it). Noise: the
held-out tail of each recording in ../shared/data/noise, at the SNR against the whole clip, seeded. data/recipe is the
recipe's folder (`make models` writes it).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.stamp_match", description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, action="append", default=None,
                    help="<word>/*.wav clips (default: data/recipe/sc-test and the first 100 of data/recipe/oov)")
    ap.add_argument("--limit", type=int, default=100, help="at most this many clips of each folder after the first")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 10.0, 5.0])
    ap.add_argument("--band-floor", type=float, nargs="+", default=[0.0, 15.0, 20.0, 30.0, 40.0])
    a = ap.parse_args(argv)
    from bench.heldout import noise_test_audio
    from bench.streams import mix_noise
    from shared.audio import read_audio
    from shared.features import Frontend, FrontendConfig
    from shared.segment import clip_stamp

    folders = a.folder or [Path("data/recipe/sc-test"), Path("data/recipe/oov")]
    files: list[Path] = []
    for i, folder in enumerate(folders):
        found = sorted(folder.glob("*/*.wav"))
        if not found:
            ap.error(f"{folder}: no <word>/*.wav clips (data/recipe comes from `make models`)")
        files += found if i == 0 else found[:a.limit]
    clean = [read_audio(f) for f in files]
    noises = noise_test_audio(a.shared)
    if not noises:
        ap.error(f"{a.shared / 'noise'}: no noise recordings")
    fronts = {floor: Frontend(dataclasses.replace(FrontendConfig(), band_floor_db=floor)) for floor in a.band_floor}
    stamps = {floor: _standardised(np.stack([clip_stamp(x, fe).ravel() for x in clean])) for floor, fe in fronts.items()}
    print(f"{len(files)} clips; own clean stamp matched first / mean correlation with it / with the other clips")
    for snr in a.snr:
        rng = np.random.default_rng(int(snr * 10))
        noisy = [mix_noise(x, noises[int(rng.integers(len(noises)))], snr, rng, speech_rms=float(np.sqrt(np.mean(x**2))))
                 for x in clean]
        for floor, fe in fronts.items():
            A = stamps[floor]  # the clean stamps, computed once for every SNR
            B = _standardised(np.stack([clip_stamp(x, fe).ravel() for x in noisy]))
            c = B @ A.T / A.shape[1]
            own = np.diag(c)
            others = (c.sum(axis=1) - own) / (len(own) - 1)
            print(f"  {snr:4g} dB  band floor {floor:4g} dB: {100 * np.mean(c.argmax(axis=1) == np.arange(len(own))):5.1f} %"
                  f"   {own.mean():.3f}   {others.mean():.3f}")
    return 0


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)


if __name__ == "__main__":
    raise SystemExit(main())
