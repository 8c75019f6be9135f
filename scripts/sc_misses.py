"""Which held-out Speech Commands clips the recipe misses, counted over several training draws: whether the SC figure
moves on a few hard clips or on all of them, and what those clips are like (level, background, what they were
taken for).

    python -m scripts.sc_misses data/exp-r1f0:/tmp/m_r1f0 data/exp-r1f1:/tmp/m_r1f1 data/exp-r1f2:/tmp/m_r1f2 \\
        data/exp-r3f0:/tmp/m_r3f0 data/exp-r3f1:/tmp/m_r3f1 data/exp-r3f2:/tmp/m_r3f2

Each WORK:MODELS pair is one fold run, as for `scripts.sc_folds`; a clip is counted over the runs that held it out.
Each run's digits bundle is read at its own threshold (int8, LiteRT). The level columns are of the clip as stored:
its peak, its loudest 10 ms frame and its quietest tenth of frames (the background), in dBFS.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    from scripts.sc_folds import fold_pairs

    ap = argparse.ArgumentParser(prog="python -m scripts.sc_misses", description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", nargs="+", metavar="WORK:MODELS")
    a = ap.parse_args(argv)
    pairs = fold_pairs(ap, a.folds)
    from shared.audio import read_audio
    from trainer.evaluate import evaluate_folder

    runs = []
    for work, bundle in pairs:
        rep = evaluate_folder(bundle, work / "sc-test")
        runs.append((sorted((work / "sc-test").glob("*/*.wav")), rep.errors))
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
        peak, loud, floor = levels(read_audio(t.file))
        print(f"{t.file.name:<30} {t.missed:>3} of {t.runs} {peak:6.1f} {loud:8.1f} {floor:10.1f}  "
              f"{', '.join(t.taken_for)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
