"""The daemon's events: typed dataclasses that travel as JSON over ZeroMQ (multipart [topic, json]).

One dataclass a topic (`word`, `reject`, `vad`, `status`), each with `to_json`/`from_json`, so any client in any
language can read them with a JSON parser and check them against `shared/event.schema.json`.

Sequence numbers: `seq` counts per topic, per daemon, from 1 with no gaps, so a subscriber that sees `seq` jump on a
topic knows it missed events there (a slow subscriber's queue overflowed, or it joined late).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("event.schema.json")
TOPICS = ("word", "reject", "vad", "status")


class EventError(ValueError):
    """A message that is not a valid event; str() is one line."""


def wall_clock() -> tuple[float, str]:
    """Now as (epoch seconds, ISO 8601 UTC with milliseconds)."""
    t = time.time()
    iso = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return round(t, 3), iso


@dataclass
class ModelRef:
    """Which bundle made a decision."""

    name: str
    """The bundle's name (its manifest `name`), e.g. "digits"."""
    hash: str
    """The bundle's content hash (16 hex digits): changes whenever the model files change."""


@dataclass
class Alternative:
    """One candidate label and its score."""

    label: str
    """A vocabulary label; may be `_unknown_` or `_silence_`."""
    score: float
    """The model's probability for this label, 0..1."""


