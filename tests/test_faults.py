"""Faults the daemon must live through: audio overflow, the microphone's sound server dying and coming back, a
subscriber dropping out and reconnecting (it must see the documented gap signal: a jump in `seq`).

Real parts: the daemon as a subprocess on a private PulseAudio instance (its own XDG_RUNTIME_DIR, so other tests'
virtual microphones are untouched), killed and restarted by pid; real ZeroMQ sockets on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from daemon.config import build_config
from shared.audio import write_wav_atomic
from tests.daemon_support import (FIXTURES, REPO, Collector, daemon_cmd, endpoint, plumbing_models,  # noqa: F401
                                  request, run_daemon_inprocess, wait_for)


def _tone_file(folder: Path, seconds: float) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    return write_wav_atomic(folder / "tone.wav", 0.1 * np.sin(2 * np.pi * 300 * t) + 0.01)


def test_overflow_is_counted_in_status_and_logged(plumbing_models, tmp_path, capfd):
    """A ring smaller than one audio block cannot hold what the (paced) source writes: every block overflows."""
    pub = endpoint()
    cfg = build_config(None, model=plumbing_models, input=str(_tone_file(tmp_path, 1.0)), pub=pub, control="",
                       ring_seconds=0.01, block_ms=20, status_interval=0.1, wait_subscriber=5.0)
    col = Collector(pub, topics=("status",))
    d, th = run_daemon_inprocess(cfg)
    th.join(20)
    events = col.wait(5)
    assert d.exit_code == 0
    final = events[-1]
    assert final["state"] == "stopping" and final["overflows"] > 0
    assert final["overflows"] == d.source.ring.overflows
    assert final["audio_seconds"] < 0.9  # what overflowed was never processed
    assert "audio overflow" in capfd.readouterr().err


def test_reconnecting_subscriber_sees_a_seq_gap_never_a_silent_loss(plumbing_models, tmp_path):
    pub = endpoint()
    cfg = build_config(None, model=plumbing_models, input=str(_tone_file(tmp_path, 30.0)), pub=pub, control="",
                       status_interval=0.02)
    d, th = run_daemon_inprocess(cfg)
    ctx = zmq.Context()
    try:
        def seqs(seconds: float) -> list[int]:
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(pub)
            s.setsockopt(zmq.SUBSCRIBE, b"status")
            got: list[int] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if s.poll(50):
                    got.append(json.loads(s.recv_multipart()[1])["seq"])
            s.close(0)
            return got

        first = seqs(1.0)
        time.sleep(0.5)  # away: the daemon keeps publishing
        second = seqs(1.0)
        assert len(first) > 5 and len(second) > 5
        assert np.all(np.diff(first) == 1) and np.all(np.diff(second) == 1)  # gap-free while connected
        assert second[0] > first[-1] + 1, "the events missed while away must show as a jump in seq"
    finally:
        d.request_stop()
        th.join(5)
        ctx.term()


# ---------------------------------------------------------------- device loss (a private PulseAudio)


class Pulse:
    """A PulseAudio instance of our own with the virtual microphone; start/kill it by pid."""

    def __init__(self, runtime: Path) -> None:
        # PULSE_SERVER of the suite's own virtual mic (run-tests.sh) would point every client, and the start script's
        # "already running?" check, at that server instead of ours
        self.env = {k: v for k, v in os.environ.items() if k != "PULSE_SERVER"} | {"XDG_RUNTIME_DIR": str(runtime)}
        self.runtime = runtime

    def start(self) -> None:
        out = subprocess.run(["sh", str(REPO / "scripts" / "virtual-mic.sh"), "start"], env=self.env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        self.env["PULSE_SERVER"] = f"unix:{self.runtime}/pulse/native"

    def pid(self) -> int | None:
        try:
            return int((self.runtime / "pulse" / "pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)  # a crash, not a polite exit
            wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5)
            (self.runtime / "pulse" / "pid").unlink(missing_ok=True)

    def play(self, wav: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", "--device=ws_sink", str(wav)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


needs_pulse = pytest.mark.skipif(not (shutil.which("pulseaudio") and shutil.which("paplay")),
                                 reason="needs PulseAudio (scripts/setup.sh test)")


@needs_pulse
def test_sound_server_loss_is_survived_with_backoff_and_events_resume(plumbing_models, tmp_path):
    runtime = Path(f"/tmp/ws-fault-{os.getpid()}")
    pulse = Pulse(runtime)
    pulse.start()
    pub, ctl = endpoint(), endpoint()
    proc = subprocess.Popen(daemon_cmd("--model", plumbing_models[0], "--pub", pub, "--control", ctl,
                                       "--status-interval", "0.2", "--source-id", "faulty"),
                            env=pulse.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    col = Collector(pub)
    try:
        def last_status() -> dict:
            st = col.of("status")
            return st[-1] if st else {}

        assert wait_for(lambda: last_status().get("audio_seconds", 0) > 0.5, 30), "no audio from the virtual mic"
        pulse.kill()
        assert wait_for(lambda: last_status().get("stream") == "lost", 15), last_status()
        assert last_status()["stream_losses"] == 1 and proc.poll() is None
        time.sleep(1.5)  # a few failed reopen attempts, with backoff
        assert last_status()["stream"] == "lost" and proc.poll() is None
        pulse.start()
        assert wait_for(lambda: last_status().get("reconnects") == 1 and last_status()["stream"] == "ok", 30), \
            last_status()
        back_at = last_status()["audio_seconds"]
        n_vad = len(col.of("vad"))
        player = pulse.play(FIXTURES / "digits_rms.wav")
        assert wait_for(lambda: len(col.of("vad")) > n_vad + 2, 40), "no speech events after the reconnect"
        player.wait(30)
        assert last_status()["audio_seconds"] > back_at + 1.0
        st = request(ctl, b"status")
        assert st["ok"] and st["reconnects"] == 1 and st["stream_losses"] == 1 and st["stream"] == "ok"
        seq = [e["seq"] for e in col.of("status")]
        assert seq == list(range(seq[0], seq[0] + len(seq))), "status events went missing across the fault"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        col.wait(1)
        pulse.kill()
        shutil.rmtree(runtime, ignore_errors=True)
    print(err)
    assert proc.returncode == 0, err
    assert "audio stream lost" in err and "audio stream reopened" in err
    assert "Traceback" not in err
