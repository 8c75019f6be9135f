"""Enroll new words: a linear SVM head on a base CNN bundle's embedding, written as a head bundle (head.json).

The head is plain JSON numbers (no pickle): the runtime scores z = (e - mean) / scale with coef and intercept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.bundle import Bundle, Manifest, write_bundle


@dataclass
class HeadParams:
    """A fitted linear head: classes, standardisation, one-vs-rest weights, and the reject threshold on the score."""

    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    threshold: float = 0.0
    temperature: float = 1.0
    input: str = "embedding"
    gate: str = "margin"  # what the threshold is compared with (shared.runtime.SvmHead)

    def to_json(self) -> str:
        return json.dumps({
            "kind": "linear-svm", "classes": list(self.classes), "input": self.input,
            "mean": _list(self.mean), "scale": _list(self.scale), "coef": _list(self.coef),
            "intercept": _list(self.intercept), "threshold": float(self.threshold),
            "temperature": float(self.temperature), "gate": self.gate,
        }, indent=1) + "\n"


def _list(a: np.ndarray) -> list:
    return np.asarray(a, np.float64).round(7).tolist()


def write_head_bundle(out: str | os.PathLike, name: str, base: Bundle, head: HeadParams, *,
                      training: dict | None = None, metrics: dict | None = None, description: str = "",
                      attribution: str | None = None) -> Bundle:
    """Write a head bundle that names its base cnn bundle by name and hash (the runtime finds it beside the head)."""
    bm = base.manifest
    m = Manifest(
        name=name, kind="head", vocabulary=list(head.classes), frontend=dict(bm.frontend), threshold=float(head.threshold),
        input_shape=list(bm.input_shape), embedding_dim=int(bm.embedding_dim), outputs={}, segmenter=dict(bm.segmenter),
        base={"name": bm.name, "hash": base.hash}, training=training or {}, metrics=metrics or {},
        description=description,
    )
    files = {"head.json": head.to_json().encode()}
    if attribution:
        files["ATTRIBUTION"] = attribution.encode()
    return write_bundle(out, m, files)


@dataclass
class Embedded:
    """Clips of a folder run through the base CNN (LiteRT): embeddings, probabilities, labels, speakers, files."""

    emb: np.ndarray
    probs: np.ndarray
    words: np.ndarray
    speakers: np.ndarray
    files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    aug_emb: np.ndarray | None = None  # (clips, copies, dim): perturbed copies of every clip, see embed_augmented
    aug_probs: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "Embedded":
        aug = (None, None) if self.aug_emb is None else (self.aug_emb[idx], self.aug_probs[idx])
        return Embedded(self.emb[idx], self.probs[idx], self.words[idx], self.speakers[idx],
                        [self.files[i] for i in idx], aug_emb=aug[0], aug_probs=aug[1])

    def features(self, kind: str) -> np.ndarray:
        return self.emb if kind == "embedding" else self.probs

    def with_copies(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, words) of the clips followed by their perturbed copies, when there are any."""
        x, y = self.features(kind), self.words
        aug = self.aug_emb if kind == "embedding" else self.aug_probs
        if aug is None or aug.shape[1] == 0:
            return x, y
        return np.concatenate([x, aug.reshape(-1, aug.shape[2])]), np.concatenate([y, np.repeat(y, aug.shape[1])])


