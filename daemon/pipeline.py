"""The recognition pipeline, free of threads and sockets: samples in, events out.

frontend (incremental log-mel + energy) -> shared segmenter -> stamp -> Recognizer -> one decision per word-like
sound. The daemon's worker and `wordstamp replay` both drive this one class, so a file replayed gives the very events
the daemon publishes for it. Chunk sizes do not matter: the frontend and segmenter are exact across chunk boundaries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from shared.events import Alternative, Event, ModelRef, RejectEvent, VadEvent, WordEvent
from shared.features import Frontend, FrontendConfig, make_stamp
from shared.bundle import SPECIAL_LABELS
from shared.runtime import Decision
from shared.segment import Segment, SegmenterConfig, StreamSegmenter


class Classifier(Protocol):
    """What the pipeline needs of shared.runtime.Recognizer."""

    bundles: list

    @property
    def frontend_config(self) -> FrontendConfig: ...

    def classify(self, stamp: np.ndarray, top_k: int = 3) -> list[Decision]: ...


class Sequencer:
    """Per-topic sequence numbers from 1 (see shared/events.py: a gap on a topic means missed events)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def stamp(self, event: Event) -> Event:
        n = self._next.get(event.topic, 1)
        self._next[event.topic] = n + 1
        event.seq = n
        return event


@dataclass
class PipelineOptions:
    """Per-daemon choices that shape events."""

    source: str = ""  # the events' `source` (site id)
    device: str = ""  # the events' `device`
    top_k: int = 3
    reject: bool = False  # emit RejectEvents (rejects are counted either way)
    realtime: bool = True  # audio arrives in real time: latency is measured from the word's last sample


def model_refs(recognizer: Classifier) -> list[ModelRef]:
    return [ModelRef(b.name, b.hash) for b in recognizer.bundles]


