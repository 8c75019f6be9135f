"""Does averaging a clip's probabilities over variants of its stamp (shifted, mel-warped) lift the open-set curve?
Read at equal false accepts, so a variant that only raises or lowers confidences does not count as a gain.

    python -m scripts.stamp_variants data/exp-v0:/tmp/m_v0 data/exp-v1:/tmp/m_v1 data/exp-v2:/tmp/m_v2

Each WORK:MODELS pair is one SC fold (WORK/sc-test, WORK/oov, MODELS/digits), as for scripts.sc_folds. Every clip is
segmented and stamped as `wordstamp evaluate` does, the int8 model runs on LiteRT, and the bundle's own gate is
applied to the mean of the variants' probabilities (and embeddings, for the distance gate); one threshold sweeps all
folds' clips together. `--variant "one stamp"` reads a model's own open-set curve (how round 17 compares training
options at equal false accepts), and `--false-accepts 2,5,10` picks the points it is read at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# name -> the (shift in frames, mel-warp factor) of each stamp averaged; "one stamp" is what the daemon does
VARIANTS: dict[str, list[tuple[int, float]]] = {
    "one stamp": [(0, 1.0)],
    "shift 4": [(-4, 1.0), (0, 1.0), (4, 1.0)],
    "shift 8": [(-8, 1.0), (0, 1.0), (8, 1.0)],
    "warp 5 %": [(0, 0.95), (0, 1.0), (0, 1.05)],
    "warp 8 %": [(0, 0.92), (0, 1.0), (0, 1.08)],
    "shift and warp": [(-4, 0.95), (0, 1.0), (4, 1.05), (4, 0.95), (-4, 1.05)],
}
FALSE_ACCEPTS = (0.05, 0.08, 0.10, 0.12, 0.15)


def gated_scores(bundle: Path, folder: Path,
                 variants: dict[str, list[tuple[int, float]]] = VARIANTS) -> tuple[list[str], dict[str, list[tuple[str | None, float]]]]:
    """Each clip's word label and, per variant, (the word it would be accepted as or None, its gate value)."""
    from shared.audio import read_audio
    from shared.bundle import load_bundle, special_mask
    from shared.features import Frontend
    from shared.runtime import CnnModel
    from shared.segment import clip_stamp
    from trainer.augment import mel_warp
    from trainer.dataset import find_clips

    b = load_bundle(bundle)
    cnn, fe, labels = CnnModel(b), Frontend(b.frontend_config), b.manifest.vocabulary
    special = special_mask(labels)
    words, out = [], {k: [] for k in variants}
    for word, path in find_clips(folder):
        x = read_audio(path)
        stamps = {s: clip_stamp(x, fe, b.segmenter_config, shift=s) for s in {s for v in variants.values() for s, _ in v}}
        for name, parts in variants.items():
            batch = np.stack([stamps[s] if w == 1.0 else mel_warp(stamps[s], w) for s, w in parts])
            emb, probs = cnn.infer(batch)
            idx, value = cnn.gated(None if emb is None else emb.mean(0, keepdims=True), probs.mean(0, keepdims=True))
            out[name].append((labels[idx[0]] if idx[0] >= 0 else None, float(value[0])))
        words.append(word)
    return words, out


def curve(sc: list[tuple[str, str | None, float]], oov: list[tuple[str | None, float]]) -> tuple[np.ndarray, np.ndarray]:
    """SC digits right and never-trained clips accepted at every threshold 0, 0.001, ..., 1."""
    ts = np.linspace(0.0, 1.0, 1001)[:, None]
    right = np.array([w == got for w, got, _ in sc])
    sc_v = np.array([v for _, _, v in sc])[None]
    oov_acc = np.array([got is not None for got, _ in oov])
    oov_v = np.array([v for _, v in oov])[None]
    return (right & (sc_v >= ts)).mean(1), (oov_acc & (oov_v >= ts)).mean(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.stamp_variants", description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", nargs="+", metavar="WORK:MODELS")
    ap.add_argument("--variant", action="append", choices=list(VARIANTS), metavar="NAME",
                    help="only this variant (repeatable; default: all): " + ", ".join(repr(v) for v in VARIANTS))
    ap.add_argument("--false-accepts", default=",".join(f"{100 * f:g}" for f in FALSE_ACCEPTS), metavar="P,P,...",
                    help="the never-trained accept rates (percent) to read SC digits at")
    a = ap.parse_args(argv)
    from scripts.sc_folds import fold_pairs

    try:
        levels = [float(v) / 100 for v in a.false_accepts.split(",")]
    except ValueError:
        ap.error(f"--false-accepts {a.false_accepts!r}: expected percentages such as 2,5,10")
    variants = {k: VARIANTS[k] for k in (a.variant or VARIANTS)}
    pairs = fold_pairs(ap, a.folds)
    sc = {k: [] for k in variants}
    oov = {k: [] for k in variants}
    for work, bundle in pairs:
        words, scores = gated_scores(bundle, work / "sc-test", variants)
        _, oov_scores = gated_scores(bundle, work / "oov", variants)
        for name in variants:
            sc[name] += [(w, got, v) for w, (got, v) in zip(words, scores[name])]
            oov[name] += oov_scores[name]
    print(f"{'variant':<16} {'top-1':>6}   SC digits right at never-trained accepted "
          + " / ".join(f"{100 * f:g}" for f in levels) + " %")
    for name in variants:
        acc, fa = curve(sc[name], oov[name])
        at = [100 * acc[fa <= f].max() if (fa <= f).any() else float("nan") for f in levels]
        print(f"{name:<16} {100 * acc[0]:5.1f}%   " + " / ".join(f"{v:.1f}" for v in at)
              + f"   (SC {len(sc[name])}, never-trained {len(oov[name])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
