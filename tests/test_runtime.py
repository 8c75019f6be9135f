"""shared.runtime on a real int8 model: batching, decisions, rejection, and refusing broken models in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared.bundle import BundleError, load_bundle
from shared.runtime import CnnModel, Recognizer, decide, gated


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


def test_vocabulary_gate_weighs_known_words_together():
    """Heard as "one or two" (0.45 + 0.45): no top label reaches 0.8, but it is surely no unknown word, so the
    vocabulary gate accepts the likelier word with its own probability; unknown-heavy clips are still rejected."""
    labels = ["one", "two", "_unknown_", "_silence_"]
    split = np.array([0.45, 0.44, 0.06, 0.05])
    assert decide("m", "h", labels, split, 0.8).rejected
    d = decide("m", "h", labels, split, 0.8, gate="vocabulary")
    assert d.word == d.label == "one" and d.confidence == pytest.approx(0.45)
    d = decide("m", "h", labels, np.array([0.4, 0.35, 0.2, 0.05]), 0.8, gate="vocabulary")
    assert d.rejected and d.label == "one"
    d = decide("m", "h", labels, np.array([0.3, 0.1, 0.55, 0.05]), 0.3, gate="vocabulary")
    assert d.word == "one"  # 0.4 of known words clears a 0.3 threshold even under an _unknown_ top label
    idx, score = gated(np.stack([split, [0.1, 0.1, 0.2, 0.6]]), np.array([False, False, True, True]), "vocabulary")
    assert idx.tolist() == [0, 0] and np.allclose(score, [0.89, 0.2])
    idx, score = gated(np.stack([split, [0.1, 0.1, 0.2, 0.6]]), np.array([False, False, True, True]), "top")
    assert idx.tolist() == [0, -1] and np.allclose(score, [0.45, 0.6])


def test_recognizer_applies_the_bundles_gate(tiny_bundle, tmp_path, rng):
    """A bundle whose manifest says gate "vocabulary" accepts a stamp its top gate would reject at the same threshold
    exactly when the known words' summed probability clears it."""
    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    m["gate"] = "vocabulary"
    (b / "manifest.json").write_text(json.dumps(m))
    top, voc = Recognizer([tiny_bundle]), Recognizer([b])
    words = np.array([w not in ("_unknown_", "_silence_") for w in m["vocabulary"]])
    x = rng.normal(-3, 2, size=(40, 98, 40)).astype(np.float32)
    probs = top.cnns[top.base_of["digits"]].infer(x)[1]
    t = float(np.median(probs[:, words].sum(1)))
    top.thresholds["digits"] = voc.thresholds["digits"] = t
    got_top = [top.classify(s)[0].word for s in x]
    got_voc = [voc.classify(s)[0].word for s in x]
    want_voc = [m["vocabulary"][np.flatnonzero(words)[p[words].argmax()]] if p[words].sum() >= t else None
                for p in probs]
    assert got_voc == want_voc and sum(w is not None for w in got_voc) > sum(w is not None for w in got_top)


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
