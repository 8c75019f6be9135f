"""Soak: hours of audio through the daemon (fast, as the worker can take it) with subscribers on real ZeroMQ.

The audio is generated on the fly, never stored: the fixtures tests/fixtures/*.wav looped in random order, each pass
with its own gain (-6..+6 dB) and added white or pink noise (10-30 dB SNR). Two SUB sockets over tcp://127.0.0.1 check
that `seq` is gap-free per topic. The process's RSS and open file descriptors are sampled over time; their slopes
(least squares after a 10 % warm-up) must be flat. Writes bench/soak.json.

    .venv/bin/python -m bench.soak --hours 10        # the long run
    .venv/bin/python -m bench.soak --hours 0.034     # ~2 minutes of audio (the test)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.config import build_config  # noqa: E402
from daemon.ring import Ring  # noqa: E402
from daemon.service import Daemon  # noqa: E402
from daemon.source import Source  # noqa: E402
from shared.audio import SAMPLE_RATE, read_audio  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


class LoopedFixtures(Source):
    """Generated audio: fixtures looped with varying gain and noise, written into the ring as space allows."""

    def __init__(self, seconds: float, seed: int = 0, ring_seconds: float = 10.0) -> None:
        super().__init__()
        self.clips = [read_audio(p) for p in sorted((REPO / "tests" / "fixtures").glob("*.wav"))]
        self.total = int(seconds * SAMPLE_RATE)
        self.rate, self.realtime, self.name = SAMPLE_RATE, False, "soak:looped-fixtures"
        self.ring = Ring(int(ring_seconds * SAMPLE_RATE))
        self.rng = np.random.default_rng(seed)
        self.go = threading.Event()  # set once the subscribers are connected
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-source", daemon=True)

    def _pass(self) -> np.ndarray:
        x = self.clips[self.rng.integers(len(self.clips))] * np.float32(10 ** (self.rng.uniform(-6, 6) / 20))
        noise = self.rng.standard_normal(x.size).astype(np.float32)
        if self.rng.random() < 0.5:  # pink: 1/f by a cumulative-sum low-pass, mean removed
            noise = np.cumsum(noise, dtype=np.float32) * np.float32(0.05)
            noise -= np.convolve(noise, np.ones(801, np.float32) / 801, mode="same")
        snr = self.rng.uniform(10, 30)
        p_sig = float(np.mean(x ** 2)) + 1e-12
        noise *= np.float32(np.sqrt(p_sig / (float(np.mean(noise ** 2)) + 1e-12) / 10 ** (snr / 10)))
        return np.clip(x + noise, -1, 1).astype(np.float32)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self.go.wait(0.05):
            if self._stop.is_set():
                return
        block = SAMPLE_RATE // 2
        while self.written < self.total and not self._stop.is_set():
            x = self._pass()[: self.total - self.written]
            pos = 0
            while pos < x.size and not self._stop.is_set():
                if self.ring.free() < min(block, x.size - pos):
                    time.sleep(0.002)
                    continue
                pos += self.ring.write(x[pos:pos + block])
                self.last_wall = time.time()
            self.written += x.size
        self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


class SeqChecker(threading.Thread):
    """A SUB socket counting events and seq gaps per topic, keeping nothing else (its memory stays flat)."""

    def __init__(self, ctx: zmq.Context, ep: str) -> None:
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(ep)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.last: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.gaps: list[dict] = []
        self.first_status = threading.Event()
        self.done = threading.Event()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            if not self.sock.poll(100):
                continue
            topic, body = self.sock.recv_multipart()
            d = json.loads(body)
            t = topic.decode()
            if t in self.last and d["seq"] != self.last[t] + 1:
                self.gaps.append({"topic": t, "after": self.last[t], "got": d["seq"]})
            self.last[t] = d["seq"]
            self.counts[t] = self.counts.get(t, 0) + 1
            if t == "status":
                self.first_status.set()
                if d["state"] != "running":
                    break
        self.sock.close(0)
        self.done.set()


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2 ** 20


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of y over x; 0 with fewer than 3 points."""
    if len(x) < 3 or max(x) == min(x):
        return 0.0
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0])


@dataclass
class SoakResult:
    """What soak.json holds."""

    hours_audio: float
    wall_seconds: float
    speed_x_realtime: float
    crashed: bool
    exit_code: int
    events: dict[str, int]
    seq_gaps: int
    drops: int
    overflows: int
    words: int
    rejects: int
    rss_mb_start: float
    rss_mb_end: float
    rss_mb_max: float
    rss_slope_mb_per_audio_hour: float
    rss_slope_mb_per_wall_minute: float
    fds_start: int
    fds_end: int
    fds_max: int
    fds_slope_per_audio_hour: float
    samples: list[dict] = field(default_factory=list)


