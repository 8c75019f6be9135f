"""Measure a bundle on folders of word clips through LiteRT (shared.runtime.Recognizer), exactly as the daemon would.

`<word>/` folders whose word is in the bundle's vocabulary measure accuracy (a rejected clip counts as wrong); any
other folder (other words, `_unknown_`, `_silence_`, noise) measures the false-accept rate. Cross-speaker evaluation
(leave one speaker out, retraining per fold) lives here too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.audio import AudioError, level_issues, read_audio
from shared.bundle import load_bundle
from shared.features import Frontend
from shared.segment import clip_stamp
from trainer.dataset import find_clips

REJECTED = "_rejected_"


@dataclass
class EvalReport:
    """What `evaluate_folder` measured (to_dict gives the --json object)."""

    bundle: str
    threshold: float | None = None  # the reject threshold in effect (a head's is an SVM score) ...
    gate: str = "top"  # ... and what it was compared with ("score" for a head)
    n: int = 0
    correct: int = 0
    per_word: dict[str, dict] = field(default_factory=dict)  # word -> {n, accuracy}
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # true -> predicted (or _rejected_) -> count
    oov_n: int = 0
    oov_false_accepts: int = 0
    oov_per_folder: dict[str, dict] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)  # misrecognised clips: file, expected, got, confidence
    unreadable: list[str] = field(default_factory=list)
    level_notes: dict[str, list[str]] = field(default_factory=dict)  # "quiet"/"clipped"/"zero-padded" -> files

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def oov_false_accept_rate(self) -> float:
        return self.oov_false_accepts / self.oov_n if self.oov_n else 0.0

    @property
    def accuracy_ci95(self) -> tuple[float, float]:
        """95 % interval of the accuracy: on 33 clips, 29 right reads as anything from 73 to 95 %."""
        return proportion_ci95(self.correct, self.n)

    @property
    def oov_false_accept_ci95(self) -> tuple[float, float]:
        return proportion_ci95(self.oov_false_accepts, self.oov_n)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["accuracy"] = round(self.accuracy, 4)
        d["oov_false_accept_rate"] = round(self.oov_false_accept_rate, 4)
        d["accuracy_ci95"] = [round(v, 4) for v in self.accuracy_ci95]
        d["oov_false_accept_ci95"] = [round(v, 4) for v in self.oov_false_accept_ci95]
        return d


def proportion_ci95(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval (scipy) of k successes in n trials; (0, 1) when there are none, i.e. nothing is known.

    The held-out sets here are small, and a point figure alone invites reading noise as progress."""
    if n <= 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def evaluate_folder(bundle: str | Path, folder: str | Path, models_root: str | Path | None = None,
                    threshold: float | None = None) -> EvalReport:
    """Every `folder/<word>/*.wav` through segment -> stamp -> LiteRT -> decision, at the bundle's own reject
    threshold or at `threshold` (as the daemon's --threshold: another point of the same curve)."""
    from shared.runtime import Recognizer

    folder = Path(folder)
    b = load_bundle(bundle)
    rec = Recognizer([b.path], models_root=models_root,
                     thresholds=None if threshold is None else {b.name: threshold})
    fe = Frontend(b.frontend_config)
    seg = b.segmenter_config
    vocab = set(b.manifest.words)
    clips = find_clips(folder)
    rep = EvalReport(bundle=str(b.path), threshold=rec.thresholds[b.name], gate=b.reject_gate)
    for word, path in clips:
        try:
            x = read_audio(path)
        except AudioError as exc:
            rep.unreadable.append(str(exc))
            continue
        for issue in level_issues(x):
            rep.level_notes.setdefault(issue, []).append(str(path))
        d = rec.classify(clip_stamp(x, fe, seg))[0]
        got = d.word if d.word is not None else REJECTED
        if word in vocab:
            rep.n += 1
            pw = rep.per_word.setdefault(word, {"n": 0, "correct": 0})
            pw["n"] += 1
            rep.confusion.setdefault(word, {}).setdefault(got, 0)
            rep.confusion[word][got] += 1
            if d.word == word:
                rep.correct += 1
                pw["correct"] += 1
            else:
                rep.errors.append({"file": str(path), "expected": word, "got": got, "label": d.label,
                                   "confidence": round(d.confidence, 3)})
        else:
            rep.oov_n += 1
            po = rep.oov_per_folder.setdefault(word, {"n": 0, "false_accepts": 0})
            po["n"] += 1
            if d.word is not None:
                rep.oov_false_accepts += 1
                po["false_accepts"] += 1
                rep.errors.append({"file": str(path), "expected": None, "got": d.word, "label": d.label,
                                   "confidence": round(d.confidence, 3)})
    for pw in rep.per_word.values():
        pw["accuracy"] = round(pw["correct"] / pw["n"], 4)
    return rep


def confusion_png(rep: EvalReport, path: Path) -> None:
    """The confusion matrix (true words down, predictions across, rejections last) as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shared.audio import atomic_write_bytes

    rows = sorted(rep.confusion)
    cols = rows + sorted({p for r in rep.confusion.values() for p in r} - set(rows) - {REJECTED}) + [REJECTED]
    m = np.array([[rep.confusion[r].get(c, 0) for c in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(cols), 1 + 0.45 * len(rows)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel("recognised")
    ax.set_ylabel("spoken")
    ax.set_title(f"accuracy {rep.accuracy:.1%} (n={rep.n})")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cross_speaker(prefixes: list[Path], cfg, speakers: list[str] | None = None, log=print) -> dict:
    """Leave one speaker out: per fold, train on everyone else (test split included) and test on that speaker.

    Folds default to every speaker when there are at most 12, else the 6 with most clips (in the shipped data: the
    FSDD speakers). Measured on the float Keras model (the export costs int8 nothing measurable; see the bundle).
    """
    import tempfile

    from trainer.dataset import load_dataset
    from trainer.train import pool_datasets, train_fold

    data = pool_datasets([load_dataset(Path(p)) for p in prefixes])
    spk, counts = np.unique(data.speakers, return_counts=True)
    if speakers is None:
        speakers = spk.tolist() if spk.size <= 12 else spk[np.argsort(-counts)[:6]].tolist()
    folds = {}
    for s in speakers:
        test = data.speakers == s
        if not test.any():
            raise ValueError(f"speaker {s!r} is not in the dataset")
        with tempfile.TemporaryDirectory() as tmp:
            acc = train_fold(data, ~test, test, cfg, Path(tmp), log=lambda m: None)
        folds[s] = {"n": int(test.sum()), "accuracy": round(acc, 4)}
        log(f"fold {s}: {acc:.3f} on {int(test.sum())} clips")
    mean = float(np.mean([f["accuracy"] for f in folds.values()]))
    return {"folds": folds, "mean_accuracy": round(mean, 4), "epochs": cfg.epochs, "copies": cfg.copies,
            "model": "float (Keras)"}
