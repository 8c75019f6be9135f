"""The microphone path end to end: a file played into PulseAudio's virtual microphone (scripts/virtual-mic.sh), heard
by the daemon through PortAudio, gives the events `replay` gives for the same file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from daemon.config import build_config
from daemon.replay import replay_events
from shared.audio import read_audio, write_wav_atomic
from tests.daemon_support import (FIXTURES, REAL_MODELS, Collector, endpoint, plumbing_models,  # noqa: F401
                                  run_daemon_inprocess)

pytestmark = pytest.mark.mic


def _virtual_mic_up() -> str | None:
    """None if usable, else the reason to skip."""
    if not os.environ.get("PULSE_SERVER"):
        return "PULSE_SERVER unset: start it with eval \"$(scripts/virtual-mic.sh start)\" (run-tests.sh does)"
    if not shutil.which("paplay") or not shutil.which("pactl"):
        return "paplay/pactl not installed"
    r = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0 or "ws_sink" not in r.stdout:
        return "PulseAudio is not running with the ws_sink virtual microphone"
    return None


@pytest.fixture(scope="module")
def virtual_mic():
    reason = _virtual_mic_up()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("rate,seconds,tol", [(0, 10.0, 0.05), (44100, 7.0, 0.15)], ids=["16k", "44k1-resampled"])
def test_microphone_events_equal_replay_events(virtual_mic, plumbing_models, tmp_path, rate, seconds, tol):
    # Lead with digital silence: the first 100-400 ms after the stream opens can be lost, and the segmenter then sees
    # the same silence -> sound transition in both paths.
    clip = tmp_path / "mic.wav"
    x = read_audio(FIXTURES / "digits_ked.wav")[:int((seconds or 60) * 16000)]
    write_wav_atomic(clip, np.concatenate([np.zeros(16000, np.float32), x, np.zeros(8000, np.float32)]))
    real = all((m / "manifest.json").is_file() for m in REAL_MODELS)
    models = [str(m) for m in REAL_MODELS] if real else plumbing_models  # the shipped models make words differ
    pub = endpoint()
    sub = Collector(pub, topics=("word", "reject"))
    cfg = build_config(model=models, pub=pub, control="", reject=True, source_id="mic", status_interval=1.0,
                       device_rate=rate)
    d, t = run_daemon_inprocess(cfg)
    try:
        assert d.source.rate == (rate or 16000)
        subprocess.run(["paplay", "--device=ws_sink", str(clip)], check=True, timeout=60)
        words_expected = [e for e in replay_events(clip, models, reject=True, source_id="mic")
                          if e.topic in ("word", "reject")]
        import time

        deadline = time.monotonic() + 5
        while len(sub.events) < len(words_expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        d.request_stop()
        t.join(3)
    heard = sub.wait(1)
    assert not t.is_alive() and d.exit_code == 0
    assert d.source.ring.overflows == 0
    expected = [json.loads(e.to_json()) for e in words_expected]
    if rate:  # resampled twice (16 -> 44.1 kHz in PulseAudio, back here): not bit-exact, so a rejection's
        # best guess may change; what was accepted, and where, may not.
        key = lambda e: (e["type"], e.get("word"))  # noqa: E731
    else:  # bit-exact audio, only the frame phase differs
        key = lambda e: (e["type"], e.get("word") or e.get("label"), e["model"]["name"])  # noqa: E731
    assert [key(e) for e in heard] == [key(e) for e in expected]
    shift = np.median([h["start"] - e["start"] for h, e in zip(heard, expected)])
    for h, e in zip(heard, expected):
        assert abs((h["start"] - e["start"]) - shift) <= 0.03  # same place, up to the stream's unknown start
        assert abs((h["end"] - h["start"]) - (e["end"] - e["start"])) <= 0.03
        if h["type"] == "word" or not rate:
            assert h["confidence"] == pytest.approx(e["confidence"], abs=tol)
    lat = [h["latency_ms"] for h in heard]
    print(f"mic at {rate or 16000} Hz, {'shipped' if real else 'plumbing'} models: {len(heard)} events equal to replay's; start shift {shift * 1000:.0f} ms; "
          f"latency median {np.median(lat):.0f} ms, max {max(lat):.0f} ms")


def test_devices_by_name_or_index_and_one_line_errors(virtual_mic):
    import sounddevice as sd

    from daemon.source import MicSource, SourceError, resolve_device

    assert resolve_device("3") == 3 and resolve_device("pulse") == "pulse" and resolve_device(None) is None
    index = next(i for i, dev in enumerate(sd.query_devices()) if dev["max_input_channels"] > 0)
    for dev in ("pulse", str(index)):
        src = MicSource(dev)
        src.start()
        try:
            assert src.rate == 16000 and src.name
        finally:
            src.stop()
    with pytest.raises(SourceError) as err:
        MicSource("no-such-microphone")
    assert "\n" not in str(err.value) and "no-such-microphone" in str(err.value)
