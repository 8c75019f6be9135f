"""The distance gate (shared.distance): its score, its file, and a bundle that names it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared.bundle import BundleError, load_bundle
from shared.distance import DistanceGate, DistanceGateError

WORDS = ["one", "two", "_unknown_"]
SPECIAL = np.array([False, False, True])


def _gate() -> DistanceGate:
    """Two words 10 apart on a plane, unit covariance; reference values 0.1 ... 1.0 (probability) and the closeness
    of points 0.5 ... 5 from a mean."""
    return DistanceGate(["one", "two"], np.array([[0.0, 0.0], [10.0, 0.0]]), np.eye(2),
                        np.linspace(0.1, 1.0, 10), -np.log(np.linspace(0.5, 5.0, 10) ** 2))


def test_a_stamp_near_its_word_scores_higher_than_one_as_likely_far_away():
    g = _gate()
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])
    emb = np.array([[0.6, 0.0], [0.0, 4.8], [10.0, 0.6]])  # near "one", far from "one", near "two"
    idx, value = g.gated(emb, probs, SPECIAL)
    assert idx.tolist() == [0, 0, 1]  # the likeliest word is proposed, however far
    # probability 0.9 is at or over 9 of the 10 references; 0.6 from the mean is nearer than 9 of 10 (0.5 is nearer)
    assert value[0] == pytest.approx((0.9 + 0.9) / 2)
    assert value[1] == pytest.approx((0.9 + 0.1) / 2)  # 4.8 away: only the 5.0 reference is farther
    assert value[2] == pytest.approx(value[0])
    # a clip whose vocabulary probability is low cannot be carried by closeness alone past a high threshold
    _, low = g.gated(emb[:1], np.array([[0.02, 0.02, 0.96]]), SPECIAL)
    assert low[0] < 0.5 < value[0]


def test_the_file_reads_back_bit_for_bit_and_bad_ones_are_one_line(tmp_path):
    g = _gate()
    f = tmp_path / "distance.npz"
    f.write_bytes(g.to_npz())
    h = DistanceGate.read(f, WORDS, 2)
    for name in ("means", "precision", "ref_prob", "ref_close"):
        assert np.array_equal(getattr(g, name), getattr(h, name)), name
    emb, probs = np.array([[1.0, 2.0]]), np.array([[0.7, 0.2, 0.1]])
    assert np.array_equal(g.gated(emb, probs, SPECIAL)[1], h.gated(emb, probs, SPECIAL)[1])
    with pytest.raises(DistanceGateError, match="not the bundle's vocabulary"):
        DistanceGate.read(f, ["one", "three", "_unknown_"], 2)
    with pytest.raises(DistanceGateError, match="shapes disagree"):
        DistanceGate.read(f, WORDS, 3)
    f.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DistanceGateError) as exc:
        DistanceGate.read(f, WORDS, 2)
    assert str(f) in str(exc.value) and "\n" not in str(exc.value)


def test_a_bundle_with_the_distance_gate_must_carry_its_file(tiny_bundle, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    m["gate"] = "distance"
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="lists no distance.npz"):
        load_bundle(b)
