"""The int8 export and the bundle fixtures: real LiteRT inference through shared.runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.bundle import load_bundle
from shared.features import FrontendConfig
from shared.runtime import CnnModel, Recognizer
from tests.fixtures_bundle import (TINY_EMBEDDING_DIM, TINY_FEATURE_DIM, TINY_HEAD_CLASSES, TINY_VOCABULARY, TINY_WIDTH,
                                   make_tiny_head, tiny_net)


def test_tiny_bundle_is_full_int8_and_loads(tiny_bundle):
    from ai_edge_litert.interpreter import Interpreter

    b = load_bundle(tiny_bundle)
    m = b.manifest
    assert m.kind == "cnn" and m.vocabulary == TINY_VOCABULARY
    assert m.input_shape == [98, 40] and m.embedding_dim == TINY_FEATURE_DIM
    assert sorted(m.outputs) == ["embedding", "logits"] and sorted(m.outputs.values()) == [0, 1]
    assert m.frontend_hash == FrontendConfig().hash
    assert (tiny_bundle / "ATTRIBUTION").read_text().count("CC BY") >= 2
    it = Interpreter(model_path=str(tiny_bundle / "model.tflite"))
    assert it.get_input_details()[0]["dtype"] == np.int8
    assert all(o["dtype"] == np.int8 for o in it.get_output_details())
    assert (tiny_bundle / "model.tflite").stat().st_size < 100_000


def test_runtime_outputs_match_manifest(tiny_bundle, rng):
    cnn = CnnModel(load_bundle(tiny_bundle))
    stamps = rng.normal(-3, 2, size=(5, 98, 40)).astype(np.float32)
    emb, probs = cnn.infer(stamps)
    assert emb.shape == (5, TINY_FEATURE_DIM) and probs.shape == (5, len(TINY_VOCABULARY))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)  # a float64 softmax of the int8 logits
    assert (emb >= 0).all()  # the embedding is a ReLU layer; probs would not be mistaken for it


def test_head_features_leave_the_classifier_unchanged(rng):
    """The served embedding is widened with pooled block outputs for heads; the int8 class probabilities must be
    bit-identical to the model's without them, and the widened vector must carry the embedding itself."""
    import keras

    from trainer.export import convert_int8, output_indices, tflite_predict, tflite_probs
    from trainer.nets import NetConfig, build_net

    keras.utils.set_random_seed(1)
    net = build_net((98, 40), len(TINY_VOCABULARY),
                    NetConfig(width=TINY_WIDTH, blocks=2, embedding_dim=TINY_EMBEDDING_DIM))
    rep = rng.normal(-3, 2, size=(32, 98, 40)).astype(np.float32)
    wide, plain = convert_int8(net, rep), convert_int8(net, rep, head_features=False)
    (iw, dim_w), (ip, dim_p) = output_indices(wide, len(TINY_VOCABULARY)), output_indices(plain, len(TINY_VOCABULARY))
    assert (dim_w, dim_p) == (TINY_EMBEDDING_DIM + 2 * TINY_WIDTH, TINY_EMBEDDING_DIM)  # two blocks pooled
    assert "logits" in iw and "logits" in ip
    np.testing.assert_array_equal(tflite_probs(wide, rep, iw), tflite_probs(plain, rep, ip))
    emb_w, emb_p = tflite_predict(wide, rep, iw["embedding"]), tflite_predict(plain, rep, ip["embedding"])
    live = emb_p.std(0) > 0.05
    for j in np.flatnonzero(live):  # each embedding unit, rescaled: still the same unit
        assert np.corrcoef(emb_w[:, j], emb_p[:, j])[0, 1] > 0.95


def test_head_on_tiny_bundle(tiny_bundle, tiny_head_bundle, rng):
    head = load_bundle(tiny_head_bundle)
    assert head.manifest.kind == "head" and head.manifest.base["hash"] == load_bundle(tiny_bundle).hash
    assert json.loads((tiny_head_bundle / "head.json").read_text())["classes"] == TINY_HEAD_CLASSES
    rec = Recognizer([tiny_bundle, tiny_head_bundle])
    assert len(rec.cnns) == 1  # the head reuses its base's run
    d_cnn, d_head = rec.classify(rng.normal(-3, 2, size=(98, 40)).astype(np.float32))
    assert d_cnn.label in TINY_VOCABULARY and d_head.label in TINY_HEAD_CLASSES
    assert Recognizer([tiny_head_bundle]).classify(np.zeros((98, 40), np.float32))[0].model == "animals"


