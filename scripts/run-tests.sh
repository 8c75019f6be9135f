#!/usr/bin/env bash
# Runs the test suite with the virtual microphone up (the mic-path tests need it), and stops it afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/virtual-mic.sh start 2>/dev/null)" || echo "run-tests: virtual microphone not started; mic tests will skip" >&2
.venv/bin/python -m pytest -q "$@"
rc=$?
scripts/virtual-mic.sh stop >/dev/null 2>&1 || true
exit $rc
