"""How far int8 accuracy moves with the calibration stamps alone: the same trained network exported with several
random draws of its calibration stamps, each scored on the run's held-out stamps against the float network.

    python -m scripts.int8_spread runs/digits /tmp/r_cs0/digits [--draws 3] [--samples 300]

`wordstamp export` calibrates on 300 of the 400 training stamps a run keeps: draw 0 of `--samples 300` is its own
figure. Each draw is read twice: top-1 (the likeliest class, as `int8_minus_float_points`) and as served (at the
run's threshold and gate, a rejected word wrong and a rejected `_unknown_`/`_silence_` clip right, as
`int8_minus_float_served_points`). The target is int8 within 0.5 points of float; on one network the draws alone
moved top-1 by 0.7 points, and all 400 stamps were no better than a draw of 300 (models/README.md, round 16); most
of top-1's loss is int8 ties far below any threshold, and the draw whose probabilities stay closest to float's on
the run's 400 kept training stamps (named on each line) did no better than draw 0 (round 20).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.int8_spread", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="training run folders (run.json, model.keras, calib.npz)")
    ap.add_argument("--draws", type=int, default=3, help="calibration draws per run (seeds 0..N-1)")
    ap.add_argument("--samples", type=int, default=300, help="calibration stamps per draw (wordstamp export: 300)")
    a = ap.parse_args(argv)
    for run in a.runs:
        if not all((run / f).is_file() for f in ("run.json", "model.keras", "calib.npz")):
            ap.error(f"{run}: not a training run (needs run.json, model.keras and calib.npz)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from trainer.export import convert_int8, output_indices, served_accuracy, tflite_probs

    print(f"{'run':<28} {'float':>7}  int8 - float, points, per calibration draw: top-1 ...  served: ...")
    for run in a.runs:
        info = json.loads((run / "run.json").read_text())
        words, threshold, gate = info["words"], float(info["threshold"]), info.get("gate", "top")
        gate = "top" if gate == "distance" else gate  # the distance gate's own threshold is fitted at export
        model = keras.models.load_model(run / "model.keras", compile=False)
        cal = np.load(run / "calib.npz", allow_pickle=False)
        xs = np.concatenate([cal["val_stamps"], cal["test_stamps"]])
        ys = np.concatenate([cal["val_labels"], cal["test_labels"]])
        pf = model.predict(xs, batch_size=256, verbose=0)[1]
        f_acc, f_srv = float(np.mean(pf.argmax(1) == ys)), served_accuracy(pf, ys, words, threshold, gate)
        rep = cal["representative"].astype(np.float32)
        pf_rep = model.predict(rep, batch_size=256, verbose=0)[1]
        gaps, served, apart = [], [], []
        for seed in range(a.draws):
            tflite = convert_int8(model, cal["representative"], max_samples=a.samples, seed=seed)
            idx, _ = output_indices(tflite, len(words))
            pq = tflite_probs(tflite, xs, idx)
            gaps.append(100 * (float(np.mean(pq.argmax(1) == ys)) - f_acc))
            served.append(100 * (served_accuracy(pq, ys, words, threshold, gate) - f_srv))
            apart.append(float(np.mean(np.abs(tflite_probs(tflite, rep, idx) - pf_rep))))
        print(f"{str(run):<28} {100 * f_acc:6.2f}%  " + "  ".join(f"{g:+.2f}" for g in gaps)
              + "   served: " + "  ".join(f"{g:+.2f}" for g in served)
              + f"   closest to float on the training stamps: draw {int(np.argmin(apart))}   (n={ys.size})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