def embed_folder(base: Bundle, folder, label_map: dict[str, str] | None = None, *, copies: int = 0,
                 noise_dir=None, seed: int = 0) -> Embedded:
    """Every `folder/<word>/*.wav` -> the base CNN's embedding and probabilities (via the serving path); with
    `copies`, also that many perturbed versions of every clip (embed_augmented)."""
    from shared.audio import AudioError, read_audio
    from shared.features import Frontend
    from shared.runtime import CnnModel
    from shared.segment import clip_stamp
    from trainer.dataset import find_clips, speaker_of

    folder = Path(folder)
    clips = find_clips(folder)
    cnn = CnnModel(base)
    fe, seg = Frontend(base.frontend_config), base.segmenter_config
    stamps, words, spk, files, bad = [], [], [], [], []
    for w, p in clips:
        try:
            stamps.append(clip_stamp(read_audio(p), fe, seg))
        except AudioError as exc:
            bad.append(str(exc))
            continue
        words.append((label_map or {}).get(w, w))
        spk.append(speaker_of(p))
        files.append(str(p))
    if not stamps:
        raise ValueError(f"{folder}: none of its clips could be read")
    embs, probs = [], []
    x = np.stack(stamps)
    for a in range(0, len(x), 128):
        e, pr = cnn.infer(x[a:a + 128])
        embs.append(e)
        probs.append(pr)
    out = Embedded(np.concatenate(embs), np.concatenate(probs), np.array(words), np.array(spk), files, bad)
    if copies > 0:
        out.aug_emb, out.aug_probs = embed_augmented(base, files, copies, noise_dir=noise_dir, seed=seed)
    return out


def embed_augmented(base: Bundle, files: list[str], copies: int, *, noise_dir=None,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`copies` perturbed versions of every clip through the base: (embeddings, probabilities), each shaped
    (clips, copies, dim).

    The trainer's own perturbations (speed, room, microphone, bandwidth, gain, shift, vocal-tract warp, and noise from
    `noise_dir` when given): ten clips a word are ten points, and the SVM can only draw its boundary where the next
    speaker, room or microphone will land if it has seen the clips moved about.
    """
    from shared.audio import read_audio
    from shared.features import Frontend
    from shared.runtime import CnnModel
    from trainer.augment import AugmentConfig, augment_stamp, load_noises

    cnn, fe, seg = CnnModel(base), Frontend(base.frontend_config), base.segmenter_config
    noises = load_noises(Path(noise_dir)) if noise_dir else []
    rng, cfg = np.random.default_rng(seed), AugmentConfig()
    embs, probs = [], []
    for f in files:
        x = read_audio(f)
        e, p = cnn.infer(np.stack([augment_stamp(x, rng, noises, cfg, fe, seg) for _ in range(copies)]))
        embs.append(e)
        probs.append(p)
    return np.stack(embs), np.stack(probs)


def fit_head(x: np.ndarray, words: np.ndarray, *, c: float = 0.003, input: str = "embedding", threshold: float = -0.5,
             gate: str = "margin", temperature: float = 3.0, seed: int = 0) -> HeadParams:
    """A one-vs-rest linear SVM on standardised features (scikit-learn), exported as plain numbers."""
    from sklearn.svm import LinearSVC

    classes = sorted(set(words.tolist()), key=lambda w: (w.startswith("_"), w))
    if len(classes) < 2:
        raise ValueError("enrolling needs at least two classes (add another word or an _unknown_ folder)")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale < 1e-6, 1.0, scale)
    z = (x - mean) / scale
    y = np.array([classes.index(w) for w in words])
    svm = LinearSVC(C=c, class_weight="balanced", random_state=seed, max_iter=5000)
    svm.fit(z, y)
    coef, intercept = svm.coef_, svm.intercept_
    if len(classes) == 2:  # sklearn keeps one hyperplane for two classes; make it one-vs-rest explicit
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return HeadParams(classes=classes, mean=mean, scale=scale, coef=coef, intercept=intercept, threshold=threshold,
                      temperature=temperature, input=input, gate=gate)


def head_words(head: HeadParams, x: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The word each row of features is accepted as (None: rejected), as the runtime decides."""
    from shared.bundle import special_mask
    from shared.runtime import head_gated, head_scores

    s = head_scores(x, head.mean, head.scale, head.coef, head.intercept)
    idx, score = head_gated(s, special_mask(head.classes), head.gate)
    t = head.threshold if threshold is None else threshold
    return np.array([head.classes[i] if i >= 0 and v >= t else None for i, v in zip(idx, score)], dtype=object)


