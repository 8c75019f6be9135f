"""Cut recordings of known word lists into one clip per word: `DATA/PREFIX_*.wav` -> `DATA/PREFIX/<word>/*.wav`.

Every recording holds the words of `PREFIX.words` in order, so the splitter knows how many words to find and lets
`shared.segment.split_scored` find the best-scoring segmentation into exactly that count (noise floor per recording,
clicks smoothed away, fragments of a word merged, weak bursts left out). A recording that cannot be cut into that
many words is reported with the segments the default segmenter finds and skipped; a cut that looks doubtful (it
changes with the threshold, a word of implausible length or much weaker than the rest, loud sound left between words)
is written with a warning naming the reasons, so it can be checked with --plot. scripts/measure_split.py measures it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from shared.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, read_audio, write_wav_atomic
from shared.features import Frontend, FrontendConfig
from shared.segment import Segment, SegmenterConfig, split_scored
from trainer.words import read_words

CONTEXT_S = 0.1  # audio kept either side of a word, clamped to half the gap to its neighbour
CLIP_LEVEL = 0.999  # samples at or above this are taken as clipped
CLIPPED_FRACTION = 0.001


@dataclass(frozen=True)
class SplitConfig:
    """How recordings are cut."""

    context_s: float = CONTEXT_S
    plot: bool = False
    plot_dir: Path | None = None  # None: next to the clips, in DATA/PREFIX/_plots
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)


@dataclass
class FileResult:
    """What happened to one recording. status: ok, exists (all clips already there), mismatch or error."""

    path: Path
    status: str
    expected: int = 0
    found: int = 0
    times: list[tuple[float, float]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    skipped_existing: int = 0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    plot: Path | None = None


def recordings(data: Path, prefix: str) -> list[Path]:
    """`DATA/PREFIX_*.{wav,ogg,flac}`, sorted (folders such as `PREFIX-test/` are not touched)."""
    data = Path(data)
    return sorted(p for p in data.glob(f"{prefix}_*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def clip_names(stem: str, prefix: str, words: list[str]) -> list[str]:
    """File stems for the clips of one recording: the recording's name without `PREFIX_`, so the speaker comes first;
    a word that occurs twice in the list gets `_2`, `_3`, ... on its later occurrences."""
    base = stem[len(prefix) + 1:] if stem.startswith(prefix + "_") else stem
    seen: dict[str, int] = {}
    out = []
    for w in words:
        seen[w] = seen.get(w, 0) + 1
        out.append(base if seen[w] == 1 else f"{base}_{seen[w]}")
    return out


def cut_points(segs: list[Segment], n_samples: int, fcfg: FrontendConfig, context_s: float) -> list[tuple[int, int]]:
    """Sample ranges of the words with `context_s` either side, never past the middle of the gap to a neighbour."""
    spans = []
    for s in segs:
        a, b = s.seconds(fcfg)
        spans.append((int(round(a * fcfg.sample_rate)), min(n_samples, int(round(b * fcfg.sample_rate)))))
    ctx = int(round(context_s * fcfg.sample_rate))
    out = []
    for i, (a, b) in enumerate(spans):
        lo = 0 if i == 0 else (spans[i - 1][1] + a) // 2
        hi = n_samples if i == len(spans) - 1 else (b + spans[i + 1][0]) // 2
        out.append((max(lo, a - ctx), min(hi, b + ctx)))
    return out


def find_words(x: np.ndarray, n_words: int, frontend: Frontend, seg_cfg: SegmenterConfig | None = None,
               with_quality: bool = False):
    """(segments or None, what the default segmenter found (for the report), the config that matched), and with
    `with_quality` also the split's SplitQuality (doubtful, reasons)."""
    from shared.segment import segment_frames

    mel, energy = frontend.compute(x)
    segs, cfg, quality = split_scored(energy, n_words, seg_cfg, frontend.cfg, mel=mel)
    default = segs if segs is not None else segment_frames(energy, seg_cfg, frontend.cfg, x)
    return (segs, default, cfg, quality) if with_quality else (segs, default, cfg)


