"""Which clips `word_span` cuts differently from the plain span (first segment's start to last segment's end, the rule
until round 14): how much of a training set a change of the clip cut touches, and which clips.

    python -m scripts.span_changes data/recipe/digits data/recipe/sc-test data/recipe/oov [--list]
    python -m scripts.span_changes data/recipe/digits --augmented 600   # also perturbed training copies

`--augmented N` draws N clips of the first folder and perturbs each once as training does (trainer.augment,
default AugmentConfig, noise from ../shared/data/noise), seed 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.span_changes", description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--list", action="store_true", help="print each clip cut differently, with its segments")
    ap.add_argument("--augmented", type=int, default=0, help="also N perturbed copies of the first folder's clips")
    ap.add_argument("--noise", type=Path, default=Path("../shared/data/noise"))
    a = ap.parse_args(argv)
    from shared.audio import read_audio
    from shared.features import Frontend
    from shared.segment import segment_frames, word_span
    from trainer.dataset import find_clips

    fe = Frontend()

    def differs(x: np.ndarray) -> tuple[bool, str]:
        mel, energy = fe.compute(x)
        segs = [(s.start, s.end) for s in segment_frames(energy, None, fe.cfg)]
        before = (segs[0][0], segs[-1][1]) if segs else (0, mel.shape[0])  # the plain span
        now = word_span(mel, energy, fe.cfg)
        return now != before, f"segments {segs}: {before} -> {now}"

    for folder in a.folders:
        changed: dict[str, int] = {}
        clips = find_clips(folder)
        for word, path in clips:
            diff, how = differs(read_audio(path))
            if diff:
                changed[word] = changed.get(word, 0) + 1
                if a.list:
                    print(f"  {path}: {how}")
        print(f"{folder}: {sum(changed.values())} of {len(clips)} clips cut differently {changed}")
    if a.augmented:
        from trainer.augment import AugmentConfig, load_noises, perturb_audio

        rng = np.random.default_rng(0)
        noises = load_noises(a.noise)
        clips = find_clips(a.folders[0])
        picks = rng.choice(len(clips), min(a.augmented, len(clips)), replace=False)
        n = sum(differs(perturb_audio(read_audio(clips[i][1]), rng, noises, AugmentConfig()))[0] for i in picks)
        print(f"{a.folders[0]}, perturbed copies: {n} of {len(picks)} cut differently")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
