"""Helpers for the daemon tests: free loopback ports, plumbing bundles, running daemons, collecting events."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from shared.events import Event, parse_event

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
REAL_MODELS = [REPO / "models" / "digits", REPO / "models" / "animals"]
WALL_FIELDS = ("time", "time_iso", "latency_ms")

needs_real_models = pytest.mark.skipif(
    not all((m / "manifest.json").is_file() for m in REAL_MODELS),
    reason="needs the shipped models in models/digits and models/animals (not built yet)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def plumbing_models(tiny_bundle: Path, tiny_head_bundle: Path, tmp_path_factory) -> list[str]:
    """The tiny random bundles, copied, with the digits threshold at 0 so that words get through (plumbing only)."""
    root = tmp_path_factory.mktemp("plumbing")
    for b in (tiny_bundle, tiny_head_bundle):
        shutil.copytree(b, root / b.name)
    mf = root / tiny_bundle.name / "manifest.json"
    m = json.loads(mf.read_text())
    m["threshold"] = 0.0
    mf.write_text(json.dumps(m))
    return [str(root / tiny_bundle.name), str(root / tiny_head_bundle.name)]


def strip_wall(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in WALL_FIELDS}


def daemon_cmd(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "wordstamp.py"), "daemon", *args]


class Collector:
    """A SUB socket in a thread collecting (topic, event dict) until stopped or a final status arrives."""

    def __init__(self, ep: str, topics: tuple[str, ...] = ("",), rcvhwm: int = 100000, until_stopping: int = 1,
                 ctx: zmq.Context | None = None) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(ep)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self.events: list[dict] = []
        self.until_stopping = until_stopping  # finish after this many final statuses (one per daemon)
        self.done = threading.Event()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        stopping = 0
        while not self._stop.is_set():
            if not self.sock.poll(50):
                continue
            topic, body = self.sock.recv_multipart()
            d = json.loads(body)
            assert d["type"] == topic.decode()
            self.events.append(d)
            if d["type"] == "status" and d["state"] in ("stopping", "error"):
                stopping += 1
                if stopping >= self.until_stopping:
                    break
        self.done.set()
        self.sock.close(0)

    def wait(self, timeout: float) -> list[dict]:
        self.done.wait(timeout)
        self._stop.set()
        self._t.join(2)
        return self.events

    def of(self, topic: str, source: str | None = None) -> list[dict]:
        return [e for e in self.events if e["type"] == topic and (source is None or e["source"] == source)]


def run_daemon_inprocess(cfg) -> tuple[object, threading.Thread]:
    """A Daemon in a thread (no signal handlers); returns (daemon, thread)."""
    from daemon.service import Daemon

    d = Daemon(cfg)
    t = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    return d, t


def request(ep: str, payload: bytes | list[bytes], timeout_ms: int = 5000) -> dict:
    """One REQ/REP round trip to a control socket."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout_ms)
    s.connect(ep)
    try:
        if isinstance(payload, list):
            s.send_multipart(payload)
        else:
            s.send(payload)
        return json.loads(s.recv())
    finally:
        s.close(0)


def wait_for(pred, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def popen_daemon(*args: str) -> subprocess.Popen:
    return subprocess.Popen(daemon_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def events_of(lines: list[str]) -> list[Event]:
    return [parse_event(line) for line in lines if line.strip()]
