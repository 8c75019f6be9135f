"""Daemon resident memory and start-up time, with one bundle and with two.

Each start is a fresh `wordstamp daemon --input FILE --paced` process. Ready = the first answer on its control socket
(models loaded, sockets bound, worker started); start-up = spawn -> ready, so it includes the interpreter and imports.
Memory is read from /proc after a few seconds of speech have gone through the recognizer (VmRSS then, and VmHWM,
the peak since start).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.daemon_proc import spawn_daemon
from bench.stats import median


@dataclass
class MemoryRun:
    """Medians over `starts` fresh daemons with the same bundles."""

    models: list[str]
    starts: int = 0
    ready_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    hwm_mb: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"models": self.models, "starts": self.starts, "ready_s_median": round(median(self.ready_s), 3),
                "rss_mb_median": round(median(self.rss_mb), 1), "hwm_mb_median": round(median(self.hwm_mb), 1),
                "ready_s": [round(x, 3) for x in self.ready_s], "rss_mb": self.rss_mb, "hwm_mb": self.hwm_mb}


def measure(models: list[Path], wav: Path, workdir: Path, starts: int = 3, settle_s: float = 3.0) -> MemoryRun:
    """Start the daemon `starts` times on `wav` (a few seconds of words); ready time and memory of each."""
    run = MemoryRun([m.name for m in models])
    for _ in range(starts):
        d = spawn_daemon(models, wav, workdir, paced=True)
        try:
            run.ready_s.append(d.wait_ready())
            time.sleep(settle_s)
            if d.proc.poll() is not None:
                raise RuntimeError(f"daemon stopped before its memory was read: {d.stderr_tail()}")
            mem = d.memory_kb()
            run.rss_mb.append(round(mem["VmRSS"] / 1024, 1))
            run.hwm_mb.append(round(mem["VmHWM"] / 1024, 1))
            run.starts += 1
        finally:
            d.stop()
    return run
