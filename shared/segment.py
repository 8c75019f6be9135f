"""The one voice-activity segmenter: finds words in a stream of frames, for the offline splitter and the daemon.

Energy against an adaptive noise floor (the minimum over the last few seconds), hysteresis (a higher threshold to
start a word than to stay in it), a hang-over before a word ends, and minimum/maximum word lengths. For noisy rooms a
word also goes quiet far under its own peak, clicks do not restart its hang-over, and a word cut by the length cap
makes the floor forget the quieter past (see SegmenterConfig). webrtcvad can
replace the energy decision (`vad="webrtc"`). The offline helpers run the very same streaming machine over a clip.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from shared.features import DictConfig, Frontend, FrontendConfig, make_stamp


@dataclass(frozen=True)
class SegmenterConfig(DictConfig):
    """Thresholds in dB above the noise floor and durations in milliseconds."""

    vad: str = "energy"  # "energy" or "webrtc"
    # a word starts when energy exceeds floor + on_db ... (9 since round 25: in noise 12 missed words the model
    # would have taken, and the noise-only hour gave no more false words; models/README.md)
    on_db: float = 9.0
    start_ms: int = 30  # ... for this long
    off_db: float = 6.0  # a frame below floor + off_db is quiet
    hangover_ms: int = 120  # a word ends after this much quiet
    keep_ms: int = 30  # in a word, sound resets the hang-over only after this long (a clatter's click does not)
    cap_resets_floor: bool = True  # a word cut by max_word_ms makes the floor forget the frames before it
    release_db: float = 20.0  # a frame this far under the word's loudest one is quiet too (0 = off): clatter after
    # a word does not hold it open
    min_word_ms: int = 100
    max_word_ms: int = 1000
    floor_window_ms: int = 3000  # the noise floor is the quietest frame in this window
    abs_floor_db: float = -80.0  # digital silence does not drag the floor below this
    webrtc_mode: int = 2



@dataclass(frozen=True)
class Segment:
    """A word's frames [start, end) on the stream's frame clock (frame t starts at sample t * hop)."""

    start: int
    end: int
    forced: bool = False  # ended by max_word_ms, not by silence

    def seconds(self, fcfg: FrontendConfig) -> tuple[float, float]:
        hop = fcfg.hop_length / fcfg.sample_rate
        return self.start * hop, self.end * hop + (fcfg.win_length - fcfg.hop_length) / fcfg.sample_rate


SETTLE = 3  # frames: a 25 ms window spans 2.5 hops, so 3 frames from digital silence a frame is all sound


def settled_frames(energy_db: np.ndarray, abs_floor_db: float) -> np.ndarray:
    """Mask of frames that are live (not digital silence) with SETTLE live frames either side."""
    dead = np.asarray(energy_db) <= abs_floor_db + 1.0
    if not dead.any():
        return ~dead
    near = np.convolve(dead.astype(np.int32), np.ones(2 * SETTLE + 1, np.int32), mode="same") > 0
    return ~near


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
        self.keep_frames = max(1, round(c.keep_ms / ms))
        self.min_frames = max(1, round(c.min_word_ms / ms))
        self.max_frames = max(self.min_frames + 1, round(c.max_word_ms / ms))
        self.window = max(1, round(c.floor_window_ms / ms))
        self.webrtc = _WebrtcDecider(c.webrtc_mode, self.fcfg) if c.vad == "webrtc" else None
        if c.vad not in ("energy", "webrtc"):
            raise ValueError(f"vad must be 'energy' or 'webrtc', not {c.vad!r}")
        self._decisions: deque[bool] = deque()
        self._mins: deque[tuple[int, float]] = deque()  # monotonic queue for the running minimum
        self._recent: deque[tuple[int, float, bool]] = deque(maxlen=2 * SETTLE + 1)
        self._dead = 0  # frames in _recent that are not live
        self._primed = initial_floor_db
        self.t = 0  # index of the next frame
        self.in_word = False
        self.run_on = 0
        self.quiet = 0
        self.loud_run = 0  # sounding frames in a row inside a word
        self.start = 0
        self.peak_db = -np.inf
        self.floor_db = initial_floor_db if initial_floor_db is not None else c.abs_floor_db

    def feed_audio(self, audio: np.ndarray) -> None:
        """vad='webrtc': the samples behind frames still to be pushed (the daemon feeds a chunk's samples once, then
        pushes its frames one at a time); nothing to do for the energy VAD."""
        if self.webrtc is not None:
            self._decisions.extend(self.webrtc.push(audio))

    def push(self, energy_db: np.ndarray, audio: np.ndarray | None = None) -> list[Segment]:
        """Process frames; with vad='webrtc' also pass the audio samples that produced them, here or before with
        `feed_audio`."""
        if audio is not None:
            self.feed_audio(audio)
        if self.webrtc is not None and len(self._decisions) < len(energy_db):
            raise ValueError("vad='webrtc' needs the audio samples behind the frames (push(frames, audio))")
        out: list[Segment] = []
        for e in np.asarray(energy_db, dtype=np.float64).tolist():
            seg = self._step(e)
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
        # Digital silence (exact zeros: a virtual device, a zero-padded file) says nothing about the room's noise, and
        # frames straddling its edges are only partly sound. Letting either into the window would drag the floor far
        # below the noise that follows, which would then look like speech. So a frame joins the window only once it
        # and SETTLE frames either side of it are live (a delay of SETTLE frames, 30 ms).
        live = e > self.cfg.abs_floor_db + 1.0
        if len(self._recent) == 2 * SETTLE + 1 and not self._recent[0][2]:
            self._dead -= 1  # about to drop out of the window
        self._recent.append((self.t, e, live))
        self._dead += not live
        if len(self._recent) == 2 * SETTLE + 1:
            t0, e0, _ = self._recent[SETTLE]
            if not self._dead:
                while self._mins and self._mins[-1][1] >= e0:
                    self._mins.pop()
                self._mins.append((t0, e0))
        while self._mins and self._mins[0][0] <= self.t - self.window:
            self._mins.popleft()
        if self._mins:
            floor = self._mins[0][1]
        else:  # nothing settled yet (stream start, or after digital silence): be cautious, no word starts on noise
            floor = max((x for _, x, flag in self._recent if flag), default=self.cfg.abs_floor_db)
        self.floor_db = floor if self._primed is None else min(floor, self._primed)

    def _step(self, e: float) -> Segment | None:
        c = self.cfg
        self._update_floor(e)
        if self.webrtc is not None:
            voiced = self._decisions.popleft() if self._decisions else False
            loud, quiet = voiced, not voiced
        else:
            loud = e > self.floor_db + c.on_db
            quiet = e < self.floor_db + c.off_db or (c.release_db > 0 and e < self.peak_db - c.release_db)
        t = self.t
        self.t += 1
        if not self.in_word:
            self.run_on = self.run_on + 1 if loud else 0
            if self.run_on >= self.start_frames:
                self.in_word, self.start, self.quiet, self.run_on = True, t - self.start_frames + 1, 0, 0
                self.peak_db, self.loud_run = e, 0
            return None
        self.peak_db = max(self.peak_db, e)
        # a sounding frame counts as quiet until keep_frames of them in a row show the word goes on
        self.loud_run = 0 if quiet else self.loud_run + 1
        self.quiet = 0 if self.loud_run >= self.keep_frames else self.quiet + 1
        if self.quiet >= self.hang_frames:
            self.in_word = False
            end = t - self.quiet + 1
            return Segment(self.start, end) if end - self.start >= self.min_frames else None
        if t + 1 - self.start >= self.max_frames:
            # A "word" this long is mostly noise that got louder than the floor remembers (a tap turned on, dishes):
            # the floor forgets what came before it, so it is measured on the new noise from here on.
            self.in_word = False
            while c.cap_resets_floor and self._mins and self._mins[0][0] < self.start:
                self._mins.popleft()
            return Segment(self.start, t + 1, forced=True)
        return None


def segment_frames(energy_db: np.ndarray, cfg: SegmenterConfig | None = None, fcfg: FrontendConfig | None = None,
                   audio: np.ndarray | None = None) -> list[Segment]:
    """Offline: run the streaming machine over a whole clip, its floor primed with the clip's quiet level."""
    cfg = cfg or SegmenterConfig()
    e = np.asarray(energy_db, dtype=np.float64)
    live = e[settled_frames(e, cfg.abs_floor_db)]  # digital silence and its edges excluded, as in the stream
    prime = float(np.percentile(live, 5)) if live.size else None
    seg = StreamSegmenter(cfg, fcfg, initial_floor_db=prime)
    return seg.push(e, audio) + seg.flush()


