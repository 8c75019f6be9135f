"""Resynthesis: log-mel frames -> audio whose frames come back close, and which the models hear as the same word."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from daemon.replay import replay_events
from shared.audio import read_audio, write_wav_atomic
from shared.features import Frontend, make_stamp
from shared.resynth import mel_distance_db, mel_to_power, resynthesise
from shared.runtime import Recognizer
from tests.daemon_support import FIXTURES, REAL_MODELS, REPO, plumbing_models  # noqa: F401


def _speech_frames_error_db(mel: np.ndarray, back: np.ndarray) -> float:
    loud = mel.max(axis=1) > mel.max() - np.log(10 ** 3)  # frames within 30 dB of the loudest
    return mel_distance_db(mel[loud], back[:mel.shape[0]][loud])


def test_mel_inversion_fits_and_roundtrip_is_close():
    fe = Frontend()
    x = read_audio(FIXTURES / "digits_scotland.wav")[int(1.1 * 16000):int(2.2 * 16000)]
    mel, _ = fe.compute(x)
    fit = mel_distance_db(mel, np.log(mel_to_power(mel, fe.cfg) @ fe.fbank + fe.cfg.log_eps))
    back, _ = fe.compute(resynthesise(mel, fe.cfg))
    err = _speech_frames_error_db(mel, back)
    print(f"resynth: mel-inversion fit {fit:.2f} dB, audio round trip {err:.2f} dB on speech frames")
    assert fit < 1.0
    assert err < 6.0
    assert back.shape[0] == mel.shape[0]


def test_resynthesised_words_are_recognised_as_the_same_word(plumbing_models):
    real = all((m / "manifest.json").is_file() for m in REAL_MODELS)
    models = [str(m) for m in REAL_MODELS] if real else plumbing_models
    rec = Recognizer(models)
    fe = Frontend(rec.frontend_config)
    same = total = 0
    for name in ("digits_ked", "digits_rms", "demo"):
        clips: list[tuple[str, np.ndarray]] = []
        list(replay_events(FIXTURES / f"{name}.wav", models, on_word=lambda ev, mel: clips.append((ev.word, mel))))
        for word, mel in clips:
            back, _ = fe.compute(resynthesise(mel, fe.cfg))
            decisions = rec.classify(make_stamp(back, fe.cfg))
            accepted = [d for d in decisions if not d.rejected]
            heard = max(accepted, key=lambda d: d.confidence).word if accepted else None
            same += heard == word
            total += 1
    rate = same / total
    print(f"resynth agreement ({'shipped' if real else 'random plumbing'} models): {same}/{total} = {rate:.0%}")
    assert total >= 20
    assert rate >= 0.5


def test_cli_writes_a_wav(tmp_path):
    clip = tmp_path / "three.wav"
    write_wav_atomic(clip, read_audio(FIXTURES / "demo.wav")[int(0.8 * 16000):int(2.2 * 16000)])  # "three"
    out = tmp_path / "three-resynth.wav"
    r = subprocess.run([sys.executable, str(REPO / "wordstamp.py"), "resynth", str(clip), "-o",
                        str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    y = read_audio(out)
    assert 0.2 * 16000 < y.size < 1.0 * 16000  # the word and its context frames, not the whole clip
    bad = subprocess.run([sys.executable, str(REPO / "wordstamp.py"), "resynth", str(tmp_path / "none.wav"), "-o",
                          str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("wordstamp: error:") and len(bad.stderr.splitlines()) == 1
