"""What `wordstamp enroll --tts` adds to a handful of recorded clips a word.

    python -m scripts.enroll_tts models/digits [--work data/recipe] [--shots 10] [--tts 40] [--draws 5]

Each draw takes `shots` recorded clips a word from the recipe's enrolment pool (fox has no recordings: `shots` of its
TTS clips), fits the head as `wordstamp enroll` does (the pool's negatives, C 0.003, margin gate at -0.5) with and
without the synthesised examples `--tts` adds (trainer.enroll.synthesized_examples: never the recipe's held-out
voices), and scores the unseen speakers of animals-test, split into recorded people and synthetic voices, and the
never-trained words and noise of oov. Mean of `draws` draws; the base runs on LiteRT.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from shared.bundle import load_bundle
from trainer.dataset import speaker_kind
from trainer.enroll import (accepted_words, embed_folder, fit_head, head_words, reject_labels,
                            synthesized_examples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.enroll_tts", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("--work", type=Path, default=Path("data/recipe"))
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--tts", type=int, default=40, help="espeak-ng speakers, as `wordstamp enroll --tts`")
    ap.add_argument("--draws", type=int, default=5)
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    base = load_bundle(a.base)
    pool, test, oov, neg = (embed_folder(base, a.work / f) for f in ("animals", "animals-test", "oov", "animals-neg"))
    neg.words = reject_labels(neg.words)
    vocab = sorted(set(pool.words.tolist()))
    oov = oov.take(np.flatnonzero(~np.isin(oov.words, vocab)))
    synth = synthesized_examples(base, vocab, a.tts)
    recorded = np.array([speaker_kind(s) == "human" for s in pool.speakers])
    people = np.array([speaker_kind(s) == "human" for s in test.speakers])
    want = accepted_words(test.words)
    print(f"{base.path}: {a.shots} recorded clips a word (fox: TTS), {a.draws} draws; --tts {a.tts} adds "
          f"{len(synth.words)} clips; test {people.sum()} recorded + {(~people).sum()} synthetic clips, "
          f"oov {len(oov.words)}")
    print(f"{'examples':<28}{'recorded people':>17}{'synthetic voices':>18}{'all':>8}{'oov accepted':>14}")
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(a.draws):
        idx = []
        for w in vocab:
            mine = np.flatnonzero((pool.words == w) & recorded)
            src = mine if mine.size else np.flatnonzero(pool.words == w)
            idx += rng.choice(src, size=min(a.shots, src.size), replace=False).tolist()
        draws.append(np.array(idx))
    for name, extra in ((f"{a.shots} a word", None), (f"{a.shots} a word + --tts {a.tts}", synth)):
        rows = []
        for idx in draws:
            parts = [(pool.emb[idx], pool.words[idx]), (neg.emb, neg.words)] + ([(extra.emb, extra.words)] if extra else [])
            head = fit_head(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
            right = head_words(head, test.emb) == want
            rows.append((right[people].mean(), right[~people].mean(), right.mean(),
                         np.mean(head_words(head, oov.emb) != None)))  # noqa: E711 (object array)
        m = np.mean(rows, axis=0)
        print(f"{name:<28}{m[0]:>17.1%}{m[1]:>18.1%}{m[2]:>8.1%}{m[3]:>14.1%}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
