"""The int8 export and the bundle fixtures: real LiteRT inference through shared.runtime."""

from __future__ import annotations

import json

import numpy as np

from shared.bundle import load_bundle
from shared.features import FrontendConfig
from shared.runtime import CnnModel, Recognizer
from tests.fixtures_bundle import TINY_EMBEDDING_DIM, TINY_HEAD_CLASSES, TINY_VOCABULARY


def test_tiny_bundle_is_full_int8_and_loads(tiny_bundle):
    from ai_edge_litert.interpreter import Interpreter

    b = load_bundle(tiny_bundle)
    m = b.manifest
    assert m.kind == "cnn" and m.vocabulary == TINY_VOCABULARY
    assert m.input_shape == [98, 40] and m.embedding_dim == TINY_EMBEDDING_DIM
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
    assert emb.shape == (5, TINY_EMBEDDING_DIM) and probs.shape == (5, len(TINY_VOCABULARY))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.06)
    assert (emb >= 0).all()  # the embedding is a ReLU layer; probs would not be mistaken for it


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
