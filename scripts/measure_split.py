"""Measure known-count splitting on sentences joined from real clips, under the conditions home recordings have.

    .venv/bin/python -m scripts.measure_split                 # the new split_into, all conditions
    .venv/bin/python -m scripts.measure_split --method both   # before (the first-match search) and after, side by side
    .venv/bin/python -m scripts.measure_split --n 20 --seed 2 --tts

Sentences come from /work/shared/data (read only): FSDD digits of one speaker, Speech Commands words of many, and
optionally espeak/flite voices (trainer/synth.py). A recording passes when the count is right and every segment
covers >= 60% of its own word's core (within 20 dB of its peak), lies >= 60% inside the word (its extent down to
35 dB below the peak, give or take 100 ms), and holds no other word's centre. "wrong" counts recordings
cut into the right number of WRONG segments; "silent" those of them the splitter did not flag (written without a
word of warning); "flag" counts the recordings the splitter itself called doubtful, right or wrong (trainer/split.py
writes those with a warning naming the reasons).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from shared.audio import read_audio
from shared.features import Frontend
from shared.segment import Segment, SegmenterConfig, segment_frames

RATE = 16000
PAD = 1600  # a segment may reach 100 ms past its word
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STEADY = ("white_noise", "pink_noise", "running_tap")
BURSTY = ("doing_the_dishes", "exercise_bike", "dude_miaowing")
DIGITS = "zero one two three four five six seven eight nine".split()
SC_WORDS = ("cat", "dog", "bird", "bed", "happy", "house", "left", "marvin", "no", "go", "up", "wow", "yes", "off",
            "sheila", "tree", "down", "right", "stop", "on")
CLOSURE = ("six", "seven", "eight")


def legacy_split_into(energy_db, n_words, base=None, fcfg=None):
    """The splitter before the scored search: the first setting (in a fixed order) that gives n segments."""
    base = base or SegmenterConfig()
    for on in [base.on_db, 15, 9, 18, 7, 21, 24, 5, 28, 4, 32]:
        for hang in [base.hangover_ms, 200, 300, 80, 450, 60, 600]:
            cfg = dataclasses.replace(base, on_db=float(on), off_db=float(min(base.off_db, on / 2)),
                                      hangover_ms=int(hang), max_word_ms=max(base.max_word_ms, 1500))
            segs = segment_frames(energy_db, cfg, fcfg)
            if len(segs) == n_words:
                return segs, cfg
    return None, None


# ---------------------------------------------------------------- sentences


@dataclasses.dataclass(frozen=True)
class Condition:
    name: str
    noise: tuple[str, ...] = ()
    snr_db: float | None = None
    gap: tuple[float, float] = (0.15, 0.8)
    level_db: float = 6.0
    clicks: bool = False
    closures: bool = False
    tts: bool = False


CONDITIONS = [
    Condition("quiet"),
    Condition("steady 30 dB", STEADY, 30),
    Condition("steady 20 dB", STEADY, 20),
    Condition("steady 10 dB", STEADY, 10),
    Condition("bursty 20 dB", BURSTY, 20),
    Condition("bursty 10 dB", BURSTY, 10),
    Condition("clicks start/end", clicks=True),
    Condition("pauses 0.1-0.2 s", gap=(0.1, 0.2)),
    Condition("levels 20 dB apart", level_db=20.0),
    Condition("closures six/seven/eight", closures=True),
]
TTS_CONDITIONS = [Condition("tts quiet", tts=True), Condition("tts steady 20 dB", STEADY, 20, tts=True)]


def word_span(clip: np.ndarray, fe: Frontend, below_db: float = 35.0) -> tuple[int, int]:
    """Samples of the word inside a clean clip: frames within `below_db` of the peak, 10 dB above the quietest."""
    _, e = fe.compute(clip)
    if e.size == 0:
        return 0, clip.size
    thr = max(float(e.max()) - below_db, float(np.min(e)) + 10.0)
    on = np.flatnonzero(e > thr)
    if on.size == 0:
        return 0, clip.size
    return int(on[0] * fe.cfg.hop_length), min(clip.size, int(on[-1] * fe.cfg.hop_length + fe.cfg.win_length))


def click(rng: np.random.Generator) -> np.ndarray:
    """A key press as a laptop mic hears it: a few ms of decaying broadband burst, sometimes a double tap."""
    n = int(RATE * rng.uniform(0.005, 0.03))
    c = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4)) * rng.uniform(0.2, 0.9)
    if rng.random() < 0.5:
        gap = int(RATE * rng.uniform(0.02, 0.08))
        c = np.concatenate([c, np.zeros(gap), 0.6 * c])
    return c.astype(np.float32)


class Corpus:
    def __init__(self, data: Path = DATA) -> None:
        self.data = data
        self.fsdd_speakers = sorted({p.stem.split("_")[1] for p in (data / "fsdd").glob("*.wav")})
        self.sc = {w: sorted((data / "speech-commands" / w).glob("*.wav")) for w in SC_WORDS + CLOSURE + tuple(DIGITS)}
        self.noise_cache: dict[str, np.ndarray] = {}

    def noise(self, name: str) -> np.ndarray:
        if name not in self.noise_cache:
            self.noise_cache[name] = read_audio(self.data / "noise" / f"{name}.wav")
        return self.noise_cache[name]

    def fsdd(self, rng, digits: list[int]) -> list[np.ndarray]:
        sp = self.fsdd_speakers[int(rng.integers(len(self.fsdd_speakers)))]
        return [read_audio(self.data / "fsdd" / f"{d}_{sp}_{int(rng.integers(50))}.wav") for d in digits]

    def sc_words(self, rng, words) -> list[np.ndarray]:
        return [read_audio(self.sc[w][int(rng.integers(len(self.sc[w])))]) for w in words]

    def clips(self, rng, k: int, cond: Condition) -> tuple[list[str], list[np.ndarray]]:
        """Half the sentences are FSDD digits of one speaker, half Speech Commands words of many."""
        if cond.closures:
            words = list(rng.choice(list(CLOSURE) + ["two", "five", "nine"], size=int(rng.integers(4, 9)),
                                    p=[0.25, 0.25, 0.25, 0.083, 0.083, 0.084]))
            if k % 2 == 0:
                return words, self.fsdd(rng, [DIGITS.index(w) for w in words])
            return words, self.sc_words(rng, words)
        if k % 2 == 0:
            digits = list(rng.permutation(10))
            return [DIGITS[d] for d in digits], self.fsdd(rng, digits)
        words = list(rng.choice(list(SC_WORDS), size=int(rng.integers(3, 9)), replace=False))
        return words, self.sc_words(rng, words)


def make_sentence(corpus: Corpus, rng: np.random.Generator, k: int, cond: Condition, fe: Frontend,
                  voices=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(audio, each word's sample span in it)."""
    if cond.tts:
        from trainer import synth

        v = voices[k % len(voices)]
        words = list(rng.choice(DIGITS + list(SC_WORDS), size=int(rng.integers(3, 9)), replace=False))
        x, spans = synth.synth_sentence(words, v, rng, synth.SynthConfig(pause_s=cond.gap))
        return _add_noise(corpus, rng, x, spans, cond), spans
    _, clips = corpus.clips(rng, k, cond)
    parts, spans, pos = [], [], 0
    for i, c in enumerate(clips):
        a, b = word_span(c, fe)
        c = c[max(0, a - 1600):b + 1600]  # the word with 100 ms of its own room either side
        a, b = min(a, 1600), min(a, 1600) + (b - a)
        pause = rng.uniform(0.3, 0.7) if i == 0 else rng.uniform(*cond.gap)
        parts.append(np.zeros(int(RATE * pause), np.float32))
        pos += parts[-1].size
        c = c / (np.max(np.abs(c)) + 1e-9) * 0.5 * 10 ** (-rng.uniform(0, cond.level_db) / 20)
        parts.append(c.astype(np.float32))
        spans.append((pos + a, pos + b))
        pos += c.size
    parts.append(np.zeros(int(RATE * rng.uniform(0.3, 0.7)), np.float32))
    x = np.concatenate(parts)
    if cond.clicks:
        for where in ("start", "end"):
            c = click(rng)
            at = int(RATE * rng.uniform(0.02, 0.15))
            at = at if where == "start" else x.size - at - c.size
            x[at:at + c.size] += c
    x = _add_noise(corpus, rng, x, spans, cond)
    return x, spans


