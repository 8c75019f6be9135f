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


def test_readme_section_survives_missing_figures():
    from bench.run import readme_section

    r = Results(meta={"date": "2026-01-01T00:00:00Z", "machine_short": "2-core X", "quick": True})
    r.add(Figure("latency", "p50", 120.0, "ms", key="latency.p50_ms"))
    text = readme_section(r)
    assert "p50 120 ms" in text and "(quick run)" in text and "bench/RESULTS.md" in text
    assert "—" in text  # every figure that was not measured shows as a dash


def test_sc_test_speakers_come_from_the_manifest(tmp_path):
    from bench.heldout import sc_test_speakers

    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "manifest.json").write_text(json.dumps(
        {"training": {"data": {"test_speakers": ["b2", "tts-x", "a1"]}}}))
    spk, src = sc_test_speakers(tmp_path, tmp_path)
    assert spk == ["a1", "b2"] and "test_speakers" in src
    (tmp_path / "digits" / "manifest.json").write_text(json.dumps({"training": {}}))
    with pytest.raises(FileNotFoundError):
        sc_test_speakers(tmp_path, tmp_path)


def test_noise_only_length_and_level():
    from bench.streaming import noise_only

    rng = np.random.default_rng(0)
    noises = [rng.standard_normal(16000).astype(np.float32), rng.standard_normal(8000).astype(np.float32)]
    y = noise_only(noises, 30.0, seed=1)
    assert y.size >= 30 * 16000 and y.dtype == np.float32
    assert float(np.max(np.abs(y))) <= 0.99


def test_timed_replay_matches_replay(tiny_bundle, tmp_path, rng):
    """The stage-timed pipeline publishes the same events as `wordstamp replay` and accounts every stage."""
    from bench.stages import STAGES, timed_replay
    from daemon.replay import replay_events
    from daemon.service import load_recognizer
    from shared.audio import write_wav_atomic
    from tests.conftest import tone_word

    x = np.concatenate([np.zeros(8000, np.float32), tone_word(rng), np.zeros(8000, np.float32), tone_word(rng),
                        np.zeros(8000, np.float32)])
    wav = tmp_path / "s.wav"
    write_wav_atomic(wav, x, 16000)
    events, t = timed_replay(wav, load_recognizer([str(tiny_bundle)]))
    want = [(e.topic, getattr(e, "word", None), getattr(e, "start", None)) for e in replay_events(wav, [str(tiny_bundle)])]
    assert [(e.topic, getattr(e, "word", None), getattr(e, "start", None)) for e in events] == want
    assert t.audio_s == pytest.approx(x.size / 16000)
    assert all(getattr(t, s) >= 0 for s in STAGES) and t.total > 0
    assert t.events == len(events)


def test_accent_clips_name_the_missing_voices(tmp_path):
    """Without festival's held-out accent voices bench synthesises nothing and names their Debian packages."""
    from bench.heldout import accent_clips

    (tmp_path / "voices" / "czech" / "czech_ph").mkdir(parents=True)  # one installed (a folder is all festival needs)
    clips, missing = accent_clips(tmp_path / "cache", voices_root=tmp_path / "voices")
    assert missing == ["festvox-suopuhe-lj", "festvox-te-nsk"]
    assert all("czech-ph" in p.name and p.parent.name == w for w, p in clips)  # only the voice it has (if it speaks)
