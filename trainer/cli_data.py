"""The dataset commands: split, record, import (fsdd, folders), synth, build.

Every command reads and writes under the data folder (`./data`, or `--data DIR`). A bad file costs one line
naming it and the problem, and the run goes on; the summary table counts what happened.
Exit codes: 0 when at least one item worked (or was already done), 1 when nothing did, 2 when the command could not
start (missing word list, bad arguments, no such folder).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Iterable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(highlight=False)
DATA_HELP = "data folder (recordings, word lists, clips)"


def _say(msg: str, style: str | None = None) -> None:
    console.print(msg, markup=False, style=style, soft_wrap=True)


def _fail(msg: str, code: int = 2) -> None:
    _say(f"error: {msg}", style="red")
    raise typer.Exit(code)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _table(title: str, rows: Iterable[tuple[str, object]]) -> None:
    t = Table(title=title, show_header=False)
    for k, v in rows:
        t.add_row(k, str(v))
    console.print(t)


def _check_data(data: Path, prefix: str | None = None) -> Path:
    """The data folder must exist; a prefix, when given, must be a usable name (one line and exit 2 otherwise)."""
    from trainer.words import WordsError, check_prefix

    if not data.is_dir():
        _fail(f"{data}: no such data folder")
    if prefix is not None:
        try:
            check_prefix(prefix)
        except WordsError as exc:
            _fail(str(exc))
    return data


def _words_arg(words: str | None) -> list[str] | None:
    if not words:
        return None
    return [w for part in words.split(",") for w in part.split() if w]


# ---------------------------------------------------------------- split


def split_cmd(prefix: str = typer.Argument(..., help="recordings DATA/PREFIX_*.wav, words in DATA/PREFIX.words"),
              data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
              plot: bool = typer.Option(False, "--plot", help="a PNG per recording: waveform, energy, floor, cuts"),
              plot_dir: Optional[Path] = typer.Option(None, "--plot-dir", help="where the PNGs go "
                                                      "(default DATA/PREFIX/_plots)"),
              context: float = typer.Option(0.1, "--context", help="seconds of audio kept either side of a word"),
              workers: Optional[int] = typer.Option(None, "--workers", help="processes (default: one a core)"),
              ) -> None:
    """Cut each recording DATA/PREFIX_* into its words: DATA/PREFIX/<word>/<speaker>_<n>.wav."""
    from trainer import split as sp
    from trainer.words import WordsError, check_prefix, read_words

    _check_data(data)
    try:
        check_prefix(prefix)
        words = read_words(data, prefix)
    except WordsError as exc:
        _fail(str(exc))
    files = sp.recordings(data, prefix)
    if not files:
        _fail(f"{data}: no recordings {prefix}_*.wav|ogg|flac", 1)
    cfg = sp.SplitConfig(context_s=context, plot=plot or plot_dir is not None, plot_dir=plot_dir)
    results = []
    with _progress() as prog:
        task = prog.add_task(f"split {prefix}", total=len(files))
        for r in sp.split_prefix(data, prefix, cfg, workers=workers, files=files):
            results.append(r)
            prog.advance(task)
            for w in r.warnings:
                prog.console.print(f"warning: {r.path}: {w}", markup=False, style="yellow", soft_wrap=True)
            if r.status == "error":
                prog.console.print(f"skip {r.path}: {r.message}", markup=False, style="red", soft_wrap=True)
            elif r.status == "mismatch":
                times = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in r.times)
                prog.console.print(f"skip {r.path}: {r.message or 'mismatch'}; found {r.found} segments, "
                                   f"expected {r.expected} [{times}]", markup=False, style="yellow", soft_wrap=True)
    s = sp.summarise(results)
    _table(f"split {prefix}: {len(words)} words a recording", [
        ("recordings", s["files"]), ("cut", s["ok"]), ("already cut", s["exists"]),
        ("segments did not match", s["mismatch"]), ("unreadable", s["error"]),
        ("clips written", s["clips"]), ("clips already there", s["clips_existing"]),
        ("clips in", data / prefix)])
    if s["ok"] + s["exists"] == 0:
        raise typer.Exit(1)


# ---------------------------------------------------------------- record


def record_cmd(prefix: str = typer.Argument(..., help="the word list DATA/PREFIX.words to prompt"),
               speaker: Optional[str] = typer.Option(None, "--speaker", help="your name (no '_'): the file's speaker field"),
               takes: int = typer.Option(1, "--takes", min=1, help="recordings to make"),
               device: Optional[str] = typer.Option(None, "--device", help="input device index or name"),
               seconds: Optional[float] = typer.Option(None, "--seconds", min=0.5,
                                                       help="record this long (default: until Enter)"),
               yes: bool = typer.Option(False, "--yes", "-y", help="start each take without waiting for Enter"),
               list_devices: bool = typer.Option(False, "--list-devices", help="print the input devices and stop"),
               data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
               ) -> None:
    """Record the words of PREFIX.words from the microphone into DATA/PREFIX_<speaker>_<n>.wav (never overwrites)."""
    from trainer import record as rec
    from trainer.words import WordsError, check_name, check_prefix, read_words

    if list_devices:
        try:
            for line in rec.list_devices():
                _say(line)
        except rec.RecordError as exc:
            _fail(str(exc))
        return
    _check_data(data)
    if not speaker:
        _fail("--speaker NAME is needed: it becomes the speaker field of the file names")
    try:
        check_prefix(prefix)
        check_name(speaker, "speaker")
        words = read_words(data, prefix)
    except WordsError as exc:
        _fail(str(exc))
    if seconds is None and yes:
        seconds = round(1.0 + 1.0 * len(words), 1)
    cfg = rec.RecordConfig(seconds=seconds, device=rec.parse_device(device))
    saved, problems = [], []
    for take in range(1, takes + 1):
        _say(f"take {take}/{takes}: say, with a pause after each:  {'  '.join(words)}", style="bold")
        if not yes:
            try:
                input("press Enter to start" + (", Enter again to stop" if seconds is None else "") + " ")
            except EOFError:
                _fail("no keyboard input: use --yes and --seconds to record without prompts")
        stop = threading.Event()
        if seconds is None:
            threading.Thread(target=lambda: (input(), stop.set()), daemon=True).start()
        from rich.live import Live
        from rich.text import Text

        try:
            with Live(Text("..."), console=console, refresh_per_second=12, transient=True) as live:
                x, clipped = rec.record(cfg, lambda lv: live.update(Text(rec.meter(lv))), stop)
        except rec.RecordError as exc:
            _fail(str(exc), 1 if not saved else 0)
        if x.size == 0:
            problems.append(f"take {take}: no audio")
            _say(f"take {take}: the microphone delivered no audio", style="red")
            continue
        path = rec.save_take(data, prefix, speaker, x)
        saved.append(path)
        peak = float(abs(x).max())
        _say(f"saved {path} ({x.size / 16000:.1f} s, peak {20 * math.log10(peak + 1e-9):.1f} dBFS)")
        if clipped:
            _say(f"warning: {path}: clipped; move back or lower the input gain and record again", style="yellow")
        elif peak < rec.QUIET_PEAK:
            _say(f"warning: {path}: very quiet; is the right microphone selected (--device)?", style="yellow")
    _table(f"record {prefix}", [("takes saved", len(saved)), ("problems", len(problems)),
                                ("next", f"wordstamp split {prefix} --data {data}")])
    if not saved:
        raise typer.Exit(1)


# ---------------------------------------------------------------- import


def _run_import(plan, out_root: Path, title: str) -> None:
    from trainer import sources as src

    if not plan.items:
        for line in plan.ignored[:10]:
            _say(f"skip {line}", style="yellow")
        _fail(f"{title}: found no clips to import", 1)
    results = []
    with _progress() as prog:
        task = prog.add_task(title, total=len(plan.items))
        for r in src.run_plan(plan, out_root):
            results.append(r)
            prog.advance(task)
            if r.status == "error":
                prog.console.print(f"skip {r.src}: {r.message}", markup=False, style="red", soft_wrap=True)
    count = {k: sum(r.status == k for r in results) for k in ("ok", "exists", "error")}
    words = sorted({w for w, _, _ in plan.items})
    speakers = sorted({stem.split("_", 1)[0] for _, stem, _ in plan.items})
    _table(title, [("clips found", len(plan.items)), ("imported", count["ok"]), ("already there", count["exists"]),
                   ("unreadable", count["error"]), ("ignored files", len(plan.ignored)), ("words", len(words)),
                   ("speakers", len(speakers)), ("clips in", out_root)])
    if count["ok"] + count["exists"] == 0:
        raise typer.Exit(1)


def import_fsdd(src: str = typer.Argument(..., help="FSDD folder, its zip, or a URL of the zip"),
                prefix: str = typer.Option("fsdd", "--prefix", help="clips go to DATA/PREFIX/<word>/"),
                data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
                ) -> None:
    """Import the Free Spoken Digit Dataset: {digit}_{speaker}_{i}.wav -> DATA/PREFIX/<zero..nine>/<speaker>_<i>.wav."""
    from trainer import sources as s
    from trainer.words import DIGIT_WORDS, words_path, write_words

    _check_data(data, prefix)
    source = s.FsddSource(src)
    try:
        with _progress() as prog:
            task = prog.add_task("download", total=None, visible=s.is_url(src))
            source.progress = lambda got, total: prog.update(task, completed=got, total=total)
            folder = source.open()
        _run_import(s.plan_fsdd(folder), data / prefix, f"import fsdd -> {prefix}")
    except s.SourceError as exc:
        _fail(str(exc), 1)
    finally:
        source.close()
    if not words_path(data, prefix).exists():
        write_words(data, prefix, list(DIGIT_WORDS))


def import_folders(src: Path = typer.Argument(..., help="a folder of <word>/*.wav (e.g. Speech Commands)"),
                   prefix: Optional[str] = typer.Option(None, "--prefix", help="default: the source folder's name"),
                   words: Optional[str] = typer.Option(None, "--words", help="only these words (a,b,c)"),
                   data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
                   ) -> None:
    """Import <word>/*.wav trees -> DATA/PREFIX/<word>/<speaker>_<rest>.wav (speaker: the name before _nohash_)."""
    from trainer import sources as s
    from trainer.words import WordsError, check_prefix, check_word

    _check_data(data)
    if not src.is_dir():
        _fail(f"{src}: no such folder")
    prefix = prefix or src.resolve().name.replace("_", "-")
    wanted = _words_arg(words)
    try:
        check_prefix(prefix)
        for w in wanted or []:
            check_word(w)
    except WordsError as exc:
        _fail(str(exc))
    plan = s.plan_folders(src, wanted)
    _run_import(plan, data / prefix, f"import {src.name} -> {prefix}")


# ---------------------------------------------------------------- synth


def synth_cmd(prefix: str = typer.Argument(..., help="writes DATA/PREFIX_<voice>_<n>.wav"),
              words: Optional[str] = typer.Option(None, "--words", help="the words (a,b,c); default PREFIX.words"),
              voices: int = typer.Option(100, "--voices", min=1, help="how many TTS voices"),
              takes: int = typer.Option(1, "--takes", min=1, help="recordings a voice (each its own rate and pitch)"),
              seed: int = typer.Option(0, "--seed", help="voice choice, rates, pitches, pauses"),
              split: bool = typer.Option(False, "--split", help="then split the recordings into word clips"),
              list_voices: bool = typer.Option(False, "--list", help="print the installed voices and stop"),
              data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
              ) -> None:
    """Synthesize seed-format recordings of the words with the installed TTS voices (espeak-ng, flite, festival)."""
    from trainer import synth as sy
    from trainer.words import WordsError, check_prefix, read_words, words_path, write_words

    if list_voices:
        for v in sy.voices():
            _say(f"{v.name}\t{v.engine}\t{v.ident}")
        return
    _check_data(data)
    try:
        check_prefix(prefix)
        given = _words_arg(words)
        if given:
            if words_path(data, prefix).exists() and read_words(data, prefix) != given:
                _fail(f"{words_path(data, prefix)}: holds other words than --words; edit it or pick another prefix")
            if not words_path(data, prefix).exists():
                write_words(data, prefix, given)
        wl = read_words(data, prefix)
    except WordsError as exc:
        _fail(str(exc))
    if not sy.voices():
        _fail("no TTS engine installed (espeak-ng, flite, festival: scripts/setup.sh test)", 1)
    jobs = sy.plan(data, prefix, voices, takes, seed).jobs
    results = []
    with _progress() as prog:
        task = prog.add_task(f"synth {prefix}", total=len(jobs))
        for r in sy.synth_prefix(data, prefix, wl, voices, takes, seed):
            results.append(r)
            prog.advance(task)
            if r.status == "error":
                prog.console.print(f"skip {r.path}: {r.message}", markup=False, style="red", soft_wrap=True)
    count = {k: sum(r.status == k for r in results) for k in ("ok", "exists", "error")}
    _table(f"synth {prefix}", [("recordings planned", len(jobs)), ("written", count["ok"]),
                               ("already there", count["exists"]), ("failed", count["error"]),
                               ("voices", len({r.voice for r in results}))])
    if count["ok"] + count["exists"] == 0:
        raise typer.Exit(1)
    if split:
        split_cmd(prefix=prefix, data=data, plot=False, plot_dir=None, context=0.1, workers=None)


# ---------------------------------------------------------------- build


def build_cmd(prefix: str = typer.Argument(..., help="clips DATA/PREFIX/<word>/*.wav -> DATA/PREFIX.npz"),
              out: Optional[Path] = typer.Option(None, "--out", help="default DATA/PREFIX.npz"),
              test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=0.9,
                                                  help="share of speakers held out for testing"),
              seed: int = typer.Option(0, "--seed", help="which speakers are held out"),
              grid: Optional[Path] = typer.Option(None, "--grid", help="also write a PNG of stamps per word"),
              data: Path = typer.Option(Path("data"), "--data", help=DATA_HELP),
              ) -> None:
    """Turn word clips into the stamp dataset the trainer reads (test speakers held out)."""
    from trainer.dataset import build_dataset, load_dataset

    _check_data(data, prefix)
    with _progress() as prog:
        task = prog.add_task(f"build {prefix}", total=None)

        def step(i: int, n: int) -> None:
            prog.update(task, completed=i, total=n)

        try:
            report = build_dataset(data, prefix, out=out, test_fraction=test_fraction, seed=seed, progress=step)
        except (FileNotFoundError, ValueError) as exc:
            _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 1)
    for e in report.errors:
        _say(f"skip {e}", style="red")
    rows = [(f"  {w}", n) for w, n in sorted(report.per_word.items())]
    _table(f"build {prefix}", [("clips", report.n), ("unreadable", len(report.errors)), ("speakers", report.speakers),
                               ("test speakers", ", ".join(report.test_speakers) or "-"), ("words", len(rows))]
           + rows + [("written", report.out)])
    if grid is not None:
        from trainer.plots import plot_stamp_grid

        d = load_dataset(report.out)
        _say(f"grid {plot_stamp_grid(grid, d.stamps, d.labels, d.words)}")


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `wordstamp` app."""
    app.command("split")(split_cmd)
    app.command("record")(record_cmd)
    app.command("synth")(synth_cmd)
    app.command("build")(build_cmd)
    imp = typer.Typer(no_args_is_help=True, help="Import ready-cut word clips from public datasets.")
    imp.command("fsdd")(import_fsdd)
    imp.command("folders")(import_folders)
    app.add_typer(imp, name="import")
