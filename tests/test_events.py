"""Events: JSON round trips, the schema accepts what we publish and refuses what we must not, every field documented."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from shared.events import (EVENT_TYPES, Alternative, EventError, ModelRef, RejectEvent, StatusEvent, VadEvent,
                           WordEvent, field_docs, load_schema, parse_event)


def _examples():
    w = WordEvent(seq=1, source="kitchen", device="pulse", word="seven", confidence=0.93,
                  model=ModelRef("digits", "0123456789abcdef"),
                  alternatives=[Alternative("seven", 0.93), Alternative("six", 0.04)], start=1.25, end=1.71,
                  latency_ms=141.5)
    r = RejectEvent(seq=1, label="_unknown_", confidence=0.41, model=ModelRef("digits", "0123456789abcdef"),
                    alternatives=[Alternative("_unknown_", 0.41)], start=2.0, end=2.4)
    v = VadEvent(seq=3, state="end", at=1.71, kept=False)
    s = StatusEvent(seq=2, uptime=10.0, audio_seconds=9.5, overflows=0, events_sent=12, drops=3, words=4,
                    models=[ModelRef("digits", "0123456789abcdef")])
    for e in (w, r, v, s):
        e.stamp_time()
    return [w, r, v, s]


@pytest.mark.parametrize("event", _examples(), ids=lambda e: e.topic)
def test_round_trip_and_schema(event):
    text = event.to_json()
    back = parse_event(text)
    assert back == event
    assert type(back).from_json(text) == event
    d = json.loads(text)
    assert d["type"] == event.topic and d["v"] == 1
    jsonschema.validate(d, load_schema(), format_checker=jsonschema.FormatChecker())


def test_schema_refuses_bad_events():
    schema = load_schema()
    good = json.loads(_examples()[0].to_json())
    for bad in ({**good, "confidence": 1.5}, {**good, "extra": 1}, {**good, "seq": 0},
                {k: v for k, v in good.items() if k != "word"}, {**good, "type": "nope"},
                {**good, "model": {"name": "digits"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_schema_matches_the_dataclasses_and_every_field_is_documented():
    schema = load_schema()
    for topic, cls in EVENT_TYPES.items():
        props = schema["$defs"][topic]["properties"]
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(props) == fields | {"type"}, topic
        docs = field_docs(cls)
        assert fields <= set(docs), f"{topic}: undocumented {fields - set(docs)}"
        assert all(props[f]["description"] for f in fields)


def test_parse_refuses_garbage_with_one_line():
    for junk in (b"\xff\xfe", "[]", '{"type": "word", "bogus": 1}', '{"type": "other"}', "{"):
        with pytest.raises(EventError) as err:
            parse_event(junk)
        assert "\n" not in str(err.value)


def test_listener_line_lists_the_other_labels_even_when_the_word_is_not_first():
    """A gate may accept a word a special label outscores: the readable line must still show that label, and not
    repeat the word as its own alternative."""
    from daemon.listen import format_event

    ev = WordEvent(seq=4, source="demo", word="dog", confidence=0.37, model=ModelRef("animals", "0123456789abcdef"),
                   alternatives=[Alternative("_unknown_", 0.62), Alternative("dog", 0.37), Alternative("bird", 0.01)],
                   start=4.98, end=5.41, latency_ms=136.0)
    line = format_event(ev)
    assert " dog " in line and "(_unknown_:0.62 bird:0.01)" in line and "dog:0.37" not in line
    first = dataclasses.replace(ev, word="cat", alternatives=[Alternative("cat", 0.9), Alternative("dog", 0.1)])
    assert format_event(first).endswith("(dog:0.10)")
