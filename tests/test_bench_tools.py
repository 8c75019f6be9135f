"""The benchmark's own tools: word error counting and stream making."""

from __future__ import annotations

import numpy as np

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
