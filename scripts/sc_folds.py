"""Every Speech Commands digit speaker held out once: the recipe's real-speaker accuracy on all of them, not on one
random 40 % (33 clips, ±11 points).

    for k in 0 1 2; do python -m trainer.make_models ../shared/data --fresh --sc-fold $k/3 \\
        --work data/exp-fold$k --models /tmp/m_f$k --runs /tmp/r_f$k; done
    python -m scripts.sc_folds data/exp-fold0:/tmp/m_f0 data/exp-fold1:/tmp/m_f1 data/exp-fold2:/tmp/m_f2

Each WORK:MODELS pair is one fold's recipe folder (its sc-test and oov) and models folder. Every fold's digits bundle
is read on its own held-out speakers at its own threshold and at 0 (top digit, nothing rejected), and on the
never-trained words (the same clips in every fold); the pooled SC rates carry 95 % (Wilson) intervals, and the
never-trained clips accepted are also counted word by word, with the digits they were taken for (which words the
digits model takes for which digits). Runs the int8 models on LiteRT.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def fold_pairs(ap: argparse.ArgumentParser, specs: list[str]) -> list[tuple[Path, Path]]:
    """WORK:MODELS arguments -> (fold's recipe folder, its digits bundle); a pair that is not one is an argparse error."""
    pairs = []
    for spec in specs:
        work, sep, models = spec.partition(":")
        if not sep or not (Path(work) / "sc-test").is_dir() or not (Path(models) / "digits").is_dir():
            ap.error(f"{spec}: expected WORK:MODELS with WORK/sc-test and MODELS/digits")
        pairs.append((Path(work), Path(models) / "digits"))
    return pairs


def _as(digits: Counter | None) -> str:
    """' (three 20, zero 1)': what a word's accepted clips were taken for, commonest first; '' if none was."""
    return f" ({', '.join(f'{d} {n}' for d, n in digits.most_common())})" if digits else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.sc_folds", description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", nargs="+", metavar="WORK:MODELS")
    ap.add_argument("--thresholds", default="0.5,0.7,0.8,0.9,0.95",
                    help="other points of the curve, each pooled over the folds")
    a = ap.parse_args(argv)
    from trainer.evaluate import evaluate_folder, proportion_ci95

    pairs = fold_pairs(ap, a.folds)

    totals = {"own": [0, 0], "zero": [0, 0], "oov": [0, 0]}
    by_word: dict[str, list[int]] = {}  # never-trained word -> [accepted, clips], over the folds
    taken_for: dict[str, Counter] = {}  # never-trained word -> the digits its accepted clips were taken for
    print(f"{'fold':<22} {'speakers':>8} {'clips':>5} {'threshold':>9} {'at threshold':>12} {'at 0':>7} "
          f"{'oov accepted':>12}")
    for work, bundle in pairs:
        own = evaluate_folder(bundle, work / "sc-test")
        zero = evaluate_folder(bundle, work / "sc-test", threshold=0.0)
        oov = evaluate_folder(bundle, work / "oov")
        speakers = {Path(p).name.split("_")[0] for p in (work / "sc-test").glob("*/*.wav")}
        for key, k, n in (("own", own.correct, own.n), ("zero", zero.correct, zero.n),
                          ("oov", oov.oov_false_accepts, oov.oov_n)):
            totals[key][0] += k
            totals[key][1] += n
        for word, po in oov.oov_per_folder.items():
            acc = by_word.setdefault(word, [0, 0])
            acc[0], acc[1] = acc[0] + po["false_accepts"], acc[1] + po["n"]
        for e in oov.errors:  # on the oov folder every error is a never-trained clip accepted as a digit
            taken_for.setdefault(Path(e["file"]).parent.name, Counter())[e["got"]] += 1
        print(f"{str(bundle):<22} {len(speakers):>8} {own.n:>5} {own.threshold:>9.2f} {100 * own.accuracy:>11.1f}% "
              f"{100 * zero.accuracy:>6.1f}% {100 * oov.oov_false_accept_rate:>11.1f}%")

    def pooled(key: str) -> str:
        k, n = totals[key]
        lo, hi = proportion_ci95(k, n)
        return f"{100 * k / max(n, 1):.1f} % ({k}/{n}, 95 % {100 * lo:.0f}-{100 * hi:.0f} %)"

    print("the same threshold in every fold: SC digits right / never-trained words and noise accepted")
    for t in (float(v) for v in a.thresholds.split(",")):
        sc_k = sc_n = fa_k = fa_n = 0
        for work, bundle in pairs:
            sc = evaluate_folder(bundle, work / "sc-test", threshold=t)
            oov = evaluate_folder(bundle, work / "oov", threshold=t)
            sc_k, sc_n, fa_k, fa_n = sc_k + sc.correct, sc_n + sc.n, fa_k + oov.oov_false_accepts, fa_n + oov.oov_n
        print(f"  {t:4.2f}  {100 * sc_k / max(sc_n, 1):5.1f} % / {100 * fa_k / max(fa_n, 1):5.1f} %")
    k, n = totals["oov"]
    print(f"pooled: SC digits right at each fold's threshold {pooled('own')}; at 0 {pooled('zero')}; "
          f"never-trained words and noise accepted {100 * k / max(n, 1):.1f} % on average (the same clips each fold)")
    print("never-trained clips accepted at each fold's threshold, by word, over the folds (taken for): "
          + ", ".join(f"{w} {got}/{clips}" + _as(taken_for.get(w)) for w, (got, clips) in sorted(by_word.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
