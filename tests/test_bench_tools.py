"""The benchmark's own tools: word error counting and stream making."""

from __future__ import annotations

import numpy as np
import pytest

from bench.streams import mix_noise, word_errors


def test_word_errors_counts_each_kind():
    e = word_errors("one two three four".split(), "one too three four five".split())
    assert (e.substitutions, e.deletions, e.insertions, e.n_ref) == (1, 0, 1, 4)
    e = word_errors("one two three".split(), "three".split())
    assert (e.substitutions, e.deletions, e.insertions) == (0, 2, 0)
    assert word_errors([], []).wer == 0.0


def test_mix_noise_hits_the_snr(rng):
    x = np.zeros(16000, np.float32)
    x[4000:8000] = 0.2 * np.sin(np.arange(4000) * 0.05)
    noise = rng.standard_normal(5000).astype(np.float32)
    y = mix_noise(x, noise, 10.0, rng)
    n = y - x
    speech_rms = np.sqrt(np.mean(x[4000:8000] ** 2))
    snr = 20 * np.log10(speech_rms / np.sqrt(np.mean(n ** 2)))
    assert abs(snr - 10.0) < 0.5


def test_epoch_feeds_train_the_same_network(rng):
    """bench.epoch_feed times two feeds; the comparison means something only if both train the same thing: the same
    batches in the same order with the same sample weights (the graphs differ, so the floats agree only closely)."""
    pytest.importorskip("tensorflow")
    from bench.epoch_feed import FEEDS, one_epoch, random_batch, recipe_net

    x, targets, _ = random_batch(192, seed=1)
    weights = rng.uniform(0.2, 3.0, 192).astype(np.float32)
    start = recipe_net(seed=3).get_weights()
    after, loss = {}, {}
    for feed in FEEDS:
        model = recipe_net(seed=3)
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), start))
        seconds, loss[feed] = one_epoch(model, feed, x, targets, weights, batch=64)
        assert seconds > 0
        after[feed] = model.get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(after["numpy"], start)) > 1e-2  # the epoch trained
    assert loss["dataset"] == pytest.approx(loss["numpy"], rel=1e-5)
    for a, b in zip(after["numpy"], after["dataset"]):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # the loss does see the weights and the order: other weights, or the batches reversed, give another loss
    _, reweighted = one_epoch(recipe_net(seed=3), "dataset", x, targets, np.ones(192, np.float32), batch=64)
    order = np.r_[128:192, 64:128, 0:64]
    _, reordered = one_epoch(recipe_net(seed=3), "numpy", x[order], [t[order] for t in targets], weights[order], 64)
    assert reweighted != pytest.approx(loss["numpy"], rel=1e-3)
    assert reordered != pytest.approx(loss["numpy"], rel=1e-3)
    with pytest.raises(ValueError, match="unknown feed"):
        one_epoch(recipe_net(), "generator", x, targets, weights, batch=64)