def test_make_models_refuses_a_missing_data_folder(tmp_path, capsys):
    from trainer.make_models import main

    assert main([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_shipped_digits_bundle_recognises_fsdd():
    """The committed models/digits through the serving path (FSDD was trained on: a smoke test, not a measure)."""

    from shared.audio import read_audio
    from shared.features import Frontend
    from shared.segment import clip_stamp
    from tests.conftest import REPO, SHARED_DATA

    if not (SHARED_DATA / "fsdd").is_dir() or not (REPO / "models" / "digits" / "model.tflite").is_file():
        pytest.skip("needs ../shared/data and the shipped models")
    rec = Recognizer([REPO / "models" / "digits"])
    fe = Frontend(rec.frontend_config)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    right = 0
    for d in range(10):
        x = read_audio(SHARED_DATA / "fsdd" / f"{d}_theo_3.wav")
        right += rec.classify(clip_stamp(x, fe))[0].label == names[d]
    assert right >= 8


def _tiny_net(seed: int, sure: float = 0.0):
    """The fixture's tiny DS-CNN; with `sure` > 0 its served softmax favours the ten words by that much (a logit
    bias), so that it is as sure of most stamps as a trained network is of its words."""
    from shared.runtime import special_mask

    net = tiny_net(seed)
    if sure:
        dense = net.get_layer("probs")
        kernel, _ = dense.get_weights()
        dense.set_weights([kernel * 30, np.where(special_mask(TINY_VOCABULARY), 0.0, sure).astype(np.float32)])
    return net


def test_logits_keep_apart_the_clips_an_int8_softmax_ties(rng):
    """Exported with its softmax, a sure network's vocabulary probability stops at 255/256 for most stamps; exported
    with logits (the default), the served value still orders those stamps as the float network's log-odds do."""
    import keras
    from scipy.special import logsumexp
    from scipy.stats import spearmanr

    from shared.runtime import gated, special_mask
    from trainer.export import convert_int8, output_indices, tflite_probs

    net = _tiny_net(2, sure=6.0)
    # stamps of different loudness and tilt, so that the untrained net's outputs differ from stamp to stamp
    rep = (rng.normal(-3, 2, size=(64, 98, 40)) + rng.uniform(-4, 4, size=(64, 1, 1))
           + np.linspace(-2, 2, 40) * rng.uniform(-1, 1, size=(64, 1, 1))).astype(np.float32)
    special = special_mask(TINY_VOCABULARY)
    dense = net.get_layer("probs")
    z = keras.Model(net.inputs, dense.input).predict(rep, verbose=0) @ dense.get_weights()[0] + dense.get_weights()[1]
    z = z.astype(np.float64)
    log_odds = logsumexp(z[:, ~special], axis=1) - logsumexp(z[:, special], axis=1)
    served = {}
    for logits in (True, False):
        tflite = convert_int8(net, rep, logits=logits)
        idx, _ = output_indices(tflite, len(TINY_VOCABULARY))
        assert ("logits" in idx) == logits and ("probs" in idx) != logits
        served[logits] = gated(tflite_probs(tflite, rep, idx), special, "vocabulary")[1]
    capped = served[False] >= 255 / 256 - 1e-6
    assert capped.sum() >= 20 and np.unique(served[False][capped]).size <= 5  # the softmax ties them, a few values
    assert np.unique(served[True][capped]).size >= capped.sum() * 0.8
    assert spearmanr(served[True][capped], log_odds[capped]).statistic > 0.9


def test_a_format_1_bundle_of_probabilities_still_serves(tmp_path, rng):
    from shared.bundle import BundleError
    from trainer.export import ExportSpec, convert_int8, tflite_predict, write_cnn_bundle

    rep = rng.normal(-3, 2, size=(16, 98, 40)).astype(np.float32)
    tflite = convert_int8(_tiny_net(3), rep, logits=False)
    b = write_cnn_bundle(tmp_path / "old", tflite, ExportSpec(name="old", vocabulary=TINY_VOCABULARY))
    mf = b.path / "manifest.json"
    m = json.loads(mf.read_text())
    assert sorted(m["outputs"]) == ["embedding", "probs"]
    m["format_version"] = 1
    mf.write_text(json.dumps(m))
    cnn = CnnModel(load_bundle(b.path))
    _, probs = cnn.infer(rep)
    np.testing.assert_array_equal(probs, tflite_predict(tflite, rep, m["outputs"]["probs"]))
    m["outputs"]["logits"] = m["outputs"]["probs"]  # which one? refused rather than guessed
    mf.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="one valid class output"):
        CnnModel(load_bundle(b.path))


def _format_1_pair(folder, rng, head_input: str = "embedding"):
    """A cnn bundle serving int8 probabilities, as bundles did before format 2, and a random head on it."""
    from trainer.export import ExportSpec, convert_int8, write_cnn_bundle

    rep = rng.normal(-3, 2, size=(16, 98, 40)).astype(np.float32)
    base = write_cnn_bundle(folder / "digits", convert_int8(_tiny_net(4), rep, logits=False),
                            ExportSpec(name="digits", vocabulary=TINY_VOCABULARY))
    return base, make_tiny_head(base.path, head_input=head_input)


def test_upgrade_serves_logits_and_keeps_the_heads(tmp_path, rng):
    """`wordstamp upgrade` cuts a format-1 bundle's softmax: the same network (the heads' answers to the bit, the
    class probabilities within the int8 softmax's rounding) and a head moved onto it; a second run changes nothing."""
    from trainer.upgrade import upgrade_bundles

    old, head_path = _format_1_pair(tmp_path, rng)
    stamps = rng.normal(-3, 2, size=(12, 98, 40)).astype(np.float32)
    before = Recognizer([old.path, head_path])
    was = [before.classify(s) for s in stamps]
    _, p_was = CnnModel(old).infer(stamps)
    done = upgrade_bundles([head_path, old.path])
    assert [u.action for u in done] == ["logits", "rebased"]
    new = load_bundle(old.path)
    assert sorted(new.manifest.outputs) == ["embedding", "logits"] and new.manifest.format_version == 2
    assert load_bundle(head_path).manifest.base["hash"] == new.hash != old.hash
    after = Recognizer([old.path, head_path])
    now = [after.classify(s) for s in stamps]
    assert [d[1] for d in now] == [d[1] for d in was]  # the head's decisions, scores and all
    _, p_now = CnnModel(new).infer(stamps)
    assert np.abs(p_now - p_was).max() <= 1 / 256
    assert [u.action for u in upgrade_bundles([old.path, head_path])] == ["unchanged", "unchanged"]


def test_upgrade_refuses_a_head_on_the_probabilities_and_writes_nothing(tmp_path, rng):
    from shared.bundle import BundleError
    from trainer.upgrade import upgrade_bundles

    old, head_path = _format_1_pair(tmp_path, rng, head_input="probs")
    model = (old.path / "model.tflite").read_bytes()
    with pytest.raises(BundleError, match="refit it"):
        upgrade_bundles([old.path, head_path])
    assert (old.path / "model.tflite").read_bytes() == model and "probs" in load_bundle(old.path).manifest.outputs


def test_upgrade_command_prints_a_line_a_bundle_and_one_error_line(tmp_path, rng):
    from tests.test_cli_fuzz import no_traceback, run_cli

    old, head_path = _format_1_pair(tmp_path, rng)
    res = run_cli(["upgrade", str(old.path), str(head_path)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith(str(tmp_path))]
    assert lines == [f"{old.path}: logits (hash {old.hash} -> {load_bundle(old.path).hash})",
                     f"{head_path}: rebased (onto digits {load_bundle(old.path).hash})"]
    (tmp_path / "empty").mkdir()
    bad = run_cli(["upgrade", str(tmp_path / "empty")])
    no_traceback(bad)
    assert bad.exit_code == 1 and bad.output.strip().startswith("error:") and "empty" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
