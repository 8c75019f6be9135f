"""Word clips -> a stamp dataset (`DATA/PREFIX.npz`), with a test split disjoint by speaker.

The npz holds, for N clips: `stamps` (N, frames, mels) float16, `labels` int32, `words` (the vocabulary, sorted),
`speakers`, `sources` (clip paths relative to DATA), `split` ("train"/"test"), the word's audio with some context as
int16 (`audio`, flat, cut by `audio_offsets`) so training can augment the waveform, the `seed`, and the frontend and
segmenter configs as JSON. No pickle: every array is plain (strings are fixed-width unicode).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from shared.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, atomic_write_bytes, read_audio
from shared.features import Frontend, FrontendConfig, make_stamp
from shared.segment import SegmenterConfig, segment_mel, word_span

AUDIO_CONTEXT_S = 0.25  # audio kept either side of the word for waveform augmentation


@dataclass
class BuildReport:
    """What `build_dataset` did: counts per word, the clips it could not use, where it wrote."""

    out: Path
    n: int = 0
    per_word: dict[str, int] = field(default_factory=dict)
    speakers: int = 0
    test_speakers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def speaker_of(path: Path) -> str:
    """The project-wide convention: a clip's speaker is the first `_`-separated field of its file name."""
    return path.stem.split("_", 1)[0]


def word_of(path: Path) -> str:
    """A clip's own word, the second `_`-separated field of its file name (`speaker_word_take`): what an `_unknown_`
    clip really says; "" when the name has fewer than three fields."""
    parts = Path(path).stem.split("_")
    return parts[1] if len(parts) >= 3 else ""


def find_clips(root: Path, hint: str = "") -> list[tuple[str, Path]]:
    """(word, path) for every audio file in `root/<word>/`, sorted; FileNotFoundError (one line, with `hint`) when
    the folder is missing or holds no clips, which every caller (build, evaluate, enroll) refuses alike."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of <word>/ clip folders{hint}")
    out = []
    for wdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(wdir.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES:
                out.append((wdir.name, f))
    if not out:
        raise FileNotFoundError(f"{root}: holds no <word>/*.wav clips{hint}")
    return out


def speaker_kind(speaker: str) -> str:
    """What made a clip: "espeak" and "tts" (other synthetic voices), "noise", or "human" (recorded people)."""
    if speaker.startswith("tts-espeak"):
        return "espeak"
    if speaker.startswith("tts"):
        return "tts"
    return "noise" if speaker.startswith("noise") else "human"


def choose_test_speakers(speakers: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded choice of about `fraction` of the speakers (at least one when there are two or more)."""
    uniq = sorted(set(speakers))
    if len(uniq) < 2 or fraction <= 0:
        return []
    k = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    return sorted(np.random.default_rng(seed).choice(uniq, size=k, replace=False).tolist())


def clip_features(x: np.ndarray, frontend: Frontend, seg_cfg: SegmenterConfig) -> tuple[np.ndarray, np.ndarray]:
    """One single-word clip -> (stamp, the word's audio with context): the daemon's segment-then-stamp path."""
    mel, energy = frontend.compute(x)
    start, end = word_span(mel, energy, frontend.cfg, seg_cfg, x)
    stamp = make_stamp(segment_mel(mel, start, end, frontend.cfg), frontend.cfg)
    hop, ctx = frontend.cfg.hop_length, int(AUDIO_CONTEXT_S * frontend.cfg.sample_rate)
    a = max(0, start * hop - ctx)
    b = min(x.size, end * hop + frontend.cfg.win_length + ctx)
    return stamp, x[a:b]


