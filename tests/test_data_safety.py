"""Data safety: what the trainer writes is old or new, never broken, even under SIGKILL; recordings are never touched;
no pickle anywhere; bundles are validated before use (each refusal tested).

The kill tests start the real commands as subprocesses on a small dataset and SIGKILL them at random moments.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.audio import read_audio
from shared.bundle import MAX_FILE_BYTES, BundleError, Manifest, load_bundle, recover_bundle, write_bundle
from shared.features import FrontendConfig
from tests.conftest import REPO, tone_word
from tests.test_split import join
from tests.train_support import make_clips
from trainer.dataset import load_dataset

WS = [sys.executable, str(REPO / "wordstamp.py")]


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _kill_at(args: list[str], at: float, cwd: Path) -> int | None:
    """Start the command, SIGKILL it after `at` seconds (if still running); its return code."""
    p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        p.wait(at)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    return p.returncode


# ---------------------------------------------------------------- bundles: the rename window, refusals


def _head_manifest(words: list[str]) -> Manifest:
    return Manifest(name="h", kind="head", vocabulary=words, frontend=FrontendConfig().to_dict(),
                    base={"name": "digits", "hash": "x" * 16})


def test_bundle_missing_between_the_two_renames_is_recovered(tmp_path):
    dest = tmp_path / "h"
    write_bundle(dest, _head_manifest(["a", "b"]), {"head.json": b"{}"})
    os.rename(dest, tmp_path / ".h.old-4242")  # a writer killed right after its first rename
    (tmp_path / ".h.abc123").mkdir()  # and its half-written new folder
    assert load_bundle(dest).manifest.vocabulary == ["a", "b"]  # the old bundle is back
    assert dest.is_dir() and not (tmp_path / ".h.old-4242").exists()
    os.rename(dest, tmp_path / ".h.old-4243")
    write_bundle(dest, _head_manifest(["a", "c"]), {"head.json": b"{ }"})  # the next write recovers first
    assert load_bundle(dest).manifest.vocabulary == ["a", "c"]
    assert not list(tmp_path.glob(".h.old-*"))
    assert recover_bundle(tmp_path / "never-written") is False


_WRITER = """
import sys
from pathlib import Path
from shared.bundle import Manifest, write_bundle
from shared.features import FrontendConfig
dest, i = Path(sys.argv[1]), 0
while True:
    i += 1
    words = ["a", "b"] if i % 2 else ["a", "c"]
    m = Manifest(name="h", kind="head", vocabulary=words, frontend=FrontendConfig().to_dict(),
                 base={"name": "digits", "hash": "x" * 16})
    write_bundle(dest, m, {"head.json": (b"{}" if i % 2 else b"{ }") * 20000})
