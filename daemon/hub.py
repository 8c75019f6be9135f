"""`wordstamp hub`: a ZeroMQ forwarder (XSUB <- daemons, XPUB -> subscribers), so several daemons publish into one
endpoint (each with `--connect` to the XSUB side) and any number of subscribers read from one place.
"""

from __future__ import annotations

import threading

import zmq


class Hub:
    """zmq.proxy_steerable(XSUB, XPUB) in a thread, stoppable with `stop()`."""

    def __init__(self, xsub: str, xpub: str, ctx: zmq.Context | None = None, curve: str | None = None) -> None:
        from daemon.security import Curve, require_keys

        require_keys({"xsub": xsub, "xpub": xpub}, curve)  # ValueError: loopback only without keys
        self.curve = Curve.load(curve) if curve else None
        self.ctx = ctx or zmq.Context()
        self.front = self.ctx.socket(zmq.XSUB)
        self.back = self.ctx.socket(zmq.XPUB)
        if self.curve is not None:  # both sides are CURVE servers: daemons and subscribers are its clients
            self.curve.start_auth(self.ctx)
            self.curve.server(self.front)
            self.curve.server(self.back)
        self.ctl_addr = f"inproc://hub-control-{id(self)}"
        self.ctl = self.ctx.socket(zmq.PAIR)
        self.ctl.bind(self.ctl_addr)
        for s in (self.front, self.back, self.ctl):
            s.setsockopt(zmq.LINGER, 0)
        try:
            self.front.bind(xsub)
            self.back.bind(xpub)
        except zmq.ZMQError as exc:
            self.close()
            raise OSError(f"cannot bind hub endpoints {xsub} / {xpub} ({exc})") from None
        self.xsub, self.xpub = xsub, xpub
        self._thread = threading.Thread(target=self._run, name="hub", daemon=True)

    def _run(self) -> None:
        ctl = self.ctx.socket(zmq.PAIR)
        ctl.setsockopt(zmq.LINGER, 0)
        ctl.connect(self.ctl_addr)
        try:
            zmq.proxy_steerable(self.front, self.back, None, ctl)
        except zmq.ZMQError:
            pass
        finally:
            ctl.close(0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.ctl.send(b"TERMINATE")
            self._thread.join(timeout=1.0)
        self.close()

    def close(self) -> None:
        for s in (self.front, self.back, self.ctl):
            s.close(0)
        if self.curve is not None:
            self.curve.stop_auth()
        self.ctx.term()
