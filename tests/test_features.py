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


def test_a_later_key_left_off_keeps_older_bundles_hash():
    """band_floor_db came in round 12: a manifest written before it (no such key) still matches the running frontend
    when the key is off, and using it is a different frontend."""
    base = FrontendConfig()
    older = {k: v for k, v in base.to_dict().items() if k != "band_floor_db"}
    assert FrontendConfig.from_dict(older).hash == base.hash
    assert dataclasses.replace(base, band_floor_db=20.0).hash != base.hash


def test_band_floor_makes_the_background_level_irrelevant(rng):
    """Flooring each band 20 dB under its loudest frame: the same word over a background 30 or 45 dB down gives one
    stamp (unfloored, two), and no band of the stamp spans more than 20 dB."""
    cfg = FrontendConfig()
    floored = dataclasses.replace(cfg, band_floor_db=20.0)
    word = rng.uniform(0.0, 2.0, (40, cfg.n_mels)).astype(np.float32)  # ln power, loud (within ~9 dB of each other)
    stamps = {}
    for down_db in (30.0, 45.0):
        bg = np.float32(-down_db / 4.343) + rng.uniform(-0.5, 0.5, (30, cfg.n_mels)).astype(np.float32)
        mel = np.concatenate([bg[:15], word, bg[15:]])
        stamps[down_db] = (make_stamp(mel, cfg), make_stamp(mel, floored))
    plain30, floor30 = stamps[30.0]
    plain45, floor45 = stamps[45.0]
    np.testing.assert_allclose(floor30, floor45, atol=1e-5)
    assert np.abs(plain30 - plain45).max() > 1.0
    T = word.shape[0] + 30
    off = (cfg.stamp_frames - T) // 2
    span_db = (floor30[off:off + T].max(axis=0) - floor30[off:off + T].min(axis=0)) * 4.343
    assert span_db.max() <= 20.0 + 1e-3


def test_pcen_stamps_read_a_steady_room_low_whatever_its_level_and_ignore_gain(rng):
    """PCEN stamps: a steady background reads low (under 0.4) in every band whether it sits 30 or 50 dB under the
    word (the mean-removed log-mel stamps differ by more than 1 between the two), the word's onset stands well above
    it, the same audio 40 dB quieter gives the same stamp, and a clip's stamp is the stamp of the same segment pushed
    through the streaming frontend."""
    cfg = dataclasses.replace(FrontendConfig(), pcen_ms=400.0)
    word = rng.uniform(0.0, 2.0, (40, cfg.n_mels)).astype(np.float32)
    stamps, rooms = {}, []
    for down_db in (30.0, 50.0):
        bg = np.float32(-down_db / 4.343) + rng.uniform(-0.1, 0.1, (30, cfg.n_mels)).astype(np.float32)
        mel = np.concatenate([bg[:20], word, bg[20:]])
        stamps[down_db] = (make_stamp(mel, cfg), make_stamp(mel, FrontendConfig()))
        off = (cfg.stamp_frames - mel.shape[0]) // 2
        rooms.append(stamps[down_db][0][off + 5:off + 20])
        assert stamps[down_db][0][off + 20].min() > 1.0  # the onset, in every band
    assert max(r.max() for r in rooms) < 0.4
    assert np.abs(stamps[30.0][1] - stamps[50.0][1]).max() > 1.0
    x = (0.05 * rng.standard_normal(16000)).astype(np.float32)
    x[6000:10000] += np.sin(2 * np.pi * 440 * np.arange(4000) / 16000).astype(np.float32)
    fe = Frontend(cfg)
    mel, _ = fe.compute(x)
    quiet, _ = fe.compute(x * np.float32(0.01))
    np.testing.assert_allclose(make_stamp(mel, cfg), make_stamp(quiet, cfg), atol=1e-3)
    stream = fe.stream()
    pushed = np.concatenate([stream.push(x[i:i + 320])[0] for i in range(0, x.size, 320)])
    np.testing.assert_allclose(make_stamp(pushed[10:80], cfg), make_stamp(mel[10:80], cfg), atol=1e-5)
    assert cfg.hash != FrontendConfig().hash


def test_stamp_floor_makes_digital_silence_a_quiet_room(rng):
    """Flooring the whole stamp 70 dB under its loudest value: the same word with digital silence around it (ln of the
    frontend's epsilon, 100 dB and more down) or with a room 75 dB down gives one stamp, while a room 40 dB down, which
    a microphone does hear, is left as it is."""
    cfg = FrontendConfig()
    floored = dataclasses.replace(cfg, stamp_floor_db=70.0)
    word = rng.uniform(0.0, 2.0, (40, cfg.n_mels)).astype(np.float32)

    def around(level: np.ndarray) -> np.ndarray:
        return np.concatenate([level[:15], word, level[15:]])

    digital = np.full((30, cfg.n_mels), np.log(cfg.log_eps), np.float32)
    room75 = np.float32(-75 / 4.343) + rng.uniform(-0.5, 0.5, (30, cfg.n_mels)).astype(np.float32)
    room40 = np.float32(-40 / 4.343) + rng.uniform(-0.5, 0.5, (30, cfg.n_mels)).astype(np.float32)
    np.testing.assert_allclose(make_stamp(around(digital), floored), make_stamp(around(room75), floored), atol=1e-5)
    assert np.abs(make_stamp(around(digital), cfg) - make_stamp(around(room75), cfg)).max() > 1.0
    np.testing.assert_allclose(make_stamp(around(room40), floored), make_stamp(around(room40), cfg), atol=1e-5)
    silent = make_stamp(around(digital), floored)
    assert (silent.max() - silent.min()) * 4.343 <= 70.0 + 1e-3
    assert dataclasses.replace(cfg, stamp_floor_db=70.0).hash != cfg.hash
