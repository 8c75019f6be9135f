"""Clip accuracy through the int8 bundles (LiteRT, the daemon's segment -> stamp -> decision path via
trainer.evaluate.evaluate_folder) on held-out material only, out-of-vocabulary false accepts, and the animals head
against enrolment shots (trainer.enroll.shots_curve on embeddings from the int8 base CNN)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.heldout import ANIMALS, DIGITS, Clip, link_folder, noise_test_audio
from shared.audio import write_wav_atomic


@dataclass
class ClipScore:
    """Accuracy (a rejected clip counts as wrong) and out-of-vocabulary false accepts of one bundle on one set."""

    n: int
    accuracy: float
    oov_n: int = 0
    oov_false_accept_rate: float = 0.0
    per_word: dict | None = None
    accuracy_ci95: tuple[float, float] = (0.0, 1.0)  # 95 % Wilson intervals (trainer.evaluate.proportion_ci95)
    oov_false_accept_ci95: tuple[float, float] = (0.0, 1.0)

    def to_dict(self) -> dict:
        return {"n": self.n, "accuracy": round(self.accuracy, 4), "oov_n": self.oov_n,
                "oov_false_accept_rate": round(self.oov_false_accept_rate, 4), "per_word": self.per_word,
                "accuracy_ci95": [round(v, 4) for v in self.accuracy_ci95],
                "oov_false_accept_ci95": [round(v, 4) for v in self.oov_false_accept_ci95]}


def interval(ci: tuple[float, float]) -> str:
    """How a 95 % interval reads in a figure's description."""
    return f"95 % interval {100 * ci[0]:.0f}-{100 * ci[1]:.0f} %"


def evaluate_clips(bundle: Path, clips: list[Clip], work: Path) -> ClipScore:
    """`clips` linked into a `<word>/` folder and measured with the trainer's evaluate (LiteRT, int8)."""
    from trainer.evaluate import evaluate_folder

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        rep = evaluate_folder(bundle, link_folder(clips, Path(tmp)))
    return ClipScore(rep.n, rep.accuracy, rep.oov_n, rep.oov_false_accept_rate,
                     {w: pw["accuracy"] for w, pw in rep.per_word.items()}, rep.accuracy_ci95,
                     rep.oov_false_accept_ci95)


def noise_clips(shared: Path, folder: Path, n: int, seed: int = 0) -> list[Clip]:
    """n one-second chunks of the held-out noise tails at random levels (-50..-10 dBFS RMS), as `_noise_` clips."""
    rng = np.random.default_rng(seed)
    tails = noise_test_audio(shared)
    out = []
    for k in range(n):
        x = tails[k % len(tails)]
        s = int(rng.integers(0, max(1, x.size - 16000)))
        c = x[s:s + 16000]
        rms = float(np.sqrt(np.mean(c ** 2))) + 1e-9
        c = c * np.float32(10 ** (rng.uniform(-50, -10) / 20) / rms)
        p = folder / f"noise{k}_x_{k}.wav"
        write_wav_atomic(p, np.clip(c, -1, 1), 16000, overwrite=True)
        out.append(("_noise_", p))
    return out


def cross_speaker_quote(models: Path) -> dict | None:
    """The FSDD leave-one-speaker-out figure the trainer's recipe recorded, if any (manifest metrics or training)."""
    for man, sections in ((models / "digits" / "manifest.json", ("metrics", "training")),
                          (models / "RESULTS.json", ("digits",))):
        if not man.is_file():
            continue
        m = json.loads(man.read_text())
        for section in sections:
            for k, v in (m.get(section) or {}).items():
                if "cross" in k.lower() or "loso" in k.lower():
                    return {"key": f"{section}.{k}", "value": v, "source": str(man)}
    return None


def animals_shots(base: Path, pool: list[Clip], held: list[Clip], work: Path, shots=(1, 3, 5, 10),
                  repeats: int = 5, copies: int = 0) -> dict:
    """Enrol a fresh animals head from k clips a word of `pool` speakers (k in shots, `repeats` random draws) and
    score it on the `held` speakers: the shipped recipe's SVM-on-embedding head, int8 base CNN embeddings, each clip
    with `copies` perturbed copies as `wordstamp enroll` adds by default."""
    from shared.bundle import load_bundle
    from trainer.enroll import embed_folder, shots_curve

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        folder = link_folder([(w, p) for w, p in pool + held], Path(tmp))
        data = embed_folder(load_bundle(base), folder, copies=copies)
    held_speakers = {p.name.split("_")[0] for _, p in held}
    res = shots_curve(data, held_speakers, shots=shots, repeats=repeats, inputs=("embedding",))
    pool_counts = {w: sum(1 for x, _ in pool if x == w) for w in ANIMALS}
    return {"accuracy_by_shots": res["embedding"], "test_n": res["test_n"], "repeats": repeats, "copies": copies,
            "pool_per_word": pool_counts}


def peer_clips(clips: list[Clip], words: list[str]) -> dict:
    """pocketsphinx (one word from `words` per clip) on the same clips: accuracy and CPU per audio second."""
    from bench.peer import Pocketsphinx
    from shared.audio import read_audio

    ps = Pocketsphinx(words)
    ok = 0
    for w, p in clips:
        got = ps.recognise(read_audio(p))
        ok += got[:1] == [w]
    from trainer.evaluate import proportion_ci95

    return {"n": len(clips), "accuracy": round(ok / max(1, len(clips)), 4),
            "accuracy_ci95": [round(v, 4) for v in proportion_ci95(ok, len(clips))],
            "cpu_per_audio_s": round(ps.cpu_per_audio_second, 5)}


__all__ = ["ClipScore", "interval", "evaluate_clips", "noise_clips", "cross_speaker_quote", "animals_shots", "peer_clips",
           "DIGITS"]
