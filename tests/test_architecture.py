"""The arrows of the design: trainer -> shared <- daemon, nothing back, nothing across; the daemon runs without
TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, REPO


def _imports(package: str) -> set[str]:
    """Top-level package names imported anywhere in a package's modules (at any depth of the code)."""
    found: set[str] = set()
    for f in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_rooms_import_only_downwards():
    assert not {"trainer", "daemon"} & _imports("shared")
    assert "trainer" not in _imports("daemon")
    assert "daemon" not in _imports("trainer")
    assert not {"tensorflow", "keras", "sklearn"} & (_imports("daemon") | _imports("shared"))


def test_daemon_replay_runs_without_tensorflow_loaded():
    """The very pipeline the daemon runs, over a fixture, with the shipped models, behind the whole `wordstamp` app
    (which registers the trainer's commands too): TensorFlow, Keras and scikit-learn never get imported."""
    wav = next(iter(sorted(Path(FIXTURES).glob("*.wav"))))
    code = (
        "import sys, wordstamp; wordstamp._register()\n"
        "from daemon.replay import replay_events\n"
        f"evs = list(replay_events({str(wav)!r}, [{str(REPO / 'models' / 'digits')!r}]))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'sklearn'))\n"
        "print(len(evs), bad)\n"
        "sys.exit(1 if bad or not evs else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
