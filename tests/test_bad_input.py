"""Bad input never stops a run and never shows a traceback: valid audio in any format is read, the rest costs one
line naming the file and the problem, the summary counts it, and the exit code is non-zero only if nothing worked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from shared.audio import SAMPLE_RATE, resample
from tests.conftest import REPO, tone_word
from tests.test_split import join, run

WORDS = ["aa", "bb", "cc"]
GOOD = ["pcm8", "pcm24", "float", "stereo", "six", "rate8k", "rate22k", "rate44k", "rate48k", "clipped", "ogg",
        "flacnamedwav", "truncatedhalf"]
BAD = {"empty": "not a readable audio file", "garbage": "not a readable audio file",
       "text": "not a readable audio file", "nan": "NaN", "headeronly": "no samples"}


def _sentence(rng) -> np.ndarray:
    x, _ = join([tone_word(rng, 0.35, f0=150 + 40 * i) for i in range(len(WORDS))], rng, gap=(0.3, 0.5), level_db=3)
    return x


def make_files(folder: Path, rng, prefix: str = "bad") -> dict[str, Path]:
    """One recording of the three words per kind of file, named PREFIX_<kind>_1.<ext>."""
    folder.mkdir(parents=True, exist_ok=True)
    x = _sentence(rng)
    out = {}

    def p(kind: str, ext: str = "wav") -> Path:
        out[kind] = folder / f"{prefix}_{kind}_1.{ext}"
        return out[kind]

    sf.write(p("pcm8"), x, SAMPLE_RATE, subtype="PCM_U8")
    sf.write(p("pcm24"), x, SAMPLE_RATE, subtype="PCM_24")
    sf.write(p("float"), x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(p("stereo"), np.stack([x, 0.5 * x], 1), SAMPLE_RATE, subtype="PCM_16")
    sf.write(p("six"), np.stack([x * (k + 1) / 6 for k in range(6)], 1), SAMPLE_RATE, subtype="PCM_16")
    for kind, rate in (("rate8k", 8000), ("rate22k", 22050), ("rate44k", 44100), ("rate48k", 48000)):
        sf.write(p(kind), resample(x, SAMPLE_RATE, rate), rate, subtype="PCM_16")
    sf.write(p("clipped"), np.clip(x * 8, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    sf.write(p("ogg", "ogg"), x, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    sf.write(p("flacnamedwav"), x, SAMPLE_RATE, format="FLAC")  # mis-named but real audio: read by content
    sf.write(p("truncatedhalf"), x, SAMPLE_RATE, subtype="PCM_16")
    data = out["truncatedhalf"].read_bytes()
    out["truncatedhalf"].write_bytes(data[: 44 + int(0.8 * (len(data) - 44)) // 2 * 2])  # the tail lost
    p("empty").write_bytes(b"")
    p("garbage").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    p("text").write_text("this is not audio, just a text file called .wav\n" * 20)
    nan = x.copy()
    nan[1000:2000] = np.nan
    sf.write(p("nan"), nan, SAMPLE_RATE, subtype="FLOAT")
    sf.write(p("headeronly"), x, SAMPLE_RATE, subtype="PCM_16")
    out["headeronly"].write_bytes(out["headeronly"].read_bytes()[:44])
    sf.write(p("silent"), np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE, subtype="PCM_16")
    return out


def test_split_reads_every_valid_format_and_names_each_bad_file(tmp_path, rng):
    files = make_files(tmp_path, rng)
    (tmp_path / "bad.words").write_text(" ".join(WORDS))
    res = run("split", "bad", "--data", str(tmp_path))
    out = res.output
    assert res.exit_code == 0, out
    for kind in GOOD:
        for w in WORDS:
            assert (tmp_path / "bad" / w / f"{kind}_1.wav").exists(), (kind, out)
    for kind, problem in BAD.items():
        line = next((ln for ln in out.splitlines() if files[kind].name in ln), "")
        assert problem in line, (kind, out)
        assert not (tmp_path / "bad" / "aa" / f"{kind}_1.wav").exists()
    assert any("bad_silent_1.wav" in ln and "silent" in ln for ln in out.splitlines())
    assert any("bad_clipped_1.wav" in ln and "clipped" in ln for ln in out.splitlines())
    assert "unreadable" in out and f"│ {len(BAD)} " in out.replace("  ", " ")


def test_nothing_usable_exits_non_zero_without_traceback(tmp_path, rng):
    (tmp_path / "bad.words").write_text(" ".join(WORDS))
    (tmp_path / "bad_empty_1.wav").write_bytes(b"")
    (tmp_path / "bad_text_1.wav").write_text("hello")
    # a real process, so nothing can hide a traceback printed to stderr
    r = subprocess.run([sys.executable, str(REPO / "wordstamp.py"), "split", "bad", "--data", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert "bad_empty_1.wav" in r.stdout and "bad_text_1.wav" in r.stdout


def test_import_folders_skips_bad_clips_and_imports_the_rest(tmp_path, rng):
    files = make_files(tmp_path / "src" / "word", rng, prefix="spk")
    data = tmp_path / "data"
    data.mkdir()
    res = run("import", "folders", str(tmp_path / "src"), "--prefix", "mixed", "--data", str(data))
    assert res.exit_code == 0, res.output
    got = {p.name for p in (data / "mixed" / "word").iterdir()}
    assert len(got) == len(files) - len(BAD)
    for kind in BAD:
        assert files[kind].name in res.output


def test_build_reports_unreadable_clips(tmp_path, rng):
    data = tmp_path / "data"
    for w, f0 in (("aa", 150), ("bb", 260)):
        for sp in ("ann", "bob", "cid"):
            sf.write(data / "set" / w / f"{sp}_1.wav" if (data / "set" / w).mkdir(parents=True, exist_ok=True)
                     is None else None, tone_word(rng, 0.4, f0=f0), SAMPLE_RATE)
    (data / "set" / "aa" / "dan_1.wav").write_text("not audio")
    res = run("build", "set", "--data", str(data))
    assert res.exit_code == 0, res.output
    assert "dan_1.wav" in res.output and (data / "set.npz").exists()
    empty = tmp_path / "none"
    empty.mkdir()
    res = run("build", "set", "--data", str(empty))
    assert res.exit_code == 1 and "no such folder" in res.output
