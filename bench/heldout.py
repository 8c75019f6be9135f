"""Which clips the bench may test on: only speakers and voices the shipped models never trained on.

- Speech Commands: the digits bundle's manifest lists the dataset's test speakers (`training.data.test_speakers`);
  their digits are the held-out SC clips. The words `tree wow sheila marvin` were never trained on by anyone
  (trainer/recipe.py SC_UNKNOWN_HELDOUT): the out-of-vocabulary set.
- TTS: the voices trainer/recipe.py keeps out of training (festival ked, flite rms, espeak-ng en-gb-scotland) say every
  word at three speeds; synthesised once into a cache folder outside the repo.
- Accents: festival's Czech ph, Finnish lj and Telugu NSK voices say every digit respelt in their own letters at
  three speeds (trainer/accents.py ACCENT_HELD_OUT: out of `make_models --accents` too); when festival has them.
- Noise: the recipe trains `_silence_` on the first 70 % of each noise file; streams and noise-only audio use the rest.
- FSDD: every FSDD speaker is in the shipped model's training data, so FSDD is held out only by leave-one-speaker-out
  retraining (see bench/accuracy.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.audio import read_audio

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ANIMALS = ["cat", "dog", "bird", "fox"]
OOV_WORDS = ["tree", "wow", "sheila", "marvin"]
NOISE_TEST_PART = (0.7, 1.0)  # of each noise file; the recipe's _silence_ chunks come from (0.0, 0.7)
TTS_SPEEDS = (0.85, 1.0, 1.2)
CACHE = Path(os.environ.get("WORDSTAMP_BENCH_CACHE", Path.home() / ".cache" / "wordstamp-bench"))

Clip = tuple[str, Path]  # (word, file)


@dataclass
class HeldOut:
    """The held-out test material for one set of bundles."""

    shared: Path
    sc_speakers: list[str]  # SC speakers kept out of training (the digits dataset's test split)
    sc_digits: list[Clip] = field(default_factory=list)
    sc_animals: list[Clip] = field(default_factory=list)  # cat/dog/bird clips by the held-out SC speakers
    oov: list[Clip] = field(default_factory=list)  # words nobody trained on
    tts: list[Clip] = field(default_factory=list)  # held-out TTS voices, digits and animals
    accent: list[Clip] = field(default_factory=list)  # held-out accented voices' digits (empty: voices not installed)
    accent_missing: list[str] = field(default_factory=list)  # Debian packages of the held-out accent voices not there
    source: str = ""  # where the speaker list came from

    def digits(self) -> list[Clip]:
        return self.sc_digits + [c for c in self.tts if c[0] in DIGITS]

    def animals(self) -> list[Clip]:
        return self.sc_animals + [c for c in self.tts if c[0] in ANIMALS]


def sc_test_speakers(models: Path, shared: Path) -> tuple[list[str], str]:
    """The SC speakers the digits model never saw, from its manifest (or, failing that, its dataset's npz)."""
    man = models / "digits" / "manifest.json"
    if man.is_file():
        m = json.loads(man.read_text())
        spk = (m.get("training", {}).get("data") or {}).get("test_speakers")
        if spk:
            return sorted(s for s in spk if not s.startswith("tts")), f"{man} training.data.test_speakers"
        for ds in m.get("training", {}).get("datasets") or []:
            p = Path(ds)
            if p.is_file():
                z = np.load(p, allow_pickle=False)
                return sorted(z["test_speakers"].astype(str).tolist()), f"{p} test_speakers"
    raise FileNotFoundError(f"{man}: no test speakers recorded; cannot tell held-out speakers apart")


def sc_clips(shared: Path, words: list[str], speakers: set[str] | None) -> list[Clip]:
    """Speech Commands `<word>/HASH_nohash_N.wav` clips, only `speakers`' when given."""
    out = []
    for w in words:
        for f in sorted((shared / "speech-commands" / w).glob("*.wav")):
            if speakers is None or f.name.split("_")[0] in speakers:
                out.append((w, f))
    return out


ENROL_VOICES = {"flite": ["kal", "awb", "slt"], "espeak-ng": ["en-us", "en-gb"], "festival": ["kal_diphone"]}


def tts_clips(words: list[str], cache: Path = CACHE) -> list[Clip]:
    """Every word by every held-out TTS voice at three speeds (synthesised once into `cache`)."""
    from trainer.recipe import HELD_OUT_VOICES

    return _synth(words, HELD_OUT_VOICES, "heldout", cache)


def tts_clips_voices(words: list[str], cache: Path = CACHE) -> list[Clip]:
    """The words by some of the recipe's training voices: an enrolment pool for new-word (shots) tests."""
    return _synth(words, ENROL_VOICES, "enrol", cache)


def accent_clips(cache: Path = CACHE, voices_root: Path | None = None) -> tuple[list[Clip], list[str]]:
    """Every digit by each held-out accent voice festival has, at three speeds (synthesised once into `cache`), and
    the Debian packages of the held-out voices it lacks."""
    from trainer.accents import ACCENT_HELD_OUT, accent_jobs, missing_packages
    from trainer.recipe import run_tts
    from trainer.synth import FESTIVAL_VOICES

    root = voices_root or FESTIVAL_VOICES
    jobs = accent_jobs(cache / "accent", [], held_out=True, voices_root=root)
    missing = missing_packages(root, ACCENT_HELD_OUT)
    errors = run_tts(jobs, workers=2)
    if errors:
        print(f"bench: {len(errors)} accent TTS jobs failed, first: {errors[0]}", flush=True)
    return [(j.out.parent.name, j.out) for j in jobs if j.out.is_file()], missing


def _synth(words: list[str], voices_by_engine: dict[str, list[str]], tag: str, cache: Path) -> list[Clip]:
    from trainer.recipe import TtsJob, run_tts

    jobs = []
    for engine, voices in voices_by_engine.items():
        for v in voices:
            spk = f"{tag}-{engine}-{v}".replace("_", "-")
            for i, s in enumerate(TTS_SPEEDS):
                jobs += [TtsJob(engine, v, s, 50, w, cache / "tts" / w / f"{spk}_{w}_{i}.wav") for w in words]
    errors = run_tts(jobs, workers=2)
    if errors:
        print(f"bench: {len(errors)} TTS jobs failed, first: {errors[0]}", flush=True)
    return [(j.text, j.out) for j in jobs if j.out.is_file()]


def noise_test_audio(shared: Path) -> list[np.ndarray]:
    """The held-out tail of each background-noise file (16 kHz float)."""
    out = []
    for f in sorted((shared / "noise").glob("*.wav")):
        x = read_audio(f)
        out.append(x[int(NOISE_TEST_PART[0] * x.size):int(NOISE_TEST_PART[1] * x.size)])
    return out


def held_out(models: Path, shared: Path, with_animals: bool = True) -> HeldOut:
    """Collect the held-out material for the bundles in `models`."""
    spk, src = sc_test_speakers(models, shared)
    h = HeldOut(shared=shared, sc_speakers=spk, source=src)
    h.sc_digits = sc_clips(shared, DIGITS, set(spk))
    if with_animals:
        h.sc_animals = sc_clips(shared, ["cat", "dog", "bird"], set(spk))
    h.oov = sc_clips(shared, OOV_WORDS, None)
    h.tts = tts_clips(DIGITS + (ANIMALS if with_animals else []))
    h.accent, h.accent_missing = accent_clips()
    return h


def link_folder(clips: list[Clip], folder: Path) -> Path:
    """Clips as `folder/<word>/<file>` symlinks: the layout trainer.evaluate and trainer.enroll read."""
    for w, p in clips:
        d = folder / w
        d.mkdir(parents=True, exist_ok=True)
        dst = d / p.name
        if not dst.exists():
            os.symlink(os.path.abspath(p), dst)
    return folder
