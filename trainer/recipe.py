"""The shipped models' data recipe: clip folders `<root>/<prefix>/<word>/<speaker>_<...>.wav` from ../shared/data and TTS.

Files are symlinked (never copied) and renamed so the project's speaker convention (first `_` field) holds: FSDD's
`{digit}_{speaker}_{i}` becomes `{speaker}_{digit}_{i}`. TTS voices held out for the daemon's fixtures (festival
ked_diphone, flite rms, espeak-ng en-gb-scotland) are never used here.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.audio import atomic_write_bytes, read_audio
from shared.bundle import SILENCE, UNKNOWN
from trainer.dataset import speaker_kind, speaker_of
from trainer.synth import hts_rate

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ANIMALS = ["cat", "dog", "bird", "fox"]
DIGITS_LABELS = DIGITS + [UNKNOWN, SILENCE]  # the digits model's clip folders (--extra's too)
SC_UNKNOWN_TRAIN = ["bed", "down", "go", "happy", "house", "left", "no", "off", "on", "right", "stop", "up", "yes"]
SC_UNKNOWN_HELDOUT = ["tree", "wow", "sheila", "marvin"]  # never trained on: the OOV test
# Near neighbours of each digit (rhymes, shared onsets; never homophones such as "won", "to", "for", "ate"): the model
# must learn where a digit ends and other words begin. Optional (--no-rhymes) to measure what they cost.
RHYMES = ["hero", "zebra", "sierra", "arrow", "fun", "sun", "done", "once", "wonder", "shoe", "blue", "new", "true",
          "tooth", "free", "street", "treat", "green", "agree", "thirty", "door", "more", "floor", "store", "forty",
          "fourteen", "fine", "hive", "night", "fight", "drive", "life", "fire", "sticks", "fix", "mix", "socks", "sick",
          "heaven", "several", "second", "given", "wait", "gate", "late", "eighty", "eighteen", "great", "line", "mine",
          "wine", "ninety", "nice", "tea", "seventeen"]
# Everyday words of every shape: the more words `_unknown_` has seen, the more new words it covers (and the richer the
# embedding that enrolled heads learn on). The held-out test words (tree wow sheila marvin, and the animals) are not here.
TTS_UNKNOWN = RHYMES + [
    "hello", "ten", "eleven", "twelve", "twenty", "hundred", "water", "table", "purple", "banana", "morning", "again",
    "open", "light", "music", "seventy", "nineteen", "thirteen", "house", "yes", "no", "stop", "go", "left", "right",
    "up", "down", "on", "off", "bed", "happy", "the", "and", "what", "okay", "please", "apple", "yellow", "coffee",
    "kitchen", "garden", "paper", "people", "money", "letter", "question", "answer", "later", "never", "always",
    "maybe", "sorry", "thanks", "goodbye", "welcome", "dinner", "summer", "winter", "monday", "friday", "today",
    "tomorrow", "listen", "forward", "backward", "follow", "learn", "cancel", "volume", "alarm", "camera", "computer",
    "phone", "doctor", "mother", "father", "baby", "family", "sister", "shelf", "ship", "sugar", "window", "chair",
    "river", "city", "school", "pencil", "orange", "button", "help", "repeat", "quiet", "start", "finish", "good"]
ESPEAK_VOICES = ["en-us", "en-gb", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
FLITE_VOICES = ["kal", "awb", "slt", "kal16"]
FESTIVAL_VOICES = ["kal_diphone", "cmu_us_slt_arctic_hts"]
HELD_OUT_VOICES = {"festival": ["ked_diphone"], "flite": ["rms"], "espeak-ng": ["en-gb-scotland"]}


@dataclass(frozen=True)
class TtsJob:
    """One utterance to synthesise: engine, voice, rate/pitch settings, text, output file."""

    engine: str
    voice: str
    speed: float  # 1.0 = the voice's normal rate
    pitch: int  # espeak-ng 0-99; ignored by the others
    text: str
    out: Path


def espeak_variants() -> list[str]:
    """The installed espeak-ng variant names (`--voices=variant`)."""
    try:
        res = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted({line.split()[4].split("/")[-1] for line in res.stdout.splitlines()[1:] if len(line.split()) > 4})


def _run_tts(job: TtsJob) -> str | None:
    """Synthesise one job; returns an error line or None."""
    job.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.out.with_suffix(".tmp.wav")
    try:
        if job.engine == "espeak-ng":
            cmd = ["espeak-ng", "-v", job.voice, "-s", str(int(160 * job.speed)), "-p", str(job.pitch), "-w", str(tmp),
                   job.text]
            subprocess.run(cmd, capture_output=True, check=True, timeout=30)
        elif job.engine == "flite":
            cmd = ["flite", "-voice", job.voice, "--setf", f"duration_stretch={1 / job.speed:.2f}", "-t", job.text,
                   "-o", str(tmp)]
            subprocess.run(cmd, capture_output=True, check=True, timeout=30)
        elif job.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{job.voice})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {1 / job.speed:.2f})", "-o", str(tmp)]
            if job.speed != 1.0 and (rate_expr := hts_rate(job.voice, job.speed)):
                cmd[-2:-2] = ["-eval", rate_expr]
            subprocess.run(cmd, input=job.text.encode(), capture_output=True, check=True, timeout=60)
        else:
            return f"{job.out}: unknown TTS engine {job.engine}"
        os.replace(tmp, job.out)
    except (OSError, subprocess.SubprocessError) as exc:
        tmp.unlink(missing_ok=True)
        return f"{job.out}: {job.engine} {job.voice} failed ({type(exc).__name__})"
    return None


def tts_jobs(words: list[str], root: Path, *, n_espeak: int, seed: int, label: str | None = None,
             flite_speeds: tuple[float, ...] = (0.85, 1.0, 1.2), festival_speeds: tuple[float, ...] = (1.0,),
             exclude_variants: tuple[str, ...] = ()) -> list[TtsJob]:
    """Jobs for `words` into root/<word or label>/: n_espeak random espeak-ng voice+variant speakers, each saying every
    word at its own speed and pitch, plus every flite and festival training voice at a few speeds."""
    rng = np.random.default_rng(seed)
    variants = [v for v in espeak_variants() if v not in exclude_variants] or ["m3"]
    pairs = [(v, var) for v in ESPEAK_VOICES for var in variants]
    pick = rng.choice(len(pairs), size=min(n_espeak, len(pairs)), replace=False)
    jobs = []
    for k in pick:
        voice, var = pairs[int(k)]
        spk = f"tts-espeak-{voice}-{var}".replace("_", "-")
        for w in words:
            speed, pitch = float(rng.uniform(0.75, 1.3)), int(rng.integers(20, 80))
            jobs.append(TtsJob("espeak-ng", f"{voice}+{var}", speed, pitch, w,
                               root / (label or w) / f"{spk}_{w}_0.wav"))
    for v in FLITE_VOICES:
        for i, s in enumerate(flite_speeds):
            jobs += [TtsJob("flite", v, s, 0, w, root / (label or w) / f"tts-flite-{v}_{w}_{i}.wav") for w in words]
    for v in FESTIVAL_VOICES:
        for i, s in enumerate(festival_speeds):
            spk = f"tts-festival-{v}".replace("_", "-")
            jobs += [TtsJob("festival", v, s, 0, w, root / (label or w) / f"{spk}_{w}_{i}.wav") for w in words]
    return jobs


def run_tts(jobs: list[TtsJob], workers: int = 4) -> list[str]:
    """Run the jobs that have no output yet (re-runs are cheap); returns error lines."""
    todo = [j for j in jobs if not j.out.exists()]
    with ThreadPoolExecutor(workers) as pool:
        return [e for e in pool.map(_run_tts, todo) if e]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(os.path.abspath(src), dst)


def link_fsdd(fsdd: Path, root: Path, speakers: list[str] | None = None, takes: int = 50) -> int:
    """FSDD `{digit}_{speaker}_{i}.wav` (takes i < `takes` only) -> root/<digit word>/{speaker}_{digit}_{i}.wav."""
    n = 0
    for f in sorted(fsdd.glob("*.wav")):
        d, spk, i = f.stem.split("_")
        if (speakers is None or spk in speakers) and int(i) < takes:
            _link(f, root / DIGITS[int(d)] / f"{spk}_{d}_{i}.wav")
            n += 1
    return n


def link_sc(sc: Path, root: Path, words: list[str], label: str | None = None, max_per_word: int = 10_000,
            seed: int = 0, repeat: int = 1, speakers: set[str] | None = None) -> int:
    """Speech Commands `<word>/HASH_nohash_N.wav` -> root/<word or label>/HASH_<word>_N.wav (at most max_per_word,
    only `speakers`' clips when given); `repeat` > 1 links each clip that many times (oversampling: augmentation
    makes every copy different)."""
    rng = np.random.default_rng(seed)
    n = 0
    for w in words:
        files = [f for f in sorted((sc / w).glob("*.wav")) if speakers is None or f.name.split("_")[0] in speakers]
        if len(files) > max_per_word:
            files = [files[i] for i in sorted(rng.choice(len(files), max_per_word, replace=False))]
        for f in files:
            h, _, i = f.stem.split("_")
            for r in range(repeat):
                _link(f, root / (label or w) / (f"{h}_{w}_{i}.wav" if r == 0 else f"{h}_{w}_{i}r{r}.wav"))
                n += 1
    return n


def check_extra(extra: Path, labels: list[str]) -> None:
    """ValueError (one line) unless `extra` is a folder whose sub-folders are all among `labels`: a misspelt word
    would otherwise be left out without a word."""
    if not extra.is_dir():
        raise ValueError(f"{extra}: not a folder")
    stray = sorted(d.name for d in extra.iterdir() if d.is_dir() and d.name not in labels)
    if stray:
        raise ValueError(f"{extra}: folders {', '.join(stray)} are none of the words ({', '.join(labels)})")


def link_extra(extra: Path, root: Path, labels: list[str]) -> int:
    """Every `extra/<label>/*.wav` -> root/<label>/ under its own name, for the `labels` given (check_extra first)."""
    check_extra(extra, labels)
    n = 0
    for label in labels:
        for f in sorted((extra / label).glob("*.wav")):
            _link(f, root / label / f.name)
            n += 1
    return n


def sc_speakers(sc: Path, words: list[str]) -> list[str]:
    """The Speech Commands speakers (hashes) who said any of `words`."""
    return sorted({f.name.split("_")[0] for w in words for f in (sc / w).glob("*.wav")})


def sc_test_speakers(speakers: list[str], seed: int, fraction: float, fold: tuple[int, int] | None = None) -> list[str]:
    """The SC speakers whose digits are held out: a random `fraction` of them, or fold k of n disjoint groups."""
    rng = np.random.default_rng(seed)
    if fold is None:
        return sorted(rng.choice(speakers, size=max(1, round(fraction * len(speakers))), replace=False).tolist())
    k, n = fold
    if not 0 <= k < n or n > len(speakers):
        raise ValueError(f"SC fold {k}/{n}: needs 0 <= k < n <= {len(speakers)} speakers")
    order = rng.permutation(len(speakers))
    return sorted(speakers[i] for i in order[k::n])


def sc_train_speakers(speakers: list[str], test: list[str], share: float, seed: int) -> set[str]:
    """The SC speakers whose digits are trained on: all not held out, or a random `share` of them (a learning curve:
    what fewer recorded people cost on the held-out ones). The held-out speakers are returned too, because their
    digits are linked as well (the dataset's test split)."""
    if not 0 < share <= 1:
        raise ValueError(f"SC training share {share}: must be above 0 and at most 1")
    rest = sorted(set(speakers) - set(test))
    if share < 1:
        rng = np.random.default_rng(seed + 101)
        rest = rng.choice(rest, size=max(1, round(share * len(rest))), replace=False).tolist()
    return set(rest) | set(test)


def rhyme_voices(jobs: list[TtsJob], share: float, seed: int) -> list[TtsJob]:
    """The `_unknown_` jobs with the near-digit words (RHYMES) said by only a random `share` of the voices that say
    them; every other word keeps all its voices. Synthetic voices say the digits too (flite's and festival's the very
    same), and the near neighbours taught the network to doubt their digits (Round 23): fewer of them is the middle
    way between all and none."""
    if not 0 < share <= 1:
        raise ValueError(f"rhyme voice share {share}: must be above 0 and at most 1")
    if share == 1:
        return jobs
    rhymes = set(RHYMES)
    voices = sorted({speaker_of(j.out) for j in jobs if j.text in rhymes})
    rng = np.random.default_rng(seed + 202)
    keep = set(rng.choice(voices, size=max(1, round(share * len(voices))), replace=False).tolist())
    return [j for j in jobs if j.text not in rhymes or speaker_of(j.out) in keep]


def noise_chunks(noise: Path, out: Path, n: int, part: tuple[float, float], seed: int, prefix: str = "noise") -> int:
    """n one-second chunks at random gains from the `part` (fractions) of each noise file -> out/*.wav (16 kHz)."""
    import soundfile as sf
    import io

    rng = np.random.default_rng(seed)
    files = sorted(noise.glob("*.wav"))
    if not files:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    sigs = [read_audio(f) for f in files]
    for k in range(n):
        j = k % len(files)
        x = sigs[j]
        a, b = int(part[0] * x.size), int(part[1] * x.size) - 16000
        s = int(rng.integers(a, max(a + 1, b)))
        chunk = x[s:s + 16000] * np.float32(10 ** rng.uniform(-2.5, 0.3))
        if k % 10 == 9:
            chunk = chunk * np.float32(1e-3)  # near digital silence
        buf = io.BytesIO()
        sf.write(buf, np.clip(chunk, -1, 1), 16000, format="WAV", subtype="PCM_16")
        name = files[j].stem.replace("_", "-")
        atomic_write_bytes(out / f"{prefix}-{name}_{k}_0.wav", buf.getvalue())
    return n


def prepare_digits(shared: Path, root: Path, *, seed: int = 0, test_fraction: float = 0.4,
                   n_espeak: int = 200, fsdd_takes: int = 25, sc_repeat: int = 3, rhymes: bool = True,
                   sc_unknown: int = 40, sc_fold: tuple[int, int] | None = None,
                   sc_unknown_voices: str = "any", sc_train_share: float = 1.0, rhyme_share: float = 1.0,
                   accents: bool = False, extra: Path | None = None) -> dict:
    """Clip folders for the digits model and its held-out checks; returns the SC test speakers and folder paths.

    root/digits: FSDD (all six speakers) + Speech Commands digits and some other words (as _unknown_) + TTS digits
    and other words + noise chunks (_silence_, from the first 70 % of each noise file).
    root/sc-test: the digits of SC speakers kept out of training; root/oov: words never trained on + the last 25 % of
    each noise file (as _silence_). `sc_fold` (k, n): the k-th of n disjoint groups of the SC digit speakers is held
    out instead of a random `test_fraction` of them, so that n runs test every SC speaker once.
    `sc_unknown_voices` "digit-speakers": the recorded `_unknown_` words only from people who also say digits, so
    that a recorded voice alone does not tell `_unknown_` from a digit ("any": from whoever said them).
    `sc_train_share` < 1 trains on the digits of only that share of the SC speakers not held out; `rhyme_share` < 1
    has only that share of the TTS voices say the near-digit words (`rhymes` False: none of them). `accents`: festival's
    non-English voices say the digits too, respelt (trainer/accents.py). `extra`: a folder of `<word>/*.wav` clips
    (a digit, `_unknown_` or `_silence_`; file names `SPEAKER_...`) trained on as well (link_extra).
    """
    if sc_unknown_voices not in ("any", "digit-speakers"):
        raise ValueError(f"sc_unknown_voices {sc_unknown_voices!r}: expected 'any' or 'digit-speakers'")
    sc, digits = shared / "speech-commands", root / "digits"
    link_fsdd(shared / "fsdd", digits, takes=fsdd_takes)  # 50 takes of 6 voices are near-duplicates: half suffice
    digit_speakers = sc_speakers(sc, DIGITS)
    test = sc_test_speakers(digit_speakers, seed, test_fraction, sc_fold)
    linked = sc_train_speakers(digit_speakers, test, sc_train_share, seed)
    link_sc(sc, digits, DIGITS, repeat=sc_repeat, speakers=linked)  # the few real, varied voices count more
    link_sc(sc, digits, SC_UNKNOWN_TRAIN, label="_unknown_", max_per_word=sc_unknown, seed=seed,
            speakers=set(digit_speakers) if sc_unknown_voices == "digit-speakers" else None)
    jobs = tts_jobs(DIGITS, digits, n_espeak=n_espeak, seed=seed)
    unknown_words = TTS_UNKNOWN if rhymes else [w for w in TTS_UNKNOWN if w not in RHYMES]
    jobs += rhyme_voices(tts_jobs(unknown_words, digits, n_espeak=max(10, n_espeak // 14), seed=seed + 1,
                                  label="_unknown_", flite_speeds=(1.0,)), rhyme_share, seed)
    if accents:
        from trainer.accents import accent_jobs  # accents builds on this module's jobs

        jobs += accent_jobs(digits, unknown_words, seed=seed + 3)
    errors = run_tts(jobs)
    if extra is not None:
        link_extra(extra, digits, DIGITS_LABELS)
    noise_chunks(shared / "noise", digits / "_silence_", 400, (0.0, 0.7), seed)
    for f in sorted(digits.glob("*/*.wav")):  # held-out SC speakers' digits also make the sc-test folder
        if f.name.split("_")[0] in test and f.parent.name in DIGITS and "r" not in f.stem.split("_")[-1]:
            _link(f.resolve(), root / "sc-test" / f.parent.name / f.name)
    link_sc(sc, root / "oov", SC_UNKNOWN_HELDOUT + ["cat", "dog", "bird"], max_per_word=30, seed=seed)
    noise_chunks(shared / "noise", root / "oov" / "_silence_", 120, (0.75, 1.0), seed + 7, prefix="noisetest")
    return {"test_speakers": test, "tts_errors": errors}


def prepare_animals(shared: Path, root: Path, *, seed: int = 0, test_fraction: float = 0.4, n_espeak: int = 40) -> dict:
    """Clip folders for the animals head: root/animals (enrolment pool), root/animals-test (unseen speakers and
    voices), root/animals-neg/_unknown_ (other words and digits, learnt as the head's reject class)."""
    sc = shared / "speech-commands"
    rng = np.random.default_rng(seed)
    pool, test = root / "animals-all", root / "animals-test"
    link_sc(sc, pool, ["cat"], max_per_word=60, seed=seed)
    link_sc(sc, pool, ["dog", "bird"])
    jobs = tts_jobs(ANIMALS, pool, n_espeak=n_espeak + 12, seed=seed + 11, flite_speeds=(0.9, 1.1))
    errors = run_tts(jobs)
    spk = sorted({f.name.split("_")[0] for f in pool.glob("*/*.wav")})
    sc_spk = [s for s in spk if speaker_kind(s) == "human"]
    espeak_spk = [s for s in spk if speaker_kind(s) == "espeak"]
    held = set(rng.choice(sc_spk, size=round(test_fraction * len(sc_spk)), replace=False).tolist())
    held |= set(rng.choice(espeak_spk, size=min(12, len(espeak_spk) // 3), replace=False).tolist())
    for f in sorted(pool.glob("*/*.wav")):
        dst = (test if f.name.split("_")[0] in held else root / "animals") / f.parent.name / f.name
        _link(f.resolve(), dst)
    neg = root / "animals-neg"
    link_sc(sc, neg, SC_UNKNOWN_TRAIN, label="_unknown_", max_per_word=8, seed=seed)
    digits = sorted((root / "digits").glob("[a-z]*/*.wav"))
    for k in rng.choice(len(digits), size=min(150, len(digits)), replace=False):
        _link(digits[int(k)].resolve(), neg / "_unknown_" / digits[int(k)].name)
    # a head must not fire on noise either: all the noise chunks the digits model's _silence_ learnt from (a quarter of
    # them let the head hear cat and bird 28 times in bench's hour of noise, all of them 5 times)
    for f in sorted((root / "digits" / "_silence_").glob("*.wav")):
        _link(f.resolve(), neg / "_silence_" / f.name)
    return {"test_speakers": sorted(held), "tts_errors": errors}
