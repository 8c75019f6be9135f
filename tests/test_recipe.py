"""The recipe's choice of held-out Speech Commands speakers and whose clips it links."""

import pytest

from trainer.recipe import TtsJob, link_extra, link_sc, rhyme_voices, sc_test_speakers, sc_train_speakers

SPEAKERS = [f"{i:08x}" for i in range(45)]


def test_folds_hold_out_every_speaker_exactly_once():
    folds = [sc_test_speakers(SPEAKERS, 0, 0.4, (k, 3)) for k in range(3)]
    assert sorted(s for f in folds for s in f) == SPEAKERS
    assert [len(f) for f in folds] == [15, 15, 15]
    # another seed deals other groups
    assert sc_test_speakers(SPEAKERS, 1, 0.4, (0, 3)) != folds[0]


def test_random_fraction_without_a_fold():
    test = sc_test_speakers(SPEAKERS, 0, 0.4)
    assert len(test) == 18 and set(test) <= set(SPEAKERS)
    assert test == sc_test_speakers(SPEAKERS, 0, 0.4)  # the seed decides


@pytest.mark.parametrize("fold", [(3, 3), (-1, 3), (0, 46)])
def test_impossible_fold_is_refused(fold):
    with pytest.raises(ValueError, match="SC fold"):
        sc_test_speakers(SPEAKERS, 0, 0.4, fold)


def test_link_sc_keeps_only_the_named_speakers(tmp_path):
    sc = tmp_path / "sc"
    for w, spk in (("bed", "aaaa0001"), ("bed", "bbbb0002"), ("happy", "aaaa0001"), ("happy", "cccc0003")):
        (sc / w).mkdir(parents=True, exist_ok=True)
        (sc / w / f"{spk}_nohash_0.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    assert link_sc(sc, out, ["bed", "happy"], label="_unknown_", speakers={"aaaa0001"}) == 2
    assert sorted(f.name for f in (out / "_unknown_").iterdir()) == ["aaaa0001_bed_0.wav", "aaaa0001_happy_0.wav"]
    # without a speaker list every clip is linked, as before
    assert link_sc(sc, tmp_path / "all", ["bed", "happy"], label="_unknown_") == 4


def test_training_share_drops_only_speakers_not_held_out():
    test = sc_test_speakers(SPEAKERS, 0, 0.4, (0, 3))
    assert sc_train_speakers(SPEAKERS, test, 1.0, 0) == set(SPEAKERS)  # all, as shipped
    half = sc_train_speakers(SPEAKERS, test, 0.5, 0)
    assert set(test) <= half  # the held-out digits stay linked: they are the test split
    assert len(half - set(test)) == 15  # half of the 30 others
    assert half == sc_train_speakers(SPEAKERS, test, 0.5, 0)  # the seed decides
    assert half != sc_train_speakers(SPEAKERS, test, 0.5, 1)


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_impossible_training_share_is_refused(share):
    with pytest.raises(ValueError, match="SC training share"):
        sc_train_speakers(SPEAKERS, [], share, 0)


def test_rhyme_share_drops_near_digit_words_from_some_voices_only(tmp_path):
    voices = [f"tts-espeak-v{i}" for i in range(10)]
    jobs = [TtsJob("espeak-ng", v, 1.0, 50, w, tmp_path / "_unknown_" / f"{v}_{w}_0.wav")
            for v in voices for w in ("sticks", "wine", "garden", "hello")]  # two near-digit words, two everyday
    assert rhyme_voices(jobs, 1.0, 0) == jobs  # all, as shipped
    half = rhyme_voices(jobs, 0.5, 0)
    said = {w: {j.voice for j in half if j.text == w} for w in ("sticks", "wine", "garden", "hello")}
    assert said["garden"] == said["hello"] == set(voices)  # everyday words keep every voice
    assert said["sticks"] == said["wine"] and len(said["sticks"]) == 5  # the same half of the voices say both
    assert said["sticks"] != {j.voice for j in rhyme_voices(jobs, 0.5, 1) if j.text == "sticks"}  # the seed decides
    with pytest.raises(ValueError, match="rhyme voice share"):
        rhyme_voices(jobs, 0.0, 0)


def test_extra_clips_join_their_words_and_a_stray_folder_is_refused(tmp_path):
    extra = tmp_path / "extra"
    for label, name in (("two", "tts-x-a_two_0.wav"), ("_unknown_", "tts-x-a_shoe_0.wav"), ("two", "notes.txt")):
        (extra / label).mkdir(parents=True, exist_ok=True)
        (extra / label / name).write_bytes(b"RIFF")
    out = tmp_path / "digits"
    assert link_extra(extra, out, ["two", "_unknown_"]) == 2
    assert sorted(str(f.relative_to(out)) for f in out.glob("*/*")) == ["_unknown_/tts-x-a_shoe_0.wav",
                                                                         "two/tts-x-a_two_0.wav"]
    assert (out / "two" / "tts-x-a_two_0.wav").resolve() == (extra / "two" / "tts-x-a_two_0.wav").resolve()
    (extra / "tow").mkdir()  # a misspelt word is told, not left out
    with pytest.raises(ValueError, match="tow"):
        link_extra(extra, tmp_path / "again", ["two", "_unknown_"])
    assert not (tmp_path / "again").exists()


def test_make_models_refuses_a_bad_extra_folder_before_any_work(tmp_path, capsys):
    from trainer import make_models

    shared = tmp_path / "shared"
    for d in ("fsdd", "speech-commands"):
        (shared / d).mkdir(parents=True)
    (tmp_path / "extra" / "fiev").mkdir(parents=True)
    work = tmp_path / "work"
    for extra, told in ((tmp_path / "absent", "not a folder"), (tmp_path / "extra", "fiev")):
        assert make_models.main([str(shared), "--extra", str(extra), "--work", str(work)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: --extra {extra}") and told in err and "\n" not in err
    assert not work.exists()
