"""Synthetic speakers: the TTS voices installed here (espeak-ng, flite, festival) saying words and word lists.

Many cheap, different voices give the model speakers it has not heard, and `_unknown_` words for the trainer.
`voices()` lists what is installed; `say()` returns one utterance as float32 at 16 kHz; `synth_prefix` writes
seed-format sentence recordings `DATA/PREFIX_<voice>_<n>.wav` that go through `split` like any recording.
A voice name is `engine-voice[-variant]` with no `_` in it, since `_` separates fields in file names and the first
field is the speaker.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from shared.audio import SAMPLE_RATE, resample, write_wav_atomic

ESPEAK_RATE = 175  # espeak-ng's default words per minute
FESTIVAL_VOICES = Path("/usr/share/festival/voices")
FESTIVAL_ENGLISH = ("english", "us", "british")  # festival's language folders of English voices
FLITE_SKIP = {"awb_time"}  # speaks only times of day
TIMEOUT_S = 30


class SynthError(RuntimeError):
    """A TTS engine failed; str() is one line naming the voice and the problem."""


@dataclass(frozen=True)
class Voice:
    """One installed voice: `name` is the speaker id, `engine` and `ident` are what the engine is called with."""

    name: str
    engine: str  # "espeak", "flite" or "festival"
    ident: str  # espeak: "en-us+Alex"; flite: "slt"; festival: "kal_diphone"


def _clean(part: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", part.lower().replace("_", "-")).strip("-")


def _run(cmd: list[str], voice: str, *, stdin: str | None = None) -> bytes:
    try:
        r = subprocess.run(cmd, input=stdin.encode() if stdin is not None else None, capture_output=True,
                           timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SynthError(f"{voice}: {cmd[0]} is not installed (scripts/setup.sh test installs it)") from None
    except subprocess.TimeoutExpired:
        raise SynthError(f"{voice}: {cmd[0]} took longer than {TIMEOUT_S} s") from None
    if r.returncode != 0:
        err = (r.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[0]
        raise SynthError(f"{voice}: {cmd[0]} exited with {r.returncode} ({err})")
    return r.stdout


def _espeak_voices() -> list[Voice]:
    if not shutil.which("espeak-ng"):
        return []
    langs, variants = [], []
    for line in _run(["espeak-ng", "--voices=en"], "espeak").decode(errors="replace").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[1].startswith("en") and not cols[4].startswith("mb/"):  # mbrola: not installed
            langs.append(cols[1])
    for line in _run(["espeak-ng", "--voices=variant"], "espeak").decode(errors="replace").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[4].startswith("!v/"):
            variants.append(cols[4][3:])
    out = []
    for lang in dict.fromkeys(langs):
        out.append(Voice(f"espeak-{_clean(lang)}", "espeak", lang))
        for v in variants:
            out.append(Voice(f"espeak-{_clean(lang)}-{_clean(v)}", "espeak", f"{lang}+{v}"))
    return out


def _flite_voices() -> list[Voice]:
    if not shutil.which("flite"):
        return []
    text = _run(["flite", "-lv"], "flite").decode(errors="replace")
    names = text.split(":", 1)[-1].split()
    return [Voice(f"flite-{_clean(n)}", "flite", n) for n in names if n not in FLITE_SKIP]


def _festival_voices() -> list[Voice]:
    if not shutil.which("festival") or not FESTIVAL_VOICES.is_dir():
        return []
    # English voices only: the others read English text by their own language's rules (trainer/accents.py respells)
    found = sorted(p.name for p in FESTIVAL_VOICES.glob("*/*") if p.is_dir() and p.parent.name in FESTIVAL_ENGLISH)
    return [Voice(f"festival-{_clean(n)}", "festival", n) for n in found]


@functools.lru_cache(maxsize=1)
def _all_voices() -> tuple[Voice, ...]:
    seen: dict[str, Voice] = {}
    for v in _flite_voices() + _festival_voices() + _espeak_voices():
        seen.setdefault(v.name, v)
    return tuple(seen.values())


def voices(engine: str | None = None) -> list[Voice]:
    """Every installed voice (optionally of one engine); espeak-ng contributes English voices x variants."""
    return [v for v in _all_voices() if engine is None or v.engine == engine]


def find_voice(name: str) -> Voice:
    """Look a voice up by its name (the speaker id)."""
    for v in _all_voices():
        if v.name == name:
            return v
    raise SynthError(f"{name}: no such voice (see `wordstamp synth --list`)")


def pick_voices(n: int, seed: int = 0) -> list[Voice]:
    """`n` voices, as varied as possible: every flite and festival voice, then espeak voices spread over accents."""
    rng = np.random.default_rng(seed)
    others = [v for v in _all_voices() if v.engine != "espeak"]
    esp = voices("espeak")
    if n <= len(others):
        return [others[i] for i in sorted(rng.choice(len(others), size=max(0, n), replace=False))]
    by_lang: dict[str, list[Voice]] = {}
    for v in esp:
        by_lang.setdefault(v.ident.split("+")[0], []).append(v)
    pools = [list(rng.permutation(len(vs))) for vs in by_lang.values()]
    langs = list(by_lang.values())
    chosen: list[Voice] = []
    while len(chosen) < n - len(others) and any(pools):
        for vs, pool in zip(langs, pools):
            if pool and len(chosen) < n - len(others):
                chosen.append(vs[pool.pop()])
    return others + chosen


def _decode(data: bytes, voice_name: str) -> tuple[np.ndarray, int]:
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:
        raise SynthError(f"{voice_name}: the engine returned no readable audio") from None
    return x.mean(axis=1), sr


def _pitch_by_rate(x: np.ndarray, sr: int, pitch: float) -> np.ndarray:
    """Raise pitch (and formants, like a smaller speaker) by playing faster; the caller stretched duration first."""
    return resample(x, int(round(sr * pitch)), SAMPLE_RATE) if pitch != 1.0 else resample(x, sr, SAMPLE_RATE)


def say_many(texts: list[str], voice: Voice | str, rate: float = 1.0, pitch: float = 1.0) -> list[np.ndarray]:
    """Several utterances by one voice, one engine start for festival (its start-up dominates)."""
    v = voice if isinstance(voice, Voice) else find_voice(voice)
    if v.engine == "festival":
        return _festival_many(texts, v, rate, pitch)
    return [say(t, v, rate, pitch) for t in texts]


def say(text: str, voice: Voice | str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
    """One utterance as float32 mono at 16 kHz. rate > 1 speaks faster; pitch > 1 speaks higher (both relative)."""
    v = voice if isinstance(voice, Voice) else find_voice(voice)
    if not text.strip():
        return np.zeros(0, np.float32)
    if v.engine == "espeak":
        cmd = ["espeak-ng", "-v", v.ident, "-s", str(int(round(ESPEAK_RATE * rate))),
               "-p", str(int(np.clip(round(50 * pitch), 0, 99))), "--stdout", text]
        x, sr = _decode(_run(cmd, v.name), v.name)
        return resample(x, sr, SAMPLE_RATE)
    if v.engine == "flite":
        with tempfile.TemporaryDirectory(prefix="ws-flite-") as tmp:
            out = Path(tmp) / "out.wav"
            _run(["flite", "-voice", v.ident, "--setf", f"duration_stretch={pitch / rate:.3f}", "-t", text,
                  "-o", str(out)], v.name)
            x, sr = _decode(out.read_bytes(), v.name)
        return _pitch_by_rate(x, sr, pitch)
    if v.engine == "festival":
        return _festival_many([text], v, rate, pitch)[0]
    raise SynthError(f"{v.name}: unknown engine {v.engine!r}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hts_rate(voice: str, rate: float) -> str | None:
    """The festival expression that sets an HTS voice's speaking rate (hts_engine's -r: HTS voices ignore
    Duration_Stretch); None for any other voice."""
    if not voice.endswith("_hts"):
        return None
    return f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.3f}))))'


def _festival_many(texts: list[str], v: Voice, rate: float, pitch: float) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="ws-festival-") as tmp:
        stretch = pitch / rate
        lines = [f"(voice_{v.ident})", f"(Parameter.set 'Duration_Stretch {stretch:.3f})"]
        if rate_expr := hts_rate(v.ident, 1 / stretch):
            lines.append(rate_expr)
        for i, t in enumerate(texts):
            lines.append(f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(t)})) "
                         f"{_scheme_string(str(Path(tmp) / f'{i}.wav'))} 'riff)")
        script = Path(tmp) / "say.scm"
        script.write_text("\n".join(lines) + "\n")
        _run(["festival", "-b", str(script)], v.name)
        out = []
        for i in range(len(texts)):
            f = Path(tmp) / f"{i}.wav"
            if not f.exists():
                raise SynthError(f"{v.name}: festival wrote no audio for {texts[i]!r}")
            x, sr = _decode(f.read_bytes(), v.name)
            out.append(_pitch_by_rate(x, sr, pitch))
    return out


def trim(x: np.ndarray, rel: float = 0.02, pad_s: float = 0.02) -> np.ndarray:
    """Drop the engine's leading and trailing silence (so the pauses we add are the pauses there are)."""
    if x.size == 0:
        return x
    loud = np.flatnonzero(np.abs(x) > rel * float(np.max(np.abs(x))))
    if loud.size == 0:
        return x[:0]
    pad = int(pad_s * SAMPLE_RATE)
    return x[max(0, loud[0] - pad):loud[-1] + pad + 1]


