"""record: file naming never overwrites; through the real microphone path (PortAudio via PulseAudio's virtual mic),
a played sentence is recorded and then splits into its words."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from shared.audio import read_audio, write_wav_atomic
from tests.conftest import REPO, tone_word
from tests.test_split import join, run
from trainer.record import Level, meter, next_path, save_take


def _pulse_ok() -> str | None:
    """None when the virtual microphone is up, else why not."""
    if not os.environ.get("PULSE_SERVER"):
        return "PULSE_SERVER is not set: start the virtual mic (eval \"$(scripts/virtual-mic.sh start)\")"
    if not shutil.which("pactl") or not shutil.which("paplay"):
        return "pactl/paplay not installed"
    try:
        r = subprocess.run(["pactl", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pactl failed: {exc}"
    if r.returncode != 0:
        return "pactl cannot reach PulseAudio"
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=10).stdout
    return None if "ws_sink" in sinks else "PulseAudio has no ws_sink (scripts/virtual-mic.sh sets it up)"


mic = pytest.mark.mic
_why = _pulse_ok()
needs_mic = pytest.mark.skipif(_why is not None, reason=_why or "")


def test_next_path_counts_up_and_never_reuses(tmp_path, rng):
    assert next_path(tmp_path, "pets", "ann").name == "pets_ann_1.wav"
    (tmp_path / "pets_ann_1.wav").write_bytes(b"")
    (tmp_path / "pets_ann_7.flac").write_bytes(b"")
    (tmp_path / "pets_annie_9.wav").write_bytes(b"")  # another speaker
    assert next_path(tmp_path, "pets", "ann").name == "pets_ann_8.wav"
    p = save_take(tmp_path, "pets", "ann", tone_word(rng))
    assert p.name == "pets_ann_8.wav" and read_audio(p).size > 0
    assert save_take(tmp_path, "pets", "ann", tone_word(rng)).name == "pets_ann_9.wav"


def test_meter_shows_level_and_clipping():
    quiet = meter(Level(-50.0, -40.0, False, 1.0))
    loud = meter(Level(-6.0, 0.0, True, 2.0))
    assert quiet.count("#") < loud.count("#") and "CLIPPING" in loud and "CLIPPING" not in quiet


def test_bad_speaker_names_are_refused(tmp_path):
    (tmp_path / "pets.words").write_text("cat dog")
    res = run("record", "pets", "--speaker", "ann_b", "--yes", "--data", str(tmp_path))
    assert res.exit_code == 2 and "speaker" in res.output
    res = run("record", "pets", "--yes", "--data", str(tmp_path))
    assert res.exit_code == 2 and "--speaker" in res.output


@mic
@needs_mic
def test_record_through_the_virtual_microphone_then_split(tmp_path, rng):
    words = ["cat", "dog", "fox", "bird"]
    (tmp_path / "pets.words").write_text(" ".join(words))
    clips = [tone_word(rng, 0.35, f0=140 + 45 * i) for i in range(len(words))]
    x, _ = join(clips, rng, gap=(0.3, 0.5), level_db=4)
    feed = tmp_path / "feed.wav"
    write_wav_atomic(feed, np.concatenate([np.zeros(8000, np.float32), x]))
    (tmp_path / "pets_tester_1.wav").write_bytes(b"")  # taken: the take must go to _2
    cmd = [sys.executable, str(REPO / "wordstamp.py"), "record", "pets", "--speaker", "tester", "--yes",
           "--seconds", "6", "--data", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    time.sleep(1.5)  # the recorder is listening by now (python + PortAudio start-up)
    subprocess.run(["paplay", "--device=ws_sink", str(feed)], check=True, timeout=30)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    take = tmp_path / "pets_tester_2.wav"
    y = read_audio(take)
    assert abs(y.size / 16000 - 6.0) < 0.1
    assert np.max(np.abs(y)) > 0.1, "the virtual microphone delivered silence"
    (tmp_path / "pets_tester_1.wav").unlink()
    res = run("split", "pets", "--data", str(tmp_path))
    assert res.exit_code == 0, res.output
    for w in words:
        assert (tmp_path / "pets" / w / "tester_2.wav").exists(), res.output


@mic
@needs_mic
def test_record_reports_a_missing_device_in_one_line(tmp_path):
    (tmp_path / "pets.words").write_text("cat dog")
    res = run("record", "pets", "--speaker", "ann", "--yes", "--seconds", "1", "--device", "no-such-device-xyz",
              "--data", str(tmp_path))
    assert res.exit_code == 1 and "no-such-device-xyz" in res.output, res.output
