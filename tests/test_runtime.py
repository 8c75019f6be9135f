"""shared.runtime on a real int8 model: batching, decisions, rejection, and refusing broken models in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared.bundle import BundleError, load_bundle
from shared.runtime import CnnModel, Recognizer, decide


def test_batch_equals_single(tiny_bundle, rng):
    cnn = CnnModel(load_bundle(tiny_bundle))
    x = rng.normal(-3, 2, size=(4, 98, 40)).astype(np.float32)
    emb_b, p_b = cnn.infer(x)
    for i in range(4):
        emb_1, p_1 = cnn.infer(x[i])
        assert np.allclose(emb_1[0], emb_b[i], atol=1e-5) and np.allclose(p_1[0], p_b[i], atol=1e-5)


def test_decide_rejects_specials_and_low_scores():
    labels = ["one", "two", "_unknown_"]
    assert decide("m", "h", labels, np.array([0.1, 0.2, 0.7]), 0.5).word is None
    d = decide("m", "h", labels, np.array([0.45, 0.35, 0.2]), 0.5)
    assert d.rejected and d.label == "one"
    d = decide("m", "h", labels, np.array([0.8, 0.1, 0.1]), 0.5)
    assert d.word == "one" and d.alternatives[0] == ("one", 0.8) and len(d.alternatives) == 3


def test_recognizer_runs_base_once_for_many_heads(tiny_bundle, tiny_head_bundle, rng):
    rec = Recognizer([tiny_bundle, tiny_head_bundle])
    calls = []
    cnn = next(iter(rec.cnns.values()))
    orig = cnn.infer
    cnn.infer = lambda s: calls.append(1) or orig(s)
    out = rec.classify(rng.normal(-3, 2, size=(98, 40)).astype(np.float32))
    assert [d.model for d in out] == ["digits", "animals"] and len(calls) == 1


def test_corrupt_model_is_one_line(tiny_bundle, tmp_path):
    b = tmp_path / "digits"
    shutil.copytree(tiny_bundle, b)
    data = b"not a flatbuffer" * 10
    (b / "model.tflite").write_bytes(data)
    m = json.loads((b / "manifest.json").read_text())
    import hashlib

    m["files"]["model.tflite"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        CnnModel(load_bundle(b))
    assert "model.tflite" in str(e.value) and "\n" not in str(e.value)


def test_head_whose_base_changed_is_refused(tiny_bundle, tiny_head_bundle, tmp_path):
    shutil.copytree(tiny_head_bundle, tmp_path / "animals")
    shutil.copytree(tiny_bundle, tmp_path / "digits")
    (tmp_path / "digits" / "ATTRIBUTION").write_text("changed\n")
    m = json.loads((tmp_path / "digits" / "manifest.json").read_text())
    import hashlib

    m["files"]["ATTRIBUTION"] = {"sha256": hashlib.sha256(b"changed\n").hexdigest(), "bytes": 8}
    (tmp_path / "digits" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="hash"):
        Recognizer([tmp_path / "animals"])