@dataclass
class Event:
    """Fields shared by every event."""

    topic: ClassVar[str] = ""

    seq: int = 0
    """Per-topic, per-daemon sequence number from 1, gap-free as published: a jump means missed events."""
    source: str = ""
    """Site id of the daemon (`--source-id`, default the host name): tells apart daemons publishing into one hub."""
    device: str = ""
    """The audio source: the microphone's name, or `file:<name>` for file input."""
    time: float = 0.0
    """Wall clock when the event was made, Unix epoch seconds (UTC), millisecond resolution."""
    time_iso: str = ""
    """The same instant as ISO 8601 UTC, e.g. "2026-01-31T12:00:00.123Z"."""
    v: int = SCHEMA_VERSION
    """Schema version of this event's JSON; bumped only on incompatible changes."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["type"] = self.topic
        return d

    def to_json(self) -> str:
        """Compact JSON, keys sorted, as published."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        if not isinstance(d, dict):
            raise EventError("event is not a JSON object")
        if d.get("type") != cls.topic:
            raise EventError(f"expected a {cls.topic!r} event, got type {d.get('type')!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"type"}
        if unknown:
            raise EventError(f"unknown fields in {cls.topic} event: {sorted(unknown)}")
        kw = {k: v for k, v in d.items() if k != "type"}
        try:
            if "model" in kw and isinstance(kw["model"], dict):
                kw["model"] = ModelRef(**kw["model"])
            if "alternatives" in kw:
                kw["alternatives"] = [Alternative(**a) for a in kw["alternatives"]]
            if "models" in kw:
                kw["models"] = [ModelRef(**m) for m in kw["models"]]
            return cls(**kw)
        except TypeError as exc:
            raise EventError(f"bad {cls.topic} event ({exc})") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "Event":
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EventError(f"not JSON ({type(exc).__name__})") from None

    def stamp_time(self) -> None:
        """Set the wall-clock fields to now."""
        self.time, self.time_iso = wall_clock()


@dataclass
class WordEvent(Event):
    """A word was recognised."""

    topic: ClassVar[str] = "word"

    word: str = ""
    """The recognised word (never a special label)."""
    confidence: float = 0.0
    """The winning model's probability for `word`, 0..1."""
    model: ModelRef = field(default_factory=lambda: ModelRef("", ""))
    """The bundle whose decision won (the most confident of the models that accepted a word)."""
    alternatives: list[Alternative] = field(default_factory=list)
    """The winning model's top-k labels with scores, best first (normally the first is `word`; a gate may accept the likeliest word over a special label that outscores it)."""
    start: float = 0.0
    """Where the word starts, seconds on the audio clock (samples since the stream started / 16000)."""
    end: float = 0.0
    """Where the word ends, seconds on the audio clock."""
    latency_ms: float = 0.0
    """Milliseconds from the moment the word's last sample was captured to publication (includes the segmenter's
    hang-over: the silence it waits for before deciding a word ended). For `--fast`/replay: processing time only."""


@dataclass
class RejectEvent(Event):
    """A word-like sound that no model accepted (published only with `--reject`)."""

    topic: ClassVar[str] = "reject"

    label: str = ""
    """The most confident word any model proposed (below its threshold); `_unknown_`/`_silence_` only if every
    model's top label was one of those."""
    confidence: float = 0.0
    """That label's probability, 0..1 (below the model's threshold, or a special label)."""
    model: ModelRef = field(default_factory=lambda: ModelRef("", ""))
    """The bundle that proposed `label`."""
    alternatives: list[Alternative] = field(default_factory=list)
    """That model's top-k labels with scores, best first."""
    start: float = 0.0
    """Where the sound starts, seconds on the audio clock."""
    end: float = 0.0
    """Where the sound ends, seconds on the audio clock."""
    latency_ms: float = 0.0
    """As in the word event."""


@dataclass
class VadEvent(Event):
    """Speech started or ended (the segmenter's view; an `end` with `kept=false` was too short to be a word)."""

    topic: ClassVar[str] = "vad"

    state: str = "start"
    """"start" or "end"."""
    at: float = 0.0
    """When, seconds on the audio clock: the speech start for "start", the speech end for "end"."""
    kept: bool = True
    """For "end": whether the stretch became a word candidate (long enough); always true for "start"."""


@dataclass
class StatusEvent(Event):
    """Heartbeat: the daemon is alive, and how its stream is doing (every `status_interval` seconds)."""

    topic: ClassVar[str] = "status"

    uptime: float = 0.0
    """Seconds since the daemon started."""
    state: str = "running"
    """"running", "stopping" (the last status before exit) or "error" (the audio stream failed)."""
    audio_seconds: float = 0.0
    """Seconds of audio processed so far (the audio clock)."""
    sample_rate: int = 16000
    """The rate the audio is processed at (the device's rate is resampled to it)."""
    overflows: int = 0
    """Audio lost: samples dropped because the ring buffer was full (the worker fell behind), plus overruns the
    device reported. 0 in a healthy stream."""
    events_sent: int = 0
    """Events handed to ZeroMQ, all topics."""
    drops: int = 0
    """Events not sent because a subscriber's queue was full (SNDHWM reached): never blocks the audio path."""
    words: int = 0
    """Word events made so far."""
    rejects: int = 0
    """Word-like sounds rejected so far (counted even when reject events are off)."""
    reloads: int = 0
    """Successful model reloads (control `reload` or SIGHUP)."""
    models: list[ModelRef] = field(default_factory=list)
    """The loaded bundles, in load order."""
    stream: str = "ok"
    """The audio stream's health: "ok", or "lost" while the microphone is gone and being reopened (with backoff)."""
    stream_losses: int = 0
    """Times the audio stream was lost (device unplugged, sound server gone, stream stalled)."""
    reconnects: int = 0
    """Times a lost stream was reopened; events resume after each."""


EVENT_TYPES: dict[str, type[Event]] = {c.topic: c for c in (WordEvent, RejectEvent, VadEvent, StatusEvent)}


def parse_event(text: str | bytes) -> Event:
    """Any event's JSON -> its dataclass, chosen by the `type` field."""
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(d, dict) or d.get("type") not in EVENT_TYPES:
        raise EventError(f"unknown event type {d.get('type') if isinstance(d, dict) else None!r}")
    return EVENT_TYPES[d["type"]].from_dict(d)


def load_schema() -> dict:
    """The JSON Schema (draft 2020-12) every published event validates against."""
    return json.loads(SCHEMA_PATH.read_text())


def field_docs(cls: type[Event]) -> dict[str, str]:
    """Field name -> its docstring (read from the source), for the docs table and the schema test."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object,) or not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(inspect.getsource(klass))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for a, b in zip(body, body[1:]):
            if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr) \
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs
