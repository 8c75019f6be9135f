"""import: FSDD from a folder, a zip or a URL (downloaded for real, here from a file:// URL); word-folder trees."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from shared.audio import read_audio
from tests.conftest import SHARED_DATA, needs_shared, tone_word
from tests.test_split import run
from trainer.sources import plan_folders, speaker_and_rest


def _fake_fsdd(folder: Path, rng, speakers=("george", "lucas"), takes=2) -> list[Path]:
    """FSDD's layout and format: {digit}_{speaker}_{i}.wav at 8 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for sp in speakers:
        for d in range(10):
            for i in range(takes):
                p = folder / f"{d}_{sp}_{i}.wav"
                sf.write(p, tone_word(rng, 0.3, rate=8000, f0=120 + 20 * d), 8000, subtype="PCM_16")
                out.append(p)
    return out


def _check_fsdd_import(data: Path, speakers=("george", "lucas"), takes=2) -> None:
    words = "zero one two three four five six seven eight nine".split()
    for d, w in enumerate(words):
        names = sorted(p.name for p in (data / "fsdd" / w).glob("*.wav"))
        assert names == sorted(f"{sp}_{i}.wav" for sp in speakers for i in range(takes))
    info = sf.info(data / "fsdd" / "seven" / "george_1.wav")
    assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    assert (data / "fsdd.words").read_text().split() == words


def test_import_fsdd_from_a_folder(tmp_path, rng):
    _fake_fsdd(tmp_path / "src" / "recordings", rng)
    (tmp_path / "src" / "recordings" / "README.wav").write_text("not a recording")  # wrong name: ignored
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "fsdd", str(tmp_path / "src"), "--data", str(data))
    assert res.exit_code == 0, res.output
    _check_fsdd_import(data)
    again = run("import", "fsdd", str(tmp_path / "src"), "--data", str(data))
    assert again.exit_code == 0 and "already there" in again.output


def test_import_fsdd_downloads_the_github_zip_from_a_url(tmp_path, rng):
    files = _fake_fsdd(tmp_path / "build", rng)
    archive = tmp_path / "fsdd-master.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # GitHub's archive nests everything in one folder
        zf.writestr("free-spoken-digit-dataset-master/README.md", "FSDD")
        zf.writestr("free-spoken-digit-dataset-master/utils/x.py", "print()")
        for f in files:
            zf.write(f, f"free-spoken-digit-dataset-master/recordings/{f.name}")
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "fsdd", archive.as_uri(), "--data", str(data))
    assert res.exit_code == 0, res.output
    _check_fsdd_import(data)


def test_import_fsdd_bad_sources_are_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "fsdd", (tmp_path / "missing.zip").as_uri(), "--data", str(data))
    assert res.exit_code == 1 and "download failed" in res.output
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is no zip")
    res = run("import", "fsdd", str(bad), "--data", str(data))
    assert res.exit_code == 1 and "not a readable zip" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("import", "fsdd", str(empty), "--data", str(data))
    assert res.exit_code == 1 and "no clips" in res.output


def test_speaker_is_the_part_before_nohash_or_the_first_underscore():
    assert speaker_and_rest("0a7c2a8d_nohash_3") == ("0a7c2a8d", "3")
    assert speaker_and_rest("george_12") == ("george", "12")
    assert speaker_and_rest("a_b_nohash_0") == ("a-b", "0")  # no '_' may stay inside a speaker
    assert speaker_and_rest("solo") == ("solo", "")


def _tree(root: Path, rng) -> None:
    for w, names in {"cat": ["aa11_nohash_0", "aa11_nohash_1", "bb22_nohash_0"], "dog": ["cc33_nohash_2"],
                     "_background_noise_": ["white_noise"]}.items():
        (root / w).mkdir(parents=True)
        for n in names:
            sf.write(root / w / f"{n}.wav", tone_word(rng), 16000, subtype="PCM_16")


def test_import_folders_maps_names_and_skips_underscore_folders(tmp_path, rng):
    _tree(tmp_path / "sc", rng)
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "folders", str(tmp_path / "sc"), "--data", str(data))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (data / "sc" / "cat").iterdir()) == ["aa11_0.wav", "aa11_1.wav", "bb22_0.wav"]
    assert [p.name for p in (data / "sc" / "dog").iterdir()] == ["cc33_2.wav"]
    assert not (data / "sc" / "_background_noise_").exists()
    x = read_audio(data / "sc" / "cat" / "aa11_0.wav")
    assert np.allclose(x, read_audio(tmp_path / "sc" / "cat" / "aa11_nohash_0.wav"), atol=1e-4)


def test_import_folders_words_filter_and_prefix(tmp_path, rng):
    _tree(tmp_path / "sc", rng)
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "folders", str(tmp_path / "sc"), "--words", "dog", "--prefix", "pets", "--data", str(data))
    assert res.exit_code == 0, res.output
    assert [p.name for p in (data / "pets").iterdir()] == ["dog"]
    assert plan_folders(tmp_path / "sc", ["cat", "owl"]).ignored[-1].endswith("no clips for word 'owl'")


@needs_shared
def test_import_real_speech_commands_words(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    src = SHARED_DATA / "speech-commands"
    res = run("import", "folders", str(src), "--words", "dog,bird", "--prefix", "sc", "--data", str(data))
    assert res.exit_code == 0, res.output
    for w in ("dog", "bird"):
        n_src = len(list((src / w).glob("*.wav")))
        out = list((data / "sc" / w).glob("*.wav"))
        assert len(out) == n_src
        assert all("_nohash_" not in p.name and p.stem.count("_") == 1 for p in out)
