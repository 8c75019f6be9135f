"""A quick probe of generalisation to new people: leave out a few FSDD speakers, train a short run on everything else,
report each held-out speaker's top-1 accuracy and its most frequent confusions.

    python -m scripts.speaker_folds data/recipe/digits.npz --speakers nicolas,lucas [--set unknown_weight=4]
        [--set augment.warp=0.85,1.2] [--set augment.snr_ref=speech] [--epochs 8] [--copies 1]

Two folds of 250 real clips each take about 3.5 minutes, against 11-13 for `python -m bench.loso` (six folds): enough
to tell a change of several points from the seed-to-seed spread (about one point per speaker here) before paying for
a full `make models`. Same training code as `wordstamp evaluate --cross-speaker`; float Keras model; top-1 over the
served classes (a clip taken for `_unknown_` is wrong); "@0.7" counts only tops with probability at least 0.7.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from pathlib import Path

import numpy as np


def _value(text: str, current):
    """A --set value parsed like the field it replaces (tuples as comma lists)."""
    if isinstance(current, tuple):
        return tuple(type(c)(v) for c, v in zip(current, text.split(",")))
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes")
    return type(current)(text) if current is not None else text


def apply_sets(cfg, sets: list[str]):
    """TrainConfig with `key=value` / `augment.key=value` / `net.key=value` overrides."""
    for item in sets:
        key, _, text = item.partition("=")
        if "." in key:
            part, field = key.split(".", 1)
            sub = getattr(cfg, part)
            sub = dataclasses.replace(sub, **{field: _value(text, getattr(sub, field))})
            cfg = dataclasses.replace(cfg, **{part: sub})
        else:
            cfg = dataclasses.replace(cfg, **{key: _value(text, getattr(cfg, key))})
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.speaker_folds", description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--speakers", default="nicolas,lucas", help="comma-separated speakers to hold out, one fold each")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=Path, default=Path("../shared/data/noise"))
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="TrainConfig override, e.g. unknown_weight=4 or augment.snr_ref=speech (repeatable)")
    a = ap.parse_args(argv)
    from trainer.dataset import load_dataset
    from trainer.train import TrainConfig, fold_probs, pool_datasets

    cfg = apply_sets(TrainConfig(epochs=a.epochs, copies=a.copies, seed=a.seed, noise_dir=str(a.noise)), a.sets)
    data = pool_datasets([load_dataset(a.dataset)])
    accs = []
    for spk in a.speakers.split(","):
        test = data.speakers == spk
        if not test.any():
            print(f"error: {a.dataset}: no speaker {spk!r}")
            return 1
        t0 = time.time()
        probs = fold_probs(data, ~test, test, cfg, log=lambda m: None)
        truth, top = data.labels[test], probs.argmax(1)
        acc = float(np.mean(top == truth))
        sure = float(np.mean((top == truth) & (probs.max(1) >= 0.7)))
        errors = Counter(f"{data.words[t]}->{data.words[p]}" for t, p in zip(truth, top) if t != p)
        accs.append(acc)
        print(f"{spk}: {100 * acc:.1f} % ({100 * sure:.1f} % @0.7) of {int(test.sum())} clips in "
              f"{time.time() - t0:.0f} s; {', '.join(f'{k} {v}' for k, v in errors.most_common(5))}", flush=True)
    print(f"mean {100 * np.mean(accs):.1f} %  ({', '.join(a.sets) or 'defaults'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
