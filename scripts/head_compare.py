"""Classifiers for a head on the digits CNN's embedding, compared at 1/3/5/10 shots a word on unseen speakers.

    python -m scripts.head_compare models/digits --work data/recipe [--copies 8] [--negative-copies 4]
        [--noise ../shared/data/noise]

Each draw takes `shots` random clips a word from the recipe's animals enrolment pool, `--copies` perturbed copies of
each and all of its negatives (_unknown_/_silence_) with half as many copies (as `wordstamp enroll` does), fits on
standardised embeddings and scores the held-out speakers (animals-test: a clip counts when the right word is
accepted; reject classes count as rejections) and the out-of-vocabulary words of `oov` (tree, wow, sheila, marvin,
noise: any accepted word is a false accept). Mean of 5 draws. The linear SVM row is the head `wordstamp enroll`
fitted until round 6 (since then C = 0.003 and the margin gate: scripts/head_margin.py); the others are candidates
measured, not shipped (models/README.md).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from shared.bundle import load_bundle
from trainer.enroll import accepted_words, draw_shots, embed_folder


def candidates() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.svm import LinearSVC

    return {"linear SVM C=0.01 (rounds 3-6)": lambda: LinearSVC(C=0.01, class_weight="balanced", max_iter=5000),
            "logistic regression C=0.01": lambda: LogisticRegression(C=0.01, class_weight="balanced", max_iter=3000),
            "logistic regression C=0.03": lambda: LogisticRegression(C=0.03, class_weight="balanced", max_iter=3000),
            "nearest class mean": lambda: NearestCentroid()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.head_compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("--work", type=Path, default=Path("data/recipe"))
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--copies", type=int, default=8, help="perturbed copies of each enrolment clip (enroll's default)")
    ap.add_argument("--negative-copies", type=int, default=None, help="... of each negative (default: half as many)")
    ap.add_argument("--noise", type=Path, default=None, help="noise recordings mixed into some copies")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")  # dead ReLU units: harmless here
    base = load_bundle(a.base)
    pool = embed_folder(base, a.work / "animals", copies=a.copies, noise_dir=a.noise)
    n_neg = a.copies // 2 if a.negative_copies is None else a.negative_copies
    neg = embed_folder(base, a.work / "animals-neg", copies=n_neg, noise_dir=a.noise, seed=1)
    test, oov = (embed_folder(base, a.work / f) for f in ("animals-test", "oov"))
    vocab = sorted(set(pool.words.tolist()))
    x_oov = oov.emb[~np.isin(oov.words, vocab)]
    want = accepted_words(test.words)
    print(f"held-out clips {len(test.words)}, out-of-vocabulary {len(x_oov)}, negatives {len(neg.words)}")
    print(f"{'classifier':<30}" + "".join(f"{f'{k} shots acc / fa':>22}" for k in (1, 3, 5, 10)))
    for name, make in candidates().items():
        row = []
        for k in (1, 3, 5, 10):
            rng = np.random.default_rng(0)
            acc, fa = [], []
            for _ in range(a.draws):
                idx = draw_shots(pool.words, rng, k)
                x, y = pool.take(idx).with_copies("embedding")
                nx, ny = neg.with_copies("embedding")
                x, y = np.concatenate([x, nx]), np.concatenate([y, ny])
                mean, scale = x.mean(0), x.std(0) + 1e-6
                clf = make().fit((x - mean) / scale, y)
                acc.append(np.mean(accepted_words(clf.predict((test.emb - mean) / scale)) == want))
                fa.append(np.mean(accepted_words(clf.predict((x_oov - mean) / scale)) != None))  # noqa: E711 (object array)
            row.append(f"{100 * np.mean(acc):5.1f} % / {100 * np.mean(fa):4.1f} %")
        print(f"{name:<30}" + "".join(f"{r:>22}" for r in row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