def split_file(path: Path, words: list[str], out_root: Path, prefix: str, cfg: SplitConfig | None = None,
               frontend_cfg: FrontendConfig | None = None) -> FileResult:
    """Cut one recording into `out_root/<word>/<name>.wav`; never raises for bad audio, returns what happened."""
    cfg = cfg or SplitConfig()
    path = Path(path)
    res = FileResult(path=path, status="error", expected=len(words))
    try:
        x = read_audio(path)
    except AudioError as exc:
        res.message = exc.problem
        return res
    frontend = Frontend(frontend_cfg)
    if x.size < frontend.cfg.win_length:
        res.message = f"too short ({x.size / SAMPLE_RATE * 1000:.0f} ms)"
        return res
    peak = float(np.max(np.abs(x)))
    if np.mean(np.abs(x) >= CLIP_LEVEL) > CLIPPED_FRACTION:
        res.warnings.append(f"clipped ({np.mean(np.abs(x) >= CLIP_LEVEL) * 100:.1f}% of samples at full scale)")
    if peak < 1e-4:
        res.status, res.message = "mismatch", "silent"
        return res
    segs, default, seg_cfg, quality = find_words(x, len(words), frontend, cfg.segmenter, with_quality=True)
    if segs is not None and quality.doubtful:  # written, but never silently: the reasons go into the report
        res.warnings.append("doubtful cuts (" + "; ".join(quality.reasons) + "), check with --plot")
    shown = segs if segs is not None else default
    res.found = len(shown)
    res.times = [tuple(round(t, 2) for t in s.seconds(frontend.cfg)) for s in shown]
    if cfg.plot:
        res.plot = _plot(path, x, frontend, shown, seg_cfg or cfg.segmenter, words, out_root, cfg)
    if segs is None:
        res.status = "mismatch"
        res.message = f"found {res.found} segments, expected {len(words)}"
        return res
    names = clip_names(path.stem, prefix, words)
    for word, name, (a, b) in zip(words, names, cut_points(segs, x.size, frontend.cfg, cfg.context_s)):
        target = out_root / word / f"{name}.wav"
        try:
            write_wav_atomic(target, x[a:b])
        except FileExistsError:
            res.skipped_existing += 1
        else:
            res.written.append(target)
    res.status = "ok" if res.written else "exists"
    return res


def _plot(path: Path, x: np.ndarray, frontend: Frontend, segs: list[Segment], seg_cfg: SegmenterConfig,
          words: list[str], out_root: Path, cfg: SplitConfig) -> Path | None:
    from trainer.plots import plot_split

    folder = cfg.plot_dir or (out_root / "_plots")
    try:
        return plot_split(folder / f"{path.stem}.png", x, frontend, segs, seg_cfg, words, title=path.name)
    except Exception:  # a plot is a convenience: never let it stop the split
        return None


def _split_job(args: tuple) -> FileResult:
    path, words, out_root, prefix, cfg = args
    try:
        return split_file(path, words, out_root, prefix, cfg)
    except Exception as exc:  # keep the run going: one line for the unexpected, too
        return FileResult(path=path, status="error", expected=len(words), message=f"{type(exc).__name__}: {exc}")


def split_prefix(data: Path, prefix: str, cfg: SplitConfig | None = None, workers: int | None = None,
                 files: list[Path] | None = None) -> Iterator[FileResult]:
    """Split every `DATA/PREFIX_*` recording; yields one result a file as they finish (in order)."""
    data = Path(data)
    words = read_words(data, prefix)
    files = recordings(data, prefix) if files is None else files
    jobs = [(p, words, data / prefix, prefix, cfg or SplitConfig()) for p in files]
    workers = workers if workers is not None else min(len(jobs), os.cpu_count() or 1)
    if workers <= 1 or len(jobs) < 4:
        for j in jobs:
            yield _split_job(j)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_split_job, jobs, chunksize=max(1, len(jobs) // (workers * 8)))


def summarise(results: list[FileResult]) -> dict[str, int]:
    """Counts by status plus clips written, for the summary table."""
    out = {"files": len(results), "ok": 0, "exists": 0, "mismatch": 0, "error": 0, "clips": 0, "clips_existing": 0}
    for r in results:
        out[r.status] += 1
        out["clips"] += len(r.written)
        out["clips_existing"] += r.skipped_existing
    return out


ProgressFn = Callable[[FileResult], None]