def soak(hours: float, models: list[str], sample_s: float = 1.0, seed: int = 0, log=print) -> SoakResult:
    from bench.daemon_proc import free_port

    ep = f"tcp://127.0.0.1:{free_port()}"
    cfg = build_config(None, model=models, pub=ep, control="", status_interval=0.5, sndhwm=1_000_000,
                       source_id="soak")
    src = LoopedFixtures(hours * 3600, seed=seed)
    d = Daemon(cfg, source=src)
    ctx = zmq.Context()
    subs = [SeqChecker(ctx, ep) for _ in range(2)]
    for s in subs:
        s.start()
    runner = threading.Thread(target=lambda: d.run(install_signals=False), daemon=True)
    runner.start()
    for s in subs:
        if not s.first_status.wait(30):
            raise RuntimeError("a subscriber never connected")
    t0 = time.monotonic()
    src.go.set()
    samples: list[dict] = []
    next_log = t0
    while runner.is_alive():
        runner.join(sample_s)
        now = time.monotonic()
        samples.append({"wall_s": round(now - t0, 2), "audio_h": round(d.pipeline.audio_seconds / 3600, 5),
                        "rss_mb": round(_rss_mb(), 2), "fds": _fds()})
        if now >= next_log:
            s = samples[-1]
            log(f"soak: {s['audio_h']:.2f} h audio in {s['wall_s']:.0f} s, RSS {s['rss_mb']:.1f} MB, "
                f"{s['fds']} fds, {d.pipeline.words} words")
            next_log = now + 30
    wall = time.monotonic() - t0
    for s in subs:
        s.done.wait(10)
        s.halt.set()
        s.join(2)
    ctx.term()
    steady = samples[len(samples) // 10:] or samples
    ah = [s["audio_h"] for s in steady]
    ws = [s["wall_s"] / 60 for s in steady]
    events = subs[0].counts
    res = SoakResult(
        hours_audio=round(d.pipeline.audio_seconds / 3600, 4), wall_seconds=round(wall, 1),
        speed_x_realtime=round(d.pipeline.audio_seconds / max(wall, 1e-9), 1),
        crashed=d.state == "error", exit_code=d.exit_code, events=events,
        seq_gaps=sum(len(s.gaps) for s in subs) + sum(s.counts != events for s in subs[1:]),
        drops=d.publisher.drops if d.publisher else -1, overflows=d.source.ring.overflows,
        words=d.pipeline.words, rejects=d.pipeline.rejects,
        rss_mb_start=steady[0]["rss_mb"], rss_mb_end=samples[-1]["rss_mb"],
        rss_mb_max=max(s["rss_mb"] for s in samples),
        rss_slope_mb_per_audio_hour=round(slope(ah, [s["rss_mb"] for s in steady]), 3),
        rss_slope_mb_per_wall_minute=round(slope(ws, [s["rss_mb"] for s in steady]), 3),
        fds_start=steady[0]["fds"], fds_end=samples[-1]["fds"], fds_max=max(s["fds"] for s in samples),
        fds_slope_per_audio_hour=round(slope(ah, [s["fds"] for s in steady]), 3),
        samples=samples[:: max(1, len(samples) // 300)])
    for s in subs:
        for g in s.gaps[:5]:
            log(f"soak: seq gap {g}")
    return res


def summary_line(r: SoakResult) -> str:
    """One line for bench/RESULTS.md."""
    return (f"soak: {r.hours_audio:.2f} h of audio in {r.wall_seconds / 60:.1f} min ({r.speed_x_realtime:.0f}x), "
            f"{sum(r.events.values())} events, {r.seq_gaps} seq gaps, {r.drops} drops, "
            f"{'crash' if r.crashed else 'no crash'}; RSS {r.rss_mb_start:.0f}->{r.rss_mb_end:.0f} MB "
            f"(slope {r.rss_slope_mb_per_audio_hour:+.2f} MB/audio-hour), fds {r.fds_start}->{r.fds_end} "
            f"(slope {r.fds_slope_per_audio_hour:+.2f}/audio-hour)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=10.0, help="hours of audio")
    ap.add_argument("--model", action="append", default=None, help="bundle folder(s) [models/digits, animals]")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "soak.json")
    ap.add_argument("--sample", type=float, default=1.0, help="seconds between RSS/fd samples")
    a = ap.parse_args(argv)
    models = a.model or [str(REPO / "models" / "digits"), str(REPO / "models" / "animals")]
    r = soak(a.hours, models, sample_s=a.sample, log=lambda m: print(m, file=sys.stderr, flush=True))
    from shared.audio import atomic_write_bytes

    atomic_write_bytes(a.out, (json.dumps({**asdict(r), "summary": summary_line(r)}, indent=1) + "\n").encode())
    print(summary_line(r))
    return 0 if not r.crashed and r.seq_gaps == 0 and r.exit_code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
