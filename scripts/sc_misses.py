"""Which held-out Speech Commands clips the recipe misses, counted over several training draws: whether the SC figure
moves on a few hard clips or on all of them, and what those clips are like (level, background, what they were
taken for).

    python -m scripts.sc_misses data/exp-r1f0:/tmp/m_r1f0 data/exp-r1f1:/tmp/m_r1f1 data/exp-r1f2:/tmp/m_r1f2 \\
        data/exp-r3f0:/tmp/m_r3f0 data/exp-r3f1:/tmp/m_r3f1 data/exp-r3f2:/tmp/m_r3f2

Each WORK:MODELS pair is one fold run, as for `scripts.sc_folds`; a clip is counted over the runs that held it out.
Each run's digits bundle is read at its own threshold (int8, LiteRT). The level columns are of the clip as stored:
its peak, its loudest 10 ms frame and its quietest tenth of frames (the background), in dBFS.

`--neighbours N` also asks where the network puts each held-out clip: its N nearest clips of the run's own dataset
(WORK/digits.npz, outside the test split) by the cosine of the head features the bundle serves, each shown as its
word (an `_unknown_` clip by its own word, ~word) and who said it (espeak, tts, noise, or the recorded speaker);
then, for the clips every run missed, some runs missed and no run missed, how many of those neighbours are the
clip's own digit, another digit, `_unknown_` or `_silence_`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainer.evaluate import REJECTED


@dataclass
class ClipTally:
    """One held-out clip over the runs that held it out."""

    file: Path
    runs: int = 0
    missed: int = 0
    taken_for: list[str] = field(default_factory=list)  # per miss: the answer, or "rejected", and the top label


def tally(runs: list[tuple[list[Path], list[dict]]]) -> dict[str, ClipTally]:
    """(held-out files, evaluate's errors) per run -> per clip name, how often it was held out and missed."""
    out: dict[str, ClipTally] = {}
    for files, errors in runs:
        for f in files:
            out.setdefault(f.name, ClipTally(f)).runs += 1
        for e in errors:
            t = out[Path(e["file"]).name]
            t.missed += 1
            said = "rejected" if e["got"] == REJECTED else e["got"]
            t.taken_for.append(f"{said} ({e.get('label', '?')} {e.get('confidence', 0.0):.2f})")
    return out


def levels(x: np.ndarray) -> tuple[float, float, float]:
    """Peak, loudest 10 ms frame and the quietest tenth of frames (its 10th percentile), dBFS."""
    n = max(1, -(-x.size // 160))  # the last, short frame padded with zeros
    frames = np.pad(x, (0, n * 160 - x.size)).reshape(n, 160)
    e = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(float(np.abs(x).max()) + 1e-12), float(e.max()), float(np.percentile(e, 10))


SYNTHETIC = ("espeak", "tts")  # trainer.dataset.speaker_kind's synthetic voices


@dataclass
class Pool:
    """A fold's own training clips as the network sees them: unit head features, and a name for each."""

    feats: np.ndarray  # (clips, features), unit length
    words: np.ndarray  # the clip's word; an _unknown_ clip's own word as ~word
    who: np.ndarray  # speaker kind, or the recorded speaker's name


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)


def training_pool(work: Path, cnn) -> Pool:
    """WORK/digits.npz outside its test split, through the bundle's network (`cnn`: a shared.runtime.CnnModel)."""
    from trainer.dataset import load_dataset, speaker_kind, word_of

    d = load_dataset(work / "digits.npz")
    keep = np.flatnonzero(d.split.astype(str) != "test")
    feats = np.concatenate([cnn.infer(d.stamps[keep[a:a + 256]])[0] for a in range(0, keep.size, 256)])
    words = [d.words[int(k)] for k in d.labels[keep]]
    if d.sources is not None:  # an _unknown_ clip by the word it really says
        words = [f"~{said}" if w == "_unknown_" and (said := word_of(Path(str(src)))) else w
                 for w, src in zip(words, d.sources[keep])]
    who = [speaker_kind(str(s)) for s in d.speakers[keep]]
    who = [k if k != "human" else str(s) for k, s in zip(who, d.speakers[keep])]
    return Pool(unit(feats), np.array(words), np.array(who))


def neighbour_kind(word: str, own: str) -> str:
    """A neighbour's word against the clip's own: "own", "digit" (another), "_unknown_" or "_silence_"."""
    if word == own:
        return "own"
    if word.startswith("~") or word == "_unknown_":
        return "_unknown_"
    return "_silence_" if word == "_silence_" else "digit"


def neighbours(work: Path, bundle: Path, clips: dict[Path, np.ndarray],
               n: int) -> tuple[dict[str, list[tuple[str, str]]], float]:
    """Each file's n nearest clips of the run's dataset, (word, who) pairs, nearest first; and the share of the
    dataset's `_unknown_` clips that synthetic voices said."""
    from shared.bundle import load_bundle
    from shared.features import Frontend
    from shared.runtime import CnnModel
    from shared.segment import clip_stamp

    b = load_bundle(bundle)
    cnn = CnnModel(b)
    pool = training_pool(work, cnn)
    fe, seg = Frontend(b.frontend_config), b.segmenter_config
    x = np.stack([clip_stamp(audio, fe, seg) for audio in clips.values()])
    sims = unit(cnn.infer(x)[0]) @ pool.feats.T
    unk = np.char.startswith(pool.words.astype(str), "~")
    synthetic = float(np.mean(np.isin(pool.who[unk], list(SYNTHETIC)))) if unk.any() else 0.0
    return {f.name: [(str(pool.words[j]), str(pool.who[j])) for j in np.argsort(-row)[:n]]
            for f, row in zip(clips, sims)}, synthetic


def main(argv: list[str] | None = None) -> int:
    from scripts.sc_folds import fold_pairs

    ap = argparse.ArgumentParser(prog="python -m scripts.sc_misses", description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", nargs="+", metavar="WORK:MODELS")
    ap.add_argument("--neighbours", type=int, default=0, metavar="N",
                    help="also show each held-out clip's N nearest clips of its run's dataset (0: off)")
    a = ap.parse_args(argv)
    pairs = fold_pairs(ap, a.folds)
    return report(pairs, a.neighbours)


def report(pairs: list[tuple[Path, Path]], n_neighbours: int) -> int:
    """Evaluate every fold run, tally the clips and print the table (and the neighbours when asked). A clip that
    cannot be read is named on stderr and left out of the tally (evaluate skips it too)."""
    from shared.audio import AudioError, read_audio
    from trainer.evaluate import evaluate_folder

    runs, near, base = [], {}, []
    audio: dict[Path, np.ndarray] = {}  # each clip read once, for the levels and the neighbours
    for work, bundle in pairs:
        rep = evaluate_folder(bundle, work / "sc-test")
        files = []
        for f in sorted((work / "sc-test").glob("*/*.wav")):
            if f not in audio:
                try:
                    audio[f] = read_audio(f)
                except AudioError as exc:
                    print(f"skipped: {exc}", file=sys.stderr)
                    continue
            files.append(f)
        runs.append((files, rep.errors))
        if n_neighbours > 0:
            nns, synthetic = neighbours(work, bundle, {f: audio[f] for f in files}, n_neighbours)
            base.append(synthetic)
            for f, nn in nns.items():
                near.setdefault(f, []).append(nn)
    clips = tally(runs)
    by_misses = sorted(clips.values(), key=lambda t: (-t.missed / t.runs, t.file.name))
    always = sum(t.missed == t.runs for t in by_misses)
    never = sum(t.missed == 0 for t in by_misses)
    print(f"{len(clips)} clips over {len(pairs)} runs: missed by every run that held it out {always}, by none {never}, "
          f"by some {len(clips) - always - never}")
    print(f"{'clip':<30} {'missed':>7} {'peak':>6} {'loudest':>8} {'background':>10}  "
          "answers (top label, its probability)")
    for t in by_misses:
        if t.missed == 0:
            break
        peak, loud, floor = levels(audio[t.file])
        print(f"{t.file.name:<30} {t.missed:>3} of {t.runs} {peak:6.1f} {loud:8.1f} {floor:10.1f}  "
              f"{', '.join(t.taken_for)}")
        for nn in near.get(t.file.name, []):
            print(f"{'':<32}nearest: {' '.join(f'{w}({who})' for w, who in nn)}")
    if near:
        print(f"the {n_neighbours} nearest clips of each held-out clip in each run, by how often it was missed:")
        groups = {"by every run": lambda t: t.missed == t.runs, "by some": lambda t: 0 < t.missed < t.runs,
                  "by none": lambda t: t.missed == 0}
        for name, pick in groups.items():
            nbs = [(w, who, t.file.parent.name) for t in clips.values() if pick(t)
                   for nn in near.get(t.file.name, []) for w, who in nn]
            kinds = [neighbour_kind(w, own) for w, _, own in nbs]
            shares = ", ".join(f"{k} {100 * kinds.count(k) / max(len(kinds), 1):.0f} %"
                               for k in ("own", "digit", "_unknown_", "_silence_"))
            unk = [who for w, who, _ in nbs if w.startswith("~")]
            synth = sum(who in SYNTHETIC for who in unk)
            print(f"  missed {name:<13} {len(kinds):>5} neighbours: {shares}; synthetic voices said "
                  f"{100 * synth / max(len(unk), 1):.0f} % of those _unknown_ words")
        print(f"  (synthetic voices said {100 * float(np.mean(base)):.0f} % of the datasets' _unknown_ clips)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
