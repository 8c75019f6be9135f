"""Accuracy and false accepts of a digits bundle against its reject threshold, on validation and held-out folders.

    python -m scripts.threshold_curve models/digits --work data/recipe [--run runs/digits] \
        [--tts ~/.cache/wordstamp-bench/tts] [--gate top|vocabulary|distance]

The bundle's own threshold is one point on these curves; this shows what the others would cost. Validation = the run's
validation speakers (runs/<name>/calib.npz; without --run, no validation column); sc-test and oov = the recipe's
held-out folders; --tts = held-out TTS voices (`make bench` caches them), whose animal words count as
out-of-vocabulary. Every figure runs the int8 model on LiteRT, as `wordstamp evaluate` does (top-1 at threshold 0 is
accuracy before rejection); --gate scores the clips as another gate would (default: the bundle's own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shared.audio import read_audio
from shared.bundle import GATES, SPECIAL_LABELS, load_bundle, special_mask
from shared.features import Frontend
from shared.runtime import CnnModel, gated
from shared.segment import clip_stamp
from trainer.dataset import find_clips

# the strict end (0.99 and up) parts clips only on bundles that serve logits (format 2): an int8 softmax output stops
# at 255/256 = 0.996
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


def batched_outputs(cnn: CnnModel, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(embeddings, probabilities) of stamps, 128 at a time."""
    outs = [cnn.infer(x[a:a + 128]) for a in range(0, len(x), 128)]
    return (None if outs[0][0] is None else np.concatenate([e for e, _ in outs])), np.concatenate([p for _, p in outs])


def folder_stamps(fe: Frontend, seg, folder: Path) -> tuple[np.ndarray, list[str]]:
    """Every clip of `folder/<word>/` segmented and stamped as `wordstamp evaluate` does, and its word."""
    clips = find_clips(folder)
    return np.stack([clip_stamp(read_audio(p), fe, seg) for _, p in clips]), [w for w, _ in clips]


def _probs(cnn: CnnModel, fe: Frontend, seg, folder: Path) -> tuple[tuple, list[str]]:
    x, words = folder_stamps(fe, seg, folder)
    return batched_outputs(cnn, x), words


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--run", type=Path, default=None, help="the training run folder (for its validation stamps)")
    ap.add_argument("--work", type=Path, required=True, help="the recipe folder holding sc-test/ and oov/")
    ap.add_argument("--tts", type=Path, default=None, help="held-out TTS voices, <word>/*.wav")
    ap.add_argument("--gate", choices=GATES, default=None, help="what the threshold is compared with")
    a = ap.parse_args(argv)
    b = load_bundle(a.bundle)
    cnn, fe, seg, words = CnnModel(b), Frontend(b.frontend_config), b.segmenter_config, b.manifest.vocabulary
    special = special_mask(words)
    gate = a.gate or b.manifest.gate
    if gate == "distance" and cnn.distance is None:
        ap.error(f"--gate distance: {a.bundle} has no distance gate (export it with --gate distance)")
    sets: dict[str, tuple[tuple, np.ndarray]] = {}  # name -> ((emb, probs), label index or -1 for out-of-vocabulary)
    if a.run is not None:
        cal = np.load(a.run / "calib.npz", allow_pickle=False)
        vl = cal["val_labels"]
        sets["validation"] = (batched_outputs(cnn, cal["val_stamps"].astype(np.float32)), np.where(special[vl], -1, vl))
    for name, folder in (("sc-test", a.work / "sc-test"), ("oov", a.work / "oov"), ("tts", a.tts)):
        if folder is not None and folder.is_dir():
            p, ws = _probs(cnn, fe, seg, folder)
            sets[name] = (p, np.array([words.index(w) if w in words and w not in SPECIAL_LABELS else -1 for w in ws]))
    print(f"bundle threshold {b.manifest.threshold} ({b.manifest.gate} gate), curve for the {gate} gate; "
          "accuracy = in-vocabulary clips accepted as the right word, fa = out-of-vocabulary clips accepted as a word")
    print("threshold  " + "  ".join(f"{n:>22}" for n in sets))
    points = set(THRESHOLDS) | ({0.1, 0.2, 0.3, 0.4} if gate == "distance" else set())  # percentiles reach lower
    for t in sorted(points | {b.manifest.threshold}):  # the bundle's own point too
        cells = []
        for (e, p), lab in sets.values():
            idx, score = cnn.gated(e, p) if gate == "distance" else gated(p, special, gate)
            inv, oov = lab >= 0, lab < 0
            acc = f"{np.mean((idx[inv] == lab[inv]) & (score[inv] >= t)):6.1%}" if inv.any() else "     -"
            fa = f"{np.mean((idx[oov] >= 0) & (score[oov] >= t)):6.1%}" if oov.any() else "     -"
            cells.append(f"acc {acc} fa {fa}")
        print(f"{t:9.3f}  " + "  ".join(f"{c:>22}" for c in cells))
    print("n: " + ", ".join(f"{n} {int((lab >= 0).sum())} in / {int((lab < 0).sum())} out" for n, (_, lab) in sets.items()))


if __name__ == "__main__":
    main()