@dataclass(frozen=True)
class SplitQuality:
    """How much to trust a known-count split: `doubtful` with the reasons, the score margin per word."""

    doubtful: bool = False
    reasons: tuple[str, ...] = ()
    score: float = 0.0


# Known-count splitting: a search over whole segmentations, not a segmenter setting that happens to give n.
_SMOOTH = 7  # median filter (frames) on the energy: a key click or a lip smack of a few ms does not survive it
_FLOOR_WIN = 300  # frames: the noise floor is a low percentile of the energy in this window around each frame
_FLOOR_PCT = 10.0
_CAP_DB = 20.0  # a frame counts at most this far above the floor (a loud clatter is not "more word")
_THETA_DB = 8.0  # a frame this far above the floor is as likely word as pause
_GAP = 4  # frames between two words at least
_MIN_L, _MAX_L = 8, 150  # hard word lengths in frames (80 ms .. 1.5 s)
_SOFT_LO, _SOFT_HI = 15, 100  # plausible word lengths: 0.15 .. 1.0 s, penalised linearly outside
_SHORT_COST, _LONG_COST = 12.0, 4.0  # per frame short of / beyond the plausible range
_EXTEND_DB = 3.0  # a word's edges grow back over frames this far above the floor (fricatives, soft tails)
_EXTEND_MAX = 15
_BRIDGE = 3
_CLOSURE = 12
_DIP_DB = 10.0  # between two words the energy falls below the threshold or this far below both peaks
_PERTURB_DB = 3.0  # the threshold is moved by this much to test the split's stability
_LOW_BANDS = 18  # mel bands up to ~1 kHz (of 40, 60 Hz .. 4 kHz)