def _add_noise(corpus, rng, x, spans, cond):
    fe = Frontend()
    for i, (a, b) in enumerate(spans):  # the word's core (within 20 dB of its peak): what a cut must cover
        ca, cb = word_span(x[a:b], fe, 20.0)
        spans[i] = (a, b, a + ca, a + cb)
    x = x + 1e-4 * rng.standard_normal(x.size).astype(np.float32)
    if not cond.noise:
        return x.astype(np.float32)
    n = corpus.noise(cond.noise[int(rng.integers(len(cond.noise)))])
    s = int(rng.integers(0, n.size - x.size))
    n = n[s:s + x.size]
    speech = np.concatenate([x[s[0]:s[1]] for s in spans])
    x = x + n / (np.sqrt(np.mean(n**2)) + 1e-9) * np.sqrt(np.mean(speech**2)) * 10 ** (-cond.snr_db / 20)
    return x.astype(np.float32)


# ---------------------------------------------------------------- judging


def judge(segs: list[Segment] | None, spans: list[tuple[int, int]], fe: Frontend) -> str:
    """pass, count (wrong number or none) or wrong (right count, some segment not its word).

    spans: (start, end, core start, core end) of each word; the core is what lies within 20 dB of its peak."""
    if segs is None or len(segs) != len(spans):
        return "count"
    centres = [(a + b) / 2 for a, b, _, _ in spans]
    for i, (s, (a, b, ca, cb)) in enumerate(zip(segs, spans)):
        sa, sb = (t * RATE for t in s.seconds(fe.cfg))
        ov = max(0.0, min(cb, sb) - max(ca, sa))
        room = max(0.0, min(b + PAD, sb) - max(a - PAD, sa))
        if ov < 0.6 * (cb - ca) or room < 0.6 * (sb - sa):
            return "wrong"
        if any(sa <= c <= sb for j, c in enumerate(centres) if j != i):
            return "wrong"
    return "pass"


