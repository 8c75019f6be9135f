"""`wordstamp replay`: the daemon's pipeline on a file; chunking never changes the events; golden word sequences."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from daemon.pipeline import Pipeline, PipelineOptions
from daemon.replay import REPLAY_BLOCK_MS, replay_events
from shared.audio import read_audio
from shared.runtime import Recognizer
from tests.daemon_support import FIXTURES, REAL_MODELS, REPO, plumbing_models, strip_wall  # noqa: F401

DIGIT_FIXTURES = ["digits_ked", "digits_rms", "digits_scotland", "digits_scotland_f"]


def _dicts(events):
    return [strip_wall(json.loads(e.to_json())) for e in events]


def test_cli_prints_the_pipeline_events_as_json_lines(plumbing_models):
    clip = FIXTURES / "digits_ked.wav"
    models = sum((["-m", m] for m in plumbing_models), [])
    r = subprocess.run([sys.executable, str(REPO / "wordstamp.py"), "replay", str(clip), *models, "--source-id", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [strip_wall(d) for d in lines] == _dicts(replay_events(clip, plumbing_models, source_id="x"))
    assert sum(d["type"] == "vad" and d["state"] == "end" and d["kept"] for d in lines) == 10  # ten digits said


@pytest.mark.parametrize("vad", ["energy", "webrtc"])
def test_chunk_size_does_not_change_events(plumbing_models, vad):
    """Any chunking gives the same events, with either VAD (webrtcvad gets each chunk's samples before its frames)."""
    x = read_audio(FIXTURES / "digits_rms.wav")
    rec = Recognizer(plumbing_models)
    seg = dataclasses.replace(rec.bundles[0].segmenter_config, vad=vad)
    runs = []
    for sizes in ([320], [1, 159, 1601, 7], [16000 * 30]):
        p = Pipeline(rec, PipelineOptions(source="s", device="d", reject=True, realtime=False), segmenter=seg)
        out, i, k = [], 0, 0
        while i < x.size:
            n = sizes[k % len(sizes)]
            out += p.process(x[i:i + n])
            i, k = i + n, k + 1
        out += p.flush()
        runs.append(_dicts(out))
    assert runs[0] == runs[1] == runs[2]
    assert sum(d["type"] in ("word", "reject") for d in runs[0]) == 10
    if vad == "webrtc":
        return
    # replay reads REPLAY_BLOCK_MS a call, the microphone delivers 20 ms: the same events
    clip = FIXTURES / "digits_rms.wav"
    assert REPLAY_BLOCK_MS != 20
    assert _dicts(replay_events(clip, plumbing_models, reject=True, source_id="s")) == \
        _dicts(replay_events(clip, plumbing_models, reject=True, source_id="s", block_ms=20))


def _wer(ref: list[str], hyp: list[str]) -> int:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1])


@pytest.mark.parametrize("name", DIGIT_FIXTURES + ["demo"])
def test_golden_word_sequences(name):
    """Held-out TTS voices: the word sequence heard should be close to what was said (loose bound, figure printed)."""
    needed = REAL_MODELS if name == "demo" else REAL_MODELS[:1]
    if not all((m / "manifest.json").is_file() for m in needed):
        pytest.skip(f"needs the shipped model(s) {', '.join(m.name for m in needed)} in models/ (not built yet)")
    expected = json.loads((FIXTURES / f"{name}.json").read_text())["words"]
    got = [e.word for e in replay_events(FIXTURES / f"{name}.wav", [str(m) for m in needed]) if e.topic == "word"]
    errors = _wer(expected, got)
    print(f"{name}: said {' '.join(expected)} | heard {' '.join(got)} | {errors} errors / {len(expected)} words")
    assert errors <= len(expected) // 2


def test_a_threshold_override_moves_the_reject_point(tmp_path):
    """--threshold / [threshold]: a stricter threshold rejects some of the words accepted at the calibrated one and
    changes none of the others (the gate's word does not depend on the threshold); the recogniser reports the
    override; an unknown model name or a bad value is refused."""
    from daemon.config import build_config, parse_thresholds
    from shared.bundle import BundleError

    digits = REAL_MODELS[0]
    if not (digits / "manifest.json").is_file():
        pytest.skip("needs the shipped models/digits (not built yet)")
    clip, models = FIXTURES / "digits_rms.wav", [str(digits)]
    base = [(e.start, e.word) for e in replay_events(clip, models) if e.topic == "word"]
    assert len(base) >= 2
    for t in (0.95, 0.99, 0.999, 0.9999):  # the first that costs a word
        stricter = {"digits": t}
        again = [(e.start, e.word) for e in replay_events(clip, models, thresholds=stricter) if e.topic == "word"]
        if len(again) < len(base):
            break
    assert len(again) < len(base) and set(again) <= set(base)
    assert Recognizer(models, thresholds=stricter).thresholds["digits"] == stricter["digits"]
    f = tmp_path / "d.toml"
    f.write_text("[threshold]\ndigits = 0.25\n")
    assert build_config(f, threshold=parse_thresholds(["digits=0.5"])).threshold == {"digits": 0.5}  # command line wins
    assert build_config(f).threshold == {"digits": 0.25}
    with pytest.raises(BundleError, match="no such model loaded"):
        Recognizer(models, thresholds={"nope": 0.5})
    with pytest.raises(BundleError, match="between 0 and 1"):
        Recognizer(models, thresholds={"digits": 1.5})
