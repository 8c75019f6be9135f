"""The one voice-activity segmenter: finds words in a stream of frames, for the offline splitter and the daemon.

Energy against an adaptive noise floor (the minimum over the last few seconds), hysteresis (a higher threshold to
start a word than to stay in it), a hang-over before a word ends, and minimum/maximum word lengths. webrtcvad can
replace the energy decision (`vad="webrtc"`). The offline helpers run the very same streaming machine over a clip.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from shared.features import Frontend, FrontendConfig, make_stamp


@dataclass(frozen=True)
class SegmenterConfig:
    """Thresholds in dB above the noise floor and durations in milliseconds."""

    vad: str = "energy"  # "energy" or "webrtc"
    on_db: float = 12.0  # a word starts when energy exceeds floor + on_db ...
    start_ms: int = 30  # ... for this long
    off_db: float = 6.0  # a frame below floor + off_db is quiet
    hangover_ms: int = 120  # a word ends after this much quiet
    min_word_ms: int = 100
    max_word_ms: int = 1000
    floor_window_ms: int = 3000  # the noise floor is the quietest frame in this window
    abs_floor_db: float = -80.0  # digital silence does not drag the floor below this
    webrtc_mode: int = 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown segmenter keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Segment:
    """A word's frames [start, end) on the stream's frame clock (frame t starts at sample t * hop)."""

    start: int
    end: int
    forced: bool = False  # ended by max_word_ms, not by silence

    def seconds(self, fcfg: FrontendConfig) -> tuple[float, float]:
        hop = fcfg.hop_length / fcfg.sample_rate
        return self.start * hop, self.end * hop + (fcfg.win_length - fcfg.hop_length) / fcfg.sample_rate


class _WebrtcDecider:
    """webrtcvad decisions, one per hop of audio (the frame grid's hop is 10 ms, a size webrtcvad accepts)."""

    def __init__(self, mode: int, fcfg: FrontendConfig) -> None:
        import webrtcvad  # optional dependency, imported only when chosen

        if fcfg.sample_rate not in (8000, 16000, 32000, 48000) or fcfg.hop_length * 100 != fcfg.sample_rate:
            raise ValueError("webrtcvad needs 10 ms hops at 8/16/32/48 kHz")
        self.vad = webrtcvad.Vad(mode)
        self.rate = fcfg.sample_rate
        self.hop = fcfg.hop_length
        self.buf = np.zeros(0, np.int16)

    def push(self, x: np.ndarray) -> list[bool]:
        pcm = (np.clip(np.asarray(x, np.float32), -1, 1) * 32767).astype(np.int16)
        self.buf = np.concatenate([self.buf, pcm])
        n = self.buf.size // self.hop
        out = [self.vad.is_speech(self.buf[i * self.hop:(i + 1) * self.hop].tobytes(), self.rate) for i in range(n)]
        self.buf = self.buf[n * self.hop:]
        return out


class StreamSegmenter:
    """Feed it frames as they come (`push`); it returns the words that ended. `flush` ends the stream."""

    def __init__(self, cfg: SegmenterConfig | None = None, fcfg: FrontendConfig | None = None,
                 initial_floor_db: float | None = None) -> None:
        self.cfg = cfg or SegmenterConfig()
        self.fcfg = fcfg or FrontendConfig()
        ms = 1000.0 * self.fcfg.hop_length / self.fcfg.sample_rate
        c = self.cfg
        self.start_frames = max(1, round(c.start_ms / ms))
        self.hang_frames = max(1, round(c.hangover_ms / ms))
        self.min_frames = max(1, round(c.min_word_ms / ms))
        self.max_frames = max(self.min_frames + 1, round(c.max_word_ms / ms))
        self.window = max(1, round(c.floor_window_ms / ms))
        self.webrtc = _WebrtcDecider(c.webrtc_mode, self.fcfg) if c.vad == "webrtc" else None
        if c.vad not in ("energy", "webrtc"):
            raise ValueError(f"vad must be 'energy' or 'webrtc', not {c.vad!r}")
        self._decisions: deque[bool] = deque()
        self._mins: deque[tuple[int, float]] = deque()  # monotonic queue for the running minimum
        self._primed = initial_floor_db
        self.t = 0  # index of the next frame
        self.in_word = False
        self.run_on = 0
        self.quiet = 0
        self.start = 0
        self.floor_db = initial_floor_db if initial_floor_db is not None else c.abs_floor_db

    def push(self, energy_db: np.ndarray, audio: np.ndarray | None = None) -> list[Segment]:
        """Process frames; with vad='webrtc' also pass the audio samples that produced them."""
        if self.webrtc is not None:
            if audio is None:
                raise ValueError("vad='webrtc' needs the audio samples")
            self._decisions.extend(self.webrtc.push(audio))
        out: list[Segment] = []
        for e in np.asarray(energy_db, dtype=np.float64):
            seg = self._step(float(e))
            if seg is not None:
                out.append(seg)
        return out

    def flush(self) -> list[Segment]:
        """End of stream: a word still open ends here."""
        if self.in_word:
            self.in_word = False
            end = self.t - self.quiet
            if end - self.start >= self.min_frames:
                return [Segment(self.start, end)]
        return []

    @property
    def speaking(self) -> bool:
        return self.in_word

    def _update_floor(self, e: float) -> None:
        e = max(e, self.cfg.abs_floor_db)
        while self._mins and self._mins[-1][1] >= e:
            self._mins.pop()
        self._mins.append((self.t, e))
        while self._mins[0][0] <= self.t - self.window:
            self._mins.popleft()
        floor = self._mins[0][1]
        self.floor_db = floor if self._primed is None else min(floor, self._primed)

    def _step(self, e: float) -> Segment | None:
        c = self.cfg
        self._update_floor(e)
        if self.webrtc is not None:
            voiced = self._decisions.popleft() if self._decisions else False
            loud, quiet = voiced, not voiced
        else:
            loud = e > self.floor_db + c.on_db
            quiet = e < self.floor_db + c.off_db
        t = self.t
        self.t += 1
        if not self.in_word:
            self.run_on = self.run_on + 1 if loud else 0
            if self.run_on >= self.start_frames:
                self.in_word, self.start, self.quiet, self.run_on = True, t - self.start_frames + 1, 0, 0
            return None
        self.quiet = self.quiet + 1 if quiet else 0
        if self.quiet >= self.hang_frames:
            self.in_word = False
            end = t - self.quiet + 1
            return Segment(self.start, end) if end - self.start >= self.min_frames else None
        if t + 1 - self.start >= self.max_frames:
            self.in_word = False
            return Segment(self.start, t + 1, forced=True)
        return None


def segment_frames(energy_db: np.ndarray, cfg: SegmenterConfig | None = None, fcfg: FrontendConfig | None = None,
                   audio: np.ndarray | None = None) -> list[Segment]:
    """Offline: run the streaming machine over a whole clip, its floor primed with the clip's quiet level."""
    cfg = cfg or SegmenterConfig()
    e = np.asarray(energy_db, dtype=np.float64)
    prime = float(np.percentile(np.maximum(e, cfg.abs_floor_db), 5)) if e.size else None
    seg = StreamSegmenter(cfg, fcfg, initial_floor_db=prime)
    return seg.push(e, audio) + seg.flush()


def split_into(energy_db: np.ndarray, n_words: int, base: SegmenterConfig | None = None,
               fcfg: FrontendConfig | None = None) -> tuple[list[Segment], SegmenterConfig] | tuple[None, None]:
    """Find settings that cut a recording into exactly `n_words` words (the splitter knows how many there are).

    Tries thresholds and hang-overs nearest the defaults first; returns (segments, config) or (None, None).
    """
    base = base or SegmenterConfig()
    hangovers = [base.hangover_ms, 200, 300, 80, 450, 60, 600]
    ons = [base.on_db, 15, 9, 18, 7, 21, 24, 5, 28, 4, 32]
    for on in ons:
        for hang in hangovers:
            cfg = dataclasses.replace(base, on_db=float(on), off_db=float(min(base.off_db, on / 2)),
                                      hangover_ms=int(hang), max_word_ms=max(base.max_word_ms, 1500))
            segs = segment_frames(energy_db, cfg, fcfg)
            if len(segs) == n_words:
                return segs, cfg
    return None, None


def word_span(mel: np.ndarray, energy_db: np.ndarray, fcfg: FrontendConfig,
              cfg: SegmenterConfig | None = None) -> tuple[int, int]:
    """The frames of the one word in a single-word clip: from the first segment's start to the last one's end.

    A clip in which nothing stands out (silence, or all speech) is taken whole.
    """
    segs = segment_frames(energy_db, cfg, fcfg)
    return (segs[0].start, segs[-1].end) if segs else (0, mel.shape[0])


def clip_stamp(x: np.ndarray, frontend: Frontend, cfg: SegmenterConfig | None = None, shift: int = 0) -> np.ndarray:
    """A single-word clip -> its stamp, by the same segment-then-stamp path the daemon uses."""
    mel, energy = frontend.compute(x)
    start, end = word_span(mel, energy, frontend.cfg, cfg)
    return make_stamp(segment_mel(mel, start, end, frontend.cfg), frontend.cfg, shift=shift)


def segment_mel(mel: np.ndarray, start: int, end: int, fcfg: FrontendConfig) -> np.ndarray:
    """The frames of a segment with `context_frames` either side, clamped to what exists."""
    a = max(0, start - fcfg.context_frames)
    b = min(mel.shape[0], end + fcfg.context_frames)
    return mel[a:b]
