"""Streaming figures through the daemon's replay path (daemon.replay.replay_events: the daemon's Pipeline over a
file): word errors of long recordings of held-out words at several SNRs, and false word events per hour of
noise-only audio; pocketsphinx (a grammar of our words, any sequence) on the very same audio beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.heldout import Clip
from bench.streams import Stream, WordErrors, make_stream, mix_noise, word_errors
from shared.audio import SAMPLE_RATE, write_wav_atomic


@dataclass
class ErrorTally:
    """Word errors summed over several streams."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    n_ref: int = 0
    audio_s: float = 0.0
    cpu_s: float = 0.0  # only for the peer

    def add(self, e: WordErrors, seconds: float) -> None:
        self.substitutions += e.substitutions
        self.deletions += e.deletions
        self.insertions += e.insertions
        self.n_ref += e.n_ref
        self.audio_s += seconds

    @property
    def wer(self) -> float:
        return (self.substitutions + self.deletions + self.insertions) / max(1, self.n_ref)

    def to_dict(self) -> dict:
        d = {"wer": round(self.wer, 4), "S": self.substitutions, "D": self.deletions, "I": self.insertions,
             "n_ref": self.n_ref, "audio_s": round(self.audio_s, 1)}
        if self.cpu_s:
            d["cpu_per_audio_s"] = round(self.cpu_s / max(self.audio_s, 1e-9), 5)
        return d


def build_streams(clips: list[Clip], n_streams: int, words_each: int, seed: int) -> list[Stream]:
    """`n_streams` recordings of `words_each` random held-out clips joined by 0.3-1.5 s pauses."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_streams):
        pick = rng.choice(len(clips), size=min(words_each, len(clips)), replace=False)
        out.append(make_stream([clips[int(i)] for i in pick], rng))
    return out


def noisy(stream: Stream, noises: list[np.ndarray], snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """The stream with one random held-out noise at `snr_db` (None: clean)."""
    if snr_db is None:
        return stream.audio
    return mix_noise(stream.audio, noises[int(rng.integers(len(noises)))], snr_db, rng)


def replay_words(wav: Path, models: list[Path]) -> list[str]:
    """The words `wordstamp replay` publishes for a file (reject events off, as the daemon's default)."""
    from daemon.replay import replay_events

    return [ev.word for ev in replay_events(wav, [str(m) for m in models]) if ev.topic == "word"]


@dataclass
class SnrResult:
    """One SNR: our errors and the peer's on the same audio."""

    snr_db: float | None
    ours: ErrorTally = field(default_factory=ErrorTally)
    peer: ErrorTally | None = None


def wer_at_snrs(streams: list[Stream], noises: list[np.ndarray], snrs: list[float | None], models: list[Path],
                work: Path, vocabulary: list[str], seed: int, peer: bool = True) -> list[SnrResult]:
    """Every stream at every SNR through replay (and pocketsphinx); errors tallied per SNR."""
    from bench.peer import Pocketsphinx

    out = []
    for snr in snrs:
        rng = np.random.default_rng(seed + (0 if snr is None else int(snr * 10)))
        res = SnrResult(snr, ErrorTally(), ErrorTally() if peer else None)
        ps = Pocketsphinx(vocabulary, sequence=True) if peer else None
        for k, s in enumerate(streams):
            y = noisy(s, noises, snr, rng)
            wav = work / f"stream-{k}-{snr}.wav"
            write_wav_atomic(wav, y, SAMPLE_RATE, overwrite=True)
            res.ours.add(word_errors(s.words, replay_words(wav, models)), s.seconds)
            if ps is not None and res.peer is not None:
                res.peer.add(word_errors(s.words, ps.recognise(y)), s.seconds)
            wav.unlink()
        if ps is not None and res.peer is not None:
            res.peer.cpu_s = ps.cpu_seconds
        out.append(res)
    return out


def noise_only(noises: list[np.ndarray], seconds: float, seed: int) -> np.ndarray:
    """`seconds` of held-out noise only: 5-20 s stretches of one noise or two mixed, each at -55..-15 dBFS RMS."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    want = int(seconds * SAMPLE_RATE)
    while total < want:
        n = int(min(want - total, rng.uniform(5, 20) * SAMPLE_RATE))
        mix = np.zeros(n, np.float32)
        for j in rng.choice(len(noises), size=int(rng.integers(1, 3)), replace=False):
            x = noises[int(j)]
            start = int(rng.integers(0, x.size))
            seg = np.tile(x, int(np.ceil((start + n) / x.size)) + 1)[start:start + n]
            rms = float(np.sqrt(np.mean(seg ** 2))) + 1e-9
            mix += seg * np.float32(10 ** (rng.uniform(-55, -15) / 20) / rms)
        parts.append(mix)
        total += n
    y = np.concatenate(parts)
    peak = float(np.max(np.abs(y)))
    return (y / peak * 0.95).astype(np.float32) if peak > 0.99 else y


def false_events_per_hour(audio: np.ndarray, models: list[Path], work: Path, peer_seconds: float = 0.0,
                          vocabulary: list[str] | None = None) -> dict:
    """Word events the replay publishes on noise-only audio, per hour; pocketsphinx on the first `peer_seconds`."""
    wav = work / "noise-only.wav"
    write_wav_atomic(wav, audio, SAMPLE_RATE, overwrite=True)
    words = replay_words(wav, models)
    wav.unlink()
    hours = audio.size / SAMPLE_RATE / 3600
    out = {"audio_h": round(hours, 3), "word_events": len(words), "per_hour": round(len(words) / hours, 2),
           "words": sorted(set(words))}
    if peer_seconds > 0 and vocabulary:
        from bench.peer import Pocketsphinx

        ps = Pocketsphinx(vocabulary, sequence=True)
        n, got = int(peer_seconds * SAMPLE_RATE), 0
        for a in range(0, min(n, audio.size), 30 * SAMPLE_RATE):  # 30 s utterances
            got += len(ps.recognise(audio[a:min(a + 30 * SAMPLE_RATE, n)]))
        out["peer"] = {"audio_h": round(min(n, audio.size) / SAMPLE_RATE / 3600, 3), "word_events": got,
                       "per_hour": round(got / (min(n, audio.size) / SAMPLE_RATE / 3600), 1)}
    return out
