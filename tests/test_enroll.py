"""Enrolling new words: an SVM head on the base's embedding, stored as JSON numbers, used by the runtime."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared.bundle import load_bundle
from shared.runtime import Recognizer, SvmHead, head_gated
from tests.train_support import make_clips
from trainer.enroll import HeadParams, embed_folder, enroll_folder, fit_head, head_accuracy, head_words, shots_curve


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("enroll") / "tones", speakers=3, takes=4, seed=3)


def test_enroll_writes_a_head_bundle_the_runtime_uses(tiny_bundle, tones, tmp_path_factory, rng):
    import shutil

    root = tmp_path_factory.mktemp("models")
    base = root / "digits"
    shutil.copytree(tiny_bundle, base)
    b = enroll_folder("tones", tones, base, root / "tones", input="embedding", threshold=-10.0)
    assert b.manifest.kind == "head" and b.manifest.base == {"name": "digits", "hash": load_bundle(base).hash}
    h = json.loads((root / "tones" / "head.json").read_text())
    assert h["kind"] == "linear-svm" and h["classes"] == ["high", "low", "mid"]
    assert b.manifest.metrics["train_accuracy"] >= 0.6  # random base weights: the head still separates pitches
    rec = Recognizer([root / "tones"])
    x = np.concatenate([np.zeros(4000, np.float32), rng.normal(0, 0.1, 4000).astype(np.float32)])
    from shared.features import Frontend
    from shared.segment import clip_stamp

    d = rec.classify(clip_stamp(x, Frontend(), None))[0]
    assert d.label in h["classes"] and d.model == "tones"


def test_head_words_are_the_runtime_decisions(tiny_bundle, tones, tmp_path):
    """What the trainer measures a head by (head_words) is what the daemon's Recognizer decides, for both gates."""
    import shutil

    from shared.audio import read_audio
    from shared.features import Frontend
    from shared.segment import clip_stamp
    from trainer.dataset import find_clips

    shutil.copytree(tiny_bundle, tmp_path / "digits")
    make_clips(tmp_path / "neg", speakers=2, takes=3, seed=4, words={"_unknown_": (900.0, 0.3)})
    for gate, threshold in (("margin", 0.0), ("score", 0.0)):
        b = enroll_folder("t", tones, tmp_path / "digits", tmp_path / gate, negatives=tmp_path / "neg", gate=gate,
                          threshold=threshold)
        assert json.loads(b.file("head.json").read_text())["gate"] == gate and b.reject_gate == gate
        rt = SvmHead(b)
        head = HeadParams(rt.classes, rt.mean, rt.scale, rt.coef, rt.intercept, rt.threshold, rt.temperature,
                          rt.input, rt.gate)
        data = embed_folder(load_bundle(tmp_path / "digits"), tones)
        rec, fe = Recognizer([b.path]), Frontend(b.frontend_config)
        got = [rec.classify(clip_stamp(read_audio(p), fe, b.segmenter_config))[0].word for _, p in find_clips(tones)]
        assert got == list(head_words(head, data.emb))
        assert 0.0 <= head_accuracy(head, data.emb, data.words) <= 1.0


def test_margin_gate_accepts_a_close_call_the_score_gate_rejects():
    special = np.array([False, False, True])  # a, b, _unknown_
    s = np.array([[1.0, 0.5, 1.2], [0.2, 0.9, -1.0]])
    idx, value = head_gated(s, special, "margin")
    assert list(idx) == [0, 1] and np.allclose(value, [-0.2, 1.9])  # a trails _unknown_ by 0.2; b leads by 1.9
    idx, value = head_gated(s, special, "score")
    assert list(idx) == [-1, 1] and np.allclose(value, [1.2, 0.9])  # _unknown_ on top: rejected whatever the score
    idx, value = head_gated(s[:, :2], special[:2], "margin")  # no reject class: the top score, as the score gate
    assert list(idx) == [0, 1] and np.allclose(value, [1.0, 0.9])


def test_two_classes_become_one_vs_rest():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (20, 4)), rng.normal(2, 1, (20, 4))])
    y = np.array(["a"] * 20 + ["b"] * 20)
    head = fit_head(x, y)
    assert head.coef.shape == (2, 4)
    assert head_accuracy(HeadParams(**{**head.__dict__, "threshold": -99}), x, y) >= 0.95


def test_unknown_class_is_rejected():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (20, 4)), rng.normal(3, 1, (20, 4)), rng.normal(0, 0.3, (20, 4)) + [0, 0, 6, 0]])
    y = np.array(["a"] * 20 + ["b"] * 20 + ["_unknown_"] * 20)
    head = fit_head(x, y, threshold=0.0)  # margin gate: a word must at least tie the reject class
    assert head.classes[-1] == "_unknown_"
    assert head_accuracy(head, x[40:], y[40:]) >= 0.9  # unknowns must come out rejected
    assert head_accuracy(head, x[:40], y[:40]) >= 0.9
    score = fit_head(x, y, threshold=-99, gate="score")  # the score gate rejects whenever _unknown_ is on top
    assert head_accuracy(score, x[40:], y[40:]) >= 0.9


def test_shots_curve_reports_each_input(tiny_bundle, tones):
    data = embed_folder(load_bundle(tiny_bundle), tones)
    res = shots_curve(data, {"spk2"}, shots=(1, 3), repeats=2)
    assert set(res) == {"embedding", "probs", "test_n"} and res["test_n"] == 12
    assert all(0 <= v <= 1 for kind in ("embedding", "probs") for v in res[kind].values())


