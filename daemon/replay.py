"""`wordstamp replay`: the daemon's pipeline over a file as fast as possible, events printed as published.

The same Pipeline class, options and event serialisation as the daemon with `--input FILE --fast`; only the wall-clock
fields (`time`, `time_iso`, `latency_ms`) can differ. No sockets.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable, Iterator

from daemon.pipeline import Pipeline, PipelineOptions
from daemon.service import load_recognizer, segmenter_config
from shared.audio import SAMPLE_RATE, read_audio
from shared.events import Event

# Audio handed to the pipeline per call. Its events do not depend on the block size (tests/test_replay.py): the
# daemon's worker too takes whatever the ring holds. The microphone's 20 ms blocks cost a Python call per 20 ms;
# 250 ms ones halve replay's CPU time (bench/RESULTS.md lists both).
REPLAY_BLOCK_MS = 250


def replay_events(path: str | Path, models: list[str], *, reject: bool = False, top_k: int = 3,
                  source_id: str | None = None, block_ms: int = REPLAY_BLOCK_MS, segmenter: dict | None = None,
                  on_word: Callable | None = None, thresholds: dict[str, float] | None = None) -> Iterator[Event]:
    """Yield the events the daemon would publish for this file (status heartbeats aside)."""
    audio = read_audio(path)
    rec = load_recognizer(models, thresholds)
    opts = PipelineOptions(source=source_id or socket.gethostname(), device=f"file:{Path(path).name}", top_k=top_k,
                           reject=reject, realtime=False)
    pipe = Pipeline(rec, opts, segmenter_config(rec, segmenter or {}), on_word=on_word)
    block = max(1, SAMPLE_RATE * block_ms // 1000)
    for i in range(0, audio.size, block):
        yield from pipe.process(audio[i:i + block])
    yield from pipe.flush()
