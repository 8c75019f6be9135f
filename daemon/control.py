"""The control socket: a REP server answering `describe`, `status` and `reload` with JSON, in its own thread.

A request is the command as plain text (`status`) or JSON (`{"command": "status"}`). Anything else — garbage bytes,
several frames, a message over MAX_REQUEST bytes, an unknown command, a handler that fails — gets
`{"ok": false, "error": "<one line>"}`, never a crash: a bad client must not take the microphone down.
Every good reply is `{"ok": true, ...}`.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

import zmq

MAX_REQUEST = 4096  # bytes; requests are one word
MAX_WIRE = 1 << 20  # ZeroMQ refuses (disconnects) anything bigger, so a hostile peer cannot make us allocate much

Handler = Callable[[], dict[str, Any]]


def parse_request(frames: list[bytes]) -> str:
    """Frames of one request -> the command name; ValueError with a one-line reason."""
    if len(frames) != 1:
        raise ValueError(f"expected one frame, got {len(frames)}")
    raw = frames[0]
    if len(raw) > MAX_REQUEST:
        raise ValueError(f"request too large ({len(raw)} bytes > {MAX_REQUEST})")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("request is not UTF-8 text") from None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("request is not valid JSON") from None
        cmd = obj.get("command") if isinstance(obj, dict) else None
        if not isinstance(cmd, str):
            raise ValueError('JSON request needs a string "command"')
        return cmd.strip()
    if not text:
        raise ValueError("empty request")
    return text


class ControlServer:
    """REP socket + thread; handlers run in this thread and return JSON-able dicts."""

    def __init__(self, ctx: zmq.Context, endpoint: str, handlers: dict[str, Handler], curve=None) -> None:
        self.handlers = handlers
        self.sock = ctx.socket(zmq.REP)
        if curve is not None:  # daemon.security.Curve: only authorised clients may ask
            curve.server(self.sock)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_WIRE)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise OSError(f"cannot bind control socket {endpoint} ({exc})") from None
        self.endpoint = endpoint
        self.requests = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def answer(self, frames: list[bytes]) -> dict[str, Any]:
        """One request -> its reply dict (never raises)."""
        self.requests += 1
        try:
            cmd = parse_request(frames)
            if cmd not in self.handlers:
                raise ValueError(f"unknown command {cmd[:40]!r} (known: {', '.join(sorted(self.handlers))})")
            reply = self.handlers[cmd]()
            return {"ok": True, "command": cmd, **reply}
        except Exception as exc:  # any handler failure becomes an error reply
            self.errors += 1
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return {"ok": False, "error": msg}

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not dict(poller.poll(50)):
                    continue
                frames = self.sock.recv_multipart()
                reply = self.answer(frames)
                self.sock.send(json.dumps(reply, default=str).encode())
            except zmq.ZMQError:
                if self._stop.is_set():
                    break
        self.sock.close(0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        else:
            self.sock.close(0)
