"""Network exposure: loopback only by default; CURVE keys for anything else; a subscriber without the key gets nothing.

Real sockets on 127.0.0.1 (CURVE works on loopback as on any interface), a real daemon in-process.
"""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
import zmq

from daemon.config import ConfigError, build_config
from daemon.hub import Hub
from daemon.security import Curve, CurveError, create_keys, is_loopback
from shared.audio import write_wav_atomic
from tests.daemon_support import endpoint, plumbing_models, run_daemon_inprocess, wait_for  # noqa: F401
from tests.test_cli_fuzz import run_cli


@pytest.fixture
def keys(tmp_path):
    create_keys(tmp_path / "keys")
    return tmp_path / "keys"


def test_keys_command_makes_pairs_with_private_secrets(tmp_path):
    r = run_cli(["keys", str(tmp_path / "k")])
    assert r.exit_code == 0, r.output
    for name in ("server", "client"):
        assert stat.S_IMODE((tmp_path / "k" / f"{name}.key_secret").stat().st_mode) == 0o600
        assert (tmp_path / "k" / f"{name}.key").is_file()
    assert (tmp_path / "k" / "authorized_clients" / "client.key").is_file()
    again = run_cli(["keys", str(tmp_path / "k")])  # never overwrites a key
    assert again.exit_code == 2 and "exists" in again.output and "Traceback" not in again.output


@pytest.mark.parametrize("ep, local", [("tcp://127.0.0.1:1", True), ("tcp://127.8.0.1:1", True),
                                       ("tcp://localhost:1", True), ("tcp://[::1]:1", True), ("ipc:///tmp/x", True),
                                       ("tcp://0.0.0.0:1", False), ("tcp://*:1", False), ("tcp://10.0.0.2:1", False),
                                       ("tcp://eth0:1", False), ("tcp://example.org:1", False)])
def test_loopback_rule(ep, local):
    assert is_loopback(ep) is local


def test_non_loopback_needs_keys(tmp_path, keys):
    for opts in ({"pub": "tcp://0.0.0.0:5556"}, {"control": "tcp://*:5557"},
                 {"connect": "tcp://192.168.1.2:5558"}):
        with pytest.raises(ConfigError) as err:
            build_config(None, **opts)
        assert "CURVE" in str(err.value) and "\n" not in str(err.value)
        assert build_config(None, curve=str(keys), **opts).curve == str(keys)
    with pytest.raises(ValueError, match="loopback"):
        Hub("tcp://0.0.0.0:5558", "tcp://127.0.0.1:5559")
    with pytest.raises(ConfigError, match="no such key folder"):
        build_config(None, pub="tcp://0.0.0.0:5556", curve=str(tmp_path / "none"))
    (keys / "server.key_secret").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        build_config(None, pub="tcp://0.0.0.0:5556", curve=str(keys))
    r = run_cli(["daemon", "--pub", "tcp://0.0.0.0:5556", "--model", str(tmp_path)])
    assert r.exit_code == 2 and "CURVE" in r.output and "Traceback" not in r.output


def _sub(ctx, ep, curve: Curve | None) -> zmq.Socket:
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.client(s)
    s.connect(ep)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    return s


def _until_stopping(sock: zmq.Socket, timeout: float) -> list[dict]:
    out: list[dict] = []
    while sock.poll(int(timeout * 1000)):
        _, body = sock.recv_multipart()
        out.append(json.loads(body))
        if out[-1]["type"] == "status" and out[-1]["state"] != "running":
            break
    return out


def test_curve_subscriber_with_key_gets_events_others_get_nothing(plumbing_models, keys, tmp_path):
    t = np.arange(16000 * 2) / 16000
    wav = write_wav_atomic(tmp_path / "tone.wav", 0.1 * np.sin(2 * np.pi * 300 * t))
    other = tmp_path / "other"  # a well-formed key pair the daemon does not know
    create_keys(other)
    (other / "server.key").unlink()
    (other / "server.key").write_bytes((keys / "server.key").read_bytes())  # knows the server, is not authorised
    pub, ctl = endpoint(), endpoint()
    cfg = build_config(None, model=plumbing_models, input=str(wav), pub=pub, control=ctl, curve=str(keys),
                       status_interval=0.05, wait_subscriber=10.0)
    ctx = zmq.Context()
    plain = _sub(ctx, pub, None)
    stranger = _sub(ctx, pub, Curve.load(other))
    d, th = run_daemon_inprocess(cfg)
    try:
        good = _sub(ctx, pub, Curve.load(keys))
        events = _until_stopping(good, 20)
        good.close(0)
        th.join(10)
        assert any(e["type"] == "status" for e in events) and events[-1]["state"] == "stopping"
        for s in (plain, stranger):
            assert s.poll(300) == 0, "a subscriber without the right key received something"
        # control: with the key an answer, without it silence
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(ctl)
        req.send(b"status")
        assert req.poll(500) == 0
        req.close(0)
    finally:
        d.request_stop()
        th.join(5)
        for s in (plain, stranger):
            s.close(0)
        ctx.term()


def test_curve_control_socket_answers_authorised_client(plumbing_models, keys, tmp_path):
    pub, ctl = endpoint(), endpoint()
    t = np.arange(16000 * 30) / 16000
    wav = write_wav_atomic(tmp_path / "long.wav", 0.1 * np.sin(2 * np.pi * 300 * t))
    cfg = build_config(None, model=plumbing_models, input=str(wav), pub=pub, control=ctl, curve=str(keys))
    d, th = run_daemon_inprocess(cfg)
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        Curve.load(keys).client(req)
        req.connect(ctl)
        req.send(b"status")
        assert req.poll(5000), "no reply to an authorised client"
        assert json.loads(req.recv())["ok"] is True
        req.close(0)
    finally:
        d.request_stop()
        th.join(5)
        ctx.term()


def test_curve_through_the_hub(plumbing_models, keys, tmp_path):
    xsub, xpub = endpoint(), endpoint()
    hub = Hub(xsub, xpub, curve=str(keys))
    hub.start()
    t = np.arange(16000 * 2) / 16000
    wav = write_wav_atomic(tmp_path / "tone.wav", 0.1 * np.sin(2 * np.pi * 300 * t))
    ctx = zmq.Context()
    plain = _sub(ctx, xpub, None)
    good = _sub(ctx, xpub, Curve.load(keys))
    cfg = build_config(None, model=plumbing_models, input=str(wav), connect=xsub, control="", curve=str(keys),
                       status_interval=0.05)
    try:
        d, th = run_daemon_inprocess(cfg)
        assert wait_for(lambda: good.poll(0) != 0, 15), "the keyed subscriber got nothing through the hub"
        th.join(10)
        assert plain.poll(300) == 0
    finally:
        plain.close(0)
        good.close(0)
        ctx.term()
        hub.stop()


def test_bad_key_files_are_one_line(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "server.key_secret").write_text("garbage\n")
    (tmp_path / "k" / "server.key_secret").chmod(0o600)
    with pytest.raises(CurveError) as err:
        Curve.load(tmp_path / "k").check_server()
    assert "\n" not in str(err.value)
