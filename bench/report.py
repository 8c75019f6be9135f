"""The bench's output: every figure as a row (figure, value, target, how measured, machine, date) in
bench/results.json (for machines) and bench/RESULTS.md (for people). Both are written from one list of `Figure`s so
they cannot disagree, and both name the command, commit and models that produced them."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.audio import atomic_write_bytes


@dataclass
class Figure:
    """One measured number and how it was measured."""

    section: str  # e.g. "accuracy", "streaming", "latency"
    name: str  # what it is, e.g. "p50 latency, word end -> event"
    value: float | int | str | None  # None when it could not be measured (see `how` for why)
    unit: str = ""  # "%", "ms", "x real time", "MB", ...
    how: str = ""  # one sentence: data, method, repeats
    target: str = ""  # e.g. "<= 150 ms"; empty when there is none
    meets: bool | None = None  # whether `value` meets `target` (None without a target)
    key: str = ""  # stable identifier for results.json consumers, e.g. "latency.p50_ms"

    def shown(self) -> str:
        """The value as the table shows it."""
        return format_value(self.value, self.unit)


def format_value(value: Any, unit: str = "") -> str:
    """Numbers rounded for reading (3 significant digits, no exponent); '—' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or isinstance(value, str):
        text = str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        v = float(value)
        if v == 0:
            text = "0"
        elif abs(v) >= 100:
            text = f"{v:,.0f}"
        elif abs(v) >= 10:
            text = f"{v:.1f}"
        elif abs(v) >= 1:
            text = f"{v:.2f}"
        else:
            text = f"{v:.3f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


@dataclass
class Results:
    """Everything one `python -m bench.run` produced."""

    figures: list[Figure] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # command, date, commit, machine, models, runtime
    details: dict = field(default_factory=dict)  # per-section raw numbers (per-SNR counts, per-fold accuracies, ...)
    notes: list[str] = field(default_factory=list)  # caveats printed under the table

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        return fig

    def to_dict(self) -> dict:
        return {"meta": self.meta, "figures": [asdict(f) for f in self.figures], "details": self.details,
                "notes": self.notes}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(res: Results) -> str:
    """RESULTS.md: the header (command, machine, date), one table of all figures grouped by section, then notes."""
    m = res.meta
    mach = m.get("machine", {})
    machine_short = m.get("machine_short", "")
    date = m.get("date", "")
    lines = ["# wordstamp bench results", "",
             f"Produced by `{m.get('command', 'make bench')}` at commit `{m.get('commit', '')}` on {date} "
             f"in {format_value(m.get('runtime_s'), 's')}. Do not edit by hand: run the command again.", ""]
    if mach:
        lines += [f"Machine: {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores, {mach.get('memory_gb', '?')} GB, "
                  f"{mach.get('os', '')}, Python {mach.get('python', '')}; load average at start "
                  f"{', '.join(str(x) for x in mach.get('load_at_start', []))} (shared machine: speeds are medians of "
                  f"several runs and ratios measured in the same run).", ""]
    if m.get("models"):
        lines += ["Models: " + ", ".join(f"`{x['name']}` ({x['hash']}, {x['kind']})" for x in m["models"]), ""]
    lines += ["| section | figure | value | target | how measured | machine | date |",
              "|---|---|---|---|---|---|---|"]
    for f in res.figures:
        target = f.target
        if f.target and f.meets is not None:
            target = f"{f.target} {'✅' if f.meets else '❌'}"
        lines.append("| " + " | ".join(_cell(c) for c in (f.section, f.name, f.shown(), target, f.how,
                                                            machine_short, date[:10])) + " |")
    if res.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(lines) + "\n"


def write_results(res: Results, folder: Path) -> tuple[Path, Path]:
    """Write results.json and RESULTS.md into `folder` atomically; returns both paths."""
    folder = Path(folder)
    j = atomic_write_bytes(folder / "results.json", (json.dumps(res.to_dict(), indent=1, default=_plain) + "\n").encode())
    md = atomic_write_bytes(folder / "RESULTS.md", render_markdown(res).encode())
    return j, md


def _plain(o: Any) -> Any:
    """numpy scalars and arrays -> plain JSON values (json.dumps' fallback)."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
