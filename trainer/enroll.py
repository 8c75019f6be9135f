"""Enroll new words: a linear SVM head on a base CNN bundle's embedding, written as a head bundle (head.json).

The head is plain JSON numbers (no pickle): the runtime scores z = (e - mean) / scale with coef and intercept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from shared.bundle import Bundle, Manifest, write_bundle


@dataclass
class HeadParams:
    """A fitted linear head: classes, standardisation, one-vs-rest weights, and the reject threshold on the score."""

    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    threshold: float = 0.0
    temperature: float = 1.0
    input: str = "embedding"

    def to_json(self) -> str:
        return json.dumps({
            "kind": "linear-svm", "classes": list(self.classes), "input": self.input,
            "mean": _list(self.mean), "scale": _list(self.scale), "coef": _list(self.coef),
            "intercept": _list(self.intercept), "threshold": float(self.threshold),
            "temperature": float(self.temperature),
        }, indent=1) + "\n"


def _list(a: np.ndarray) -> list:
    return np.asarray(a, np.float64).round(7).tolist()


def write_head_bundle(out: str | os.PathLike, name: str, base: Bundle, head: HeadParams, *,
                      training: dict | None = None, metrics: dict | None = None, description: str = "",
                      attribution: str | None = None) -> Bundle:
    """Write a head bundle that names its base cnn bundle by name and hash (the runtime finds it beside the head)."""
    bm = base.manifest
    m = Manifest(
        name=name, kind="head", vocabulary=list(head.classes), frontend=dict(bm.frontend), threshold=float(head.threshold),
        input_shape=list(bm.input_shape), embedding_dim=int(bm.embedding_dim), outputs={}, segmenter=dict(bm.segmenter),
        base={"name": bm.name, "hash": base.hash}, training=training or {}, metrics=metrics or {},
        description=description,
    )
    files = {"head.json": head.to_json().encode()}
    if attribution:
        files["ATTRIBUTION"] = attribution.encode()
    return write_bundle(out, m, files)