def build_dataset(data: Path, prefix: str, *, out: Path | None = None, test_fraction: float = 0.2, seed: int = 0,
                  test_speakers: list[str] | None = None, frontend_cfg: FrontendConfig | None = None,
                  seg_cfg: SegmenterConfig | None = None,
                  progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Build `DATA/PREFIX.npz` from `DATA/PREFIX/<word>/*.wav`; unreadable clips are reported and skipped.

    Writes atomically and only when at least one clip was usable, so a failed run never leaves a partial dataset.
    """
    data = Path(data)
    root = data / prefix
    out = Path(out) if out is not None else data / f"{prefix}.npz"
    report = BuildReport(out=out)
    clips = find_clips(root, f" (run `wordstamp split {prefix}` or `wordstamp import` first)")
    frontend = Frontend(frontend_cfg)
    seg_cfg = seg_cfg or SegmenterConfig()
    stamps, labels_w, speakers, sources, audio = [], [], [], [], []
    for i, (word, path) in enumerate(clips):
        try:
            x = read_audio(path)
            if x.size < frontend.cfg.win_length:
                raise AudioError(path, "too short to hold a word")
            stamp, wav = clip_features(x, frontend, seg_cfg)
        except AudioError as exc:
            report.errors.append(str(exc))
        else:
            stamps.append(stamp.astype(np.float16))
            labels_w.append(word)
            speakers.append(speaker_of(path))
            sources.append(str(path.relative_to(data)))
            audio.append((np.clip(wav, -1, 1) * 32767).astype(np.int16))
        if progress:
            progress(i + 1, len(clips))
    if not stamps:
        raise ValueError(f"{root}: none of its {len(clips)} clips could be read")
    words = sorted(set(labels_w))
    index = {w: k for k, w in enumerate(words)}
    tests = choose_test_speakers(speakers, test_fraction, seed) if test_speakers is None else sorted(test_speakers)
    split = np.array(["test" if s in tests else "train" for s in speakers])
    offsets = np.concatenate([[0], np.cumsum([a.size for a in audio])]).astype(np.int64)
    arrays = dict(
        stamps=np.stack(stamps), labels=np.array([index[w] for w in labels_w], np.int32), words=np.array(words),
        speakers=np.array(speakers), sources=np.array(sources), split=split, audio=np.concatenate(audio),
        audio_offsets=offsets, audio_rate=np.int32(SAMPLE_RATE), seed=np.int64(seed),
        test_speakers=np.array(tests, dtype=str), frontend=np.array(json.dumps(frontend.cfg.to_dict())),
        segmenter=np.array(json.dumps(seg_cfg.to_dict())),
    )
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    report.n = len(stamps)
    report.per_word = {w: labels_w.count(w) for w in words}
    report.speakers = len(set(speakers))
    report.test_speakers = tests
    return report


@dataclass
class Dataset:
    """A loaded stamp dataset (see the module docstring for the fields)."""

    stamps: np.ndarray
    labels: np.ndarray
    words: list[str]
    speakers: np.ndarray
    sources: np.ndarray
    split: np.ndarray
    audio: np.ndarray
    audio_offsets: np.ndarray
    frontend: FrontendConfig
    segmenter: SegmenterConfig
    seed: int

    def clip_audio(self, i: int) -> np.ndarray:
        """The i-th word's audio (float32, 16 kHz, with context)."""
        a, b = self.audio_offsets[i], self.audio_offsets[i + 1]
        return self.audio[a:b].astype(np.float32) / 32767.0

    def word_of(self, i: int) -> str:
        return self.words[int(self.labels[i])]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_dataset(path: Path) -> Dataset:
    """Load and check a dataset written by `build_dataset` (allow_pickle stays off)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        d = Dataset(
            stamps=z["stamps"].astype(np.float32), labels=z["labels"], words=[str(w) for w in z["words"]],
            speakers=z["speakers"], sources=z["sources"], split=z["split"], audio=z["audio"],
            audio_offsets=z["audio_offsets"], frontend=FrontendConfig.from_dict(json.loads(str(z["frontend"]))),
            segmenter=SegmenterConfig.from_dict(json.loads(str(z["segmenter"]))), seed=int(z["seed"]),
        )
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such dataset (run `wordstamp build` first)") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a wordstamp dataset ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    n = len(d)
    if not (d.stamps.shape[0] == d.speakers.shape[0] == d.split.shape[0] == n == d.audio_offsets.shape[0] - 1):
        raise ValueError(f"{path}: arrays disagree in length")
    return d
