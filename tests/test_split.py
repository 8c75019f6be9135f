"""split: recordings of known word lists -> one clip per word; real speech joined into sentences must cut exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from shared.audio import read_audio, write_wav_atomic
from shared.features import Frontend
from shared.segment import Segment
from tests.conftest import SHARED_DATA, needs_shared, tone_word
from trainer import cli_data
from trainer.split import clip_names, cut_points, find_words

RATE = 16000
STATIONARY_NOISES = ("white_noise", "pink_noise", "running_tap")


def data_app() -> typer.Typer:
    app = typer.Typer()
    cli_data.register(app)
    return app


def run(*args: str):
    res = CliRunner().invoke(data_app(), list(args))
    assert "Traceback" not in res.output, res.output
    return res


def join(clips: list[np.ndarray], rng: np.random.Generator, gap=(0.1, 0.8), level_db: float = 10.0,
         noise: np.ndarray | None = None, snr_db: float = 30.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Clips one after another with random pauses and levels (up to `level_db` quieter), optional background noise
    at `snr_db` below the speech; returns the sentence and each clip's sample range."""
    parts, regions, pos = [], [], 0
    for i, c in enumerate(clips):
        pause = np.zeros(int(RATE * (rng.uniform(0.2, 0.6) if i == 0 else rng.uniform(*gap))), np.float32)
        c = c / (np.max(np.abs(c)) + 1e-9) * 0.5 * 10 ** (-rng.uniform(0, level_db) / 20)
        parts += [pause, c.astype(np.float32)]
        pos += pause.size
        regions.append((pos, pos + c.size))
        pos += c.size
    parts.append(np.zeros(int(RATE * rng.uniform(0.2, 0.6)), np.float32))
    x = np.concatenate(parts)
    if noise is not None:
        s = int(rng.integers(0, noise.size - x.size))
        n = noise[s:s + x.size]
        speech = np.concatenate([x[a:b] for a, b in regions])
        x = x + n / (np.sqrt(np.mean(n**2)) + 1e-9) * np.sqrt(np.mean(speech**2)) * 10 ** (-snr_db / 20)
    else:
        x = x + 1e-4 * rng.standard_normal(x.size).astype(np.float32)
    return x.astype(np.float32), regions


def cuts_match(segs: list[Segment] | None, regions: list[tuple[int, int]], fe: Frontend) -> bool:
    """Right count, each segment centred in its own clip and mostly inside it."""
    if segs is None or len(segs) != len(regions):
        return False
    for s, (a, b) in zip(segs, regions):
        sa, sb = (t * RATE for t in s.seconds(fe.cfg))
        if not a <= (sa + sb) / 2 <= b:
            return False
        if max(0.0, min(b, sb) - max(a, sa)) < 0.6 * (sb - sa):
            return False
    return True


# ---------------------------------------------------------------- units


def test_clip_names_put_the_speaker_first_and_number_repeats():
    assert clip_names("digits_alice_3", "digits", ["one", "two", "one"]) == ["alice_3", "alice_3", "alice_3_2"]


def test_cuts_keep_context_but_never_reach_into_a_neighbour():
    fe = Frontend()
    segs = [Segment(50, 80), Segment(90, 130), Segment(300, 340)]
    cuts = cut_points(segs, 80000, fe.cfg, 0.1)
    for (a1, b1), (a2, b2) in zip(cuts, cuts[1:]):
        assert b1 <= a2
    assert cuts[0][0] == 50 * 160 - 1600  # full 100 ms before the first word
    assert cuts[2][1] - (340 * 160 + 240) == 1600  # and after the last


# ---------------------------------------------------------------- the command on synthetic words


def _write_tone_recordings(data: Path, rng, prefix: str, words: list[str], speakers=("ann", "bob")) -> None:
    (data / f"{prefix}.words").write_text(" ".join(words) + "\n")
    for k, sp in enumerate(speakers):
        clips = [tone_word(rng, 0.3 + 0.04 * i, f0=140 + 25 * i + 10 * k) for i in range(len(words))]
        x, _ = join(clips, rng, gap=(0.2, 0.5), level_db=6)
        write_wav_atomic(data / f"{prefix}_{sp}_1.wav", x)


def test_split_writes_one_clip_per_word_and_never_overwrites(tmp_path, rng):
    words = ["cat", "dog", "fox", "bird"]
    _write_tone_recordings(tmp_path, rng, "animals", words)
    (tmp_path / "animals-test").mkdir()  # ad-hoc test folder: not touched
    write_wav_atomic(tmp_path / "animals-test" / "x.wav", tone_word(rng))
    res = run("split", "animals", "--data", str(tmp_path))
    assert res.exit_code == 0, res.output
    for w in words:
        got = sorted(p.name for p in (tmp_path / "animals" / w).glob("*.wav"))
        assert got == ["ann_1.wav", "bob_1.wav"]
        x = read_audio(tmp_path / "animals" / w / "ann_1.wav")
        assert 0.3 < x.size / RATE < 1.0  # the word plus ~100 ms each side, not the sentence
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "animals").rglob("*.wav")}
    res = run("split", "animals", "--data", str(tmp_path))
    assert res.exit_code == 0 and "already cut" in res.output
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "animals").rglob("*.wav")} == before


