"""The control socket under hostile clients: random bytes, huge frames, several frames, invalid JSON, wrong types.

Each gets `{"ok": false, "error": "<one line>"}` (over 1 MiB: ZeroMQ drops the connection instead), and the daemon
stays up, keeps answering and keeps publishing. A real daemon in-process, real REQ sockets on loopback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import build_config
from shared.audio import write_wav_atomic
from tests.daemon_support import Collector, endpoint, plumbing_models, request, run_daemon_inprocess  # noqa: F401

frames = st.one_of(
    st.binary(min_size=0, max_size=300),
    st.text(max_size=100).map(str.encode),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"command": 5}', b'{"command": null}', b'{"command": ["status"]}', b"{", b'{"cmd": "status"}',
                     b"\xff\xfe", b"status\x00", b"reload" * 1000, b"x" * 5000, b'{"command": "' + b"a" * 5000 + b'"}']),
)
requests = st.one_of(frames.map(lambda f: [f]), st.lists(frames, min_size=2, max_size=4))


@pytest.fixture(scope="module")
def running(plumbing_models, tmp_path_factory):
    t = np.arange(16000 * 120) / 16000
    wav = write_wav_atomic(tmp_path_factory.mktemp("cf") / "tone.wav", 0.1 * np.sin(2 * np.pi * 300 * t))
    pub, ctl = endpoint(), endpoint()
    cfg = build_config(None, model=plumbing_models, input=str(wav), pub=pub, control=ctl, status_interval=0.05)
    d, th = run_daemon_inprocess(cfg)
    yield d, pub, ctl
    d.request_stop()
    th.join(5)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(req=requests)
def test_any_request_gets_an_answer_and_the_daemon_lives(running, req):
    d, _, ctl = running
    reply = request(ctl, req, timeout_ms=3000)
    assert set(reply) >= {"ok"}
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and "\n" not in reply["error"]
    assert d.state == "running"


def test_huge_frames_are_refused_and_publishing_goes_on(running):
    d, pub, ctl = running
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ctl)
    s.send(b"s" * (4 << 20))  # 4 MiB: over MAXMSGSIZE, the daemon's ZeroMQ drops the connection
    assert s.poll(500) == 0
    s.close(0)
    assert request(ctl, b"status")["ok"] is True
    col = Collector(pub, topics=("status",))
    seqs = []
    import time

    end = time.monotonic() + 3
    while time.monotonic() < end and len(seqs) < 5:
        time.sleep(0.1)
        seqs = [e["seq"] for e in col.events]
    col.wait(0.1)
    assert len(seqs) >= 5 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert d.state == "running" and d.control.errors > 0
