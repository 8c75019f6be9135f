"""Would averaging several trained draws beat one? Each bundle's int8 probabilities on the held-out sets, and their
mean, through the vocabulary gate at a range of thresholds.

    python -m scripts.draw_ensemble models/digits /tmp/m_s1/digits /tmp/m_s2/digits [--work data/recipe]
        [--tts ~/.cache/wordstamp-bench/tts]

The draws come from `python -m trainer.make_models ../shared/data --fresh --train-seed K --work … --models …`
(same data split, so the same held-out clips). Accuracy = in-vocabulary clips accepted as the right word; fa =
never-trained words accepted as a digit (noise chunks left out: no bundle accepts them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.draw_ensemble", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--work", type=Path, default=Path("data/recipe"), help="the recipe's folder (sc-test, oov)")
    ap.add_argument("--tts", type=Path, default=Path.home() / ".cache" / "wordstamp-bench" / "tts",
                    help="held-out TTS voices, <word>/*.wav (make bench's cache)")
    ap.add_argument("--thresholds", default="0,0.5,0.8,0.85,0.87,0.9,0.95")
    a = ap.parse_args(argv)
    from shared.bundle import load_bundle, special_mask
    from shared.runtime import gated
    from trainer.enroll import embed_folder

    bundles = [load_bundle(p) for p in a.bundles]
    labels = bundles[0].manifest.vocabulary
    if any(b.manifest.vocabulary != labels for b in bundles):
        ap.error("the bundles have different vocabularies")
    special = special_mask(labels)
    sets = {"sc-test": a.work / "sc-test", "oov": a.work / "oov", "tts": a.tts}
    sets = {k: v for k, v in sets.items() if v.is_dir()}
    probs = {k: [embed_folder(b, folder) for b in bundles] for k, folder in sets.items()}

    def kinds(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a vocabulary word was said, a never-trained word was said); _silence_ clips are neither."""
        said = np.array([w in labels and not special[labels.index(w)] for w in words], bool)
        return said, np.array([w not in labels for w in words], bool)

    def rates(p: np.ndarray, words: np.ndarray, t: float) -> tuple[float, float]:
        choice, value = gated(p, special, "vocabulary")
        accepted = (choice >= 0) & (value >= t)
        said, unseen = kinds(words)
        heard = np.array([labels[c] if c >= 0 else "" for c in choice])
        acc = float(np.mean((accepted & (heard == words))[said])) if said.any() else float("nan")
        fa = float(np.mean(accepted[unseen])) if unseen.any() else float("nan")
        return 100 * acc, 100 * fa

    names = [f"#{i + 1}" for i in range(len(bundles))] + ["mean"]
    for i, b in enumerate(a.bundles):
        print(f"#{i + 1} = {b}")
    counts = {k: [int(m.sum()) for m in kinds(np.asarray(v[0].words))] for k, v in probs.items()}
    print("per set: accuracy / false accepts (%); "
          + "; ".join(f"{k}: {d} digits, {o} other words" for k, (d, o) in counts.items()))
    print(f"{'threshold':>9}  {'model':>5}  " + "  ".join(f"{k:>13}" for k in probs))
    for t in (float(x) for x in a.thresholds.split(",")):
        for j, name in enumerate(names):
            cells = []
            for k, embs in probs.items():
                p = np.mean([e.probs for e in embs], 0) if name == "mean" else embs[j].probs
                acc, fa = rates(p, np.asarray(embs[0].words), t)
                cells.append(f"{acc:5.1f} / {fa:5.1f}")
            print(f"{t:9.2f}  {name:>5}  " + "  ".join(f"{c:>13}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
