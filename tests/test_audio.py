"""The audio reader and the atomic writers."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from shared.audio import AudioError, atomic_write_bytes, read_audio, write_wav_atomic


def test_any_rate_depth_and_channels_become_mono_16k(tmp_path, rng):
    x = (0.3 * rng.standard_normal((8000, 2))).astype(np.float32)
    for rate, subtype in [(8000, "PCM_U8"), (22050, "PCM_24"), (48000, "FLOAT")]:
        f = tmp_path / f"a{rate}.wav"
        sf.write(f, x, rate, subtype=subtype)
        y = read_audio(f)
        assert y.dtype == np.float32 and y.ndim == 1
        assert abs(y.size - round(8000 * 16000 / rate)) <= 2


def test_absurd_float_samples_are_refused_in_one_line(tmp_path):
    f = tmp_path / "huge.wav"
    sf.write(f, np.full(1600, 1e30, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as e:
        read_audio(f)
    assert str(e.value).startswith(str(f)) and "full scale" in str(e.value)


def test_atomic_writes_never_clobber_and_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        w = write_wav_atomic(tmp_path / "rec.wav", np.zeros(160, np.float32))
        with pytest.raises(FileExistsError):
            write_wav_atomic(w, np.ones(160, np.float32) * 0.5)
        assert np.all(read_audio(w) == 0)  # the first recording survives
        b = atomic_write_bytes(tmp_path / "x.bin", b"abc")
        for f in (w, b):
            assert stat.S_IMODE(f.stat().st_mode) == 0o644
        assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.wav", "x.bin"]  # no temporary left behind
    finally:
        os.umask(old)


def test_level_issues_name_what_costs_accuracy():
    from shared.audio import level_issues

    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(np.arange(8000) / 5) + 0.001 * rng.standard_normal(8000)).astype(np.float32)
    assert level_issues(x) == []
    assert level_issues(x * 0.01) == ["quiet"]  # peak -50 dBFS
    assert level_issues(np.clip(x * 10, -1, 1)) == ["clipped"]
    assert level_issues(np.concatenate([x, np.zeros(800, np.float32)])) == ["zero-padded"]  # 50 ms at the end
    assert level_issues(np.concatenate([x, np.zeros(700, np.float32)])) == []
    assert level_issues(np.zeros(100, np.float32)) == ["quiet", "zero-padded"]
