"""The int8 export and the bundle fixtures: real LiteRT inference through shared.runtime."""

from __future__ import annotations

import json

import numpy as np

from shared.bundle import load_bundle
from shared.features import FrontendConfig
from shared.runtime import CnnModel, Recognizer
from tests.fixtures_bundle import TINY_EMBEDDING_DIM, TINY_FEATURE_DIM, TINY_HEAD_CLASSES, TINY_VOCABULARY, TINY_WIDTH


def test_tiny_bundle_is_full_int8_and_loads(tiny_bundle):
    from ai_edge_litert.interpreter import Interpreter

    b = load_bundle(tiny_bundle)
    m = b.manifest
    assert m.kind == "cnn" and m.vocabulary == TINY_VOCABULARY
    assert m.input_shape == [98, 40] and m.embedding_dim == TINY_FEATURE_DIM
    assert sorted(m.outputs) == ["embedding", "probs"] and sorted(m.outputs.values()) == [0, 1]
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
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.06)
    assert (emb >= 0).all()  # the embedding is a ReLU layer; probs would not be mistaken for it


def test_head_features_leave_the_classifier_unchanged(rng):
    """The served embedding is widened with pooled block outputs for heads; the int8 class probabilities must be
    bit-identical to the model's without them, and the widened vector must carry the embedding itself."""
    import keras

    from trainer.export import convert_int8, output_indices, tflite_predict
    from trainer.nets import NetConfig, build_net

    keras.utils.set_random_seed(1)
    net = build_net((98, 40), len(TINY_VOCABULARY),
                    NetConfig(width=TINY_WIDTH, blocks=2, embedding_dim=TINY_EMBEDDING_DIM))
    rep = rng.normal(-3, 2, size=(32, 98, 40)).astype(np.float32)
    wide, plain = convert_int8(net, rep), convert_int8(net, rep, head_features=False)
    (iw, dim_w), (ip, dim_p) = output_indices(wide, len(TINY_VOCABULARY)), output_indices(plain, len(TINY_VOCABULARY))
    assert (dim_w, dim_p) == (TINY_EMBEDDING_DIM + 2 * TINY_WIDTH, TINY_EMBEDDING_DIM)  # two blocks pooled
    np.testing.assert_array_equal(tflite_predict(wide, rep, iw["probs"]), tflite_predict(plain, rep, ip["probs"]))
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
    import pytest

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
