"""The segmenter: the same machine offline and streaming; known-count splitting; silence gives nothing."""

from __future__ import annotations

import numpy as np
import pytest

from shared.features import Frontend
from shared.segment import Segment, SegmenterConfig, StreamSegmenter, segment_frames, split_into, word_span
from tests.conftest import tone_word


def _sentence(rng, n=5, gap=0.6, noise=0.002):
    sil = np.zeros(int(gap * 16000), np.float32)
    parts = [sil]
    truth = []
    pos = sil.size
    for i in range(n):
        w = tone_word(rng, seconds=0.3 + 0.05 * i, f0=150 + 30 * i)
        truth.append((pos / 16000, (pos + w.size) / 16000))
        parts += [w, sil]
        pos += w.size + sil.size
    x = np.concatenate(parts)
    return x + noise * rng.standard_normal(x.size).astype(np.float32), truth


def test_finds_each_word_near_its_true_span(rng):
    x, truth = _sentence(rng)
    fe = Frontend()
    _, energy = fe.compute(x)
    segs = segment_frames(energy, fcfg=fe.cfg)
    assert len(segs) == len(truth)
    for s, (a, b) in zip(segs, truth):
        sa, sb = s.seconds(fe.cfg)
        assert abs(sa - a) < 0.08 and abs(sb - b) < 0.12


def test_streaming_matches_offline_when_stream_starts_quiet(rng):
    x, truth = _sentence(rng, n=4)
    fe = Frontend()
    _, energy = fe.compute(x)
    offline = segment_frames(energy, fcfg=fe.cfg)
    st, seg = fe.stream(), StreamSegmenter(fcfg=fe.cfg)
    online = []
    for i in range(0, x.size, 512):
        online += seg.push(st.push(x[i:i + 512])[1])
    online += seg.flush()
    assert [(s.start, s.end) for s in online] == [(s.start, s.end) for s in offline]


def test_silence_and_steady_noise_give_no_words(rng):
    fe = Frontend()
    assert segment_frames(fe.compute(np.zeros(32000, np.float32))[1]) == []
    noise = (0.05 * rng.standard_normal(48000)).astype(np.float32)
    assert segment_frames(fe.compute(noise)[1]) == []


def test_split_into_known_count(rng):
    x, truth = _sentence(rng, n=6, gap=0.25)
    fe = Frontend()
    segs, cfg = split_into(fe.compute(x)[1], 6, fcfg=fe.cfg)
    assert segs is not None and len(segs) == 6
    segs, cfg = split_into(fe.compute(x)[1], 40, fcfg=fe.cfg)
    assert segs is None


def test_webrtc_option_finds_words(rng):
    """webrtcvad's decisions stand in for the energy ones: streaming, offline and for a single word's span, given the
    samples; frames without their samples are refused in one line."""
    x, truth = _sentence(rng, n=3)
    fe = Frontend()
    cfg = SegmenterConfig(vad="webrtc")
    seg = StreamSegmenter(cfg, fe.cfg)
    st = fe.stream()
    out = []
    for i in range(0, x.size, 800):
        chunk = x[i:i + 800]
        out += seg.push(st.push(chunk)[1], chunk)
    out += seg.flush()
    assert len(out) >= 1
    mel, energy = fe.compute(x)
    assert segment_frames(energy, cfg, fe.cfg, x) == out
    with pytest.raises(ValueError, match="webrtc"):
        segment_frames(energy, cfg, fe.cfg)
    one = x[int(truth[0][0] * 16000) - 3200:int(truth[0][1] * 16000) + 3200]
    m1, e1 = fe.compute(one)
    a, b = word_span(m1, e1, fe.cfg, cfg, one)
    assert 0 < a < b < m1.shape[0]


