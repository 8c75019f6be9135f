#!/usr/bin/env bash
# Rebuilds models/digits and models/animals from the developers' data folder (default ../shared/data) and TTS voices.
# Writes the clip folders and datasets under data/recipe, training runs under runs/, figures to models/RESULTS.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${1:-../shared/data}"
shift || true
exec .venv/bin/python -m trainer.make_models "$SHARED" "$@"
