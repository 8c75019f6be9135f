"""Small statistics and timing helpers for the bench: medians of repeated runs (the machine is shared and noisy, so
every speed is a median of several runs) and percentiles of latencies (targets are stated as p50/p95/max)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default method).

    Written out rather than borrowed so the tests can pin its behaviour on tiny inputs; NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    xs = sorted(float(v) for v in values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return percentile(values, 50.0)


@dataclass(frozen=True)
class Spread:
    """A latency-style summary: how many, the median, the 95th percentile and the worst."""

    n: int
    p50: float
    p95: float
    max: float

    def to_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) and not math.isnan(v) else v) for k, v in asdict(self).items()}


def spread(values: Sequence[float]) -> Spread:
    """n, p50, p95 and max of `values` (NaNs for none)."""
    xs = list(values)
    return Spread(len(xs), median(xs), percentile(xs, 95.0), max(xs) if xs else math.nan)


def machine() -> dict:
    """What the figures were measured on: CPU model, cores, memory, OS, Python; written beside every figure."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = math.nan
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "os": platform.platform(terse=True),
            "python": platform.python_version(), "load_at_start": load}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def git_commit(repo: str = ".") -> str:
    """The commit the figures were measured at ('' outside git)."""
    try:
        out = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
