"""The bench's own logic on tiny inputs: percentiles, spreads, event matching, the report writer, the seed stamp."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.latency import latency_from, match_events
from bench.report import Figure, Results, format_value, render_markdown, write_results
from bench.stats import median, percentile, spread
from bench.streaming import ErrorTally
from bench.streams import Stream, word_errors
from shared.events import WordEvent


def test_percentile_matches_numpy_linear():
    xs = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 10, 50, 95, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert median([3, 1, 2]) == 2
    assert median([1, 2, 3, 4]) == 2.5
    assert math.isnan(median([]))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_spread_summary():
    s = spread([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert (s.n, s.p50, s.max) == (5, 30.0, 1000.0)
    assert s.p95 == pytest.approx(float(np.percentile([10, 20, 30, 40, 1000], 95)))
    assert spread([]).n == 0 and math.isnan(spread([]).p50)


def test_word_errors_all_insertions_and_substitution_order():
    e = word_errors([], ["one", "two"])
    assert (e.insertions, e.wer) == (2, 2.0)
    e = word_errors("cat dog".split(), "dog cat".split())
    assert e.substitutions + e.deletions + e.insertions == 2


def test_error_tally_sums_streams():
    t = ErrorTally()
    t.add(word_errors("a b c".split(), "a x c".split()), 10.0)
    t.add(word_errors("a b".split(), "a b b".split()), 5.0)
    d = t.to_dict()
    assert (d["S"], d["D"], d["I"], d["n_ref"], d["audio_s"]) == (1, 0, 1, 5, 15.0)
    assert d["wer"] == pytest.approx(0.4)


def _ev(start: float, end: float, word: str = "one") -> WordEvent:
    return WordEvent(word=word, start=start, end=end, latency_ms=100.0)


def test_match_events_pairs_by_overlap_and_once():
    spans = [(1.0, 1.5), (3.0, 3.4)]
    a, b, c = _ev(0.98, 1.52), _ev(2.99, 3.45), _ev(3.0, 3.4)
    m = match_events([a, b, c], spans)
    assert m == {0: a, 1: b}  # c overlaps the second word, which is already taken
    assert match_events([_ev(6.0, 6.5)], spans) == {}


def test_latency_from_uses_true_end_and_stream_start():
    s = Stream(np.zeros(16000 * 5, np.float32), ["one", "two"], [(1.0, 1.5), (3.0, 3.4)])
    e1, e2 = _ev(1.0, 1.6), _ev(3.0, 3.5)
    start = 1000.0
    lat, own = latency_from([(start + 1.5 + 0.120, e1), (start + 3.4 + 0.2, e2)], start, s)
    assert lat == pytest.approx([120.0, 200.0])
    assert own == [100.0, 100.0]


def test_format_value():
    assert format_value(None, "%") == "—"
    assert format_value(float("nan")) == "—"
    assert format_value(97.123, "%") == "97.1%"
    assert format_value(1234.5, "x") == "1,234 x" or format_value(1234.5, "x") == "1,235 x"
    assert format_value(0.01234, "s/s") == "0.012 s/s"
    assert format_value(3, "") == "3"


def test_report_writer_round_trips(tmp_path):
    r = Results(meta={"command": "make bench", "date": "2026-01-01T00:00:00Z", "commit": "abc", "runtime_s": 12.0,
                      "machine": {"cpu": "X", "cores": 2, "memory_gb": 24, "os": "Linux", "python": "3.11",
                                  "load_at_start": [1.0]}, "machine_short": "2-core X"},
                notes=["a | note"])
    r.add(Figure("latency", "p50", 120.0, "ms", "how | it was measured", "<= 150 ms", True, "latency.p50_ms"))
    r.add(Figure("accuracy", "missing", None, "%", "why it is missing", key="accuracy.x"))
    j, md = write_results(r, tmp_path)
    d = json.loads(j.read_text())
    assert d["figures"][0]["key"] == "latency.p50_ms" and d["figures"][1]["value"] is None
    text = md.read_text()
    assert "| latency | p50 | 120 ms | <= 150 ms ✅ | how \\| it was measured | 2-core X | 2026-01-01 |" in text
    assert "| accuracy | missing | — |" in text
    assert text == render_markdown(r)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3
    assert all(line.count(" | ") == 6 for line in rows)


def test_seed_stamp_shape_and_gain_invariance():
    from bench.seed_baseline import BANDS, FRAMES, seed_stamp

    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    x = np.concatenate([np.zeros(3000), np.sin(2 * np.pi * 300 * t) * np.hanning(8000), np.zeros(3000)])
    x = (x + 1e-3 * rng.standard_normal(x.size)).astype(np.float32)
    s = seed_stamp(x)
    assert s.shape == (FRAMES, BANDS)
    assert abs(float(s.mean())) < 1e-4
    assert np.allclose(seed_stamp(0.3 * x), s, atol=0.05)
