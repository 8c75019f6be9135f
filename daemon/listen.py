"""`wordstamp listen`: a subscriber that prints events, one line each (human-readable, or the raw JSON)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import zmq

from shared.events import Event, EventError, RejectEvent, StatusEvent, VadEvent, WordEvent, parse_event


def format_event(ev: Event) -> str:
    """One readable line per event."""
    clock = ev.time_iso[11:23] if ev.time_iso else ""
    head = f"{clock}  {ev.source}  {ev.topic:<6} #{ev.seq:<5}"
    if isinstance(ev, WordEvent):
        # the other labels: the word need not be the top one (a gate may accept a close call over _unknown_)
        alts = " ".join(f"{a.label}:{a.score:.2f}" for a in ev.alternatives if a.label != ev.word)
        return (f"{head} {ev.word:<10} {ev.confidence:.2f}  {ev.model.name}  {ev.start:7.2f}-{ev.end:.2f} s  "
                f"{ev.latency_ms:.0f} ms" + (f"  ({alts})" if alts else ""))
    if isinstance(ev, RejectEvent):
        return f"{head} ({ev.label}) {ev.confidence:.2f}  {ev.model.name}  {ev.start:7.2f}-{ev.end:.2f} s"
    if isinstance(ev, VadEvent):
        return f"{head} speech {ev.state} at {ev.at:.2f} s" + ("" if ev.kept else " (too short)")
    if isinstance(ev, StatusEvent):
        return (f"{head} {ev.state} up {ev.uptime:.0f} s, audio {ev.audio_seconds:.1f} s, words {ev.words}, "
                f"sent {ev.events_sent}, drops {ev.drops}, overflows {ev.overflows}, "
                f"models {', '.join(m.name for m in ev.models)}")
    return head


def listen(endpoint: str, topics: list[str], as_json: bool = False, out: TextIO = sys.stdout,
           stop: threading.Event | None = None, count: int | None = None, bind: bool = False,
           curve: str | None = None) -> int:
    """Subscribe and print until interrupted (or `count` events, or `stop` set). Returns the events printed.

    `curve`: a key folder (server.key + client.key_secret) for a daemon or hub that uses CURVE."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    if curve:
        from daemon.security import Curve

        try:
            Curve.load(curve).client(sock)
        except ValueError:
            sock.close(0)
            raise
    (sock.bind if bind else sock.connect)(endpoint)
    for t in topics or [""]:
        sock.setsockopt(zmq.SUBSCRIBE, t.encode())
    n = 0
    try:
        while (stop is None or not stop.is_set()) and (count is None or n < count):
            if not sock.poll(100):
                continue
            frames = sock.recv_multipart()
            if len(frames) != 2:
                continue
            if as_json:
                print(frames[1].decode("utf-8", "replace"), file=out, flush=True)
            else:
                try:
                    print(format_event(parse_event(frames[1])), file=out, flush=True)
                except EventError as exc:
                    print(f"(unreadable {frames[0][:20]!r} message: {exc})", file=out, flush=True)
            n += 1
    finally:
        sock.close(0)
    return n
