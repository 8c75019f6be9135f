"""Accented synthetic speakers (trainer/accents.py): who says what; a real festival voice saying a respelt digit."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from trainer.accents import ACCENT_HELD_OUT, ACCENT_VOICES, accent_jobs, installed, missing_packages, respelt
from trainer.recipe import DIGITS, TtsJob, _run_tts
from trainer.synth import FESTIVAL_VOICES, voices


def _fake_voices(root, names):
    for lang, name in names:
        (root / lang / name).mkdir(parents=True)
    return root


def test_every_accent_voice_respells_all_ten_digits_and_held_out_voices_are_among_them():
    for voice in ACCENT_VOICES:
        spelt = respelt(voice)
        assert list(spelt) == DIGITS and len(set(spelt.values())) == 10
    assert set(ACCENT_HELD_OUT) <= set(ACCENT_VOICES)


def test_jobs_come_from_installed_voices_only_and_held_out_ones_stay_out_of_training(tmp_path):
    root = _fake_voices(tmp_path / "voices", [("italian", "lp_diphone"), ("russian", "msu_ru_nsh_clunits"),
                                              ("czech", "czech_ph")])
    words = [f"word{i}" for i in range(60)]
    train = accent_jobs(tmp_path / "out", words, n_unknown=7, speeds=(0.9, 1.1), voices_root=root)
    by_voice: dict[str, list] = {}
    for j in train:
        by_voice.setdefault(j.voice, []).append(j)
    assert set(by_voice) == {"lp_diphone", "msu_ru_nsh_clunits"}  # czech_ph is held out, the others not installed
    italian = by_voice["lp_diphone"]
    digits = [j for j in italian if j.out.parent.name != "_unknown_"]
    assert len(digits) == 20 and {j.speed for j in digits} == {0.9, 1.1}
    three = [j for j in digits if j.out.parent.name == "three"]
    assert {j.text for j in three} == {"tri"} and all(j.out.name.startswith("tts-festival-lp-diphone_three_")
                                                      for j in three)
    unknown = [j for j in italian if j.out.parent.name == "_unknown_"]
    assert len(unknown) == 7 and {j.text for j in unknown} <= set(words)
    # Cyrillic script: the Russian voice says digits only, not English words by Russian rules
    assert all(j.out.parent.name in DIGITS for j in by_voice["msu_ru_nsh_clunits"])
    held = accent_jobs(tmp_path / "held", words, held_out=True, voices_root=root)
    assert {j.voice for j in held} == {"czech_ph"} and len(held) == 30
    assert all(j.out.parent.name in DIGITS for j in held)
    # file names are unique: no job overwrites another
    assert len({j.out for j in train + held}) == len(train) + len(held)


def test_english_synth_lists_no_foreign_festival_voice():
    names = {v.ident for v in voices("festival")}
    assert not names & set(ACCENT_VOICES)


@pytest.mark.skipif(not (shutil.which("text2wave") and installed("lp_diphone", FESTIVAL_VOICES)),
                    reason="festival's Italian voice lp_diphone is not installed (scripts/setup.sh test installs it)")
def test_italian_voice_says_a_respelt_digit(tmp_path):
    job = accent_jobs(tmp_path, [], speeds=(1.0,))
    job = next(j for j in job if j.voice == "lp_diphone" and j.out.parent.name == "seven")
    assert _run_tts(job) is None
    x, sr = sf.read(job.out)
    loud = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max())
    # one word: between a tenth of a second and a second of sound
    assert 0.1 < (loud[-1] - loud[0]) / sr < 1.0


def test_missing_voices_are_named_by_their_debian_package(tmp_path):
    root = _fake_voices(tmp_path / "voices", [("italian", "lp_diphone")])
    missing = missing_packages(root)
    assert "festvox-italp16k" not in missing and "festvox-ru" in missing
    assert len(missing) == len(ACCENT_VOICES) - 1


@pytest.mark.skipif(not (shutil.which("text2wave") and installed("cmu_us_slt_arctic_hts", FESTIVAL_VOICES)),
                    reason="festival's HTS voice cmu_us_slt_arctic_hts is not installed (scripts/setup.sh test)")
def test_an_hts_voice_speaks_at_the_rate_asked(tmp_path):
    # HTS voices ignore festival's Duration_Stretch; the job's rate must still reach them
    lengths = []
    for i, speed in enumerate((0.8, 1.25)):
        job = TtsJob("festival", "cmu_us_slt_arctic_hts", speed, 0, "seven", tmp_path / f"{i}.wav")
        assert _run_tts(job) is None
        lengths.append(sf.info(job.out).frames)
    assert lengths[0] > 1.3 * lengths[1]
