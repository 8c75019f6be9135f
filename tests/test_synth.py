"""synth: the installed TTS voices as speakers; their sentences must split into exactly their words, quickly."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from shared.audio import read_audio
from shared.features import Frontend
from tests.conftest import SHARED_DATA
from tests.test_split import cuts_match, run
from trainer import synth
from trainer.split import find_words

needs_tts = pytest.mark.skipif(not (shutil.which("espeak-ng") or shutil.which("flite")),
                               reason="no TTS engine installed (scripts/setup.sh test installs espeak-ng, flite)")


@needs_tts
def test_voices_are_many_named_without_underscores_and_unique():
    vs = synth.voices()
    names = [v.name for v in vs]
    assert len(vs) >= 50 and len(set(names)) == len(names)
    assert all("_" not in n and n.split("-", 1)[0] in ("espeak", "flite", "festival") for n in names)
    picked = synth.pick_voices(30, seed=3)
    assert len({v.name for v in picked}) == 30
    assert len({v.ident.split("+")[0] for v in picked if v.engine == "espeak"}) >= 5  # spread over accents
    assert synth.pick_voices(30, seed=3) == picked


@needs_tts
def test_say_gives_16khz_float_audio_for_each_engine_and_rate_matters():
    for engine in ("espeak", "flite", "festival"):
        vs = synth.voices(engine)
        if not vs:
            continue
        x = synth.say("seven", vs[0])
        assert x.dtype == np.float32 and 0.2 < x.size / 16000 < 2.0 and np.max(np.abs(x)) > 0.05
        slow, fast = (synth.trim(synth.say("seven", vs[0].name, rate=r)) for r in (0.7, 1.4))
        assert slow.size > 1.3 * fast.size, engine


@needs_tts
def test_unknown_voice_is_one_line():
    with pytest.raises(synth.SynthError, match="no such voice"):
        synth.say("cat", "espeak-nowhere")


@needs_tts
def test_tts_sentences_with_pauses_noise_and_levels_split_into_their_words():
    """A spread of voices, pauses 0.15-0.9 s, word levels 8 dB apart, with white / pink noise at 25 dB SNR."""
    rng = np.random.default_rng(11)
    fe = Frontend()
    words = "zero one two three four five six seven eight nine".split()
    cfg = synth.SynthConfig(pause_s=(0.15, 0.9), word_level_db=8.0)
    noises = [rng.standard_normal(400000).astype(np.float32)]
    pink = SHARED_DATA / "noise" / "pink_noise.wav"
    if pink.exists():
        noises.append(read_audio(pink))
    ok = total = 0
    for k, v in enumerate(synth.pick_voices(24, seed=5)):
        x, spans = synth.synth_sentence(words, v, synth.take_rng(5, v.name, 1), cfg)
        if k % 2:
            n = noises[k % len(noises)][: x.size]
            speech = np.concatenate([x[a:b] for a, b in spans])
            x = x + n / np.sqrt(np.mean(n**2)) * np.sqrt(np.mean(speech**2)) * 10 ** (-25 / 20)
        segs, _, _ = find_words(x, len(words), fe)
        ok += cuts_match(segs, spans, fe)
        total += 1
    assert ok / total >= 0.9, f"{ok}/{total}"


@needs_tts
def test_synth_command_writes_recordings_and_split_cuts_them(tmp_path):
    res = run("synth", "pets", "--words", "cat,dog,bird", "--voices", "10", "--seed", "2", "--split",
              "--data", str(tmp_path))
    assert res.exit_code == 0, res.output
    recs = sorted(tmp_path.glob("pets_*.wav"))
    assert len(recs) == 10 and (tmp_path / "pets.words").read_text().split() == ["cat", "dog", "bird"]
    speakers = {p.stem.split("_")[1] for p in recs}
    for w in ("cat", "dog", "bird"):
        clips = list((tmp_path / "pets" / w).glob("*.wav"))
        assert len(clips) >= 9  # a voice may fail to split; most must not
        assert {c.stem.split("_")[0] for c in clips} <= speakers  # the voice is the clip's speaker
    before = {p: p.stat().st_mtime_ns for p in recs}
    again = run("synth", "pets", "--voices", "10", "--seed", "2", "--data", str(tmp_path))
    assert again.exit_code == 0 and {p: p.stat().st_mtime_ns for p in recs} == before
    clash = run("synth", "pets", "--words", "owl,bee", "--data", str(tmp_path))
    assert clash.exit_code == 2 and "pets.words" in clash.output


@needs_tts
@pytest.mark.slow
def test_hundred_voices_synth_and_split_within_budget(tmp_path):
    """The budget: ~100 voices through synth and split in well under two minutes on 2 cores."""
    t0 = time.monotonic()
    res = run("synth", "digits", "--words", "zero,one,two,three,four,five,six,seven,eight,nine", "--voices", "100",
              "--split", "--data", str(tmp_path))
    took = time.monotonic() - t0
    assert res.exit_code == 0, res.output
    n_clips = len(list((tmp_path / "digits").rglob("*.wav")))
    assert n_clips >= 0.95 * 1000, n_clips
    assert took < 120, took
