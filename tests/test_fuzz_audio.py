"""Fuzzing the one audio reader: malformed files either read as audio or raise AudioError with one line.

Mutations of real wav/flac/ogg bytes (flipped bytes, truncation, header fields overwritten, random garbage) are the
hostile inputs every command meets first, since every command reads audio through shared.audio.read_audio.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.audio import AudioError, read_audio


def _valid_bytes(fmt: str, subtype: str, rate: int, channels: int) -> bytes:
    t = np.arange(rate // 4) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x = np.repeat(x[:, None], channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


SEEDS = [
    _valid_bytes("WAV", "PCM_16", 16000, 1),
    _valid_bytes("WAV", "PCM_U8", 8000, 2),
    _valid_bytes("WAV", "PCM_24", 44100, 1),
    _valid_bytes("WAV", "FLOAT", 22050, 6),
    _valid_bytes("FLAC", "PCM_16", 48000, 1),
    _valid_bytes("OGG", "VORBIS", 16000, 1),
]

mutation = st.tuples(
    st.integers(0, len(SEEDS) - 1),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=12),  # byte overwrites
    st.one_of(st.none(), st.integers(0, 3000)),  # truncate at
    st.binary(max_size=64),  # garbage appended or used alone
    st.booleans(),  # garbage only
)


def mutate(m: tuple) -> bytes:
    """One drawn `mutation` -> the bytes of a malformed file."""
    seed_i, edits, cut, garbage, garbage_only = m
    data = bytearray(garbage if garbage_only else SEEDS[seed_i])
    for pos, val in edits:
        if pos < len(data):
            data[pos] = val
    if cut is not None:
        data = data[:cut]
    if not garbage_only:
        data += garbage
    return bytes(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(m=mutation)
def test_malformed_audio_reads_or_fails_in_one_line(tmp_path, m):
    f = tmp_path / "fuzz.wav"
    f.write_bytes(mutate(m))
    try:
        x = read_audio(f)
    except AudioError as exc:
        msg = str(exc)
        assert msg.startswith(str(f)) and "\n" not in msg
    else:
        assert x.dtype == np.float32 and x.ndim == 1 and np.all(np.isfinite(x))
