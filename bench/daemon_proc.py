"""A real `wordstamp daemon` in a subprocess, for the figures that only a separate process can give honestly:
start-up time, resident memory and end-to-end latency to a subscriber in another process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DaemonProc:
    """A spawned daemon with its PUB and control endpoints."""

    proc: subprocess.Popen
    pub: str
    control: str
    spawned: float  # time.monotonic() just before Popen
    stderr_path: Path
    ready_s: float | None = None  # spawn -> first control reply
    extra: dict = field(default_factory=dict)

    def request(self, command: str, timeout_ms: int = 500) -> dict | None:
        """One control request; None when the daemon does not answer in time."""
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.control)
        try:
            s.send_string(command)
            if s.poll(timeout_ms):
                return json.loads(s.recv())
            return None
        finally:
            s.close(0)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll `status` on the control socket until it answers; seconds from spawn to that answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}: {self.stderr_tail()}")
            r = self.request("status", 100)
            if r is not None and r.get("ok"):
                self.ready_s = time.monotonic() - self.spawned
                return self.ready_s
        raise TimeoutError("daemon never answered on its control socket")

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the daemon, kB, from /proc."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k = line.split(":")[0]
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(line.split()[1])
        return out

    def stderr_tail(self) -> str:
        try:
            return " / ".join(self.stderr_path.read_text().strip().splitlines()[-3:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then wait; kill only this process if it does not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def spawn_daemon(models: list[Path], wav: Path, workdir: Path, *, paced: bool = True, wait_subscriber: float = 0.0,
                 status_interval: float = 5.0, extra_args: list[str] | None = None,
                 pin_cpu: int | None = None) -> DaemonProc:
    """Start `wordstamp daemon --input wav` on free local ports; stderr goes to a file in `workdir`."""
    pub, ctl = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "wordstamp", "daemon", "--input", str(wav), "--paced" if paced else "--fast",
           "--pub", pub, "--control", ctl, "--status-interval", str(status_interval),
           "--source-id", "bench"]
    for m in models:
        cmd += ["--model", str(m)]
    if wait_subscriber > 0:
        cmd += ["--wait-subscriber", str(wait_subscriber)]
    cmd += extra_args or []
    if pin_cpu is not None:
        cmd = ["taskset", "-c", str(pin_cpu)] + cmd
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    err = workdir / f"daemon-{time.monotonic_ns()}.log"
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    return DaemonProc(proc, pub, ctl, t0, err)