@dataclass(frozen=True)
class SynthConfig:
    """How sentences are made: speaking rates and pitches are drawn per take from these ranges."""

    rate: tuple[float, float] = (0.8, 1.3)
    pitch: tuple[float, float] = (0.85, 1.2)
    pause_s: tuple[float, float] = (0.25, 0.7)  # between words
    edge_s: tuple[float, float] = (0.3, 0.6)  # before the first word and after the last
    level_db: tuple[float, float] = (-12.0, 0.0)  # the recording's overall level
    word_level_db: float = 3.0  # each word's level varies by up to this much
    floor: float = 3e-4  # a faint noise floor, as a real room has


def take_rng(seed: int, voice_name: str, take: int) -> np.random.Generator:
    """A take's randomness depends only on (seed, voice, take), so files are reproducible one by one."""
    h = hashlib.sha256(f"{seed}:{voice_name}:{take}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def synth_sentence(words: list[str], v: Voice, rng: np.random.Generator,
                   cfg: SynthConfig | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The words said one by one by `v` with pauses: (audio, each word's sample span)."""
    cfg = cfg or SynthConfig()
    rate, pitch = rng.uniform(*cfg.rate), rng.uniform(*cfg.pitch)
    clips = [trim(c) for c in say_many(list(words), v, rate, pitch)]
    for w, c in zip(words, clips):
        if c.size == 0:
            raise SynthError(f"{v.name}: said nothing for {w!r}")
    parts, spans, pos = [], [], 0
    for i, c in enumerate(clips):
        gap = rng.uniform(*cfg.edge_s) if i == 0 else rng.uniform(*cfg.pause_s)
        parts.append(np.zeros(int(gap * SAMPLE_RATE), np.float32))
        pos += parts[-1].size
        c = c / (float(np.max(np.abs(c))) + 1e-9) * 10 ** (rng.uniform(-cfg.word_level_db, 0) / 20)
        parts.append(c.astype(np.float32))
        spans.append((pos, pos + c.size))
        pos += c.size
    parts.append(np.zeros(int(rng.uniform(*cfg.edge_s) * SAMPLE_RATE), np.float32))
    x = np.concatenate(parts) * np.float32(0.9 * 10 ** (rng.uniform(*cfg.level_db) / 20))
    x = x + np.float32(cfg.floor) * rng.standard_normal(x.size).astype(np.float32)
    return x.astype(np.float32), spans


@dataclass
class SynthResult:
    """One recording synth tried to write. status: ok, exists or error."""

    path: Path
    voice: str
    status: str
    message: str = ""


@dataclass
class SynthPlan:
    """The recordings a run will make."""

    jobs: list[tuple[Voice, int, Path]] = field(default_factory=list)


def plan(data: Path, prefix: str, n_voices: int, takes: int, seed: int) -> SynthPlan:
    """(voice, take, path) for every recording: `DATA/PREFIX_<voice>_<take>.wav`, take counted from 1."""
    p = SynthPlan()
    for v in pick_voices(n_voices, seed):
        for k in range(1, takes + 1):
            p.jobs.append((v, k, Path(data) / f"{prefix}_{v.name}_{k}.wav"))
    return p


def _job(words: list[str], v: Voice, take: int, path: Path, seed: int, cfg: SynthConfig) -> SynthResult:
    if path.exists():
        return SynthResult(path, v.name, "exists")
    try:
        x, _ = synth_sentence(words, v, take_rng(seed, v.name, take), cfg)
        write_wav_atomic(path, x)
    except FileExistsError:
        return SynthResult(path, v.name, "exists")
    except SynthError as exc:
        return SynthResult(path, v.name, "error", str(exc))
    except Exception as exc:  # keep going: one line for the unexpected, too
        return SynthResult(path, v.name, "error", f"{v.name}: {type(exc).__name__}: {exc}")
    return SynthResult(path, v.name, "ok")


def synth_prefix(data: Path, prefix: str, words: list[str], n_voices: int = 100, takes: int = 1, seed: int = 0,
                 cfg: SynthConfig | None = None, workers: int | None = None) -> Iterator[SynthResult]:
    """Write the recordings of `plan(...)`, existing ones left alone; yields results as they finish.

    Threads suffice: the work happens in the engines' processes.
    """
    cfg = cfg or SynthConfig()
    jobs = plan(data, prefix, n_voices, takes, seed).jobs
    workers = workers or max(2, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_job, words, v, k, path, seed, cfg) for v, k, path in jobs]
        for f in futures:
            yield f.result()