def reject_labels(words: np.ndarray) -> np.ndarray:
    """Negative examples' labels as a head learns them: other words become _unknown_, _silence_ stays itself."""
    from shared.bundle import SPECIAL_LABELS, UNKNOWN

    return np.array([w if w in SPECIAL_LABELS else UNKNOWN for w in words])


def accepted_words(labels: np.ndarray) -> np.ndarray:
    """Labels as a head's answers compare with them: a special label (_unknown_/_silence_) becomes None, rejected."""
    from shared.bundle import SPECIAL_LABELS

    return np.array([None if w in SPECIAL_LABELS else w for w in labels], dtype=object)


def head_accuracy(head: HeadParams, x: np.ndarray, words: np.ndarray) -> float:
    """Accuracy with rejection: a special label or a score below threshold is 'rejected'; OOV clips must be rejected."""
    return float(np.mean(head_words(head, x) == accepted_words(words)))


def draw_shots(words: np.ndarray, rng: np.random.Generator, shots: int) -> np.ndarray:
    """Indices of `shots` random clips of each word (all of a word's clips when it has fewer), words in sorted order."""
    return np.concatenate([rng.choice(np.flatnonzero(words == w), size=min(shots, int(np.sum(words == w))),
                                      replace=False) for w in sorted(set(words.tolist()))])


def shots_curve(data: Embedded, test_speakers: set[str], shots=(1, 3, 5, 10), repeats: int = 5, seed: int = 0,
                inputs=("embedding", "probs"), negatives: Embedded | None = None) -> dict:
    """Accuracy on held-out speakers vs enrolment shots a word (mean over `repeats` random draws), per input kind."""
    test = np.array([s in test_speakers for s in data.speakers])
    pool, held = data.take(np.flatnonzero(~test)), data.take(np.flatnonzero(test))
    rng = np.random.default_rng(seed)
    out: dict = {}
    for kind in inputs:
        out[kind] = {}
        for k in shots:
            accs = []
            for _ in range(repeats):
                idx = draw_shots(pool.words, rng, k)
                x, y = pool.take(idx).with_copies(kind)  # the drawn clips and their perturbed copies, if any
                if negatives is not None:
                    nx, ny = negatives.with_copies(kind)
                    x, y = np.concatenate([x, nx]), np.concatenate([y, ny])
                head = fit_head(x, y, input=kind)
                accs.append(head_accuracy(head, held.features(kind), held.words))
            out[kind][str(k)] = round(float(np.mean(accs)), 4)
    out["test_n"] = int(test.sum())
    return out


