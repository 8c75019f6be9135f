"""The daemon's main loop: wires source -> ring -> worker (pipeline + publisher) and the control socket, handles
signals (SIGHUP reloads, SIGTERM/SIGINT stop within a second) and status heartbeats.

Threads: PortAudio's callback (or the file reader) only fills the ring; the worker thread owns the PUB socket and does
all the computing; the control thread owns the REP socket; the main thread waits for signals. Reloading loads the new
bundles on the side and swaps them in between two words, while the worker keeps reading audio: nothing is dropped.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from daemon.config import DaemonConfig
from daemon.pipeline import Pipeline, PipelineOptions, model_refs
from daemon.publish import Publisher
from daemon.source import FileSource, MicSource, Source
from shared.audio import SAMPLE_RATE, write_wav_atomic
from shared.events import ModelRef, StatusEvent, WordEvent
from shared.runtime import Recognizer
from shared.segment import SegmenterConfig


STALL_SECONDS = 3.0  # a running microphone silent this long (no callbacks at all) counts as lost
BACKOFF = (0.25, 5.0)  # seconds: first wait before reopening a lost microphone, and the cap of the doubling


class DaemonError(Exception):
    """The daemon cannot start or run; str() is one line."""


def log(msg: str) -> None:
    print(f"wordstamp daemon: {msg}", file=sys.stderr, flush=True)


def load_recognizer(models: list[str], thresholds: dict[str, float] | None = None) -> Recognizer:
    if not models:
        raise DaemonError("no models: pass --model DIR (models/digits and models/animals are not there)")
    return Recognizer(models, thresholds=thresholds)


def segmenter_config(rec: Recognizer, overrides: dict) -> SegmenterConfig:
    base = rec.bundles[0].segmenter_config if rec.bundles else SegmenterConfig()
    return SegmenterConfig(**{**base.to_dict(), **overrides})


class WordReplayer:
    """Resynthesises recognised words off the worker thread: plays them and/or writes <seq>_<word>.wav."""

    def __init__(self, play: bool, folder: str | None, fcfg) -> None:
        self.play, self.folder, self.fcfg = play, Path(folder) if folder else None, fcfg
        self.q: queue.Queue = queue.Queue(maxsize=16)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="replayer", daemon=True)
        self._thread.start()

    def __call__(self, event: WordEvent, mel: np.ndarray) -> None:
        try:
            self.q.put_nowait((event.seq, event.word, mel.copy()))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        from shared.resynth import resynthesise

        while True:
            item = self.q.get()
            if item is None:
                return
            seq, word, mel = item
            try:
                audio = resynthesise(mel, self.fcfg)
                if self.folder is not None:
                    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in word)[:40]
                    write_wav_atomic(self.folder / f"{seq:06d}_{safe}.wav", audio, self.fcfg.sample_rate,
                                     overwrite=True)
                if self.play:
                    import sounddevice as sd

                    sd.play(audio, self.fcfg.sample_rate, blocking=True)
            except Exception as exc:  # an output device problem must not stop recognition
                log(f"replay of word {seq} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def close(self, timeout: float = 0.5) -> None:
        try:
            self.q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)


class Daemon:
    """One running daemon; `run()` returns the exit code."""

    def __init__(self, cfg: DaemonConfig, source: Source | None = None) -> None:
        """`source`: an already made Source (benches and tests: generated audio), instead of cfg's mic/file."""
        self.cfg = cfg
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.reload_request = threading.Event()
        self.reloads = 0
        self.stream = "ok"  # "lost" while the microphone is gone
        self.stream_losses = 0
        self.reconnects = 0
        self.state = "running"
        self.exit_code = 0
        self.file_done = False  # the input file was read to its end (not stopped by a signal)
        self._reload_lock = threading.Lock()
        self._overflows_logged, self._overflow_log_at = 0, 0.0
        self.recognizer = load_recognizer(cfg.models(), cfg.threshold)
        self.replayer = (WordReplayer(cfg.replay_audio, cfg.replay_dir, self.recognizer.frontend_config)
                         if (cfg.replay_audio or cfg.replay_dir) else None)
        if source is None:
            source = (FileSource(cfg.input, fast=cfg.fast, block_ms=cfg.block_ms, ring_seconds=cfg.ring_seconds)
                      if cfg.input else MicSource(cfg.device, rate=cfg.device_rate, block_ms=cfg.block_ms,
                                                  ring_seconds=cfg.ring_seconds))
        self.source: Source = source
        opts = PipelineOptions(source=cfg.source_id, device=self.source.name, top_k=cfg.top_k, reject=cfg.reject,
                               realtime=self.source.realtime)
        self.pipeline = Pipeline(self.recognizer, opts, segmenter_config(self.recognizer, cfg.segmenter),
                                 on_word=self.replayer)
        self.ctx = zmq.Context()
        self.publisher: Publisher | None = None
        self.control = None
        self.curve = None
        try:
            if cfg.curve:
                from daemon.security import Curve

                self.curve = Curve.load(cfg.curve)
                self.curve.start_auth(self.ctx)
            endpoint = cfg.connect or cfg.pub
            self.publisher = Publisher(self.ctx, endpoint, connect=bool(cfg.connect), sndhwm=cfg.sndhwm,
                                       sndbuf=cfg.sndbuf, curve=self.curve)
            if cfg.control:
                from daemon.control import ControlServer

                self.control = ControlServer(self.ctx, cfg.control, {
                    "describe": self.describe, "status": self.status_dict, "reload": self.reload},
                    curve=self.curve)
        except (OSError, ValueError) as exc:  # bind failures, unusable key folders
            self._close_sockets()
            raise DaemonError(str(exc)) from None
        self.resampler = None
        if self.source.rate != SAMPLE_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(self.source.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    # -- control handlers (control thread) ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        rec = self.pipeline.recognizer
        return {
            "models": [{"name": b.name, "hash": b.hash, "kind": b.manifest.kind, "vocabulary": b.manifest.words,
                        "threshold": rec.thresholds[b.name], "gate": b.reject_gate, "path": str(b.path)}
                       for b in rec.bundles],
            "frontend": self.pipeline.fcfg.to_dict(),
            "segmenter": self.pipeline.segmenter.cfg.to_dict(),
            "device": self.source.name, "sample_rate": SAMPLE_RATE, "device_rate": self.source.rate,
            "config": self.cfg.to_dict(),
        }

    def status_event(self, state: str | None = None) -> StatusEvent:
        p = self.pipeline
        ev = StatusEvent(uptime=round(time.monotonic() - self.started, 3), state=state or self.state,
                         audio_seconds=round(p.audio_seconds, 3), sample_rate=SAMPLE_RATE,
                         overflows=self.source.ring.overflows + self.source.device_overflows,
                         events_sent=self.publisher.sent if self.publisher else 0,
                         drops=self.publisher.drops if self.publisher else 0, words=p.words, rejects=p.rejects,
                         reloads=self.reloads, models=model_refs(p.recognizer), stream=self.stream,
                         stream_losses=self.stream_losses, reconnects=self.reconnects)
        ev.source, ev.device = self.cfg.source_id, self.source.name
        ev.stamp_time()
        return ev

    def status_dict(self) -> dict[str, Any]:
        d = self.status_event().to_dict()
        for k in ("seq", "type", "v"):
            d.pop(k, None)
        return d

    def reload(self) -> dict[str, Any]:
        """Load the bundles again (same paths) and swap them in; the old ones stay if the new ones fail."""
        with self._reload_lock:
            try:
                rec = load_recognizer(self.cfg.models(), self.cfg.threshold)
                self.pipeline.swap(rec)
            except Exception as exc:
                raise RuntimeError(f"reload failed, old models kept: {str(exc).splitlines()[0]}") from None
            self.reloads += 1
            return {"models": [{"name": m.name, "hash": m.hash} for m in model_refs(rec)], "reloads": self.reloads}

    # -- threads ------------------------------------------------------------------------------------------------------

    def _worker(self) -> None:
        assert self.publisher is not None
        pub, ring, src = self.publisher, self.source.ring, self.source
        interval = self.cfg.status_interval
        next_status = time.monotonic() + interval
        max_read = ring.capacity
        try:
            if self.cfg.input and self.cfg.wait_subscriber > 0:
                pub.wait_subscriber(self.cfg.wait_subscriber, self.stop_event)
            src.start()
            while not self.stop_event.is_set():
                if ring.wait(0.05):
                    left_before = ring.available()
                    x = ring.read(max_read)
                    captured = src.last_wall - (left_before - x.size) / src.rate
                    if self.resampler is not None:
                        x = self.resampler.resample_chunk(x)
                    for ev in self.pipeline.process(x, captured):
                        pub.send(ev)
                elif src.finished.is_set() and ring.available() == 0:
                    for ev in self.pipeline.flush():
                        pub.send(ev)
                    self.state = "stopping"
                    self.file_done = True
                    break
                why = src.lost(STALL_SECONDS)
                if why:
                    if not src.can_reopen:
                        raise DaemonError(why)
                    self._reopen(why, pub)
                overflows = ring.overflows + src.device_overflows
                if overflows > self._overflows_logged and time.monotonic() >= self._overflow_log_at:
                    log(f"audio overflow: {overflows - self._overflows_logged} samples/overruns lost "
                        f"({overflows} in all; the worker fell behind or the ring is too small)")
                    self._overflows_logged, self._overflow_log_at = overflows, time.monotonic() + 5.0
                if time.monotonic() >= next_status:
                    pub.send(self.pipeline.seq.stamp(self.status_event()))
                    next_status += interval * max(1, int((time.monotonic() - next_status) // interval) + 1)
        except Exception as exc:
            log(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            self.state = "error"
            self.exit_code = 1
        finally:
            try:
                pub.send(self.pipeline.seq.stamp(self.status_event("error" if self.exit_code else "stopping")))
            except Exception:
                pass
            self.stop_event.set()

    def _reopen(self, why: str, pub: Publisher) -> None:
        """The microphone is gone: count and log it, then reopen with exponential backoff (status heartbeats go on,
        showing stream "lost") until it is back or the daemon is stopped."""
        self.stream, self.stream_losses = "lost", self.stream_losses + 1
        log(f"audio stream lost ({why}); reopening with backoff")
        lost_at, delay, tries = time.monotonic(), BACKOFF[0], 0
        next_try, next_status = lost_at + delay, lost_at
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_status:
                pub.send(self.pipeline.seq.stamp(self.status_event()))
                next_status = now + self.cfg.status_interval
            if now >= next_try:
                tries += 1
                try:
                    self.source.reopen()
                except Exception as exc:
                    delay = min(BACKOFF[1], delay * 2)
                    next_try = time.monotonic() + delay
                    if tries == 1 or tries % 10 == 0:
                        log(f"reopen attempt {tries} failed: {str(exc).splitlines()[0]}; next in {delay:.1f} s")
                    continue
                self.stream, self.reconnects = "ok", self.reconnects + 1
                log(f"audio stream reopened after {time.monotonic() - lost_at:.1f} s ({tries} attempts)")
                pub.send(self.pipeline.seq.stamp(self.status_event()))
                return
            self.stop_event.wait(max(0.01, min(next_try, next_status) - time.monotonic()))

    # -- main ---------------------------------------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            self._install_signals()
        if self.control is not None:
            self.control.start()
        worker = threading.Thread(target=self._worker, name="worker", daemon=True)
        worker.start()
        names = ", ".join(b.name for b in self.recognizer.bundles)
        log(f"listening on {self.source.name} with {names}; publishing on "
            f"{self.cfg.connect or self.cfg.pub}{'' if not self.cfg.control else ', control on ' + self.cfg.control}")
        try:
            while not self.stop_event.wait(0.05):
                if self.reload_request.is_set():
                    self.reload_request.clear()
                    try:
                        self.reload()
                        log("models reloaded (SIGHUP)")
                    except Exception as exc:
                        log(str(exc))
        finally:
            self.stop_event.set()
            self.source.stop()
            worker.join(timeout=0.5)
            if self.replayer is not None:
                self.replayer.close(10.0 if self.file_done else 0.2)  # a finished file: write every word
            self._close_sockets()
        return self.exit_code

    def request_stop(self) -> None:
        self.stop_event.set()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reload_request.set())

    def _close_sockets(self) -> None:
        if self.control is not None:
            self.control.stop()
        if self.publisher is not None:
            self.publisher.sock.setsockopt(zmq.LINGER, 300)
            self.publisher.close()
        if self.curve is not None:
            self.curve.stop_auth()
        self.ctx.term()


def models_summary(refs: list[ModelRef]) -> str:
    return ", ".join(f"{m.name}@{m.hash[:8]}" for m in refs)
