"""Fuzzing through the user-facing commands: >= 1,000 malformed audio files through `evaluate`, `split` and `replay`.

Each hypothesis example writes a batch of mutated files (flipped bytes, truncation, overwritten headers, garbage) and
runs the real command in-process through typer's CliRunner; a few real subprocess runs check what a user's terminal
sees. Every bad file must cost one line naming it, no traceback may reach the user, and the command must not crash.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.daemon_support import plumbing_models  # noqa: F401  (fixture)
from tests.test_fuzz_audio import SEEDS, mutate, mutation

_APP = None
COUNT = {"evaluate": 0, "split": 0, "replay": 0}

one_file = mutation  # the same malformed-file generator as the reader fuzz test


def app():
    global _APP
    if _APP is None:
        import wordstamp

        wordstamp._register()
        _APP = wordstamp.app
    return _APP


def run_cli(args: list[str]):
    """The `wordstamp` app in-process; stdout and stderr together in .output."""
    return CliRunner().invoke(app(), args)


def no_traceback(res) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output, res.output


def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                    derandomize=True)


@fuzz(40)
@given(batch=st.lists(one_file, min_size=10, max_size=10))
def test_evaluate_survives_malformed_clips(tiny_bundle, tmp_path_factory, batch):
    root = tmp_path_factory.mktemp("ev")
    for i, m in enumerate(batch):
        (root / ("one" if i % 2 else "cat")).mkdir(exist_ok=True)
        (root / ("one" if i % 2 else "cat") / f"spk{i}_x_{i}.wav").write_bytes(mutate(m))
    COUNT["evaluate"] += len(batch)
    res = run_cli(["evaluate", str(tiny_bundle), str(root)])
    no_traceback(res)
    skipped = [line for line in res.output.splitlines() if line.strip().startswith("skipped")]
    for line in skipped:
        assert ".wav: " in line
    if res.exit_code != 0:  # nothing readable at all: one error line
        assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1


@fuzz(40)
@given(batch=st.lists(one_file, min_size=10, max_size=10))
def test_split_survives_malformed_recordings(tmp_path_factory, batch):
    data = tmp_path_factory.mktemp("sp")
    (data / "fz.words").write_text("aa bb\n")
    for i, m in enumerate(batch):
        (data / f"fz_spk{i}_1.wav").write_bytes(mutate(m))
    COUNT["split"] += len(batch)
    res = run_cli(["split", "fz", "--data", str(data), "--workers", "1"])
    no_traceback(res)
    assert res.exit_code in (0, 1)
    for line in res.output.splitlines():
        if line.startswith("skip "):
            assert "fz_spk" in line and ": " in line


@fuzz(250)
@given(m=one_file)
def test_replay_survives_malformed_file(plumbing_models, tmp_path_factory, m):
    f = tmp_path_factory.mktemp("rp") / "in.wav"
    f.write_bytes(mutate(m))
    COUNT["replay"] += 1
    res = run_cli(["replay", str(f), "--model", plumbing_models[0]])
    no_traceback(res)
    if res.exit_code != 0:
        assert res.exit_code == 2
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"wordstamp: error: {f}: "), res.output


def test_fuzz_total_is_at_least_1000():
    """Runs after the three fuzzers in this module (file order)."""
    total = sum(COUNT.values())
    print(f"fuzzed files through commands: {COUNT} = {total}")
    if all(COUNT.values()):  # the module ran in full (not a -k selection)
        assert total >= 1000


def test_real_subprocesses_print_one_line(tmp_path, plumbing_models):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(SEEDS[0][:44])  # a header and no samples
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    clips = tmp_path / "clips" / "one"
    clips.mkdir(parents=True)
    (clips / "a_x_1.wav").write_bytes(garbage.read_bytes())
    sf.write(clips / "b_x_1.wav", 0.1 * np.sin(np.arange(8000) / 5), 16000)
    data = tmp_path / "data"
    data.mkdir()
    (data / "fz.words").write_text("aa bb\n")
    (data / "fz_a_1.wav").write_bytes(garbage.read_bytes())
    ws = [sys.executable, str(REPO / "wordstamp.py")]
    for args, code in (([*ws, "replay", str(garbage), "--model", plumbing_models[0]], 2),
                       ([*ws, "replay", str(bad), "--model", plumbing_models[0]], 2),
                       ([*ws, "evaluate", plumbing_models[0], str(tmp_path / "clips")], 0),
                       ([*ws, "split", "fz", "--data", str(data)], 1)):
        p = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert p.returncode == code, (args, p.stdout, p.stderr)
        assert "Traceback" not in p.stdout + p.stderr
        errs = [line for line in p.stderr.splitlines() if line.strip() and "XNNPACK" not in line
                and "TF_ENABLE" not in line and "tensorflow" not in line.lower()]
        assert all(str(tmp_path) in line or "garbage" in line for line in errs), p.stderr
