"""The frontend: batch and streaming agree; stamps are fixed-size and gain-independent; the config hash is stable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.features import Frontend, FrontendConfig, make_stamp


@pytest.mark.parametrize("chunk", [1, 37, 160, 400, 1024, 4800])
def test_streaming_equals_batch(rng, chunk):
    fe = Frontend()
    x = rng.standard_normal(16000 + 123).astype(np.float32) * 0.1
    mel_b, en_b = fe.compute(x)
    st = fe.stream()
    parts = [st.push(x[i:i + chunk]) for i in range(0, x.size, chunk)]
    mel_s = np.concatenate([p[0] for p in parts])
    en_s = np.concatenate([p[1] for p in parts])
    assert mel_s.shape == mel_b.shape == (fe.n_frames(x.size), 40)
    np.testing.assert_allclose(mel_s, mel_b, rtol=0, atol=1e-4)
    np.testing.assert_allclose(en_s, en_b, rtol=0, atol=1e-4)
    assert st.frames_out == mel_b.shape[0]


def test_stamp_shape_centre_and_gain(rng):
    cfg = FrontendConfig()
    fe = Frontend(cfg)
    x = rng.standard_normal(8000).astype(np.float32) * 0.1
    mel, _ = fe.compute(x)
    s1 = make_stamp(mel, cfg)
    s2 = make_stamp(fe.compute(x * 0.01)[0], cfg)
    assert s1.shape == cfg.stamp_shape
    np.testing.assert_allclose(s1, s2, atol=1e-3)  # 40 dB quieter, same stamp
    T = mel.shape[0]
    off = (cfg.stamp_frames - T) // 2
    np.testing.assert_allclose(s1[off:off + T], mel - mel.mean(), atol=1e-5)
    assert np.all(s1[:off] == s1.min())


def test_long_segment_is_cropped_around_centre(rng):
    cfg = FrontendConfig()
    mel = rng.standard_normal((150, cfg.n_mels)).astype(np.float32)
    s = make_stamp(mel, cfg)
    start = (150 - cfg.stamp_frames) // 2
    np.testing.assert_allclose(s, mel[start:start + cfg.stamp_frames] - mel.mean(), atol=1e-5)


def test_config_hash_changes_with_any_field():
    base = FrontendConfig()
    assert base.hash == FrontendConfig.from_dict(base.to_dict()).hash
    assert base.hash != dataclasses.replace(base, n_mels=32).hash
    with pytest.raises(ValueError):
        FrontendConfig.from_dict({**base.to_dict(), "bogus": 1})
