"""How long the segmenter waits after a word has ended: bench's latency streams replayed offline, per segmenter setting.

    python -m scripts.end_lag [--set release_db=20] [--seeds 4 5 6] [--models models/digits models/animals]

Builds the streams `make bench` plays in real time for its latency figures (40 held-out words, 0.3-1.5 s pauses, pink
noise or kitchen noise at 20 dB SNR; seed 4 is bench's own), replays them and prints, per stream, how far after the
word's true end (-30 dB of the clip's peak) the word event matched to it ends, as bench matches them (published words
only), and how many words came out right. Latency at a subscriber is about this lag plus the 120 ms hang-over, so a
segmenter setting can be chosen here in seconds rather than with two minutes of paced playback.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.end_lag", description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="segmenter setting to override")
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 5, 6])
    ap.add_argument("--models", nargs="+", default=["models/digits", "models/animals"])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    a = ap.parse_args(argv)
    from bench.heldout import held_out, noise_test_audio
    from bench.latency import LATENCY_NOISES, latency_stream, match_events
    from daemon.replay import replay_events
    from scripts.speaker_folds import apply_sets
    from shared.audio import SAMPLE_RATE, write_wav_atomic
    from shared.segment import SegmenterConfig

    keys = [item.partition("=")[0] for item in a.set]
    try:  # each value parsed as the setting it replaces
        cfg = apply_sets(SegmenterConfig(), a.set)
    except (AttributeError, TypeError, ValueError) as exc:
        ap.error(f"--set: {exc}")
    seg = {k: getattr(cfg, k) for k in keys}
    h = held_out(Path(a.models[0]).parent, a.shared)
    names = [f.name for f in sorted((a.shared / "noise").glob("*.wav"))]
    noises = noise_test_audio(a.shared)
    clips = h.digits() + (h.animals() if len(a.models) > 1 else [])
    print(f"segmenter overrides {seg or 'none'}; models {' '.join(a.models)}")
    print(f"{'stream':<16}{'words':>7}{'right':>7}{'lag p50':>10}{'p95':>8}{'max':>8}  (ms after the true end)")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for _, file, label in LATENCY_NOISES:
                label = label.split()[0]
                s, audio = latency_stream(clips, noises, names, file, 40, seed=seed)
                wav = Path(tmp) / f"{label}{seed}.wav"
                write_wav_atomic(wav, audio, SAMPLE_RATE)
                events = [e for e in replay_events(wav, a.models, segmenter=seg) if e.topic == "word"]
                matched = match_events(events, s.spans)
                lag = np.array([1000.0 * (ev.end - s.spans[i][1]) for i, ev in matched.items()])
                right = sum(1 for i, ev in matched.items() if ev.word == s.words[i])
                p50, p95, top = (np.percentile(lag, 50), np.percentile(lag, 95), lag.max()) if lag.size else (0, 0, 0)
                print(f"{label + ' ' + str(seed):<16}{len(matched):>4}/{len(s.words):<2}{right:>7}"
                      f"{p50:>10.0f}{p95:>8.0f}{top:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
