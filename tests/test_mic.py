"""The microphone path end to end: a file played into PulseAudio's virtual microphone (scripts/virtual-mic.sh), heard
by the daemon through PortAudio, gives the events `replay` gives for the same file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

from daemon.config import build_config
from daemon.replay import replay_events
from shared.audio import read_audio, write_wav_atomic
from tests.daemon_support import FIXTURES, REAL_MODELS, Collector, endpoint, plumbing_models  # noqa: F401

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
    """The file played into the virtual microphone arrives (bit-exact at 16 kHz) and the daemon publishes the events
    `replay` gives for that file as the microphone delivered it: after the digital silence the stream happened to
    carry before the file began. That lead sets where the 10 ms frames fall on the words, and a word the models are
    unsure of can change with it (a "two" heard as cat at one phase and six at another), so replay is given the same
    lead, measured on the audio the daemon's pipeline received."""
    from daemon.service import Daemon

    clip = tmp_path / "mic.wav"
    x = read_audio(FIXTURES / "digits_ked.wav")[:int((seconds or 60) * 16000)]
    played = np.concatenate([np.zeros(16000, np.float32), x, np.zeros(8000, np.float32)])
    write_wav_atomic(clip, played)
    real = all((m / "manifest.json").is_file() for m in REAL_MODELS)
    models = [str(m) for m in REAL_MODELS] if real else plumbing_models  # the shipped models make words differ
    pub = endpoint()
    sub = Collector(pub, topics=("word", "reject"))
    cfg = build_config(model=models, pub=pub, control="", reject=True, source_id="mic", status_interval=1.0,
                       device_rate=rate)
    d = Daemon(cfg)
    received: list[np.ndarray] = []  # what the pipeline was given (after the daemon's resampler), in order
    process = d.pipeline.process
    d.pipeline.process = lambda x, *a, **k: received.append(np.array(x, np.float32)) or process(x, *a, **k)
    t = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    try:
        assert d.source.rate == (rate or 16000)
        subprocess.run(["paplay", "--device=ws_sink", str(clip)], check=True, timeout=60)
        import time

        time.sleep(0.6)  # the trailing silence reaches the pipeline
        got = np.concatenate(received)
        first = int(np.argmax(played != 0))  # the file's first sound ...
        lag = _lag(got, played[first:first + 16000])  # ... where it arrived
        if not rate:
            sound = 16000 + x.size - first  # the file up to its trailing silence (idle PulseAudio sends zeros too)
            assert np.array_equal(got[lag:lag + sound], played[first:first + sound])  # bit-exact
        as_heard = tmp_path / "as-heard.wav"
        write_wav_atomic(as_heard, np.concatenate([np.zeros(lag, np.float32), played[first:]]))
        words_expected = [e for e in replay_events(as_heard, models, reject=True, source_id="mic")
                          if e.topic in ("word", "reject")]
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


def _lag(got: np.ndarray, head: np.ndarray) -> int:
    """Where `head` starts in `got`: the peak of their cross-correlation (exact for identical samples)."""
    n = got.size + head.size
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(got, size) * np.conj(np.fft.rfft(head, size)), size)[:got.size]
    return int(np.argmax(corr))


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
