"""Replay throughput on one core: bench/stages.py in a subprocess pinned to CPU 0 (taskset) with one thread per
numeric library, several runs over the same recording after a warm-up; medians of audio seconds per CPU second,
total and per stage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.daemon_proc import REPO
from bench.stages import STAGES
from bench.stats import median

THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}


def measure(wav: Path, models: list[Path], repeats: int = 5, block_ms: int | None = None) -> dict:
    """Median x-real-time of `repeats` replays of `wav` on one core, with each stage's CPU share and speed.

    `block_ms`: audio per pipeline call (default: `wordstamp replay`'s)."""
    cmd = [sys.executable, "-m", "bench.stages", str(wav), "--repeats", str(repeats)]
    if block_ms is not None:
        cmd += ["--block-ms", str(block_ms)]
    for m in models:
        cmd += ["--model", str(m)]
    pinned = shutil.which("taskset") is not None
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"bench.stages failed: {out.stderr.strip().splitlines()[-1:]}")
    runs = json.loads(out.stdout.strip().splitlines()[-1])["runs"]
    audio_s = runs[0]["audio_s"]
    stages = {}
    for s in STAGES:
        cpu = median([r[s] for r in runs])
        stages[s] = {"cpu_s": round(cpu, 5), "x_real_time": round(audio_s / cpu, 0) if cpu > 0 else None,
                     "share": round(median([r[s] / r["total"] for r in runs]), 4)}
    return {"audio_s": round(audio_s, 2), "repeats": len(runs), "pinned_one_core": pinned, "block_ms": runs[0]["block_ms"],
            "x_real_time": round(median([r["x_real_time"] for r in runs]), 1),
            "x_real_time_runs": [round(r["x_real_time"], 1) for r in runs],
            "process_x_real_time": round(median([audio_s / r["process_cpu"] for r in runs]), 1),
            "words": runs[0]["words"], "events": runs[0]["events"], "stages": stages}