Splitter = Callable[[np.ndarray, int, Frontend], tuple[list[Segment] | None, bool]]


def old_splitter(x, n, fe):
    _, e = fe.compute(x)
    return legacy_split_into(e, n, None, fe.cfg)[0], False


def new_splitter(x, n, fe):
    from trainer.split import find_words

    segs, _, _, quality = find_words(x, n, fe, with_quality=True)
    return segs, bool(quality and quality.doubtful)


def sentences(cond: Condition, n: int, seed: int, corpus: Corpus, fe: Frontend) -> Iterator[tuple]:
    rng = np.random.default_rng([seed, _stable(cond.name)])
    voices = None
    if cond.tts:
        from trainer import synth

        voices = synth.pick_voices(n, seed=seed)
    for k in range(n):
        yield make_sentence(corpus, rng, k, cond, fe, voices)


def _stable(s: str) -> int:
    return int.from_bytes(s.encode()[:8].ljust(8, b"\0"), "little") % (2**31)


def measure(methods: dict[str, Splitter], conditions: list[Condition], n: int, seed: int,
            out=sys.stdout) -> dict[str, dict[str, dict[str, int]]]:
    fe, corpus = Frontend(), Corpus()
    results: dict[str, dict[str, dict[str, int]]] = {m: {} for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    for cond in conditions:
        for m in methods:
            keys = ("pass", "count", "wrong", "silent", "flagged", "flagged_pass", "n")
            results[m][cond.name] = dict.fromkeys(keys, 0)
        for x, spans in sentences(cond, n, seed, corpus, fe):
            for m, fn in methods.items():
                t0 = time.process_time()
                segs, doubtful = fn(x, len(spans), fe)
                if len(spans) == 10:
                    cpu[m].append(time.process_time() - t0)
                v = judge(segs, spans, fe)
                r = results[m][cond.name]
                r[v] += 1
                r["n"] += 1
                r["flagged"] += doubtful
                r["flagged_pass"] += doubtful and v == "pass"
                r["silent"] += (not doubtful) and v == "wrong"
    names = list(methods)
    head = f"{'condition':26s}" + "".join(f" | {m + ' pass':>13s} {'wrong':>5s} {'silent':>6s} {'flag':>4s}"
                                          for m in names)
    print(head, file=out)
    print("-" * len(head), file=out)
    tot = {m: {"pass": 0, "wrong": 0, "silent": 0, "flagged": 0, "n": 0} for m in names}
    for cond in conditions:
        row = f"{cond.name:26s}"
        for m in names:
            r = results[m][cond.name]
            row += _cells(r)
            for k in tot[m]:
                tot[m][k] += r[k]
        print(row, file=out)
    row = f"{'all':26s}"
    for m in names:
        t = tot[m]
        row += _cells(t)
    print(row, file=out)
    for m in names:
        if cpu[m]:
            c = np.array(cpu[m])
            print(f"{m}: CPU per 10-word recording (features + split) mean {c.mean() * 1000:.0f} ms, "
                  f"max {c.max() * 1000:.0f} ms", file=out)
    return results


def _cells(r: dict) -> str:
    return (f" | {r['pass']:>4d}/{r['n']:<3d} {100 * r['pass'] / r['n']:4.0f}% {r['wrong']:>5d} {r['silent']:>6d}"
            f" {r['flagged']:>4d}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=("old", "new", "both"), default="new")
    ap.add_argument("--n", type=int, default=30, help="sentences per condition")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tts", action="store_true", help="also TTS voices (espeak/flite)")
    ap.add_argument("--only", default="", help="conditions whose name contains this")
    a = ap.parse_args(argv)
    methods = {}
    if a.method in ("old", "both"):
        methods["before"] = old_splitter
    if a.method in ("new", "both"):
        methods["after"] = new_splitter
    conds = CONDITIONS + (TTS_CONDITIONS if a.tts else [])
    conds = [c for c in conds if a.only in c.name]
    measure(methods, conds, a.n, a.seed)


if __name__ == "__main__":
    main()
