#!/bin/sh
# wordstamp's virtual microphone: PulseAudio with a null sink "ws_sink" whose monitor is remapped to a source "ws_mic",
# made the default source, so PortAudio/sounddevice's default input hears whatever is played into the sink.
#   eval "$(scripts/virtual-mic.sh start)"   prints the PULSE_SERVER export for clients
#   paplay --device=ws_sink file.wav         feeds it (samples arrive bit-exact; lead with ~1 s of silence)
#   scripts/virtual-mic.sh stop
set -e
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/wordstamp-pulse}
case "${1:-start}" in
start)
  if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v pactl >/dev/null 2>&1; then
    echo "virtual-mic: pulseaudio is not installed (scripts/setup.sh test installs it)" >&2; exit 1
  fi
  mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
  if ! pactl info >/dev/null 2>&1; then
    pulseaudio -D -n --exit-idle-time=-1 --disallow-exit --log-target=file:"$XDG_RUNTIME_DIR/pulse.log" \
      -L module-native-protocol-unix \
      -L "module-null-sink sink_name=ws_sink rate=16000 channels=1 format=s16le" \
      -L "module-remap-source master=ws_sink.monitor source_name=ws_mic" >&2
  fi
  i=0; until pactl info >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 50 ] && { echo "virtual-mic: pulseaudio did not start" >&2; exit 1; }; sleep 0.1; done
  pactl set-default-source ws_mic >&2
  pactl set-default-sink ws_sink >&2
  echo "export PULSE_SERVER=unix:$XDG_RUNTIME_DIR/pulse/native XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
  ;;
stop)
  pulseaudio --kill 2>/dev/null || true
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
