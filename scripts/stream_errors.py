"""Where the words of bench's streams are lost: for each word said, what the daemon's replay path made of it.

    python -m scripts.stream_errors [--snr 10] [--models models/digits] [--with-animals] [--confusions]
        [--threshold NAME=VALUE]

Builds the same kind of streams as `make bench` (held-out TTS voices, 0.3-1.5 s pauses, held-out noise tails at the
SNR; `make bench` must have run once for its TTS cache), replays them with reject events on, and sorts every word said
into: right (and whether another model also published a word for it); rejected with the right top word (the
threshold cost it); rejected as _unknown_/_silence_; rejected with a wrong top word; a wrong word accepted; or no
segment at all (the segmenter missed it). The split says whether the segmenter, the threshold or the model loses the
words.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.stream_errors", description=__doc__.split("\n\n")[0])
    ap.add_argument("--snr", type=float, default=None, help="dB; default clean")
    ap.add_argument("--models", action="append", default=None, help="bundle folders (default models/digits)")
    ap.add_argument("--with-animals", action="store_true", help="animal words in the streams too")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--streams", type=int, default=6)
    ap.add_argument("--words", type=int, default=25)
    ap.add_argument("--confusions", action="store_true", help="also list the wrong words accepted (said -> heard)")
    ap.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                    help="a model's reject threshold, as the daemon's --threshold")
    a = ap.parse_args(argv)
    thresholds = {k: float(v) for k, v in (t.split("=", 1) for t in a.threshold)}
    from bench import streaming as st
    from bench.heldout import held_out, noise_test_audio
    from daemon.replay import replay_events
    from shared.audio import SAMPLE_RATE, write_wav_atomic

    models = a.models or ["models/digits"]
    h = held_out(Path(models[0]).parent, a.shared)
    clips = h.digits() + (h.animals() if a.with_animals else [])
    noises = noise_test_audio(a.shared)
    streams = st.build_streams(clips, a.streams, a.words, seed=4)
    rng = np.random.default_rng(5 if a.snr is None else 5 + int(a.snr * 10))
    tally: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(streams):
            wav = Path(tmp) / f"s{k}.wav"
            write_wav_atomic(wav, st.noisy(s, noises, a.snr, rng), SAMPLE_RATE)
            events = [e for e in replay_events(wav, models, reject=True, thresholds=thresholds)
                      if e.topic in ("word", "reject")]
            for word, (t0, t1) in zip(s.words, s.spans):
                near = [e for e in events if e.start < t1 and e.end > t0]
                accepted = [e.word for e in near if e.topic == "word"]
                tops = [e.label for e in near if e.topic == "reject"]
                if not near:
                    tally["no segment"] += 1
                elif word in accepted:
                    tally["right"] += 1
                    if len(accepted) > 1:
                        tally["(of which another word also accepted)"] += 1
                        wrong[f"{word} -> {'+'.join(accepted)}"] += 1
                elif accepted:
                    tally["wrong word accepted"] += 1
                    wrong[f"{word} -> {'+'.join(accepted)}"] += 1
                elif word in tops:
                    tally["rejected, right top word"] += 1
                elif all(t.startswith("_") for t in tops):
                    tally["rejected as _unknown_/_silence_"] += 1
                else:
                    tally["rejected, wrong top word"] += 1
    n = sum(v for k, v in tally.items() if not k.startswith("("))
    label = "clean" if a.snr is None else f"{a.snr:g} dB SNR"
    print(f"{n} words in {len(streams)} streams, {label}, models {', '.join(models)}")
    for key, v in tally.most_common():
        print(f"  {key:<34} {v:4d}  {100 * v / n:5.1f} %")
    if a.confusions and wrong:
        print("wrong words accepted: " + ", ".join(f"{k} ({v})" for k, v in wrong.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
