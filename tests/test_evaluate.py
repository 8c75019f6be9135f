"""`evaluate` on folders through LiteRT: counting, OOV false accepts, rejections, bad files, JSON and PNG output."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from tests.conftest import tone_word
from trainer.dataset import build_dataset
from trainer.evaluate import REJECTED, evaluate_folder


def _folder(root, rng):
    for w in ("one", "two", "_silence_", "banana"):
        (root / w).mkdir(parents=True)
        for i in range(3):
            x = np.concatenate([np.zeros(3000, np.float32), tone_word(rng, f0=200 + 50 * i), np.zeros(3000, np.float32)])
            sf.write(root / w / f"spk{i}_{w}_{i}.wav", x if w != "_silence_" else 0.001 * x, 8000 if i == 1 else 16000)
    (root / "one" / "broken.wav").write_bytes(b"RIFF not really")
    return root


def _with_threshold(src, dst, t):
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m["threshold"] = t
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_counts_are_consistent(tiny_bundle, tmp_path, rng):
    rep = evaluate_folder(tiny_bundle, _folder(tmp_path / "clips", rng))
    assert rep.n == 6 and rep.oov_n == 6  # one/two are words; _silence_ and banana are not
    assert set(rep.per_word) == {"one", "two"} and set(rep.oov_per_folder) == {"_silence_", "banana"}
    assert sum(sum(r.values()) for r in rep.confusion.values()) == rep.n
    assert rep.accuracy == rep.correct / rep.n
    assert len(rep.unreadable) == 1 and "broken.wav" in rep.unreadable[0]
    assert len(rep.errors) == (rep.n - rep.correct) + rep.oov_false_accepts


def test_intervals_are_wilson_and_narrow_with_more_clips():
    """The 95 % interval against the Wilson formula written out, and what a user needs from it: it holds the
    measured rate, shrinks with more clips, and says nothing is known of an empty set."""
    from trainer.evaluate import proportion_ci95

    z = 1.959963984540054
    for k, n in ((29, 33), (0, 12), (205, 205), (7, 1000)):
        p = k / n
        mid, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = proportion_ci95(k, n)
        assert lo == pytest.approx(max(0.0, mid - half), abs=1e-9) and hi == pytest.approx(min(1.0, mid + half), abs=1e-9)
        assert lo <= p <= hi
    assert np.diff(proportion_ci95(29, 33)) > np.diff(proportion_ci95(290, 330))
    assert proportion_ci95(0, 0) == (0.0, 1.0)


def test_threshold_above_one_rejects_everything(tiny_bundle, tmp_path, rng):
    b = _with_threshold(tiny_bundle, tmp_path / "strict", 1.01)
    rep = evaluate_folder(b, _folder(tmp_path / "clips", rng))
    assert rep.accuracy == 0.0 and rep.oov_false_accept_rate == 0.0
    assert all(set(r) == {REJECTED} for r in rep.confusion.values())


def test_cli_json_and_plot(tiny_bundle, tmp_path, rng):
    import wordstamp

    wordstamp._register()
    clips = _folder(tmp_path / "clips", rng)
    res = CliRunner().invoke(wordstamp.app, ["evaluate", str(tiny_bundle), str(clips), "--json",
                                             "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("n", "accuracy", "per_word", "confusion", "oov_n", "oov_false_accept_rate", "errors"):
        assert key in d
    lo, hi = d["accuracy_ci95"]
    assert 0 <= lo <= d["accuracy"] <= hi <= 1 and len(d["oov_false_accept_ci95"]) == 2
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_input_is_one_line(tiny_bundle, tmp_path):
    import wordstamp

    wordstamp._register()
    r = CliRunner().invoke(wordstamp.app, ["evaluate", str(tiny_bundle), str(tmp_path / "nope")])
    assert r.exit_code == 1 and "nope" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(wordstamp.app, ["evaluate", str(tmp_path), str(tmp_path)])
    assert r.exit_code == 1 and "manifest.json" in r.output and len(r.output.strip().splitlines()) == 1


def test_files_unlike_a_microphones_are_named(tiny_bundle, tmp_path, rng):
    """Quiet, clipped and zero-padded clips are listed by kind (JSON) and noted in one line each (text); a clip with
    a noise floor at a normal level is not listed."""
    import wordstamp

    def word():
        return tone_word(rng) + 0.003 * rng.standard_normal(6400).astype(np.float32)

    versions = {"normal": word(), "quiet": 0.003 * word(), "clipped": np.clip(6 * word(), -1, 1),
                "zero-padded": np.concatenate([np.zeros(1600, np.float32), word()])}
    (tmp_path / "c" / "one").mkdir(parents=True)
    for name, x in versions.items():
        sf.write(tmp_path / "c" / "one" / f"{name}_one_0.wav", x, 16000, subtype="FLOAT")
    rep = evaluate_folder(tiny_bundle, tmp_path / "c")
    assert {k: [f.split("/")[-1] for f in v] for k, v in rep.level_notes.items()} == {
        "quiet": ["quiet_one_0.wav"], "clipped": ["clipped_one_0.wav"], "zero-padded": ["zero-padded_one_0.wav"]}
    wordstamp._register()
    res = CliRunner().invoke(wordstamp.app, ["evaluate", str(tiny_bundle), str(tmp_path / "c")])
    notes = [line for line in res.output.splitlines() if "note:" in line]
    assert res.exit_code == 0 and len(notes) == 3 and any("zero-padded_one_0.wav" in n for n in notes)
    res = CliRunner().invoke(wordstamp.app, ["evaluate", str(tiny_bundle), str(tmp_path / "c"), "--json"])
    assert json.loads(res.stdout.strip().splitlines()[-1])["level_notes"]["quiet"][0].endswith("quiet_one_0.wav")


def test_bench_scores_carry_evaluates_intervals(tiny_bundle, tmp_path, rng):
    """bench's clip scores (bench.accuracy) quote the same intervals as `wordstamp evaluate` on the same clips."""
    from bench.accuracy import evaluate_clips, interval
    from trainer.evaluate import proportion_ci95

    folder = _folder(tmp_path / "clips", rng)
    clips = [(p.parent.name, p) for p in sorted(folder.glob("*/spk*.wav"))]
    score = evaluate_clips(tiny_bundle, clips, tmp_path)
    rep = evaluate_folder(tiny_bundle, folder)
    assert (score.n, score.oov_n) == (6, 6) and score.accuracy_ci95 == rep.accuracy_ci95
    assert score.oov_false_accept_ci95 == proportion_ci95(rep.oov_false_accepts, 6)
    lo, hi = score.to_dict()["accuracy_ci95"]
    assert lo <= score.accuracy <= hi and interval((0.7273, 0.9517)) == "95 % interval 73-95 %"


