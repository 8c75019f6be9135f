"""Training end to end on a tiny synthetic corpus: the net learns, the run folder is complete, export keeps accuracy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.train_support import WORDS, make_clips
from trainer.augment import AugmentConfig, mel_warp, mixup, perturb_audio, random_eq, spec_augment
from trainer.train import calibrate_threshold


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from trainer.dataset import build_dataset
    from trainer.nets import NetConfig
    from trainer.train import TrainConfig, train

    root = tmp_path_factory.mktemp("corpus")
    make_clips(root / "tones", speakers=4, takes=8)
    build_dataset(root, "tones", test_speakers=["spk3"])
    cfg = TrainConfig(epochs=12, copies=1, pool_copies=2, workers=1, batch=16, lr=5e-3, patience=12, noise_dir=None,
                      val_fraction=0.34, net=NetConfig(arch="dscnn", width=12, blocks=2, embedding_dim=16))
    run = root / "run"
    info = train([root / "tones.npz"], run, cfg, log=lambda m: None)
    return root, run, info


def test_run_folder_is_complete_and_learns(tiny_run):
    root, run, info = tiny_run
    for f in ("model.keras", "run.json", "calib.npz", "curve.png"):
        assert (run / f).is_file(), f
    assert info["words"] == sorted(WORDS)
    assert info["metrics"]["test_float_accuracy"] >= 0.8  # held-out speaker spk3
    assert info["data"]["test_speakers"] == ["spk3"] and "spk3" not in info["data"]["val_speakers"]
    assert json.loads((run / "run.json").read_text())["threshold"] == info["threshold"]


def test_export_run_int8_close_to_float(tiny_run, tmp_path):
    from trainer.export import export_run

    root, run, info = tiny_run
    b = export_run(run, "tones", tmp_path / "tones")
    m = b.manifest.metrics
    assert b.manifest.vocabulary == sorted(WORDS) and b.manifest.threshold == info["threshold"]
    assert m["int8_accuracy"] >= m["float_accuracy"] - 0.1
    assert m["model_bytes"] == (tmp_path / "tones" / "model.tflite").stat().st_size
    assert b.manifest.training["data"]["test_speakers"] == ["spk3"]
    # the served figure is what the daemon's own runtime answers on the same held-out stamps at the bundle's threshold
    from shared.runtime import CnnModel, decide

    cal = np.load(run / "calib.npz", allow_pickle=False)
    xs = np.concatenate([cal["val_stamps"], cal["test_stamps"]])
    ys = np.concatenate([cal["val_labels"], cal["test_labels"]])
    cnn = CnnModel(b)
    words = b.manifest.vocabulary
    said = [decide("tones", "h", words, p, b.manifest.threshold, gate=b.manifest.gate).word for p in cnn.infer(xs)[1]]
    assert m["int8_served_accuracy"] == pytest.approx(np.mean([w == words[y] for w, y in zip(said, ys)]), abs=1e-4)
    assert m["int8_minus_float_served_points"] == pytest.approx(
        100 * (m["int8_served_accuracy"] - m["float_served_accuracy"]), abs=0.02)
    assert 0 <= m["int8_top_ties"] <= m["quantisation_n"]


def test_served_accuracy_counts_rejections_as_the_daemon_answers():
    """A word's clip is right only when accepted as that word; an _unknown_/_silence_ clip only when rejected; the
    gate decides what meets the threshold."""
    from trainer.export import served_accuracy

    words = ["five", "nine", "_unknown_"]
    probs = np.array([[0.90, 0.05, 0.05],   # five, accepted
                      [0.60, 0.30, 0.10],   # five, below 0.8 on top, but 0.9 of vocabulary
                      [0.05, 0.90, 0.05],   # _unknown_ clip accepted as nine: a false accept
                      [0.10, 0.05, 0.85]])  # _unknown_ clip rejected
    labels = np.array([0, 0, 2, 2])
    assert served_accuracy(probs, labels, words, 0.8, "top") == pytest.approx(2 / 4)
    assert served_accuracy(probs, labels, words, 0.8, "vocabulary") == pytest.approx(3 / 4)
    assert served_accuracy(probs, labels, words, 0.0, "top") == pytest.approx(3 / 4)  # the second five is accepted


def test_int8_spread_reproduces_the_export_and_draws_calibration_subsets(tiny_run, tmp_path, capsys):
    """scripts.int8_spread with every stored calibration stamp gives the export's own int8 - float figures (top-1 and
    as served); smaller
    subsets are drawn per seed, one figure each; a folder that is no run is refused by name."""
    from scripts.int8_spread import main
    from trainer.export import export_run

    root, run, info = tiny_run
    m = export_run(run, "tones", tmp_path / "tones").manifest.metrics
    assert main([str(run), "--draws", "1"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert line[0] == str(run) and float(line[2]) == pytest.approx(m["int8_minus_float_points"], abs=0.006)
    assert float(line[line.index("served:") + 1]) == pytest.approx(m["int8_minus_float_served_points"], abs=0.006)
    assert main([str(run), "--draws", "3", "--samples", "4"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1].split()
    gaps = line[2:5]
    assert len(gaps) == 3 and all(g[0] in "+-" for g in gaps)
    assert line[line.index("draw") + 1] in ("0", "1", "2")  # the draw closest to float on the training stamps
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert f"{tmp_path}: not a training run" in capsys.readouterr().err


def test_class_gate_ranks_each_clip_among_its_words_validation_clips(tiny_run, tmp_path, rng, capsys):
    """scripts.class_gate: each word's references are the gate values the served int8 model gives the run's own
    validation clips of that word which it proposes as that word (recorded people's: all, the tones' speakers being
    people; impostors: none, the tones having no reject class); a clip's per-word value is its share of those at or
    below it; one threshold is read at equal false accepts exactly as scripts.stamp_variants reads it; the float row's
    log-odds are the float network's own, and stay finite and ordered where the probabilities saturate."""
    from scripts.class_gate import at_false_accepts, float_values, references, scored, vocab_log_odds
    from scripts.stamp_variants import curve
    from shared.bundle import load_bundle
    from shared.runtime import CnnModel
    from trainer.export import export_run

    root, run, info = tiny_run
    bundle = export_run(run, "tones", tmp_path / "tones")
    refs = references(CnnModel(load_bundle(tmp_path / "tones")), run)
    cal = np.load(run / "calib.npz", allow_pickle=False)
    cnn = CnnModel(bundle)
    choice, value = cnn.gated(*cnn.infer(cal["val_stamps"]))
    for i, w in enumerate(info["words"]):
        own = (cal["val_labels"] == i) & (choice == i)
        assert own.any() and np.array_equal(np.sort(refs["word's clips"][w]), np.sort(value[own]))
        assert np.array_equal(refs["word's recorded clips"][w], refs["word's clips"][w])
        assert refs["word's impostors"][w].size == 0
    w = info["words"][0]
    ref = np.sort(refs["word's clips"][w])
    got = scored([(w, float(ref[-1])), (w, float(ref[0]) - 1e-6), (None, 0.99), (w, float(ref[len(ref) // 2]))], refs)
    assert got["word's clips"][:3].tolist() == [1.0, 0.0, -1.0]
    assert got["word's clips"][3] == np.mean(ref <= ref[len(ref) // 2])
    assert got["one threshold"][0] == float(ref[-1]) and got["word's impostors"][0] == 0.5  # no impostors: 1 - 1/2
    # one threshold at equal false accepts: the same reading as stamp_variants' curve on the same values
    words = ["a", "b"]
    sc = [(words[k % 2], words[k % 2] if rng.random() < 0.8 else None, round(rng.random(), 2)) for k in range(60)]
    oov = [("a" if rng.random() < 0.7 else None, round(rng.random(), 2)) for _ in range(80)]
    acc, fa = curve(sc, oov)
    levels = [0.05, 0.1, 0.3, 1.0]
    want = [acc[fa <= f].max() for f in levels]
    right = np.array([w == got for w, got, _ in sc])
    sc_v = np.array([v if got is not None else -1.0 for _, got, v in sc])
    oov_v = np.array([v if got is not None else -1.0 for got, v in oov])
    assert at_false_accepts(right, sc_v, np.array([g is not None for g, _ in oov]), oov_v, levels) == \
        pytest.approx(want)
    special = np.array([False, False, True])
    z = rng.normal(size=(5, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert vocab_log_odds(z, special) == pytest.approx(np.log(p[:, :2].sum(1) / p[:, 2]))
    sure = vocab_log_odds(np.array([[0.0, 60.0, 0.0], [0.0, 80.0, 0.0]]), special)  # both probabilities round to 1
    assert np.isfinite(sure).all() and sure[1] - sure[0] == pytest.approx(20.0)
    import keras

    f_words, f_value = float_values(run, cal["val_stamps"], info["words"])
    probs = keras.models.load_model(run / "model.keras", compile=False).predict(cal["val_stamps"], verbose=0)[1]
    assert f_words == [info["words"][i] for i in probs.argmax(1)] and np.isposinf(f_value).all()  # no reject class
    # the whole script on one fold: its one-threshold top-1 is evaluate's accuracy at threshold 0, every row is there
    from scripts.class_gate import REFERENCES, main
    from trainer.evaluate import evaluate_folder

    work = tmp_path / "fold"
    make_clips(work / "sc-test", speakers=1, takes=2, seed=7)
    make_clips(work / "oov", speakers=1, takes=2, seed=8, words={"hum": (450.0, 0.3)})
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "digits").symlink_to(tmp_path / "tones")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "digits").symlink_to(run)
    assert main([f"{work}:{tmp_path / 'm'}:{tmp_path / 'r'}", "--false-accepts", "0,100"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].endswith("(SC 6, never-trained 2)")
    assert [r[:24].strip() for r in rows[1:]] == [*REFERENCES, "float log-odds"]
    want = evaluate_folder(tmp_path / "tones", work / "sc-test", threshold=0.0).accuracy
    assert float(rows[1].split()[4]) == pytest.approx(100 * want, abs=0.051)  # at 100 % never-trained accepted
    with pytest.raises(SystemExit):
        main([f"{work}:{tmp_path / 'm'}"])
    assert "expected WORK:MODELS:RUNS" in capsys.readouterr().err


def _bn_inputs(net, stamps: np.ndarray) -> list[tuple]:
    """(layer, its input over `stamps` in inference mode) for every batch-norm layer of `net`."""
    import keras

    return [(layer, keras.ops.convert_to_numpy(keras.Model(net.input, layer.input)(stamps, training=False)))
            for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _channels(f: np.ndarray) -> np.ndarray:
    return f.reshape(-1, f.shape[-1]).astype(np.float64)


def _assert_served_statistics(model_file: Path, stamps: np.ndarray) -> None:
    """Every batch-norm layer of the saved network holds its input's mean and variance over `stamps`."""
    import keras

    net = keras.models.load_model(model_file, compile=False)
    for layer, f in _bn_inputs(net, stamps):
        c = _channels(f)
        assert np.allclose(keras.ops.convert_to_numpy(layer.moving_mean), c.mean(0), rtol=1e-3, atol=1e-4)
        assert np.allclose(keras.ops.convert_to_numpy(layer.moving_variance), c.var(0), rtol=1e-3, atol=1e-5)


def test_refreshed_batch_norm_normalises_the_given_stamps(rng):
    """refresh_batch_norm sets each layer's statistics to its input's over the stamps (chunked), earlier layers
    first, so every batch-norm layer then maps those stamps to mean beta and variance gamma^2 per channel."""
    import keras

    from tests.fixtures_bundle import tiny_net
    from trainer.train import refresh_batch_norm

    net = tiny_net()
    stamps = rng.normal(-3.0, 2.0, size=(20, 98, 40)).astype(np.float32)
    layers = _bn_inputs(net, stamps)
    assert len(layers) >= 3 and all(np.allclose(keras.ops.convert_to_numpy(la.moving_mean), 0.0) for la, _ in layers)
    assert refresh_batch_norm(net, stamps, batch=7) == len(layers)
    for layer, f in _bn_inputs(net, stamps):
        c = _channels(f)
        assert np.allclose(keras.ops.convert_to_numpy(layer.moving_mean), c.mean(0), rtol=1e-4, atol=1e-5)
        assert np.allclose(keras.ops.convert_to_numpy(layer.moving_variance), c.var(0), rtol=1e-3, atol=1e-6)
        y = _channels(keras.ops.convert_to_numpy(layer(f, training=False)))
        var = c.var(0)
        assert np.allclose(y.mean(0), 0.0, atol=1e-3)  # untrained: beta 0, gamma 1
        assert np.allclose(y.var(0), var / (var + layer.epsilon), rtol=1e-2)


def test_a_run_serves_the_batch_norm_statistics_of_its_clean_training_stamps(tiny_run):
    from trainer.train import run_split

    root, run, info = tiny_run
    assert info["config"]["bn_stats"] == "clean"
    data, tr, _ = run_split(info)
    _assert_served_statistics(run / "model.keras", data.stamps[tr].astype(np.float32))


@pytest.mark.parametrize("stats", ["clean", "mixed"])
def test_refresh_bn_script_rewrites_a_finished_run(tiny_run, tmp_path, stats):
    """scripts.refresh_bn: a copy of the run whose statistics are its clean training stamps' ("mixed": and one
    augmented copy of each, made again here with the script's seed), the run itself untouched, its threshold
    calibrated again and its config naming the statistics; the copy exports."""
    from scripts.refresh_bn import main
    from trainer.augment import AugmentConfig, augment_many
    from trainer.export import export_run
    from trainer.train import run_split

    root, run, info = tiny_run
    before = (run / "model.keras").read_bytes()
    assert main([str(run), str(tmp_path / "run"), "--stats", stats, "--seed", "3"]) == 0
    assert (run / "model.keras").read_bytes() == before
    out = json.loads((tmp_path / "run" / "run.json").read_text())
    assert out["config"]["bn_stats"] == stats and 0.0 <= out["threshold"] <= 1.0
    data, tr, _ = run_split(out, audio=True)
    stamps = data.stamps[tr].astype(np.float32)
    if stats == "mixed":  # the tiny run has no noise folder, so the copies have no noise either
        copies, _ = augment_many([data.clips[i] for i in tr], 1, AugmentConfig(), [], seed=3, fcfg=data.frontend,
                                 seg_cfg=data.segmenter)
        stamps = np.concatenate([stamps, copies])
    _assert_served_statistics(tmp_path / "run" / "model.keras", stamps)
    export_run(tmp_path / "run", "digits", tmp_path / "bundle")
    assert (tmp_path / "bundle" / "model.tflite").is_file()


def test_unknown_batch_norm_statistics_are_refused_before_any_work(tmp_path):
    from trainer.train import TrainConfig, train

    with pytest.raises(ValueError, match="bn_stats 'augmented'"):
        train([tmp_path / "missing.npz"], tmp_path / "run", TrainConfig(bn_stats="augmented"), log=lambda m: None)


def test_export_refuses_a_non_run(tmp_path):
    from trainer.export import export_run

    with pytest.raises(FileNotFoundError, match="not a training run"):
        export_run(tmp_path, "x", tmp_path / "out")


def test_spec_augment_masks_with_the_background(rng):
    x = rng.normal(size=(8, 98, 40)).astype(np.float32)
    y = spec_augment(x, rng, AugmentConfig(time_masks=2, time_mask_max=10, freq_masks=2, freq_mask_max=6))
    assert y.shape == x.shape and not np.shares_memory(x, y)
    changed = y != x
    assert changed.any()
    assert np.allclose(y[changed], np.broadcast_to(x.reshape(8, -1).min(1)[:, None, None], x.shape)[changed])


def test_mixup_blends_stamps_targets_and_weights_alike(rng):
    x = rng.normal(size=(64, 98, 40)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
    w = rng.uniform(0.5, 2.0, 64).astype(np.float32)
    xm, (ym,), wm = mixup(x, [y], w, 0.4, np.random.default_rng(1))
    assert xm.shape == x.shape and ym.dtype == np.float32
    assert np.allclose(ym.sum(1), 1) and (ym.max(1) < 1).sum() > 32  # soft targets, still distributions
    # each row is lam * itself + (1 - lam) * one partner: the same seed redraws lam and the partners
    r = np.random.default_rng(1)
    lam, j = r.beta(0.4, 0.4, 64).astype(np.float32), r.permutation(64)
    assert np.allclose(xm, lam[:, None, None] * x + (1 - lam[:, None, None]) * x[j], atol=1e-5)
    assert np.allclose(wm, lam * w + (1 - lam) * w[j], atol=1e-6)
    # off: the very arrays back and no random numbers drawn
    r0 = np.random.default_rng(7)
    out = mixup(x, [y], w, 0.0, r0)
    assert out[0] is x and out[1][0] is y and out[2] is w
    assert r0.integers(1 << 30) == np.random.default_rng(7).integers(1 << 30)


def test_mel_warp_identity_and_shift():
    s = np.tile(np.arange(40, dtype=np.float32), (98, 1))
    assert np.allclose(mel_warp(s, 1.0), s)
    assert mel_warp(s, 1.1)[0, 20] < 20  # stretching up moves content to higher bands


def test_random_eq_colours_within_its_bound_and_keeps_timing():
    impulse = np.zeros(1001, np.float32)
    impulse[500] = 1.0
    gen = np.random.default_rng(3)
    swings = []
    for _ in range(50):
        y = random_eq(impulse, gen, 6.0)
        assert y.shape == impulse.shape and int(np.argmax(np.abs(y))) == 500  # linear phase, delay removed
        f = np.fft.rfftfreq(4096, 1 / 16000)
        db = 20 * np.log10(np.abs(np.fft.rfft(y, 4096))[(f > 100) & (f < 7000)] + 1e-9)
        swings.append(np.abs(db).max())
    assert max(swings) <= 6.5 and np.median(swings) > 1.0


def test_eq_off_draws_nothing_so_the_shipped_recipe_is_unchanged():
    x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    off = perturb_audio(x, np.random.default_rng(7), [], AugmentConfig())
    assert np.array_equal(off, perturb_audio(x, np.random.default_rng(7), [], AugmentConfig(eq_db=3.0)))
    on = perturb_audio(x, np.random.default_rng(7), [], AugmentConfig(eq_p=1.0))
    assert not np.array_equal(off, on)


def test_quiet_room_fills_the_silence_around_a_word_only_when_asked():
    """--quiet-room: a copy without background noise gets a noise recording 25-45 dB under it instead of the zeros
    the padding leaves; off, the padding stays digital silence, as in the shipped recipe."""
    x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    room = [np.random.default_rng(1).normal(0, 0.05, 40000).astype(np.float32)]
    plain = AugmentConfig(noise_p=0.0, speed=(1.0, 1.0), reverb_p=0.0, highpass_p=0.0, lowpass_p=0.0, gain_db=(0, 0))
    off = perturb_audio(x, np.random.default_rng(7), room, plain)
    silent = np.abs(off) == 0  # the zero padding around the clip
    on = perturb_audio(x, np.random.default_rng(7), room, dataclasses.replace(plain, quiet_snr_db=(25.0, 45.0)))
    assert on.shape == off.shape and silent.sum() > 0
    assert np.all(on[silent] != 0)
    added = on - off
    snr = 10 * np.log10(np.mean(off.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert 24.9 < snr < 45.1


def test_clipping_drives_a_copy_past_full_scale_only_when_asked():
    """--clipping: a copy is driven 1-12 dB past full scale and hard-clipped (its loudest samples flattened at ±1);
    off, a quiet clip keeps its shape."""
    x = (0.1 * np.sin(np.arange(8000) * 0.05)).astype(np.float32)
    plain = AugmentConfig(noise_p=0.0, speed=(1.0, 1.0), reverb_p=0.0, highpass_p=0.0, lowpass_p=0.0, gain_db=(0, 0))
    off = perturb_audio(x, np.random.default_rng(7), [], plain)
    on = perturb_audio(x, np.random.default_rng(7), [], dataclasses.replace(plain, clip_p=1.0))
    assert np.abs(off).max() < 0.11 and np.sum(np.abs(off) >= 1.0) == 0
    flat = np.abs(on) >= 1.0
    assert 0.05 < flat.sum() / np.count_nonzero(on) < 0.9  # 1-12 dB past full scale: some, not all, samples clipped
    keep = ~flat & (off != 0)
    ratio = on[keep] / off[keep]  # the rest is the same clip, only louder: 0.1 driven to 1.12-4 is 11-40 times
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)
    assert 11.0 < ratio[0] < 40.0


def _vowel(f0: float, seconds: float = 0.6, sr: int = 16000) -> np.ndarray:
    """A synthetic vowel: a pulse train at f0 through two formant resonators (700 and 1200 Hz), silence either side."""
    from scipy.signal import lfilter

    n = int(seconds * sr)
    src = np.zeros(n)
    src[:: int(sr / f0)] = 1.0
    for fc, bw in ((700.0, 90.0), (1200.0, 110.0)):
        r = np.exp(-np.pi * bw / sr)
        src = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], src)
    x = np.concatenate([np.zeros(4000), src * np.hanning(n), np.zeros(4000)])
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _f0_and_centroid(x: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    """Autocorrelation pitch and spectral centroid of the middle 0.3 s (the vowel's steady part)."""
    mid = x[x.size // 2 - 2400: x.size // 2 + 2400].astype(np.float64)
    ac = np.correlate(mid, mid, "full")[mid.size - 1:]
    lo, hi = sr // 500, sr // 70
    r = ac[lo:hi]
    peaks = [i for i in range(1, r.size - 1) if r[i - 1] < r[i] >= r[i + 1] and r[i] > 0.8 * r.max()]
    f0 = sr / (lo + peaks[0])  # the shortest strong period, not a multiple of it
    spec = np.abs(np.fft.rfft(mid * np.hanning(mid.size))) ** 2
    freqs = np.fft.rfftfreq(mid.size, 1 / sr)
    return f0, float((spec * freqs).sum() / spec.sum())


def test_change_voice_moves_pitch_and_formants_independently():
    """--voice: Praat's Change gender moves the median pitch to the asked value and the formants by the asked factor,
    each without the other, keeping length and peak; silence comes back as it was."""
    from trainer.augment import change_voice

    x = _vowel(120.0)
    f0, centroid = _f0_and_centroid(x)
    assert abs(f0 - 120.0) < 5
    higher = change_voice(x, 1.0, 240.0)
    f0_hi, centroid_hi = _f0_and_centroid(higher)
    assert abs(f0_hi - 240.0) < 15 and abs(centroid_hi / centroid - 1.0) < 0.12  # pitch moved, formants stayed
    shifted = change_voice(x, 1.2, 0.0)  # a pitch median of 0: keep the pitch
    f0_sh, centroid_sh = _f0_and_centroid(shifted)
    assert abs(f0_sh - 120.0) < 8 and 1.1 < centroid_sh / centroid < 1.32  # formants moved, pitch stayed
    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    for before, after in ((x, higher), (x, shifted), (noise, change_voice(noise, 1.2, 200.0))):
        assert after.size == before.size and after.dtype == np.float32
        assert np.abs(after).max() == pytest.approx(np.abs(before).max(), rel=1e-5)
    silence = np.zeros(8000, np.float32)
    np.testing.assert_array_equal(change_voice(silence, 1.2, 200.0), silence)
    plain = AugmentConfig(noise_p=0.0, speed=(1.0, 1.0), reverb_p=0.0, highpass_p=0.0, lowpass_p=0.0, gain_db=(0, 0))
    off = perturb_audio(x, np.random.default_rng(7), [], plain)
    on = perturb_audio(x, np.random.default_rng(7), [], dataclasses.replace(plain, voice_p=1.0))
    assert off.size != on.size or not np.allclose(off, on)  # asked for, every copy is another voice


def test_splices_join_two_words_of_one_speaker_and_train_as_unknown():
    """--splices: each non-word starts with one word and ends with another word of the same speaker, the second at the
    first one's level; speakers with one word only start none; the splices join the training clips as _unknown_, a
    fine word of their own, and the rest of the data is left as it was."""
    from shared.features import Frontend
    from shared.segment import SegmenterConfig
    from trainer.augment import splice_words
    from trainer.train import Pooled, _with_splices

    def word(f0: float, amp: float) -> np.ndarray:
        t = np.arange(int(0.4 * 16000)) / 16000
        x = (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
        pad = np.zeros(4800, np.float32)
        return np.concatenate([pad, x, pad]) + rng.normal(0, 0.0005, x.size + 2 * pad.size).astype(np.float32)

    def level_at(x: np.ndarray, f0: float) -> float:  # amplitude of the f0 component
        t = np.arange(x.size) / 16000
        return float(2 * np.abs(np.mean(x * np.exp(-2j * np.pi * f0 * t))))

    rng = np.random.default_rng(1)
    # speaker a says 300 Hz loud and 1200 Hz 10 dB quieter; speaker b says only 300 Hz (no second word: never spliced)
    clips = [word(300.0, 0.5), word(1200.0, 0.15), word(300.0, 0.3), word(300.0, 0.3)]
    labels, speakers = np.array([0, 1, 0, 0]), np.array(["a", "a", "b", "b"])
    fe, seg = Frontend(), SegmenterConfig()
    out, starts = splice_words(clips, labels, speakers, 20, np.random.default_rng(0), fe, seg)
    assert len(out) == 20 and set(starts.tolist()) == {0, 1}  # only speaker a's clips start a splice
    for x, a in zip(out, starts):
        first, second = (300.0, 1200.0) if a == 0 else (1200.0, 300.0)
        on = np.flatnonzero(np.abs(x) > 0.02)
        sixth = (on[-1] - on[0]) // 6  # each word keeps at least 30 % of its 0.4 s: a sixth of the whole is one word
        head, tail = x[on[0]:on[0] + sixth], x[on[-1] - sixth:on[-1]]
        assert level_at(head, first) > 5 * level_at(head, second)  # the first word's start ...
        assert level_at(tail, second) > 5 * level_at(tail, first)  # ... then the other word's end
        assert max(level_at(head, first), level_at(tail, second)) < 1.6 * min(level_at(head, first),
                                                                              level_at(tail, second))
        assert 0.8 * 16000 < x.size < 1.2 * 16000  # 0.6 s of silence around 30-70 % of each 0.4 s word
    assert splice_words(clips, labels, speakers, 0, np.random.default_rng(0), fe, seg)[0] == []

    words = ["hi", "lo", "_unknown_"]
    data = Pooled(np.zeros((4, 98, 40), np.float32), labels, words, speakers, np.array(["train"] * 4), clips,
                  fe.cfg, seg, np.array([f"d/{words[k]}/{s}_{words[k]}_{i}.wav" for i, (k, s) in
                                         enumerate(zip(labels, speakers))]))
    more, tr = _with_splices(data, np.arange(4), 12, seed=0)
    assert tr.tolist() == list(range(16)) and more.labels[4:].tolist() == [2] * 12
    assert set(more.speakers[4:].tolist()) == {"a"} and more.stamps[4:].std() > 0
    np.testing.assert_array_equal(more.stamps[:4], data.stamps[:4])
    fine, fine_words = more.fine(min_clips=10)
    assert fine_words == words + ["_unknown_:splice"] and fine[4:].tolist() == [3] * 12


def test_calibrated_threshold_limits_false_accepts():
    words = ["a", "b", "_unknown_"]
    labels = np.array([0, 1, 2, 2, 2, 2])
    probs = np.array([[.9, .05, .05], [.1, .8, .1], [.6, .1, .3], [.1, .2, .7], [.45, .1, .45], [.2, .2, .6]])
    t, cal = calibrate_threshold(probs, labels, words, max_fa=0.0)
    assert 0.6 < t <= 0.8 and cal["val_oov_false_accept"] == 0.0 and cal["val_in_vocab_accuracy"] == 1.0


def test_calibration_under_the_vocabulary_gate():
    """Split between a and b at 0.45/0.42, the first clip is surely a known word; the unknown one is "a" at 0.5 but
    only 0.6 of known words. To reject it the top gate must also lose the first clip; the vocabulary gate need not."""
    words = ["a", "b", "_unknown_"]
    labels = np.array([0, 1, 2])
    probs = np.array([[.45, .42, .13], [.05, .85, .1], [.5, .1, .4]])
    t_top, cal_top = calibrate_threshold(probs, labels, words, max_fa=0.0, lo=0.3, hi=0.9)
    t_voc, cal_voc = calibrate_threshold(probs, labels, words, max_fa=0.0, lo=0.3, hi=0.9, gate="vocabulary")
    assert cal_top["val_in_vocab_accuracy"] == 0.5 and t_top > 0.5  # "a" at 0.5 lost to reject the unknown at 0.6
    assert cal_voc["val_in_vocab_accuracy"] == 1.0 and cal_voc["val_oov_false_accept"] == 0.0 and 0.6 < t_voc <= 0.87


def test_calibration_weighs_each_speaker_kind_alike():
    """Ten synthetic clips recognised at 0.95 and two recorded people's at 0.6; of four unknown words one is taken for
    "a" at 0.95 and one at 0.7: no threshold meets the FA target, so the cost decides. Counted clip by clip, the synthetic clips outvote the people and the
    threshold goes above 0.7 (both people missed); counted kind by kind, missing the people costs as much, and the
    threshold stays at or below 0.6."""
    words = ["a", "_unknown_"]
    probs = np.array([[.95, .05]] * 10 + [[.6, .4]] * 2 + [[.95, .05], [.7, .3]] + [[.2, .8]] * 2)
    labels = np.array([0] * 12 + [1] * 4)
    kinds = np.array(["espeak"] * 10 + ["human"] * 2 + ["espeak"] * 4)
    t_clips, _ = calibrate_threshold(probs, labels, words, max_fa=0.0, fa_cost=1.0)
    t_kinds, cal = calibrate_threshold(probs, labels, words, max_fa=0.0, fa_cost=1.0, groups=kinds)
    assert t_clips > 0.7
    assert t_kinds <= 0.6 and cal["val_in_vocab_accuracy"] == 1.0


def test_cli_export_evaluate_predict_on_the_trained_run(tiny_run, tmp_path, rng):
    import soundfile as sf
    from typer.testing import CliRunner

    import wordstamp
    from tests.conftest import tone_word

    root, run, info = tiny_run
    wordstamp._register()
    cli = CliRunner()
    r = cli.invoke(wordstamp.app, ["export", str(run), "--name", "tones", "--out", str(tmp_path / "tones")])
    assert r.exit_code == 0, r.output
    assert "answered as served (threshold, rejections): float " in r.output
    held = tmp_path / "held"
    for w in WORDS:
        (held / w).mkdir(parents=True)
        for f in (root / "tones" / w).glob("spk3_*.wav"):
            (held / w / f.name).symlink_to(f)
    r = cli.invoke(wordstamp.app, ["evaluate", str(tmp_path / "tones"), str(held), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["n"] == 24 and d["accuracy"] >= 0.5  # speaker spk3 was never trained on; rejections count as wrong
    assert d["threshold"] == json.loads((tmp_path / "tones" / "manifest.json").read_text())["threshold"]
    # another point of the curve: nothing rejected at 0, everything at 1 (no clip is that sure of a word)
    at = {t: json.loads(cli.invoke(wordstamp.app, ["evaluate", str(tmp_path / "tones"), str(held), "--json",
                                                    "--threshold", str(t)]).stdout.strip().splitlines()[-1])
          for t in (0.0, 1.0)}
    assert at[0.0]["threshold"] == 0.0 and at[0.0]["accuracy"] >= d["accuracy"]
    assert at[1.0]["accuracy"] < d["accuracy"]  # some clips are rejected at 1 ...
    new = {e["file"] for e in at[1.0]["errors"]} - {e["file"] for e in d["errors"]}
    assert new and all(e["got"] == "_rejected_" for e in at[1.0]["errors"] if e["file"] in new)  # ... none misheard
    r = cli.invoke(wordstamp.app, ["evaluate", str(tmp_path / "tones"), str(held), "--threshold", "1.5"])
    assert r.exit_code == 1 and "between 0 and 1" in r.output and "Traceback" not in r.output
    gap = np.zeros(8000, np.float32)
    rec = np.concatenate([gap, tone_word(rng, 0.35, f0=150 * 1.18), gap, tone_word(rng, 0.45, f0=600 * 1.18), gap])
    sf.write(tmp_path / "two-words.wav", rec, 16000)
    r = cli.invoke(wordstamp.app, ["predict", str(tmp_path / "tones"), str(tmp_path / "two-words.wav"),
                                   "--plot", str(tmp_path / "h.png")])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if "two-words.wav" in ln]
    assert len(lines) == 2 and (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    r = cli.invoke(wordstamp.app, ["predict", str(tmp_path / "tones"), str(tmp_path / "missing.wav")])
    assert r.exit_code == 1 and "missing.wav" in r.output and "Traceback" not in r.output


def test_fine_unknown_words_fold_back_into_unknown():
    from trainer.nets import NetConfig, build_merged
    from trainer.train import Pooled

    words = ["one", "two", "_unknown_", "_silence_"]
    sources = ["d/one/a_one_0.wav", "d/_unknown_/a_tree_0.wav", "d/_unknown_/b_tree_1.wav", "d/_unknown_/c_wow_0.wav",
               "d/_silence_/noise-x_0_0.wav"]
    labels = np.array([0, 2, 2, 2, 3])
    p = Pooled(np.zeros((5, 98, 40), np.float32), labels, words, np.array(list("abcde")), np.array(["train"] * 5),
               [], None, None, np.array(sources))
    fine, fine_words = p.fine(min_clips=2)
    assert fine_words == words + ["_unknown_:tree"]  # 'wow' has too few clips: stays plain _unknown_
    assert fine.tolist() == [0, 4, 4, 2, 3]
    merge = np.zeros((5, 4), np.float32)
    for i, w in enumerate(fine_words):
        merge[i, words.index(w.split(":")[0])] = 1
    train_m, serve_m = build_merged((98, 40), merge, NetConfig(width=8, blocks=1, embedding_dim=8))
    x = np.random.default_rng(0).normal(size=(3, 98, 40)).astype(np.float32)
    fine_p = train_m.predict(x, verbose=0)[1]
    served = serve_m.predict(x, verbose=0)[1]
    assert served.shape == (3, 4) and np.allclose(served, fine_p @ merge, atol=1e-5)


def test_aux_fine_head_trains_the_served_softmax_and_is_left_out_of_serving(tmp_path):
    """fine_aux_weight > 0: the served model is the coarse softmax itself (no fold layer) and learns the vocabulary and
    `_unknown_` of a speaker it never heard; the fine softmax exists only in training."""
    import shutil

    from trainer.dataset import build_dataset, load_dataset
    from trainer.nets import NetConfig, build_aux
    from trainer.train import TrainConfig, fold_probs, pool_datasets

    root = tmp_path / "c"
    make_clips(root / "tones", speakers=4, takes=8)
    make_clips(tmp_path / "u", speakers=4, takes=8, seed=1, words={"buzz": (1800.0, 0.3), "hum": (1200.0, 0.6)})
    (root / "tones" / "_unknown_").mkdir()
    for f in sorted((tmp_path / "u").glob("*/*.wav")):
        shutil.move(f, root / "tones" / "_unknown_" / f.name)
    build_dataset(root, "tones")
    data = pool_datasets([load_dataset(root / "tones.npz")])
    assert data.fine(4)[1][-2:] == ["_unknown_:buzz", "_unknown_:hum"]
    net = NetConfig(arch="dscnn", width=12, blocks=2, embedding_dim=16)
    train_m, serve_m = build_aux((98, 40), len(data.words), len(data.words) + 2, net)
    assert [tuple(o.shape[1:]) for o in train_m.outputs] == [(16,), (len(data.words),), (len(data.words) + 2,)]
    assert "probs_fine" not in [layer.name for layer in serve_m.layers]
    cfg = TrainConfig(epochs=20, copies=1, pool_copies=2, workers=1, batch=16, lr=5e-3, patience=20, noise_dir=None,
                      val_fraction=0.34, net=net, fine_min_clips=4, fine_aux_weight=0.5)
    test = data.speakers == "spk3"
    probs = fold_probs(data, ~test, test, cfg, log=lambda m: None)
    assert probs.shape == (int(test.sum()), len(data.words)) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert np.mean(probs.argmax(1) == data.labels[test]) >= 0.8


def test_a_run_with_splices_learns_them_beside_its_own_clips(tmp_path):
    """TrainConfig.splices: the run trains on its clips plus the splices (a fine `_unknown_` word of their own), and
    everything it reports or keeps (clip counts, calibration stamps) is about its own clips."""
    from trainer.nets import NetConfig
    from trainer.train import TrainConfig, train

    npz = _tones_with_unknown(tmp_path)
    cfg = TrainConfig(epochs=1, copies=1, workers=1, batch=16, noise_dir=None, val_fraction=0.34, splices=24,
                      fine_min_clips=4, net=NetConfig(arch="dscnn", width=8, blocks=1, embedding_dim=8))
    said: list[str] = []
    run = train([npz], tmp_path / "run", cfg, log=said.append)
    assert "24 spliced non-words added to _unknown_" in said
    assert any("6 training classes" in m for m in said)  # high, low, mid, _unknown_ + its fine words buzz and splice
    own = run["data"]["train_clips"]
    assert own + run["data"]["val_clips"] + run["data"]["test_clips"] == 96 and run["config"]["splices"] == 24
    with np.load(tmp_path / "run" / "calib.npz", allow_pickle=False) as calib:
        assert calib["representative"].shape[0] == own


def test_reversals_are_training_words_played_backwards_as_unknown(tmp_path):
    """TrainConfig.reversals: each added `_unknown_` clip (fine word "reversed") is one training clip of a vocabulary
    word, by the same speaker, backwards; validation and test clips and `_unknown_` clips are never used."""
    from trainer.dataset import load_dataset
    from trainer.train import _with_reversals, pool_datasets

    data = pool_datasets([load_dataset(_tones_with_unknown(tmp_path))])
    tr = np.flatnonzero((data.split == "train") & (data.speakers != "spk0"))  # spk0 as if a validation speaker
    more, idx = _with_reversals(data, tr, 10, seed=0)
    new = idx[tr.size:]
    assert np.array_equal(idx[:tr.size], tr) and new.tolist() == list(range(len(data.labels), len(data.labels) + 10))
    fine, fine_words = more.fine(1)
    assert {fine_words[f] for f in fine[new]} == {"_unknown_:reversed"}
    assert (more.labels[new] == more.words.index("_unknown_")).all()
    words = [i for i in tr if data.words[data.labels[i]] != "_unknown_"]
    for i in new:
        src = [j for j in words if np.array_equal(data.clips[j][::-1], more.clips[i])]
        assert len(src) == 1 and data.speakers[src[0]] == more.speakers[i] != "spk0"
    again, _ = _with_reversals(data, tr, 10, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again.clips, more.clips))  # drawn from its own seeded stream


def test_reverberation_adds_a_decaying_tail_at_the_same_peak():
    from trainer.augment import reverberate

    rng = np.random.default_rng(3)
    x = np.zeros(8000, np.float32)
    x[1000:1400] = 0.5 * np.sin(np.arange(400) / 5)
    y = reverberate(x, rng, rt60_s=0.4)
    assert y.dtype == np.float32 and y.size > x.size  # the tail is kept
    assert abs(float(np.max(np.abs(y))) - 0.5) < 1e-4  # same peak level as the dry clip
    tail = y[1400 + 800:1400 + 1600]
    late = y[1400 + 4000:1400 + 4800]
    assert np.sqrt(np.mean(tail**2)) > 1e-4  # energy after the sound stopped ...
    assert np.sqrt(np.mean(late**2)) < np.sqrt(np.mean(tail**2))  # ... that decays


def test_speech_referenced_snr_ignores_the_silence_around_a_word():
    """The same word with 0.2 s or 2 s of silence around it gets the same noise level when the SNR is measured on the
    word (snr_ref="speech"); measured on the whole clip the padded one would get far less noise."""
    from trainer.augment import perturb_audio, speech_power

    word = (0.5 * np.sin(np.arange(4000) / 3)).astype(np.float32)
    short = np.concatenate([np.zeros(1600, np.float32), word, np.zeros(1600, np.float32)])
    long = np.concatenate([np.zeros(16000, np.float32), word, np.zeros(16000, np.float32)])
    assert abs(speech_power(short) - speech_power(long)) < 1e-6
    assert abs(speech_power(long) - float(np.mean(word**2))) < 1e-3
    noise = [np.random.default_rng(0).standard_normal(64000).astype(np.float32)]
    quiet = dict(speed=(1.0, 1.0), reverb_p=0.0, highpass_p=0.0, lowpass_p=0.0, noise_p=1.0, snr_db=(10.0, 10.0),
                 gain_db=(0.0, 0.0))

    def noise_rms(x, ref):
        y = perturb_audio(x, np.random.default_rng(1), noise, AugmentConfig(snr_ref=ref, **quiet))
        return float(np.sqrt(np.mean(y[:1000] ** 2)))  # the leading pad is noise only

    assert abs(noise_rms(short, "speech") / noise_rms(long, "speech") - 1) < 0.05
    assert noise_rms(long, "clip") < 0.5 * noise_rms(long, "speech")


def test_weight_average_follows_the_weights_with_a_warm_up():
    """ema > 0: the callback's average starts at the first batch's weights and moves towards later ones by
    1 - min(momentum, (1+n)/(10+n)) a batch, for every weight including batch-norm statistics."""
    import keras

    from trainer.train import _weight_average

    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
    avg = _weight_average(net, 0.9)
    first = [np.full_like(w, 1.0) for w in net.get_weights()]
    net.set_weights(first)
    avg.on_train_batch_end(0)
    net.set_weights([np.full_like(w, 3.0) for w in first])
    avg.on_train_batch_end(1)
    m = 3 / 12  # the warm-up's momentum at the second batch, below 0.9
    assert len(avg.weights()) == len(first) == 6
    for w in avg.weights():
        assert np.allclose(w, m * 1.0 + (1 - m) * 3.0)
    for _ in range(200):
        avg.on_train_batch_end(2)
    assert all(np.allclose(w, 3.0, atol=1e-6) for w in avg.weights())


def _tones_with_unknown(tmp_path: Path, synthetic: str | None = None) -> Path:
    """A built tone dataset with an `_unknown_` word (buzz) of its own, so the train model gets its side softmax;
    speakers matching the glob `synthetic` are renamed as espeak voices. Returns the npz."""
    import shutil

    from trainer.dataset import build_dataset

    root = tmp_path / "c"
    make_clips(root / "tones", speakers=4, takes=6)
    make_clips(tmp_path / "u", speakers=4, takes=6, seed=1, words={"buzz": (1800.0, 0.3)})
    (root / "tones" / "_unknown_").mkdir()
    for f in sorted((tmp_path / "u").glob("*/*.wav")):
        shutil.move(f, root / "tones" / "_unknown_" / f.name)
    for f in sorted(root.glob(f"tones/*/{synthetic}_*.wav")) if synthetic else []:
        f.rename(f.with_name("tts-espeak-" + f.name))
    build_dataset(root, "tones")
    return root / "tones.npz"


def test_towers_train_apart_and_serve_their_mean(tmp_path):
    """NetConfig.towers = 2: each tower learns from its own loss (the train model has a served and a fine softmax per
    tower), the served probabilities are the towers' mean, and the exported int8 model carries both towers' head
    features."""
    import keras

    from trainer.dataset import load_dataset
    from trainer.export import convert_int8, output_indices
    from trainer.nets import NetConfig, build_aux, serving_model, tower_count
    from trainer.train import TrainConfig, _train_core, pool_datasets

    data = pool_datasets([load_dataset(_tones_with_unknown(tmp_path))])
    net = NetConfig(arch="dscnn", width=8, blocks=2, embedding_dim=6, towers=2)
    train_m, serve_m = build_aux((98, 40), len(data.words), len(data.words) + 1, net)
    assert tower_count(serve_m) == 2 and len(train_m.outputs) == 5  # embedding, 2 served softmaxes, 2 fine ones
    x = data.stamps[:5]
    emb, probs = serve_m.predict(x, verbose=0)
    each = [keras.Model(serve_m.inputs, serve_m.get_layer(f"probs_t{i}").output).predict(x, verbose=0)
            for i in range(2)]
    assert emb.shape == (5, 12) and np.allclose(probs, (each[0] + each[1]) / 2, atol=1e-6)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two draws, not one net twice
    cfg = TrainConfig(epochs=2, copies=1, pool_copies=1, workers=1, batch=16, patience=5, noise_dir=None,
                      val_fraction=0.34, net=net, fine_min_clips=4, fine_aux_weight=0.5)
    model, history, tr_idx, *_ = _train_core(data, np.flatnonzero(data.split == "train"), cfg,
                                              np.random.default_rng(0), lambda m: None, 0.0)
    assert len(history["val_accuracy"]) == 2 and tower_count(model) == 2
    rep = data.stamps[tr_idx[:16]]
    assert serving_model(model, rep).outputs[0].shape[-1] == 2 * (6 + 2 * 8)  # per tower: embedding + two pools
    _, dim = output_indices(convert_int8(model, rep), len(data.words))
    assert dim == 2 * (6 + 2 * 8)


def test_reverse_gradient_is_identity_forward_and_negated_backward():
    import tensorflow as tf

    from trainer.nets import _reverse_gradient

    x = tf.constant([[0.5, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _reverse_gradient(x)
        loss = tf.reduce_sum(y * tf.constant([[1.0, 2.0, 3.0]]))
    assert np.allclose(y.numpy(), x.numpy())
    assert np.allclose(tape.gradient(loss, x).numpy(), [[-1.0, -2.0, -3.0]])
    with tf.GradientTape() as tape:  # a scale (DANN's ramp) scales the reversed gradient
        tape.watch(x)
        loss = tf.reduce_sum(_reverse_gradient(x, 0.25))
    assert np.allclose(tape.gradient(loss, x).numpy(), [[-0.25, -0.25, -0.25]])


def test_domain_adversary_trains_beside_and_is_not_served(tmp_path):
    """TrainConfig.domain_weight > 0: the train model gains a people-vs-synthetic softmax behind a reversed gradient;
    the served model is the plain one (embedding, probs) with no trace of it."""
    from trainer.dataset import load_dataset, speaker_kind
    from trainer.nets import NetConfig, build_aux
    from trainer.train import DOMAINS, TrainConfig, _train_core, pool_datasets

    data = pool_datasets([load_dataset(_tones_with_unknown(tmp_path, synthetic="spk[23]"))])
    assert {DOMAINS[speaker_kind(s)] for s in data.speakers} == {0, 1}
    net = NetConfig(arch="dscnn", width=8, blocks=2, embedding_dim=6)
    train_m, serve_m = build_aux((98, 40), len(data.words), len(data.words) + 1, net, n_domains=2)
    assert train_m.outputs[-1].shape[-1] == 2 and "domain" not in [l.name for l in serve_m.layers]
    cfg = TrainConfig(epochs=2, copies=1, pool_copies=1, workers=1, batch=16, patience=5, noise_dir=None,
                      val_fraction=0.34, net=net, fine_min_clips=4, fine_aux_weight=0.5, domain_weight=0.3)
    model, history, *_ = _train_core(data, np.flatnonzero(data.split == "train"), cfg, np.random.default_rng(0),
                                     lambda m: None, 0.0)
    assert len(history["val_accuracy"]) == 2
    assert len(model.outputs) == 2 and not any("domain" in l.name or "reverse" in l.name for l in model.layers)
    assert np.isfinite(history["loss"]).all()


def test_export_with_the_distance_gate_serves_what_it_calibrated(tiny_run, tmp_path, rng):
    """`export_run(gate="distance")` fits the gate on the int8 model: the runtime's closeness of the run's validation
    words is, value for value, the reference the gate stores; stamps of no word lie farther from every word than
    most of them; and a run whose datasets no longer hold its validation clips is refused in one line."""
    import shutil

    from shared.bundle import special_mask
    from shared.runtime import CnnModel, Recognizer
    from trainer.export import export_run

    root, run, info = tiny_run
    b = export_run(run, "tones", tmp_path / "tones", gate="distance")
    assert b.manifest.gate == "distance" and "distance.npz" in b.manifest.files
    assert 0.0 <= b.manifest.threshold <= 0.9 and "distance_val_in_vocab_accuracy" in b.manifest.metrics
    cnn = CnnModel(b)
    cal = np.load(run / "calib.npz", allow_pickle=False)
    emb, probs = cnn.infer(cal["val_stamps"])
    words = ~special_mask(b.manifest.vocabulary)[cal["val_labels"]]
    rows = probs[words][:, ~special_mask(b.manifest.vocabulary)].argmax(1)
    assert np.array_equal(np.sort(cnn.distance.closeness(emb[words], rows)), cnn.distance.ref_close)
    noise = rng.normal(0.0, 3.0, size=(20, *cal["val_stamps"].shape[1:])).astype(np.float32)
    n_emb, n_probs = cnn.infer(noise)
    n_close = cnn.distance.closeness(n_emb, n_probs[:, ~special_mask(b.manifest.vocabulary)].argmax(1))
    assert np.median(n_close) < np.median(cnn.distance.ref_close)
    dec = Recognizer([b.path]).classify(cal["val_stamps"][0])[0]
    assert dec.label in b.manifest.vocabulary
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    meta = json.loads((moved / "run.json").read_text())
    meta["data"]["val_speakers"] = sorted(set(meta["data"]["val_speakers"]) ^ {"spk0", "spk1"})
    (moved / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not the ones it was trained with"):
        export_run(moved, "tones", tmp_path / "other", gate="distance")
    assert not (tmp_path / "other").exists()


def test_a_student_learns_its_teachers_probabilities_not_only_the_words(tiny_run, tmp_path):
    """TrainConfig.teachers: the served target is (1 - distill) x the word + distill x the teachers' averaged
    probabilities. A teacher whose softmax names every word's neighbour (its last layer's columns rolled by one)
    teaches a student fitted with distill = 1 to say the neighbour on the held-out speaker, while distill = 0 learns
    the words (early stopping reads validation labels as the student is taught them); the teachers' probabilities are
    the mean of each one's; `_train_core` asks the teachers; a teacher with other words is refused by name."""
    import shutil

    import keras

    from trainer.dataset import load_dataset
    from trainer.nets import NetConfig
    from trainer.train import TrainConfig, _fit, _teacher_probs, _train_core, pool_datasets

    root, run, info = tiny_run
    rolled = tmp_path / "rolled"
    rolled.mkdir()
    shutil.copy(run / "run.json", rolled / "run.json")
    net = keras.models.load_model(run / "model.keras", compile=False)
    probs = net.get_layer("probs")
    kernel, bias = probs.get_weights()
    probs.set_weights([np.roll(kernel, 1, axis=1), np.roll(bias, 1)])  # word i's evidence now lights word i + 1
    net.save(rolled / "model.keras")

    data = pool_datasets([load_dataset(root / "tones.npz")])
    n, test = len(data.words), data.split == "test"
    x = data.stamps[test]
    own = net.predict(x, verbose=0)[1]
    first = keras.models.load_model(run / "model.keras", compile=False).predict(x, verbose=0)[1]
    (both,) = _teacher_probs([str(run), str(rolled)], data.words, [x], lambda m: None)
    assert np.allclose(both, (own + first) / 2, atol=1e-5)
    assert np.mean(own.argmax(1) == (data.labels[test] + 1) % n) >= 0.8  # the rolled teacher names the neighbour

    # the student keeps training's running statistics: what is measured here is the teaching, on the spans the
    # bounds below were seen with (refresh_batch_norm has tests of its own)
    cfg = TrainConfig(epochs=30, copies=1, workers=1, batch=8, lr=5e-3, patience=30, noise_dir=None,
                      net=NetConfig(arch="dscnn", width=12, blocks=2, embedding_dim=16), teachers=[str(rolled)],
                      bn_stats="trained")
    tr = np.flatnonzero(np.isin(data.speakers, ["spk0", "spk1"]))
    val = np.flatnonzero(data.speakers == "spk2")
    (soft,) = _teacher_probs([str(rolled)], data.words, [data.stamps[tr]], lambda m: None)
    clean = (data.stamps[tr], data.labels[tr], np.zeros(tr.size, np.int32), soft)

    def student(distill: float, y_val: np.ndarray) -> np.ndarray:
        model, _ = _fit(clean, clean, data.stamps[val], y_val, np.eye(n, dtype=np.float32),
                        dataclasses.replace(cfg, distill=distill), np.random.default_rng(0), lambda m: None)
        return model.predict(x, verbose=0)[1].argmax(1)

    # taught by the rolled teacher alone, the student names the neighbour on most of an unseen speaker's clips (how
    # many depends on the fixture's word spans: 0.6-0.85 seen), at least twice as often as the word itself (0.2-0.29
    # seen, with the fixture run's statistics as trained and as refreshed); without the teacher it names the word
    got = student(1.0, (data.labels[val] + 1) % n)
    neighbour, word = np.mean(got == (data.labels[test] + 1) % n), np.mean(got == data.labels[test])
    assert neighbour >= 0.6 and neighbour >= 2 * word
    assert np.mean(student(0.0, data.labels[val]) == data.labels[test]) >= 0.8
    for sees in ("copy", "clean"):  # the teachers judge each augmented copy, or only the clean clips it came from
        said: list[str] = []
        _, _, tr_idx, *_ = _train_core(data, np.flatnonzero(data.split == "train"),
                                       dataclasses.replace(cfg, epochs=1, val_fraction=0.34, teacher_sees=sees),
                                       np.random.default_rng(0), said.append, 0.0)
        stamps = tr_idx.size * (1 if sees == "clean" else 1 + cfg.copies)
        assert f"teacher {rolled}: probabilities of {stamps} stamps" in said
    for bad, message in ((dict(teacher_sees="both"), "teacher_sees 'both'"), (dict(distill=1.5), "distill 1.5")):
        with pytest.raises(ValueError, match=message):
            _train_core(data, np.flatnonzero(data.split == "train"), dataclasses.replace(cfg, **bad),
                        np.random.default_rng(0), said.append, 0.0)

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run / "model.keras", other / "model.keras")
    (other / "run.json").write_text(json.dumps({**info, "words": list(reversed(info["words"]))}))
    with pytest.raises(ValueError, match="other: its words differ"):
        _teacher_probs([str(other)], data.words, [x], lambda m: None)
    with pytest.raises(FileNotFoundError, match="no model.keras"):
        _teacher_probs([str(tmp_path)], data.words, [x], lambda m: None)