def test_enrolment_copies_are_perturbed_clips_and_repeatable(tiny_bundle, tones, tmp_path):
    """Every enrolment clip gets `copies` perturbed versions with its word; they are not the clip itself, the same
    seed gives the same head, and the shots curve learns from the drawn clips' copies."""
    base = load_bundle(tiny_bundle)
    data = embed_folder(base, tones, copies=3, seed=5)
    n, dim = data.emb.shape
    assert data.aug_emb.shape == (n, 3, dim) and data.aug_probs.shape == (n, 3, data.probs.shape[1])
    assert not np.allclose(data.aug_emb[:, 0], data.emb)  # moved about, not duplicated
    x, y = data.with_copies("embedding")
    assert x.shape == (4 * n, dim) and list(y[n:n + 3]) == [data.words[0]] * 3
    sub = data.take(np.array([2, 0]))
    assert np.array_equal(sub.aug_emb[1], data.aug_emb[0])
    res = shots_curve(data, {"spk2"}, shots=(1,), repeats=1, inputs=("embedding",))
    assert 0 <= res["embedding"]["1"] <= 1
    a = enroll_folder("t", tones, tiny_bundle, tmp_path / "a", copies=2, seed=1)
    b = enroll_folder("t", tones, tiny_bundle, tmp_path / "b", copies=2, seed=1)
    assert (tmp_path / "a" / "head.json").read_bytes() == (tmp_path / "b" / "head.json").read_bytes()
    assert a.manifest.training["copies"]["per_clip"] == 2
    assert a.manifest.training["per_word"] == {w: 12 for w in ("high", "low", "mid")}  # clips, not copies
    make_clips(tmp_path / "neg", speakers=2, takes=3, seed=4, words={"_unknown_": (900.0, 0.3)})
    n = enroll_folder("t", tones, tiny_bundle, tmp_path / "n", negatives=tmp_path / "neg", copies=4, seed=1)
    assert n.manifest.training["copies"]["per_negative"] == 2 and n.manifest.training["per_word"]["_unknown_"] == 6
    with pytest.raises(ValueError, match="no-such-noise: no such folder"):
        enroll_folder("t", tones, tiny_bundle, tmp_path / "c", noise_dir=tmp_path / "no-such-noise")


def test_enroll_needs_two_classes(tiny_bundle, tmp_path):
    (tmp_path / "only" / "cat").mkdir(parents=True)
    make_clips(tmp_path / "one", speakers=1, takes=2, words={"cat": (300.0, 0.3)})
    with pytest.raises(ValueError, match="at least two classes"):
        enroll_folder("x", tmp_path / "one", tiny_bundle, tmp_path / "x")


def test_svm_head_rejects_bad_json(tiny_head_bundle, tmp_path):
    import shutil

    from shared.bundle import BundleError

    shutil.copytree(tiny_head_bundle, tmp_path / "h")
    assert SvmHead(load_bundle(tmp_path / "h")).classes == ["cat", "dog", "bird", "fox"]


def test_cli_enroll_copies_and_a_missing_noise_folder(tiny_bundle, tones, tmp_path):
    from typer.testing import CliRunner

    import wordstamp

    wordstamp._register()
    cli = CliRunner()
    r = cli.invoke(wordstamp.app, ["enroll", "tones", str(tones), "--base", str(tiny_bundle), "--out",
                                   str(tmp_path / "t"), "--copies", "2"])
    assert r.exit_code == 0, r.output
    assert load_bundle(tmp_path / "t").manifest.training["copies"] == {"per_clip": 2, "per_negative": 0, "noise": None}
    r = cli.invoke(wordstamp.app, ["enroll", "tones", str(tones), "--base", str(tiny_bundle), "--out",
                                   str(tmp_path / "u"), "--noise", str(tmp_path / "nowhere")])
    assert r.exit_code != 0 and "nowhere: no such folder" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "u").exists()  # nothing half-written


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="no espeak-ng (scripts/setup.sh test installs it)")
def test_enroll_tts_adds_synthesised_examples_of_each_word(tiny_bundle, tmp_path):
    """--tts N: every word (folder name) is said by N espeak-ng speakers and the flite/festival training voices; the
    clips are fitted with the recorded ones, recorded in the manifest, and not left on disk."""
    import glob
    import tempfile

    from trainer.enroll import synthesized_examples

    make_clips(tmp_path / "few", speakers=2, takes=2, words={"cat": (300.0, 0.3), "dog": (900.0, 0.3)})
    base = load_bundle(tiny_bundle)
    before = set(glob.glob(f"{tempfile.gettempdir()}/wordstamp-enroll-tts-*"))
    synth = synthesized_examples(base, ["cat", "dog"], 3)
    assert set(glob.glob(f"{tempfile.gettempdir()}/wordstamp-enroll-tts-*")) == before
    per_word = {w: int(np.sum(synth.words == w)) for w in ("cat", "dog")}
    assert per_word["cat"] == per_word["dog"] >= 3 and not synth.unreadable
    assert sum(s.startswith("tts-espeak") for s in synth.speakers) == 6  # 3 speakers x 2 words
    assert not any(s in {"tts-flite-rms", "tts-festival-ked-diphone"} for s in synth.speakers)  # held-out voices
    (tmp_path / "few" / "fox").mkdir()  # nobody recorded it: learnt from TTS alone
    b = enroll_folder("pets", tmp_path / "few", tiny_bundle, tmp_path / "pets", tts=3)
    assert b.manifest.training["tts"]["clips"] == len(synth.words) * 3 // 2
    assert json.loads((tmp_path / "pets" / "head.json").read_text())["classes"] == ["cat", "dog", "fox"]
    assert b.manifest.training["per_word"] == {"cat": 4, "dog": 4, "fox": 0}  # scored on: the recorded clips
