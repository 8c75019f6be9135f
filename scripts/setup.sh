#!/usr/bin/env bash
# Set-up for a fresh Debian/Ubuntu machine with Python >= 3.11: system packages, then the venv in .venv.
#   scripts/setup.sh run      what the daemon needs (PortAudio; the package without TensorFlow)
#   scripts/setup.sh test     everything: TTS voices, PulseAudio for the virtual mic, the [train,dev,kokoro] extras
# Idempotent: installs only what is missing, so a second run costs seconds.
set -euo pipefail
mode=${1:-run}
here=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}

apt_pkgs=(libportaudio2 libsndfile1)
if [ "$mode" = test ]; then
  apt_pkgs+=(pulseaudio pulseaudio-utils libasound2-plugins espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k sox)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cd "$here"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=""
[ "$mode" = test ] && extras="[train,dev,kokoro]"
stamp=".venv/.installed-$mode-$(cat pyproject.toml | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  log=.venv/setup.log
  echo "setup: installing wordstamp$extras into .venv (log: $log)" >&2
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -e ".$extras"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -n 20 >&2
    echo "setup: pip install failed (full log: $log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import shared, numpy, zmq, soundfile, ai_edge_litert"
  touch "$stamp"
fi
