"""End-to-end latency: a recording played into `wordstamp daemon --input FILE --paced` (real time, its own process),
events received by a subscriber in this process; latency = arrival time - wall time of the word's true end.

The daemon publishes no "stream started at" field, so its audio clock is tied to the wall clock through its status
heartbeats: each says `audio_seconds` processed at wall time `time`, so `time - audio_seconds` is the stream's start
plus however long the newest audio waited to be processed (>= 0). The smallest value over many heartbeats (every
0.2 s) is the estimate; its error is that smallest wait (one 20 ms block at most) plus the 1 ms rounding of `time`.
The daemon's own `latency_ms` (from its segment end, not the true end) is reported beside it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from bench.daemon_proc import spawn_daemon
from bench.stats import spread
from bench.streams import Stream, make_stream, mix_noise
from shared.events import StatusEvent, WordEvent, parse_event


# (figure-key tag, noise file, label): a microphone's steady hiss, and dishes in a kitchen
LATENCY_NOISES = (("", "pink_noise.wav", "pink noise"), ("dishes.", "doing_the_dishes.wav", "kitchen noise"))


def latency_stream(clips: list, noises: list[np.ndarray], names: list[str], noise_file: str, words: int,
                   seed: int = 4, snr_db: float = 20.0) -> tuple[Stream, np.ndarray]:
    """A latency test recording: `words` random held-out clips with pauses, `noise_file` mixed in at `snr_db`.

    One recipe for bench's paced runs (seed 4) and scripts/end_lag's offline replays, so they hear the same audio."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(clips), size=min(words, len(clips)), replace=False)
    s = make_stream([clips[int(i)] for i in pick], rng)
    noise = noises[names.index(noise_file)] if noise_file in names else noises[0]
    return s, mix_noise(s.audio, noise, snr_db, rng)


@dataclass
class LatencyRun:
    """What one paced run measured."""

    latencies_ms: list[float] = field(default_factory=list)  # arrival - true word end, matched words
    daemon_latency_ms: list[float] = field(default_factory=list)  # the events' own latency_ms, same words
    start_offsets: list[float] = field(default_factory=list)  # time - audio_seconds of every heartbeat
    end_lag_ms: list[float] = field(default_factory=list)  # event end - true end (audio clock), same words
    words_true: int = 0
    words_matched: int = 0
    events: int = 0
    audio_s: float = 0.0
    overflows: int = 0
    drops: int = 0

    def to_dict(self) -> dict:
        offs = sorted(self.start_offsets)
        return {"latency_ms": spread(self.latencies_ms).to_dict(),
                "daemon_latency_ms": spread(self.daemon_latency_ms).to_dict(),
                "end_lag_ms": spread(self.end_lag_ms).to_dict(),
                "words_true": self.words_true, "words_matched": self.words_matched, "events": self.events,
                "audio_s": round(self.audio_s, 2), "heartbeats": len(offs),
                "start_estimate_spread_ms": round(1000 * (offs[min(len(offs) - 1, len(offs) // 2)] - offs[0]), 1)
                if offs else math.nan, "overflows": self.overflows, "drops": self.drops}


def match_events(words: list[WordEvent], spans: list[tuple[float, float]], slack: float = 0.15) -> dict[int, WordEvent]:
    """Truth index -> the first word event whose [start, end] (audio clock) overlaps that word's span most."""
    out: dict[int, WordEvent] = {}
    for ev in words:
        best, best_ov = None, 0.0
        for i, (a, b) in enumerate(spans):
            ov = min(b + slack, ev.end) - max(a - slack, ev.start)
            if ov > best_ov and i not in out:
                best, best_ov = i, ov
        if best is not None:
            out[best] = ev
    return out


def latency_from(arrivals: list[tuple[float, WordEvent]], start_wall: float, stream: Stream) -> tuple[list, list]:
    """(measured latencies ms, the daemon's own latency_ms) for the events that match a true word."""
    ev_time = {id(ev): t for t, ev in arrivals}
    matched = match_events([ev for _, ev in arrivals], stream.spans)
    lat, own = [], []
    for i, ev in sorted(matched.items()):
        lat.append(1000.0 * (ev_time[id(ev)] - (start_wall + stream.spans[i][1])))
        own.append(ev.latency_ms)
    return lat, own


def measure(models: list[Path], stream: Stream, wav: Path, workdir: Path, timeout_pad: float = 30.0) -> LatencyRun:
    """Play `wav` (whose truth is `stream`) through a paced daemon; collect arrivals until it says it is stopping."""
    d = spawn_daemon(models, wav, workdir, paced=True, wait_subscriber=30.0, status_interval=0.2)
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(d.pub)
    run = LatencyRun(words_true=len(stream.words), audio_s=stream.seconds)
    arrivals: list[tuple[float, WordEvent]] = []
    deadline = time.monotonic() + stream.seconds + timeout_pad
    try:
        while time.monotonic() < deadline:
            if not sub.poll(200):
                if d.proc.poll() is not None:
                    break
                continue
            _topic, payload = sub.recv_multipart()
            t = time.time()
            ev = parse_event(payload)
            run.events += 1
            if isinstance(ev, WordEvent):
                arrivals.append((t, ev))
            elif isinstance(ev, StatusEvent):
                if ev.audio_seconds > 0:
                    run.start_offsets.append(ev.time - ev.audio_seconds)
                run.overflows, run.drops = ev.overflows, ev.drops
                if ev.state in ("stopping", "error"):
                    break
    finally:
        sub.close(0)
        d.stop()
    if not run.start_offsets:
        raise RuntimeError(f"no heartbeat with audio from the daemon: {d.stderr_tail()}")
    start = min(run.start_offsets)
    run.latencies_ms, run.daemon_latency_ms = latency_from(arrivals, start, stream)
    run.words_matched = len(run.latencies_ms)
    m = match_events([ev for _, ev in arrivals], stream.spans)
    run.end_lag_ms = [1000.0 * (ev.end - stream.spans[i][1]) for i, ev in sorted(m.items())]
    return run