"""


def test_write_bundle_killed_at_random_moments_leaves_a_loadable_bundle(tmp_path):
    dest = tmp_path / "h"
    write_bundle(dest, _head_manifest(["a", "b"]), {"head.json": b"{}" * 20000})
    rnd = random.Random(7)
    for _ in range(6):
        _kill_at([sys.executable, "-c", _WRITER, str(dest)], rnd.uniform(0.4, 1.2), REPO)
        b = load_bundle(dest)  # recovers the rename window if the kill fell in it
        assert b.manifest.vocabulary in (["a", "b"], ["a", "c"])


@pytest.mark.parametrize("damage, needle", [
    ("size", "size"), ("hash", "SHA-256"), ("missing", "missing head.json"), ("version", "format version"),
    ("name", "not a plain name"), ("json", "not valid JSON"), ("object", "not a JSON object"),
    ("field", "missing field"), ("huge", "size"), ("no_manifest", "missing manifest.json"), ("base", "base bundle"),
])
def test_each_bundle_refusal(tmp_path, damage, needle):
    b = write_bundle(tmp_path / "h", _head_manifest(["a", "b"]), {"head.json": b"{}"}).path
    mf = b / "manifest.json"
    m = json.loads(mf.read_text())
    if damage == "size":
        (b / "head.json").write_bytes(b"{}  ")
    elif damage == "hash":
        (b / "head.json").write_bytes(b"[]")  # same size, other bytes
    elif damage == "missing":
        (b / "head.json").unlink()
    elif damage == "version":
        m["format_version"] = 99
    elif damage == "name":
        m["files"]["../head.json"] = dict(m["files"]["head.json"])
    elif damage == "json":
        mf.write_text("{not json")
    elif damage == "object":
        mf.write_text("[1, 2]")
    elif damage == "field":
        del m["vocabulary"]
    elif damage == "huge":
        m["files"]["head.json"]["bytes"] = MAX_FILE_BYTES + 1
    elif damage == "no_manifest":
        mf.unlink()
    elif damage == "base":
        m["base"] = None
    if damage in ("version", "name", "field", "huge", "base"):
        mf.write_text(json.dumps(m))
    with pytest.raises(BundleError) as err:
        load_bundle(b)
    assert needle in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- no pickle anywhere

PICKLE = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|_pickle|joblib|dill|cloudpickle|shelve)\b"
                    r"|allow_pickle\s*=\s*True|\bpickle\.(load|loads|dump|dumps)\b|\bjoblib\.|safe_mode\s*=\s*False",
                    re.M)


def test_no_pickle_or_joblib_in_the_source_tree():
    me = Path(__file__).resolve()
    hits = []
    for p in REPO.rglob("*.py"):
        if any(part in (".venv", "node_modules", "build", ".git") or part.endswith(".egg-info") for part in p.parts):
            continue
        if p.resolve() == me:
            continue
        text = p.read_text(errors="replace")
        hits += [f"{p.relative_to(REPO)}: {m.group(0).strip()}" for m in PICKLE.finditer(text)]
        for line in text.splitlines():  # every np.load says allow_pickle=False out loud
            if re.search(r"\bnp\.load\(", line) and "allow_pickle=False" not in line:
                hits.append(f"{p.relative_to(REPO)}: {line.strip()}")
    assert not hits, hits


# ---------------------------------------------------------------- split and build killed


def _recordings(data: Path, rng, n: int = 10) -> dict[Path, str]:
    (data / "fz.words").write_text("aa bb cc\n")
    for i in range(n):
        x, _ = join([tone_word(rng, 0.35, f0=150 + 40 * k) for k in range(3)], rng, gap=(0.3, 0.5), level_db=3)
        import soundfile as sf

        sf.write(data / f"fz_spk{i % 4}_{i}.wav", x, 16000)
    return {p: _digest(p) for p in data.glob("fz_*.wav")}


def test_split_killed_at_random_moments_leaves_only_whole_clips(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    originals = _recordings(data, rng)
    rnd = random.Random(3)
    for at in sorted(rnd.uniform(0.8, 3.0) for _ in range(3)):
        _kill_at([*WS, "split", "fz", "--data", str(data), "--workers", "1"], at, tmp_path)
        for clip in (data / "fz").rglob("*.wav"):
            if not clip.name.startswith("."):
                assert read_audio(clip).size > 0  # whole, or not there
    done = subprocess.run([*WS, "split", "fz", "--data", str(data), "--workers", "1"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len([c for c in (data / "fz").rglob("*.wav") if not c.name.startswith(".")]) == 30
    assert {p: _digest(p) for p in data.glob("fz_*.wav")} == originals  # recordings never touched


def test_build_killed_at_random_moments_leaves_the_old_dataset_or_the_new(tmp_path):
    data = tmp_path / "data"
    make_clips(data / "tz", speakers=4, takes=3)
    first = subprocess.run([*WS, "build", "tz", "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    old = _digest(data / "tz.npz")
    make_clips(data / "tz", speakers=5, takes=3, seed=1)  # more clips: the next build differs
    rnd = random.Random(5)
    for at in sorted(rnd.uniform(1.0, 4.0) for _ in range(3)):
        _kill_at([*WS, "build", "tz", "--data", str(data)], at, tmp_path)
        d = load_dataset(data / "tz.npz")  # loads: old or new, never half
        assert d.stamps.shape[0] > 0
        assert _digest(data / "tz.npz") == old or d.stamps.shape[0] > 36


# ---------------------------------------------------------------- train and export killed (TensorFlow: slow)


@pytest.mark.slow
def test_train_and_export_killed_leave_nothing_broken(tmp_path):
    """One kill each (TensorFlow start-up makes every run seconds long); the old-or-new swap of bundles at random
    moments is covered cheaply by the write_bundle kill loop above."""
    data = tmp_path / "data"
    make_clips(data / "tz", speakers=4, takes=3)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    ok = subprocess.run([*WS, "build", "tz", "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    train = [*WS, "train", "tz", "--data", str(data), "--out", str(run), "--epochs", "2", "--copies", "0"]
    rnd = random.Random(11)
    import keras

    def run_is_whole() -> None:
        if (run / "model.keras").exists():
            keras.models.load_model(run / "model.keras")  # never a half-written zip
        if (run / "run.json").exists():
            json.loads((run / "run.json").read_text())
        if (run / "calib.npz").exists():
            with np.load(run / "calib.npz", allow_pickle=False) as z:
                assert z["representative"].size > 0

    _kill_at(train, rnd.uniform(4.0, 9.0), tmp_path)
    run_is_whole()
    ok = subprocess.run(train, capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_is_whole()
    export = [*WS, "export", str(run), "--name", "tz", "--out", str(bundle)]
    _kill_at(export, rnd.uniform(4.0, 8.0), tmp_path)
    if bundle.exists() or list(tmp_path.glob(".bundle.old-*")):
        assert load_bundle(bundle).manifest.name == "tz"
