"""Fits a cnn bundle's distance gate (shared.distance) at export, on the int8 model's own outputs.

The words' mean embeddings and their pooled covariance come from the run's training clips as they are (no
augmentation), the covariance shrunk towards a scaled identity (Ledoit-Wolf: the embedding output holds 192 values
for the shipped net, too many for a plain covariance of a few thousand clips); the reference percentiles and the
threshold from its validation speakers, which training never fitted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from shared.bundle import special_mask
from shared.distance import DistanceGate


def fit_distance_gate(words: list[str], train_emb: np.ndarray, train_labels: np.ndarray, val_emb: np.ndarray,
                      val_probs: np.ndarray, val_labels: np.ndarray) -> DistanceGate:
    """Means and shared precision from the training embeddings of vocabulary words; reference values from the
    validation clips of vocabulary words."""
    from sklearn.covariance import LedoitWolf

    special = special_mask(words)
    inv = np.flatnonzero(~special)
    missing = [words[i] for i in inv if not np.any(train_labels == i)]
    if missing:
        raise ValueError(f"the distance gate needs training clips of every word; none of {', '.join(missing)}")
    means = np.stack([train_emb[train_labels == i].mean(0) for i in inv]).astype(np.float64)
    resid = np.concatenate([train_emb[train_labels == i] - means[k] for k, i in enumerate(inv)])
    precision = LedoitWolf().fit(resid).precision_
    ref = ~special[val_labels]
    if not ref.any():
        raise ValueError("the distance gate needs validation clips of vocabulary words")
    g = DistanceGate([words[i] for i in inv], means, precision, np.zeros(1), np.zeros(1))  # references next
    rows = val_probs[ref][:, inv].argmax(1)
    return dataclasses.replace(g, ref_prob=val_probs[ref][:, inv].sum(1).astype(np.float32),
                               ref_close=g.closeness(val_emb[ref], rows))


def distance_gate_for_run(run: Path, info: dict, tflite: bytes, outputs: dict[str, int],
                          cal) -> tuple[DistanceGate, float, dict]:
    """A run's distance gate on its int8 model (`outputs`: LiteRT output index by name; `cal`: its calib.npz), and
    its threshold calibrated as `train` calibrates the others (the validation speakers' `_unknown_` and `_silence_`
    clips at most `max_oov_false_accept` accepted, each speaker kind weighing alike), over 0 ... 0.9."""
    from shared.runtime import class_probs
    from trainer.dataset import speaker_kind
    from trainer.export import class_output, tflite_outputs
    from trainer.train import calibrate_threshold, run_split

    data, tr, val = run_split(info)
    if not (np.array_equal(data.labels[val], cal["val_labels"]) and np.array_equal(data.stamps[val], cal["val_stamps"])):
        raise ValueError(f"{run}: its datasets' validation clips are not the ones it was trained with (rebuilt since?)")
    (train_emb,) = tflite_outputs(tflite, data.stamps[tr], [outputs["embedding"]])
    kind, i_cls = class_output(outputs)
    val_emb, val_scores = tflite_outputs(tflite, cal["val_stamps"], [outputs["embedding"], i_cls])
    val_probs = class_probs(val_scores, kind)
    words = info["words"]
    g = fit_distance_gate(words, train_emb, data.labels[tr], val_emb, val_probs, data.labels[val])
    conf = info.get("config", {})
    kinds = np.array([speaker_kind(s) for s in data.speakers[val]])
    threshold, metrics = calibrate_threshold(
        val_probs, data.labels[val], words, float(conf.get("max_oov_false_accept", 0.02)), lo=0.0, hi=0.9,
        groups=kinds, fa_cost=float(conf.get("false_accept_cost", 1.0)),
        gated_values=g.gated(val_emb, val_probs, special_mask(words)))
    return g, threshold, metrics