class Pipeline:
    """Feed it audio with `process`; it returns the events to publish, sequence numbers set."""

    def __init__(self, recognizer: Classifier, options: PipelineOptions | None = None,
                 segmenter: SegmenterConfig | None = None,
                 on_word: Callable[[WordEvent, np.ndarray], None] | None = None) -> None:
        self.recognizer = recognizer
        self.opts = options or PipelineOptions()
        self.fcfg: FrontendConfig = recognizer.frontend_config
        self.frontend = Frontend(self.fcfg)
        self.stream = self.frontend.stream()
        if segmenter is None:
            segmenter = recognizer.bundles[0].segmenter_config if recognizer.bundles else SegmenterConfig()
        self.segmenter = StreamSegmenter(segmenter, self.fcfg)
        self.seq = Sequencer()
        self.on_word = on_word
        s = self.segmenter
        ctx = self.fcfg.context_before + self.fcfg.context_after
        self._keep = s.max_frames + s.hang_frames + s.start_frames + 2 * ctx + 50
        self._mel = np.zeros((0, self.fcfg.n_mels), np.float32)
        self._mel0 = 0  # frame index of self._mel[0]
        self._pending: list[Segment] = []  # ended words waiting for their trailing context frames
        self.samples = 0  # samples processed: the audio clock
        self._chunk_end = 0
        self._chunk_wall = time.time()
        self.words = 0
        self.rejects = 0

    # -- public -----------------------------------------------------------------------------------------------------

    def swap(self, recognizer: Classifier) -> None:
        """Use other models from the next word on (reload); the frontend must be the same."""
        if recognizer.frontend_config.hash != self.fcfg.hash:
            raise ValueError("the new models use a different feature frontend; restart the daemon instead")
        self.recognizer = recognizer

    @property
    def audio_seconds(self) -> float:
        return self.samples / self.fcfg.sample_rate

    def process(self, x: np.ndarray, captured_at: float | None = None) -> list[Event]:
        """Samples (16 kHz float32) -> events. `captured_at`: wall time the last sample was captured (default now)."""
        x = np.asarray(x, np.float32).reshape(-1)
        self.samples += x.size
        self._chunk_end = self.samples
        self._chunk_wall = time.time() if captured_at is None else captured_at
        mel, energy = self.stream.push(x)
        events: list[Event] = []
        self.segmenter.feed_audio(x)
        if mel.shape[0]:
            self._mel = np.concatenate([self._mel, mel])
        for i in range(energy.shape[0]):
            was = self.segmenter.speaking
            segs = self.segmenter.push(energy[i:i + 1])
            events += self._vad(was, segs)
            self._pending += segs
            if self._pending:  # decided frame by frame: the event order does not depend on chunk sizes
                events += self._decide_ready(final=False)
        self._trim()
        return events

    def flush(self) -> list[Event]:
        """End of stream: close an open word and decide everything pending."""
        was = self.segmenter.speaking
        segs = self.segmenter.flush()
        events = self._vad(was, segs, flushing=True)
        self._pending += segs
        return events + self._decide_ready(final=True)

    # -- internals --------------------------------------------------------------------------------------------------

    def _seconds(self, frame: int) -> float:
        return round(frame * self.fcfg.hop_length / self.fcfg.sample_rate, 4)

    def _end_seconds(self, seg: Segment) -> float:
        return round(seg.seconds(self.fcfg)[1], 4)

    def _new(self, event: Event) -> Event:
        event.source, event.device = self.opts.source, self.opts.device
        event.stamp_time()
        return self.seq.stamp(event)

    def _vad(self, was: bool, segs: list[Segment], flushing: bool = False) -> list[Event]:
        s = self.segmenter
        out: list[Event] = []
        if not was and s.speaking:
            out.append(self._new(VadEvent(state="start", at=self._seconds(s.start))))
        for seg in segs:
            out.append(self._new(VadEvent(state="end", at=self._end_seconds(seg), kept=True)))
            if s.speaking:  # a forced end (max length) and a new start in the same frame
                out.append(self._new(VadEvent(state="start", at=self._seconds(s.start))))
        if was and not s.speaking and not segs:
            end = s.t - (0 if flushing else s.quiet)
            out.append(self._new(VadEvent(state="end", at=self._seconds(max(end, s.start)), kept=False)))
        return out

    def _decide_ready(self, final: bool) -> list[Event]:
        have = self.segmenter.t  # frames seen by the segmenter so far
        ready = [g for g in self._pending if final or g.end + self.fcfg.context_after <= have]
        self._pending = [g for g in self._pending if g not in ready]
        out: list[Event] = []
        for seg in ready:
            out += self._decide(seg)
        return out

    def _decide(self, seg: Segment) -> list[Event]:
        a = max(self._mel0, seg.start - self.fcfg.context_before)
        b = min(self._mel0 + self._mel.shape[0], seg.end + self.fcfg.context_after)
        mel = self._mel[a - self._mel0:b - self._mel0]
        stamp = make_stamp(mel, self.fcfg)
        decisions = self.recognizer.classify(stamp, top_k=self.opts.top_k)
        if not decisions:
            return []
        start, end = self._seconds(seg.start), self._end_seconds(seg)
        latency = self._latency_ms(seg)
        accepted = [d for d in decisions if not d.rejected]
        if accepted:
            best = max(accepted, key=lambda d: d.confidence)
            ev = WordEvent(word=best.word or "", confidence=round(best.confidence, 4),
                           model=ModelRef(best.model, best.model_hash), alternatives=_alts(best),
                           start=start, end=end, latency_ms=latency)
            self.words += 1
            self._new(ev)
            if self.on_word is not None:
                self.on_word(ev, mel)
            return [ev]
        self.rejects += 1
        if not self.opts.reject:
            return []
        # The most informative rejection: the most confident real word if any model proposed one, else the top.
        words = [d for d in decisions if d.label not in SPECIAL_LABELS]
        best = max(words or decisions, key=lambda d: d.confidence)
        return [self._new(RejectEvent(label=best.label, confidence=round(best.confidence, 4),
                                      model=ModelRef(best.model, best.model_hash), alternatives=_alts(best),
                                      start=start, end=end, latency_ms=latency))]

    def _latency_ms(self, seg: Segment) -> float:
        now = time.time()
        if not self.opts.realtime:
            return round(1000.0 * max(0.0, now - self._chunk_wall), 1)
        end_sample = min(self._chunk_end, round(self._end_seconds(seg) * self.fcfg.sample_rate))
        captured = self._chunk_wall - (self._chunk_end - end_sample) / self.fcfg.sample_rate
        return round(1000.0 * max(0.0, now - captured), 1)

    def _trim(self) -> None:
        extra = self._mel.shape[0] - self._keep
        if self._pending:
            extra = min(extra, self._pending[0].start - self.fcfg.context_before - self._mel0)
        if extra > 256:  # trim in batches: fewer copies
            self._mel = self._mel[extra:].copy()
            self._mel0 += extra


def _alts(d: Decision) -> list[Alternative]:
    return [Alternative(label, round(float(score), 4)) for label, score in d.alternatives]
