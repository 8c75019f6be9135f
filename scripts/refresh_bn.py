"""A finished training run with its batch-norm statistics refreshed (trainer.train.refresh_batch_norm), as a new run.

    python -m scripts.refresh_bn RUN OUT [--stats mixed|clean] [--noise ../shared/data/noise]

OUT is RUN copied, its network's batch-norm layers set to the exact statistics of the run's clean training stamps
("clean") or of those and one augmented copy of each ("mixed", made afresh with the default augmentation), and its
threshold calibrated again on its validation speakers as `wordstamp train` does; `wordstamp export OUT` then makes
the bundle. It is how round 28 read the option on fold networks trained before it existed (models/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.refresh_bn", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--stats", choices=("mixed", "clean"), default="mixed")
    ap.add_argument("--noise", type=Path, default=None, help="noise recordings for the copies (default: the run's)")
    ap.add_argument("--seed", type=int, default=5, help="of the augmented copies")
    a = ap.parse_args(argv)
    import keras

    from trainer.augment import AugmentConfig, augment_many, load_noises
    from trainer.train import refresh_batch_norm, run_split, validate

    info = json.loads((a.run / "run.json").read_text())
    data, tr, val = run_split(info, audio=a.stats == "mixed")
    stamps = data.stamps[tr]
    if a.stats == "mixed":
        noise = a.noise or info["config"].get("noise_dir")
        copies, _ = augment_many([data.clips[i] for i in tr], 1, AugmentConfig(),
                                 load_noises(Path(noise)) if noise else [], seed=a.seed, fcfg=data.frontend,
                                 seg_cfg=data.segmenter)
        stamps = np.concatenate([stamps, copies])
    net = keras.models.load_model(a.run / "model.keras", compile=False)
    layers = refresh_batch_norm(net, stamps)
    c = info["config"]
    threshold, metrics = validate(net, data, val, info["gate"], c["max_oov_false_accept"], c["false_accept_cost"])
    print(f"{a.out}: {layers} batch-norm layers set from {len(stamps)} stamps ({a.stats}); "
          f"threshold {info['threshold']} -> {threshold}")
    info.update(threshold=threshold, metrics={**info["metrics"], **metrics})
    info["config"]["bn_stats"] = a.stats
    shutil.rmtree(a.out, ignore_errors=True)
    shutil.copytree(a.run, a.out)
    net.save(a.out / "model.keras")
    (a.out / "run.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
