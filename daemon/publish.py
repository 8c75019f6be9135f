"""The event publisher: ZeroMQ multipart [topic, json], never blocking the caller.

An XPUB socket with XPUB_NODROP and non-blocking sends: when a subscriber's queue (SNDHWM messages) is full the send
fails at once, and the event is counted as a drop instead of vanishing unseen as it would on a plain PUB socket.
Subscribers see the gap in that topic's `seq`. XPUB also tells us when a subscriber arrives (`wait_subscriber`).
Plain SUB sockets in any language can subscribe to it, or to a hub that the publisher connects to.
"""

from __future__ import annotations

import time

import zmq

from shared.events import Event


class Publisher:
    """Binds (or connects to a hub's XSUB) and sends events; one thread only, like every ZeroMQ socket."""

    def __init__(self, ctx: zmq.Context, endpoint: str, *, connect: bool = False, sndhwm: int = 1000,
                 sndbuf: int = 0, linger_ms: int = 500, curve=None) -> None:
        self.endpoint = endpoint
        self.sock = ctx.socket(zmq.XPUB)
        if curve is not None:  # daemon.security.Curve: encrypted; a client of the hub, or a server to subscribers
            (curve.client if connect else curve.server)(self.sock)
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        if sndbuf > 0:
            self.sock.setsockopt(zmq.SNDBUF, sndbuf)
        self.sock.setsockopt(zmq.LINGER, linger_ms)
        self.sent = 0
        self.drops = 0
        self.subscriptions = 0
        try:
            if connect:
                self.sock.connect(endpoint)
            else:
                self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise OSError(f"cannot {'connect to' if connect else 'bind'} {endpoint} ({exc})") from None

    def send(self, event: Event) -> bool:
        """Publish one event; False (and a counted drop) if a subscriber's queue is full."""
        self._drain()
        try:
            self.sock.send_multipart([event.topic.encode(), event.to_json().encode()], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.drops += 1
            return False
        self.sent += 1
        return True

    def wait_subscriber(self, timeout: float, stop=None) -> bool:
        """Block up to `timeout` s until some subscription arrives (so a file's first events are not lost)."""
        deadline = time.monotonic() + timeout
        while self.subscriptions == 0 and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            if self.sock.poll(50, zmq.POLLIN):
                self._drain()
        return self.subscriptions > 0

    def _drain(self) -> None:
        """Read the subscription messages XPUB queues for us (else they pile up)."""
        while True:
            try:
                msg = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self.subscriptions += 1

    def close(self) -> None:
        self.sock.close()
