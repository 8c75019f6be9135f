"""`make demo`: the daemon on the shipped models over a bundled recording, and a subscriber printing the word events.

    .venv/bin/python -m scripts.demo [--fast] [--model DIR ...] [--input FILE]

Starts `wordstamp daemon --input tests/fixtures/demo.wav` (paced in real time, as a microphone would be) in a
subprocess publishing on a free loopback port, subscribes to it here as any ZeroMQ client would, prints each event,
and exits 0 when the recording ends, after comparing what was said with what was heard.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import zmq

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tests" / "fixtures" / "demo.wav"
MODELS = [REPO / "models" / "digits", REPO / "models" / "animals"]


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level edit distance."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="wordstamp demo: daemon + subscriber over a bundled recording")
    ap.add_argument("--fast", action="store_true", help="read the recording as fast as possible")
    ap.add_argument("--model", action="append", help="bundle folder (repeat); default models/digits, models/animals")
    ap.add_argument("--input", default=str(DEMO), help="recording to play to the daemon")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from daemon.listen import format_event
    from shared.events import WordEvent, parse_event

    models = args.model or [str(m) for m in MODELS]
    missing = [m for m in models if not (Path(m) / "manifest.json").is_file()]
    if missing:
        print(f"demo: error: no model bundle at {missing[0]} (build them with `make models`)", file=sys.stderr)
        return 1
    pub = _free_endpoint()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(pub)
    for topic in (b"word", b"status"):
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    cmd = [sys.executable, str(REPO / "wordstamp.py"), "daemon", "--input", args.input, "--pub", pub, "--control", "",
           "--source-id", "demo", "--wait-subscriber", "10", "--status-interval", "5"]
    cmd += ["--fast"] if args.fast else []
    for m in models:
        cmd += ["--model", m]
    print(f"demo: daemon reading {Path(args.input).name} {'fast' if args.fast else 'in real time'}; "
          f"subscriber on {pub}", flush=True)
    daemon = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    threading.Thread(target=lambda: err_lines.extend(daemon.stderr), daemon=True).start()
    heard: list[str] = []
    try:
        while True:
            if not sub.poll(200):
                if daemon.poll() is not None:
                    break  # the daemon is gone without a final status
                continue
            topic, body = sub.recv_multipart()
            ev = parse_event(body)
            print(format_event(ev), flush=True)
            if isinstance(ev, WordEvent):
                heard.append(ev.word)
            elif ev.state in ("stopping", "error"):
                break
        rc = daemon.wait(timeout=10)
    except KeyboardInterrupt:
        daemon.terminate()
        daemon.wait(timeout=5)
        return 130
    finally:
        sub.close(0)
        ctx.term()
    if rc != 0:
        problem = [line.strip() for line in err_lines if "error" in line]
        print(f"demo: error: the daemon exited with {rc}" + (f" ({problem[-1]})" if problem else ""), file=sys.stderr)
        return 1
    truth = Path(args.input).with_suffix(".json")
    if truth.is_file():
        said = json.loads(truth.read_text())["words"]
        print(f"demo: said  {' '.join(said)}\ndemo: heard {' '.join(heard)}\n"
              f"demo: {_edits(said, heard)} word errors (substitutions + deletions + insertions) in {len(said)} words",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