def test_noise_after_digital_silence_is_not_speech(rng):
    """Exact zeros (a virtual device, a padded file) must not pin the floor so low that noise looks like words."""
    fe = Frontend()
    noise = (0.02 * rng.standard_normal(3 * 16000)).astype(np.float32)
    x = np.concatenate([np.zeros(4 * 16000, np.float32), noise])
    st, seg = fe.stream(), StreamSegmenter(fcfg=fe.cfg)
    found = seg.push(st.push(x)[1]) + seg.flush()
    assert found == []
    assert segment_frames(fe.compute(x)[1], fcfg=fe.cfg) == []
    # a word after digital silence and noise is still found
    w = tone_word(rng, seconds=0.4)
    y = np.concatenate([x, w, np.zeros(8000, np.float32)])
    y[x.size:] += (0.02 * rng.standard_normal(y.size - x.size)).astype(np.float32)
    assert len(segment_frames(fe.compute(y)[1], fcfg=fe.cfg)) == 1


def test_stamp_keeps_a_soft_onset_the_segmenter_misses(rng):
    """'six': a 150 ms hiss above 4 kHz (which the segmenter's band does not hear) before the vowel. The segment starts
    at the vowel, but the stamp's context must still hold the hiss, or "six" becomes "ix"."""
    from shared.segment import clip_stamp, segment_mel, word_span

    fe = Frontend()
    quiet = 0.001 * rng.standard_normal(8000).astype(np.float32)
    t = np.arange(2400) / 16000
    hiss = (0.05 * np.sin(2 * np.pi * 5500 * t) * np.hanning(t.size)).astype(np.float32)
    vowel = tone_word(rng, seconds=0.3, f0=140)
    x = np.concatenate([quiet, hiss, vowel, quiet])
    mel, energy = fe.compute(x)
    start, end = word_span(mel, energy, fe.cfg)
    hiss_frames = range(8000 // 160, (8000 + hiss.size) // 160 - 2)
    assert start > hiss_frames[-1], "the segmenter is expected not to hear the hiss"
    kept = segment_mel(mel, start, end, fe.cfg)
    assert kept.shape[0] == end - start + fe.cfg.context_before + fe.cfg.context_after
    first = start - fe.cfg.context_before  # frame index of kept[0]
    assert first <= hiss_frames[len(hiss_frames) // 2]  # at least half of the hiss is in the stamp's context
    stamp = clip_stamp(x, fe)
    assert stamp.shape == fe.cfg.stamp_shape


def _frames_of(seconds: float) -> int:
    return int(round(seconds * 100))  # 10 ms hop


def test_a_clip_longer_than_a_stamp_keeps_its_word_not_its_centre(rng):
    """A noise burst 1.2 s before the word (a breath, a door): first-to-last segment spans 1.6 s, more than a stamp
    holds, and cropping that around its centre would cut the word. The word is the louder group of segments."""
    from shared.segment import word_span

    fe = Frontend()
    room = fe.cfg.stamp_frames - fe.cfg.context_before - fe.cfg.context_after
    quiet = lambda s: 0.001 * rng.standard_normal(int(s * 16000)).astype(np.float32)  # noqa: E731
    burst = (0.02 * rng.standard_normal(4000) * np.hanning(4000)).astype(np.float32)  # 250 ms, 20 dB under the word
    word = tone_word(rng, seconds=0.45, f0=150)
    for before in (True, False):
        parts = [quiet(0.3), burst, quiet(1.0), word, quiet(0.3)] if before else \
            [quiet(0.3), word, quiet(1.0), burst, quiet(0.3)]
        x = np.concatenate(parts)
        w0 = 0.3 + (0.25 + 1.0 if before else 0.0)
        mel, energy = fe.compute(x)
        segs = segment_frames(energy, fcfg=fe.cfg)
        assert len(segs) == 2 and segs[-1].end - segs[0].start > room, "the burst is expected to be a segment"
        start, end = word_span(mel, energy, fe.cfg)
        assert abs(start - _frames_of(w0)) <= 8 and abs(end - _frames_of(w0 + 0.45)) <= 15, (before, start, end)


def test_the_parts_of_one_word_stay_one_word(rng):
    """A word the segmenter hears as two parts (a stop's closure) is taken whole, weak part and all, both
    when it fits in a stamp and when it is longer than a stamp holds: only a long pause makes word_span choose."""
    from shared.segment import WORD_GAP, word_span

    fe = Frontend()
    room = fe.cfg.stamp_frames - fe.cfg.context_before - fe.cfg.context_after
    quiet = lambda s: 0.001 * rng.standard_normal(int(s * 16000)).astype(np.float32)  # noqa: E731
    for first, second in ((0.25, 0.15), (0.5, 0.25)):
        x = np.concatenate([quiet(0.4), tone_word(rng, seconds=first), quiet(0.12),
                            0.3 * tone_word(rng, seconds=second), quiet(0.4)])
        mel, energy = fe.compute(x)
        segs = segment_frames(energy, fcfg=fe.cfg)
        assert len(segs) == 2 and segs[1].start - segs[0].end < WORD_GAP
        assert (segs[1].end - segs[0].start > room) == (first == 0.5)
        assert word_span(mel, energy, fe.cfg) == (segs[0].start, segs[1].end)


def test_release_ends_a_word_that_noise_would_keep_open():
    """Clatter 8 dB above the floor (over off_db, under on_db) but 32 dB under the word keeps a word open on the floor
    rule alone; the release rule (quiet = far under the word's loudest frame) closes it one hang-over after the word,
    at the word's end."""
    floor, word, clatter = -60.0, -20.0, -52.0
    e = np.concatenate([np.full(300, floor), np.full(40, word), np.full(60, clatter), np.full(100, floor)])
    ends = {}
    for release in (0.0, 20.0):
        seg = StreamSegmenter(SegmenterConfig(release_db=release))
        found = seg.push(e) + seg.flush()
        assert len(found) == 1 and found[0].start == 300
        ends[release] = found[0].end
    assert ends[20.0] == 340  # the word's own last frame
    assert ends[0.0] == 400  # the clatter's last frame


def test_a_click_in_the_hang_over_does_not_keep_a_word_open():
    """Single loud frames (a spoon on a plate) every 80 ms after a word: each resets the hang-over when one frame of
    sound is enough (keep_ms 10), none does when sound must last 30 ms."""
    floor, word = -60.0, -20.0
    tail = np.full(120, floor)
    tail[4::8] = -35.0  # sound, and within release_db (20) of the word's peak
    e = np.concatenate([np.full(300, floor), np.full(40, word), tail, np.full(100, floor)])
    ends = {}
    for keep in (10, 30):
        seg = StreamSegmenter(SegmenterConfig(keep_ms=keep))
        found = seg.push(e) + seg.flush()
        assert found and found[0].start == 300
        ends[keep] = found[0]
    assert ends[30].end == 340 and not ends[30].forced
    assert ends[10].forced  # held open by the clicks until the 1 s cap


def test_a_capped_word_makes_the_floor_forget_quieter_noise():
    """Noise that steps up 12 dB for good looks like a word to a floor that remembers the quiet before it; once the
    1 s cap cuts that "word", the floor is measured on the new noise, and the next real word is cut alone."""
    e = np.concatenate([np.full(300, -60.0), np.full(150, -47.0), np.full(30, -20.0), np.full(150, -47.0)])
    seg = StreamSegmenter(SegmenterConfig())
    found = seg.push(e) + seg.flush()
    # the step itself, cut by the cap; then the word alone (the floor no longer takes the new noise for speech)
    assert found == [Segment(300, 400, forced=True), Segment(450, 480)]
    seg = StreamSegmenter(SegmenterConfig(cap_resets_floor=False))
    kept = seg.push(e) + seg.flush()
    assert kept[1].start == 400  # without the rule, the noise after the cap runs straight into the word