def test_a_recording_with_the_wrong_word_count_is_reported_and_skipped(tmp_path, rng):
    (tmp_path / "five.words").write_text("one two three four five\n")
    x, _ = join([tone_word(rng) for _ in range(3)], rng, gap=(0.4, 0.6))
    write_wav_atomic(tmp_path / "five_carl_1.wav", x)
    res = run("split", "five", "--data", str(tmp_path))
    assert res.exit_code == 1
    assert "five_carl_1.wav" in res.output and "expected 5" in res.output
    assert not (tmp_path / "five").exists() or not list((tmp_path / "five").rglob("*.wav"))


def test_missing_word_list_is_one_line(tmp_path):
    res = run("split", "nothing", "--data", str(tmp_path))
    assert res.exit_code == 2 and "nothing.words" in res.output


def test_plot_writes_a_png_per_recording(tmp_path, rng):
    _write_tone_recordings(tmp_path, rng, "ab", ["aa", "bb", "cc"], speakers=("ann",))
    res = run("split", "ab", "--data", str(tmp_path), "--plot-dir", str(tmp_path / "plots"))
    assert res.exit_code == 0, res.output
    png = tmp_path / "plots" / "ab_ann_1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- real speech, unseen speakers


def _fsdd_sentences(rng, n):
    speakers = sorted({p.stem.split("_")[1] for p in (SHARED_DATA / "fsdd").glob("*.wav")})
    for k in range(n):
        sp, take = speakers[k % len(speakers)], int(rng.integers(50))
        yield [read_audio(SHARED_DATA / "fsdd" / f"{d}_{sp}_{take}.wav") for d in range(10)]


def _sc_sentences(rng, n, words=("cat", "dog", "bird", "bed", "happy", "house", "left", "marvin", "no", "go")):
    pools = {w: sorted((SHARED_DATA / "speech-commands" / w).glob("*.wav")) for w in words}
    for _ in range(n):
        chosen = rng.choice(list(words), size=int(rng.integers(3, 8)), replace=False)
        yield [read_audio(pools[w][int(rng.integers(len(pools[w])))]) for w in chosen]


@needs_shared
@pytest.mark.parametrize("corpus", ["fsdd", "speech-commands"])
def test_joined_real_clips_are_cut_into_exactly_their_words(corpus):
    """Pauses 0.1-0.8 s, word levels up to 10 dB apart, quiet / 30 / 20 / 10 dB SNR stationary noise."""
    rng = np.random.default_rng(2024)
    fe = Frontend()
    noises = [read_audio(SHARED_DATA / "noise" / f"{n}.wav") for n in STATIONARY_NOISES]
    gen = _fsdd_sentences if corpus == "fsdd" else _sc_sentences
    ok = total = 0
    for snr in (None, 30.0, 20.0, 10.0):
        for clips in gen(rng, 15):
            noise = None if snr is None else noises[int(rng.integers(len(noises)))]
            x, regions = join(clips, rng, noise=noise, snr_db=snr or 0.0)
            segs, _, _ = find_words(x, len(clips), fe)
            ok += cuts_match(segs, regions, fe)
            total += 1
    assert ok / total >= 0.95, f"{ok}/{total} sentences cut right"


@needs_shared
def test_split_command_on_joined_fsdd_recordings(tmp_path):
    """End to end: seed-format files of two unseen speakers -> 10 clips each, each clip holding its own digit."""
    rng = np.random.default_rng(7)
    words = "zero one two three four five six seven eight nine".split()
    (tmp_path / "digits.words").write_text(" ".join(words))
    truth = {}
    for sp in ("jackson", "theo"):
        clips = [read_audio(SHARED_DATA / "fsdd" / f"{d}_{sp}_3.wav") for d in range(10)]
        x, regions = join(clips, rng, gap=(0.15, 0.6))
        write_wav_atomic(tmp_path / f"digits_{sp}_1.wav", x)
        truth[sp] = (x, regions)
    res = run("split", "digits", "--data", str(tmp_path))
    assert res.exit_code == 0, res.output
    for sp, (x, regions) in truth.items():
        for w, (a, b) in zip(words, regions):
            clip = read_audio(tmp_path / "digits" / w / f"{sp}_1.wav")
            # the clip is a copy of part of the sentence: find where, by its loudest 100 ms
            p = int(np.clip(np.argmax(np.abs(clip)), 800, clip.size - 800))
            piece = clip[p - 800:p + 800].astype(np.float64)
            corr = np.correlate(x.astype(np.float64), piece, mode="valid")
            energy = np.convolve(x.astype(np.float64) ** 2, np.ones(piece.size), mode="valid")
            peak_at = int(np.argmin(energy - 2 * corr)) + 800  # least squared difference: an exact copy
            assert a <= peak_at <= b, (sp, w, peak_at / RATE, a / RATE, b / RATE)
            assert 0.2 < clip.size / RATE < 1.3