def test_stamp_variants_one_stamp_is_what_evaluate_measures(tiny_bundle, tmp_path, rng, capsys):
    """scripts.stamp_variants' "one stamp" row is evaluate's own path: its top-1 (threshold 0) is evaluate's accuracy
    at threshold 0 on the same clips; every variant gets a row; a folder pair that is not one is refused by name."""
    from scripts.stamp_variants import VARIANTS, main

    work = tmp_path / "fold"
    for folder, words in (("sc-test", ("one", "two", "three")), ("oov", ("banana", "_silence_"))):
        for w in words:
            (work / folder / w).mkdir(parents=True)
            for i in range(4):
                x = np.concatenate([np.zeros(3000, np.float32), tone_word(rng, f0=150 + 60 * i), np.zeros(4000, np.float32)])
                sf.write(work / folder / w / f"spk{i}_{w}_{i}.wav", x, 16000)
    models = tmp_path / "models"
    shutil.copytree(tiny_bundle, models / "digits")
    assert main([f"{work}:{models}"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r[:16].strip() for r in rows] == list(VARIANTS)
    want = evaluate_folder(models / "digits", work / "sc-test", threshold=0.0)
    assert float(rows[0].split()[2].rstrip("%")) == pytest.approx(100 * want.accuracy, abs=0.051)
    assert all("(SC 12, never-trained 8)" in r for r in rows)
    assert main([f"{work}:{models}", "--variant", "one stamp", "--false-accepts", "0,50,100"]) == 0
    head, row = capsys.readouterr().out.strip().splitlines()
    assert head.endswith("0 / 50 / 100 %") and row.split()[:3] == rows[0].split()[:3]
    assert float(row.split()[-5]) == pytest.approx(float(row.split()[2].rstrip("%")))  # at 100 %: the top-1
    with pytest.raises(SystemExit):
        main([f"{work}:{models}", "--false-accepts", "five"])
    assert "--false-accepts 'five': expected percentages" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([f"{tmp_path}:{models}"])
    assert f"{tmp_path}:{models}: expected WORK:MODELS" in capsys.readouterr().err


def test_sc_folds_pools_the_folds_and_counts_never_trained_words(tiny_bundle, tmp_path, rng, capsys):
    """scripts.sc_folds: each fold's row and the pooled figures are evaluate's own counts summed over the folds, and
    the never-trained clips accepted are split by word, each word's counts and the digits its clips were taken for
    summed over the folds (at threshold 0 a random-weight model accepts some in each fold)."""
    from scripts.sc_folds import main

    folds = []
    for k in range(2):
        work = tmp_path / f"fold{k}"
        for sub, words in (("sc-test", ("one", "two")), ("oov", ("banana", "kiwi", "_silence_"))):
            for w in words:
                (work / sub / w).mkdir(parents=True)
                for i in range(2 + k):
                    x = np.concatenate([np.zeros(3000, np.float32), tone_word(rng, f0=140 + 90 * i + 40 * k),
                                        np.zeros(3000, np.float32)])
                    sf.write(work / sub / w / f"spk{i}_{w}_{i}.wav", x if w != "_silence_" else 0.01 * x, 16000)
        models = tmp_path / f"models{k}"
        _with_threshold(tiny_bundle, models / "digits", 0.0)
        folds.append((work, models))
    assert main([f"{w}:{m}" for w, m in folds] + ["--thresholds", "0.3"]) == 0
    out = capsys.readouterr().out.splitlines()
    own = [evaluate_folder(m / "digits", w / "sc-test") for w, m in folds]
    oov = [evaluate_folder(m / "digits", w / "oov") for w, m in folds]
    for k, (row, o, v) in enumerate(zip(out[1:3], own, oov)):
        assert row.split()[1:3] == [str(2 + k), str(o.n)] and row.split()[4] == f"{100 * o.accuracy:.1f}%"
        assert row.split()[-1] == f"{100 * v.oov_false_accept_rate:.1f}%"
    k, n = sum(o.correct for o in own), sum(o.n for o in own)
    assert f"at each fold's threshold {100 * k / n:.1f} % ({k}/{n}," in out[-2]
    parts = re.findall(r"(\w+) (\d+)/(\d+)(?: \(([^)]*)\))?", out[-1].split(": ", 1)[1])
    assert {w for w, *_ in parts} == {"banana", "kiwi", "_silence_"}
    for w, got, clips, taken in parts:
        want = [sum(v.oov_per_folder[w][key] for v in oov) for key in ("false_accepts", "n")]
        assert [int(got), int(clips)] == want and want[1] == 5
        said = Counter(e["got"] for v in oov for e in v.errors if f"/{w}/" in e["file"])
        assert dict((d, int(n)) for d, n in (t.split() for t in taken.split(", ") if t)) == dict(said)
        assert sum(said.values()) == int(got)
    assert sum(int(got) for _, got, *_ in parts) == sum(v.oov_false_accepts for v in oov)
    assert all(v.oov_false_accepts > 0 for v in oov)


def test_sc_misses_counts_each_clip_over_the_runs_that_held_it_out(tiny_bundle, tmp_path, rng, capsys):
    """scripts.sc_misses: a clip held out by two runs and missed by one is "1 of 2"; the misses printed are exactly
    evaluate's errors; a clip that only one run held out counts once; an unreadable one is named and left out; the
    levels are the clip's own; with --neighbours each missed clip's nearest clip of its run's dataset is its twin."""
    from scripts.sc_misses import levels, main, tally

    works = []
    for k in range(2):
        work = tmp_path / f"fold{k}"
        for w in ("one", "two", "three"):
            (work / "sc-test" / w).mkdir(parents=True)
            for i in range(3 + k):  # the second run holds out one more clip a word
                x = np.concatenate([np.zeros(3000, np.float32), tone_word(rng, f0=150 + 60 * i),
                                    np.zeros(4000, np.float32)])
                sf.write(work / "sc-test" / w / f"spk{i}_{w}_{i}.wav", x, 16000)
                (work / "digits" / w).mkdir(parents=True, exist_ok=True)  # its twin, said by "twin{i}", in the pool
                sf.write(work / "digits" / w / f"twin{i}_{w}_{i}.wav", x, 16000)
        (work / "sc-test" / "one" / "zzz_one_9.wav").write_bytes(b"RIFF not really")  # skipped, named
        (work / "digits" / "_unknown_").mkdir()
        sf.write(work / "digits" / "_unknown_" / "other_banana_0.wav", tone_word(rng, f0=700), 16000)
        build_dataset(work, "digits", out=work / "digits.npz", test_speakers=[])
        (work / "oov").mkdir()
        works.append(work)
    models = tmp_path / "models"
    shutil.copytree(tiny_bundle, models / "digits")
    assert main([f"{w}:{models}" for w in works]) == 0
    out, err = capsys.readouterr()
    out = out.splitlines()
    assert err.count("skipped: ") == 2 and "zzz_one_9.wav" in err and "Traceback" not in err
    reps = [evaluate_folder(models / "digits", w / "sc-test") for w in works]
    names = [{p.rsplit("/", 1)[-1] for p in (e["file"] for e in r.errors)} for r in reps]
    assert out[0].startswith("12 clips over 2 runs")
    printed = {line.split()[0]: line.split()[1:4] for line in out[2:]}
    for name in names[0] | names[1]:
        runs = 1 if name.startswith("spk3_") else 2
        assert printed[name] == [str((name in names[0]) + (name in names[1])), "of", str(runs)]
    assert len(printed) == len(names[0] | names[1]) > 0  # a random-weight model misses some
    # where the network puts them: each missed clip's nearest clip of its run's dataset is its own twin
    assert main([f"{w}:{models}" for w in works] + ["--neighbours", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    clip = None
    for line in out[2:]:
        if line.split()[0].endswith(".wav"):
            clip = line.split()[0]
        elif line.split()[0] == "nearest:":
            spk, w, i = clip[:-4].split("_")
            assert line.split()[1] == f"{w}(twin{i})" and len(line.split()) == 3
    assert out[-5].startswith("the 2 nearest clips") and "missed by none" in out[-2]
    assert out[-1].strip() == "(synthetic voices said 0 % of the datasets' _unknown_ clips)"  # "other" is a person
    # tally alone, on made-up runs
    a, b = tmp_path / "a_one_0.wav", tmp_path / "b_two_0.wav"
    t = tally([([a, b], [{"file": str(a), "got": REJECTED, "label": "_unknown_", "confidence": 0.9}]),
               ([a], [])])
    assert (t[a.name].runs, t[a.name].missed, t[b.name].runs, t[b.name].missed) == (2, 1, 1, 0)
    assert t[a.name].taken_for == ["rejected (_unknown_ 0.90)"]
    x = np.full(1000, 0.5, np.float32)  # not a whole number of 10 ms frames
    x[:320] = 0.005
    peak, loud, floor = levels(x)
    assert peak == pytest.approx(20 * np.log10(0.5), abs=0.01) and loud == pytest.approx(10 * np.log10(0.25), abs=0.01)
    assert floor == pytest.approx(10 * np.log10(0.005 ** 2), abs=0.5)