def enroll_folder(name: str, folder, base_path, out, *, negatives=None, input: str = "embedding",
                  threshold: float = -0.5, c: float = 0.003, gate: str = "margin", copies: int = 0, noise_dir=None,
                  tts: int = 0, seed: int = 0, metrics: dict | None = None, attribution: str | None = None) -> Bundle:
    """Embed `folder` (plus `copies` perturbed versions of each clip) and `negatives` (as _unknown_, with half as many
    copies) with the base bundle, fit the head, write the head bundle.

    `tts` > 0: each word (its folder's name, an empty folder too) is also synthesised by that many espeak-ng voices and every flite and
    festival training voice (`synthesized_examples`), added to the recorded examples. With ten recorded clips a word
    they lift unseen synthetic voices from 55 to 98 % but recorded people only from 83 to 85 % (models/README.md,
    round 9; `python -m scripts.enroll_tts`).

    Copies are off by default. At 10 shots, 8 copies of the words and 4 of the negatives raised accuracy on unseen
    speakers from 67 to 73 % for one point more of never-trained words accepted, but in an hour of background noise
    the daemon then heard 21 animal words instead of 2 (models/README.md, round 4)."""
    from shared.bundle import SPECIAL_LABELS, load_bundle
    from shared.runtime import HEAD_GATES

    if input not in ("embedding", "probs"):
        raise ValueError(f"--input must be 'embedding' or 'probs', not {input!r}")
    if gate not in HEAD_GATES:
        raise ValueError(f"--gate must be one of {', '.join(HEAD_GATES)}, not {gate!r}")
    if noise_dir is not None and not os.path.isdir(noise_dir):
        raise ValueError(f"{noise_dir}: no such folder of noise recordings")
    base = load_bundle(base_path)
    if base.manifest.kind != "cnn":
        raise ValueError(f"{base.path}: the base must be a cnn bundle, not a {base.manifest.kind}")
    data = embed_folder(base, folder, copies=copies, noise_dir=noise_dir, seed=seed)
    x, y = data.with_copies(input)
    clips_x, clips_y = data.features(input), data.words  # what the head is scored on: the clips themselves
    synth = None
    if tts > 0:
        # every word folder, an empty one too: a word nobody recorded is learnt from its synthesised examples alone
        words = sorted(d.name for d in Path(folder).iterdir()
                       if d.is_dir() and not d.name.startswith(".") and d.name not in SPECIAL_LABELS)
        synth = synthesized_examples(base, words, tts, seed=seed)
        x, y = np.concatenate([x, synth.features(input)]), np.concatenate([y, synth.words])
    if negatives is not None:
        neg = embed_folder(base, negatives, copies=copies // 2, noise_dir=noise_dir, seed=seed + 1)
        neg.words = reject_labels(neg.words)
        nx, ny = neg.with_copies(input)
        x, y = np.concatenate([x, nx]), np.concatenate([y, ny])
        clips_x, clips_y = np.concatenate([clips_x, neg.features(input)]), np.concatenate([clips_y, neg.words])
    head = fit_head(x, y, c=c, input=input, threshold=threshold, gate=gate)
    m = {"train_accuracy": round(head_accuracy(head, clips_x, clips_y), 4), **(metrics or {})}
    counts = {w: int(np.sum(clips_y == w)) for w in head.classes}
    training = {"folder": str(folder), "negatives": str(negatives) if negatives else None, "per_word": counts,
                "speakers": int(len(set(data.speakers.tolist()))), "svm": {"C": c, "input": input, "gate": gate},
                "copies": {"per_clip": copies, "per_negative": copies // 2 if negatives is not None else 0,
                           "noise": str(noise_dir) if noise_dir else None},
                "tts": {"espeak_voices": tts, "clips": int(len(synth.words)), "unreadable": len(synth.unreadable)}
                if synth is not None else None}
    return write_head_bundle(out, name, base, head, training=training, metrics=m,
                             description=f"linear SVM on {base.name}'s {input}",
                             attribution=attribution or _base_attribution(base))


def synthesized_examples(base: Bundle, words: list[str], n_espeak: int, seed: int = 0) -> Embedded:
    """`words` said by `n_espeak` random espeak-ng voice+variant speakers (each at its own rate and pitch) and by
    every flite and festival training voice (trainer.recipe's TTS jobs, so never its held-out voices), embedded by the
    base. The synthesised clips are written to a temporary folder and not kept."""
    import tempfile
    from trainer.recipe import run_tts, tts_jobs

    if not words:
        raise ValueError("no words to synthesise (only _unknown_/_silence_ folders)")
    with tempfile.TemporaryDirectory(prefix="wordstamp-enroll-tts-") as tmp:
        errors = run_tts(tts_jobs(words, Path(tmp), n_espeak=n_espeak, seed=seed + 21, flite_speeds=(0.9, 1.1)))
        if not any(Path(tmp).glob("*/*.wav")):
            raise ValueError(f"text-to-speech made no clips ({errors[0] if errors else 'no voices installed'})")
        return embed_folder(base, tmp)


def _base_attribution(base: Bundle) -> str | None:
    """A head inherits its base's data credits (its own clips' credits are the enroller's to add)."""
    f = base.file("ATTRIBUTION")
    return f.read_text() if f.is_file() else None