def _median_smooth(e: np.ndarray, k: int) -> np.ndarray:
    if e.size < k:
        return e.copy()
    pad = np.pad(e, (k // 2, k // 2), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, k), axis=1)


def _noise_floor(e: np.ndarray, abs_floor: float) -> np.ndarray:
    """A floor that follows level drift: the low percentile of the energy in a window around each frame."""
    e = np.maximum(e, abs_floor)
    T = e.size
    if T <= _FLOOR_WIN:
        return np.full(T, np.percentile(e, _FLOOR_PCT))
    step = 25
    centres = np.arange(0, T, step)
    vals = np.array([np.percentile(e[max(0, c - _FLOOR_WIN // 2):c + _FLOOR_WIN // 2], _FLOOR_PCT) for c in centres])
    return np.interp(np.arange(T), centres, vals)


def _best_words(score: np.ndarray, n: int) -> tuple[list[tuple[int, int]], float] | None:
    """Exactly n non-overlapping intervals [a, b) at least _GAP apart maximising the sum of `score` inside them plus
    the length prior; dynamic programming over (words placed, frames used)."""
    T = score.size
    if n <= 0 or T < n * _MIN_L + (n - 1) * _GAP:
        return None
    C = np.concatenate([[0.0], np.cumsum(score)])
    Ls = np.arange(_MIN_L, min(_MAX_L, T) + 1)
    prior = -_SHORT_COST * np.maximum(0, _SOFT_LO - Ls) - _LONG_COST * np.maximum(0, Ls - _SOFT_HI)
    NEG = -1e18
    G = np.zeros(T + 1)  # G[p]: best with k-1 words all ended by frame p
    choice = np.zeros((n, T + 1), np.int32)  # length of the word ending at t, 0 = no word ends at t
    for k in range(n):
        gap = 0 if k == 0 else _GAP
        F = np.full(T + 1, NEG)
        bestL = np.zeros(T + 1, np.int32)
        for L, pr in zip(Ls, prior):
            lo = L + gap  # t - L - gap >= 0
            if lo > T:
                break
            cand = G[:T + 1 - lo] + (C[lo:] - C[gap:T + 1 - L]) + pr
            tgt = F[lo:]
            better = cand > tgt
            tgt[better] = cand[better]
            bestL[lo:][better] = L
        G = np.maximum.accumulate(F)  # best with k+1 words, the last ending by p
        choice[k] = np.where(F >= G - 1e-9, bestL, 0)
        if G[-1] <= NEG / 2:
            return None
    # backtrace: the last word ends at the first t reaching the maximum, and so on
    words = []
    t = T
    total = float(G[T])
    for k in range(n - 1, -1, -1):
        while t > 0 and choice[k][t] == 0:
            t -= 1
        L = int(choice[k][t])
        if L == 0:
            return None
        words.append((t - L, t))
        t = t - L - (_GAP if k > 0 else 0)
        if t < 0:
            return None
    return words[::-1], total


def split_scored(energy_db: np.ndarray, n_words: int, base: SegmenterConfig | None = None,
                 fcfg: FrontendConfig | None = None, mel: np.ndarray | None = None
                 ) -> tuple[list[Segment] | None, SegmenterConfig | None, SplitQuality]:
    """Cut a recording into exactly `n_words` words: the best-scoring of all segmentations into n words.

    Each frame scores its energy above a local noise floor (median-smoothed, so clicks vanish; capped, so a loud
    clatter is not more word than a word) minus a threshold; the n intervals maximising the total score plus a
    prior on word lengths are found by dynamic programming, so fragments of one word (the closure in "six") are
    merged when that is cheaper than splitting elsewhere, and short weak bursts are left out. Returns (segments,
    config, quality) or (None, None, quality) when n words cannot be found.
    """
    base = base or SegmenterConfig()
    fcfg = fcfg or FrontendConfig()
    e = np.asarray(energy_db, dtype=np.float64)
    cfg = dataclasses.replace(base, max_word_ms=max(base.max_word_ms, 1500))
    if e.size == 0 or n_words <= 0:
        return None, None, SplitQuality(True, ("nothing to split",))
    es = _median_smooth(e, _SMOOTH)
    floor = _noise_floor(es, base.abs_floor_db)
    snr = es - floor
    dp_snr = snr
    if mel is not None and _LOW_BANDS and mel.shape[0] == e.size:
        # voiced speech lives below ~1 kHz; clatter, clicks and hiss mostly above it
        # on the energy's scale (power / win_length^2, as in Frontend), so abs_floor_db means the same for both
        low = 10.0 * np.log10(np.exp(np.asarray(mel, np.float64)[:, :_LOW_BANDS]).sum(axis=1)
                              / float(fcfg.win_length) ** 2 + 1e-20)
        lows = _median_smooth(low, _SMOOTH)
        dp_snr = lows - _noise_floor(lows, base.abs_floor_db)
    score = np.minimum(np.maximum(dp_snr, 0.0), _CAP_DB) - _THETA_DB
    found = _best_words(score, n_words)
    if found is None:
        return None, None, SplitQuality(True, ("too short for that many words",))
    words, total = found
    unstable = False
    for d in (-_PERTURB_DB, _PERTURB_DB):  # a split worth trusting does not hinge on the threshold
        alt = _best_words(np.minimum(np.maximum(dp_snr, 0.0), _CAP_DB) - (_THETA_DB + d), n_words)
        if alt is None or not _same_words(words, alt[0]):
            unstable = True
    # every word needs something that would start a word: a run above floor + on_db
    run = max(1, round(base.start_ms * fcfg.sample_rate / 1000 / fcfg.hop_length))
    for a, b in words:
        loud = snr[a:b] > min(base.on_db, 9.0) * 0.5
        if b - a < run or not np.any(np.convolve(loud, np.ones(run), "valid") >= run):
            return None, None, SplitQuality(True, ("a word without sound",))
    for (a0, b0), (a1, b1) in zip(words, words[1:]):  # two words need a dip between them, not a cut through one
        dip = float(np.min(dp_snr[b0:a1]))
        if dip >= _THETA_DB and dip > min(np.max(dp_snr[a0:b0]), np.max(dp_snr[a1:b1])) - _DIP_DB:
            return None, None, SplitQuality(True, ("fewer words than expected: no pause between two of them",))
    segs: list[Segment] = []
    for i, (a, b) in enumerate(words):
        lo = segs[-1].end + 1 if segs else 0
        hi = e.size if i == len(words) - 1 else words[i + 1][0] - 1
        segs.append(Segment(_grow(snr, a, lo, -1), _grow(snr, b - 1, hi - 1, 1) + 1))
    return segs, cfg, _quality(segs, snr, fcfg, total, unstable)


def _grow(snr: np.ndarray, edge: int, limit: int, step: int) -> int:
    """Move a word's edge frame outwards (step -1: its start, +1: its last frame) over frames above _EXTEND_DB, at
    most _EXTEND_MAX frames and never past `limit`. Dips of up to _BRIDGE frames are crossed, and a closure of up to
    _CLOSURE frames when a burst above _THETA_DB follows it (the release of the "t" in "eight")."""
    best = edge
    stop = max(limit, edge - _EXTEND_MAX) if step < 0 else min(limit, edge + _EXTEND_MAX)
    for t in range(edge + step, stop + step, step):
        dip = abs(t - best) - 1
        if snr[t] > _EXTEND_DB and (dip <= _BRIDGE or (dip <= _CLOSURE and snr[t] > _THETA_DB)):
            best = t
        elif dip >= _CLOSURE:
            break
    return best


def _same_words(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    """Each word's centre lies inside the other split's word of the same number, both ways."""
    return all(q0 <= (p0 + p1) / 2 < q1 and p0 <= (q0 + q1) / 2 < p1 for (p0, p1), (q0, q1) in zip(a, b))


def _quality(segs: list[Segment], snr: np.ndarray, fcfg: FrontendConfig, total: float,
             unstable: bool = False) -> SplitQuality:
    ms = 1000.0 * fcfg.hop_length / fcfg.sample_rate
    reasons = ["the cuts change with the threshold"] if unstable else []
    lens = np.array([s.end - s.start for s in segs]) * ms
    mass = np.array([np.sum(np.clip(snr[s.start:s.end], 0, _CAP_DB)) for s in segs])
    for i, s in enumerate(segs):
        if lens[i] < 120 or lens[i] > 1300:
            reasons.append(f"word {i + 1} lasts {lens[i]:.0f} ms")
        if mass[i] < 0.15 * np.median(mass):
            reasons.append(f"word {i + 1} is much weaker than the others")
    inside = np.zeros(snr.size, bool)
    for s in segs:
        inside[s.start:s.end] = True
    # strong sound left out of every word: a missed word, or a noise the count forced out
    loud = (snr > 12.0) & ~inside
    if loud.any():
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))))[::2]
        if runs.size and runs.max() * ms >= 150:
            reasons.append(f"{runs.max() * ms:.0f} ms of loud sound between words left out")
    return SplitQuality(bool(reasons), tuple(reasons), total / max(1, len(segs)))


def split_into(energy_db: np.ndarray, n_words: int, base: SegmenterConfig | None = None,
               fcfg: FrontendConfig | None = None, mel: np.ndarray | None = None
               ) -> tuple[list[Segment], SegmenterConfig] | tuple[None, None]:
    """Cut a recording into exactly `n_words` words (the splitter knows how many there are): see `split_scored`.

    Returns (segments, config) or (None, None).
    """
    segs, cfg, _ = split_scored(energy_db, n_words, base, fcfg, mel)
    return (segs, cfg) if segs is not None else (None, None)


WORD_GAP = 25  # frames: segments closer than 250 ms are parts of one word (a stop's closure, a weak /s/ of "six")


def word_span(mel: np.ndarray, energy_db: np.ndarray, fcfg: FrontendConfig,
              cfg: SegmenterConfig | None = None, audio: np.ndarray | None = None) -> tuple[int, int]:
    """The frames of the one word in a single-word clip: from the first segment's start to the last one's end.

    When those lie further apart than a stamp holds (with its context) and a pause of WORD_GAP or more splits them,
    the clip holds more than the word: a click, a breath, a door, a second of room. Cropping the whole span around
    its centre would cut the word, so the word is then the group of segments between such pauses that carries the most
    sound energy. A clip in which nothing stands out (silence, or all speech) is taken whole. `audio` (the clip's
    samples) is needed only by vad='webrtc'.
    """
    segs = segment_frames(energy_db, cfg, fcfg, audio)
    if not segs:
        return 0, mel.shape[0]
    room = fcfg.stamp_frames - fcfg.context_before - fcfg.context_after
    if segs[-1].end - segs[0].start <= room:
        return segs[0].start, segs[-1].end
    groups = [[segs[0]]]
    for s in segs[1:]:
        if s.start - groups[-1][-1].end < WORD_GAP:
            groups[-1].append(s)
        else:
            groups.append([s])
    power = 10.0 ** (np.asarray(energy_db, dtype=np.float64) / 10.0)
    loudest = max(groups, key=lambda g: sum(float(power[s.start:s.end].sum()) for s in g))
    return loudest[0].start, loudest[-1].end


def clip_stamp(x: np.ndarray, frontend: Frontend, cfg: SegmenterConfig | None = None, shift: int = 0) -> np.ndarray:
    """A single-word clip -> its stamp, by the same segment-then-stamp path the daemon uses."""
    mel, energy = frontend.compute(x)
    start, end = word_span(mel, energy, frontend.cfg, cfg, x)
    return make_stamp(segment_mel(mel, start, end, frontend.cfg), frontend.cfg, shift=shift)


def segment_mel(mel: np.ndarray, start: int, end: int, fcfg: FrontendConfig) -> np.ndarray:
    """The frames of a segment with the frontend's context before and after it, clamped to what exists."""
    a = max(0, start - fcfg.context_before)
    b = min(mel.shape[0], end + fcfg.context_after)
    return mel[a:b]
