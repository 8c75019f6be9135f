"""The animals head's reject threshold, chosen on speakers it is neither fitted nor tested on.

    python -m scripts.head_margin models/digits [--work data/recipe] [--c 0.003] [--gate margin]

The enrolment pool's speakers (and the negatives') are split: a third validate, the rest enrol. Each draw fits the
head on 10 clips a word of the enrolling speakers and all their negatives; every threshold is scored on the
validating speakers as words kept right minus negatives accepted (a missed word and a false word cost alike). The best
threshold is then read on the held-out speakers of animals-test and the never-trained words of oov, as `wordstamp
enroll` would fit it (10 clips a word, 5 draws; and the full pool). Every figure runs the base on LiteRT.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from shared.bundle import load_bundle
from trainer.enroll import (Embedded, accepted_words, draw_shots, embed_folder, fit_head, head_words,
                            reject_labels)

THRESHOLDS = np.round(np.arange(-1.5, 0.51, 0.1), 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.head_margin", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("--work", type=Path, default=Path("data/recipe"))
    ap.add_argument("--c", type=float, default=0.003, help="the SVM's C")
    ap.add_argument("--gate", default="margin", help="margin or score (shared.runtime.SvmHead)")
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    base = load_bundle(a.base)
    pool, test, oov = (embed_folder(base, a.work / f) for f in ("animals", "animals-test", "oov"))
    neg = embed_folder(base, a.work / "animals-neg")
    neg.words = reject_labels(neg.words)
    vocab = sorted(set(pool.words.tolist()))
    oov = oov.take(np.flatnonzero(~np.isin(oov.words, vocab)))
    speakers = np.unique(np.concatenate([pool.speakers, neg.speakers]))
    val_spk = np.random.default_rng(a.seed).choice(speakers, len(speakers) // 3, replace=False)
    pv, nv = np.isin(pool.speakers, val_spk), np.isin(neg.speakers, val_spk)
    enrol, val = pool.take(np.flatnonzero(~pv)), pool.take(np.flatnonzero(pv))
    print(f"{base.path}: C={a.c}, gate {a.gate}, {a.shots} clips a word; validation: {pv.sum()} clips of "
          f"{len(set(val.speakers))} speakers, {nv.sum()} negatives; test {len(test.words)} clips, "
          f"oov {len(oov.words)}")

    def fit(p: Embedded, idx: np.ndarray, n_mask: np.ndarray):
        x = np.concatenate([p.emb[idx], neg.emb[n_mask]])
        return fit_head(x, np.concatenate([p.words[idx], neg.words[n_mask]]), c=a.c, gate=a.gate)

    rng = np.random.default_rng(0)
    heads = [fit(enrol, draw_shots(enrol.words, rng, a.shots), ~nv) for _ in range(a.draws)]
    print(f"{'threshold':>9}  {'validation kept':>15}  {'negatives accepted':>18}  {'kept - accepted':>15}")
    gain = []
    for t in THRESHOLDS:
        kept = np.mean([np.mean(head_words(h, val.emb, t) == accepted_words(val.words)) for h in heads])
        fa = np.mean([np.mean(head_words(h, neg.emb[nv], t) != None) for h in heads])  # noqa: E711 (object array)
        gain.append(kept - fa)
        print(f"{t:9.2f}  {kept:15.1%}  {fa:18.1%}  {kept - fa:15.3f}")
    t = float(THRESHOLDS[int(np.argmax(gain))])
    rng = np.random.default_rng(0)
    heads = [fit(pool, draw_shots(pool.words, rng, a.shots), np.ones(len(neg.words), bool)) for _ in range(a.draws)]
    full = fit(pool, np.arange(len(pool.words)), np.ones(len(neg.words), bool))
    want = accepted_words(test.words)
    for name, hs in ((f"{a.shots} clips a word", heads), ("full pool", [full])):
        acc = np.mean([np.mean(head_words(h, test.emb, t) == want) for h in hs])
        fa = np.mean([np.mean(head_words(h, oov.emb, t) != None) for h in hs])  # noqa: E711
        print(f"chosen threshold {t:.2f}, {name}: unseen speakers {acc:.1%} right, never-trained words and noise "
              f"{fa:.1%} accepted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
