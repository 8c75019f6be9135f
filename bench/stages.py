"""The daemon's pipeline over a file with CPU time per stage: read, features, segmentation, inference, publish.

Measured from outside the daemon's code: the Pipeline is built exactly as daemon/replay.py builds it, then its
streaming frontend and its recognizer are wrapped in thin proxies that add up CPU time (time.thread_time: the
pipeline, LiteRT with one thread and the publisher all run on the calling thread). Segmentation is what remains of
`Pipeline.process`/`flush` (the segmenter, VAD events, cutting the stamp). Publishing is the daemon's own Publisher
(XPUB, JSON serialisation, non-blocking send) with one subscriber draining it in the same process.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from daemon.replay import REPLAY_BLOCK_MS
from shared.audio import SAMPLE_RATE, read_audio

STAGES = ("read", "features", "segmentation", "inference", "publish")


@dataclass
class StageTimes:
    """CPU seconds a stage spent on `audio_s` seconds of audio."""

    audio_s: float = 0.0
    read: float = 0.0
    features: float = 0.0
    segmentation: float = 0.0
    inference: float = 0.0
    publish: float = 0.0
    process_cpu: float = 0.0  # the whole process's CPU over the run (all threads, incl. ZeroMQ's I/O thread)
    words: int = 0
    events: int = 0
    block_ms: int = REPLAY_BLOCK_MS  # audio per pipeline call

    @property
    def total(self) -> float:
        return sum(getattr(self, s) for s in STAGES)

    def speed(self) -> float:
        """Audio seconds per CPU second of the calling thread (how many times real time)."""
        return self.audio_s / max(self.total, 1e-12)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        d["x_real_time"] = self.speed()
        return d


class _TimedFrontend:
    """Stands in for the pipeline's StreamingFrontend, adding its push() CPU time to `times.features`."""

    def __init__(self, inner, times: StageTimes) -> None:
        self.inner, self.times = inner, times

    def push(self, x):
        t0 = time.thread_time()
        try:
            return self.inner.push(x)
        finally:
            self.times.features += time.thread_time() - t0

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _TimedRecognizer:
    """Stands in for shared.runtime.Recognizer, adding classify() CPU time to `times.inference`."""

    def __init__(self, inner, times: StageTimes) -> None:
        self.inner, self.times = inner, times
        self.bundles = inner.bundles

    @property
    def frontend_config(self):
        return self.inner.frontend_config

    def classify(self, stamp, top_k: int = 3):
        t0 = time.thread_time()
        try:
            return self.inner.classify(stamp, top_k=top_k)
        finally:
            self.times.inference += time.thread_time() - t0


def timed_replay(path: Path, recognizer, segmenter: dict | None = None, block_ms: int = REPLAY_BLOCK_MS,
                 publish: bool = True) -> tuple[list, StageTimes]:
    """Replay one file through the daemon's pipeline; (events, CPU seconds per stage)."""
    import zmq

    from daemon.pipeline import Pipeline, PipelineOptions
    from daemon.publish import Publisher
    from daemon.service import segmenter_config

    times = StageTimes(block_ms=block_ms)
    p0 = time.process_time()
    t0 = time.thread_time()
    audio = read_audio(path)
    times.read = time.thread_time() - t0
    times.audio_s = audio.size / SAMPLE_RATE
    opts = PipelineOptions(source="bench", device=f"file:{Path(path).name}", realtime=False)
    pipe = Pipeline(_TimedRecognizer(recognizer, times), opts, segmenter_config(recognizer, segmenter or {}))
    pipe.stream = _TimedFrontend(pipe.stream, times)
    ctx = zmq.Context()
    pub = sub = None
    if publish:
        pub = Publisher(ctx, "inproc://bench-stages")
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect("inproc://bench-stages")
        pub.wait_subscriber(1.0)
    events = []
    block = max(1, SAMPLE_RATE * block_ms // 1000)
    try:
        for i in range(0, audio.size + 1, block):
            t0 = time.thread_time()
            evs = pipe.process(audio[i:i + block]) if i < audio.size else pipe.flush()
            times.segmentation += time.thread_time() - t0
            t1 = time.thread_time()
            for ev in evs:
                if pub is not None:
                    pub.send(ev)
            if sub is not None:
                while sub.poll(0):
                    sub.recv_multipart()
            times.publish += time.thread_time() - t1
            events += evs
    finally:
        if sub is not None:
            sub.close(0)
        if pub is not None:
            pub.sock.close(0)
        ctx.term()
    times.segmentation -= times.features + times.inference
    times.process_cpu = time.process_time() - p0
    times.events = len(events)
    times.words = sum(1 for e in events if e.topic == "word")
    return events, times


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.stages FILE --model DIR ... --repeats N`: one JSON line of per-run stage times.

    Run by bench/throughput.py in a subprocess pinned to one core (taskset) with one thread per library."""
    import argparse
    import json

    from daemon.service import load_recognizer

    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block-ms", type=int, default=REPLAY_BLOCK_MS, help="audio per pipeline call")
    a = ap.parse_args(argv)
    rec = load_recognizer(a.model)
    timed_replay(Path(a.file), rec, block_ms=a.block_ms)  # warm-up: first LiteRT invocations, page cache
    runs = [timed_replay(Path(a.file), rec, block_ms=a.block_ms)[1].to_dict() for _ in range(a.repeats)]
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
