"""Train a CNN on stamp datasets: augmented copies, SpecAugment each epoch, early stopping on held-out speakers.

A run folder holds everything export and evaluation need: model.keras, run.json (configs, vocabulary, history,
metrics, threshold), calib.npz (representative stamps for int8 calibration and the test split for float-vs-int8),
and curve.png. Validation speakers are disjoint from training speakers; the dataset's test speakers are never seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from shared.audio import atomic_write_bytes
from shared.bundle import SILENCE, UNKNOWN, special_mask
from shared.runtime import gated
from trainer.augment import (DEFAULT_NOISE_DIR, AugmentConfig, augment_many, load_noises, mixup, spec_augment,
                             splice_words)
from trainer.dataset import Dataset, choose_test_speakers, load_dataset, speaker_kind, word_of
from trainer.nets import NetConfig


# What the domain adversary (TrainConfig.domain_weight) tells apart: speaker_kind -> class; noise is left out.
DOMAINS = {"human": 0, "espeak": 1, "tts": 1}


@dataclass
class TrainConfig:
    """Everything that decides a run (saved in run.json, so a run can be repeated)."""

    epochs: int = 30
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0
    copies: int = 3  # augmented copies of every training clip an epoch (plus the clean one) ...
    pool_copies: int = 0  # ... drawn afresh every epoch from this many precomputed ones (0: the same `copies`)
    val_fraction: float = 0.15  # of the training speakers
    patience: int = 6
    label_smoothing: float = 0.0  # smoothing caps confidence, which the reject threshold needs
    mixup: float = 0.0  # > 0: every training stamp blended with another, Beta(mixup, mixup) (trainer.augment.mixup)
    workers: int = 2
    noise_dir: str | None = str(DEFAULT_NOISE_DIR)
    net: NetConfig = field(default_factory=NetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_oov_false_accept: float = 0.02  # threshold calibration target on validation OOV clips ...
    false_accept_cost: float = 1.0  # ... when no threshold reaches it: minimise missed words + this x false accepts
    fine_unknown: bool = True  # train every _unknown_ word as its own class, folded into _unknown_ for serving
    fine_min_clips: int = 10  # words with fewer clips stay plain _unknown_
    # > 0: the served softmax (digits, _unknown_, _silence_) is trained directly and the fine classes become a second,
    # training-only softmax on the same embedding with this loss weight, instead of serving the folded fine softmax
    fine_aux_weight: float = 0.5
    # loss weight of _unknown_ relative to one word. 4 (it stands for many words) made new speakers' digits come out as
    # _unknown_: leave-one-speaker-out on two FSDD speakers rose from 77 to 85 % at 1 (models/README.md)
    unknown_weight: float = 1.0
    # what the reject threshold is compared with (shared.runtime.gated). "vocabulary" (round 6): on round 5's model
    # and validation speakers, 92.0 % of words kept at 11.7 % false accepts against "top"'s 84.5 % at 9.4 % / 86.5 %
    # at 12.0 % (models/README.md)
    gate: str = "vocabulary"
    # > 0: the served weights are an exponential moving average of the trained ones over batches (this momentum);
    # validation, early stopping and export then read the average. weight_decay > 0: AdamW's decoupled decay instead
    # of plain Adam. Both on (0.998, 0.05) raised FSDD leave-one-speaker-out from 86.6 to 88.1 %, but the full
    # recipe came out no better on its validation speakers and int8 lost 0.67 points: off (round 8, models/README.md)
    ema: float = 0.0
    weight_decay: float = 0.0
    # > 0: domain-adversarial training with this loss weight: a side classifier tells recorded people from synthetic
    # voices on the embedding, through a reversed gradient, so the embedding learns what the two share (the many TTS
    # voices should teach words, not TTS)
    domain_weight: float = 0.0
    domain_ramp: bool = True  # the reversed gradient grows from 0 to 1 over the epochs (False: 1 from the start)
    # > 0: this many spliced non-words (the start of one training digit joined to the end of another the same speaker
    # said, trainer.augment.splice_words) join the training `_unknown_` words as a word of their own (round 17)
    splices: int = 0
    # > 0: this many training digits played backwards join `_unknown_` as a word of their own (round 18)
    reversals: int = 0
    # finished runs (folders with model.keras and run.json, the same words) whose averaged served probabilities on
    # every training stamp become part of its target: (1 - distill) x the one-hot word + distill x the teachers'
    # probabilities (knowledge distillation: one network learns what an ensemble of several knows, round 19)
    teachers: list[str] = field(default_factory=list)
    distill: float = 0.5
    # what the teachers are shown for an augmented copy: "copy" (the copy itself, before SpecAugment) or "clean" (the
    # clean clip it was made from, so noise and distortion teach the student no doubt the teachers would have)
    teacher_sees: str = "copy"
    # where the served batch-norm statistics come from (round 28): "clean": after training, every batch-norm layer's
    # mean and variance become its input's exact ones over the clean training stamps (refresh_batch_norm), not the
    # running averages over masked, noisy batches of changing weights that training leaves. Over 21 fold networks it
    # kept more new people's digits where 2-3 % of never-trained words pass, and more words in quiet streams, but
    # fewer at 5 dB SNR (models/README.md). "trained": the running averages (the recipe until round 27)
    bn_stats: str = "clean"


@dataclass
class Pooled:
    """Several datasets merged by word name."""

    stamps: np.ndarray
    labels: np.ndarray
    words: list[str]
    speakers: np.ndarray
    split: np.ndarray
    clips: list[np.ndarray]
    frontend: object
    segmenter: object
    sources: np.ndarray | None = None

    def fine(self, min_clips: int) -> tuple[np.ndarray, list[str]]:
        """Fine labels: _unknown_ clips get their own word (the file name's second field) as a class of its own."""
        if UNKNOWN not in self.words or self.sources is None:
            return self.labels, list(self.words)
        unk = self.words.index(UNKNOWN)
        names = np.array([word_of(Path(str(s))) for s in self.sources])
        is_unk = self.labels == unk
        uniq, counts = np.unique(names[is_unk], return_counts=True)
        aux = [f"_unknown_:{w}" for w, c in zip(uniq, counts) if w and c >= min_clips]
        fine_words = list(self.words) + aux
        index = {w: i for i, w in enumerate(fine_words)}
        fine = self.labels.copy()
        for i in np.flatnonzero(is_unk):
            fine[i] = index.get(f"_unknown_:{names[i]}", unk)
        return fine, fine_words


def pool_datasets(datasets: list[Dataset], audio: bool = True) -> Pooled:
    """Merge datasets (same frontend) into one vocabulary: words sorted, _unknown_/_silence_ last. `audio` False
    leaves the clips' audio out (stamps only, a fraction of the memory)."""
    fronts = {d.frontend.hash for d in datasets}
    if len(fronts) != 1:
        raise ValueError("the datasets were built with different frontends; rebuild them with one")
    plain = sorted({w for d in datasets for w in d.words if w not in (UNKNOWN, SILENCE)})
    words = plain + [s for s in (UNKNOWN, SILENCE) if any(s in d.words for d in datasets)]
    idx = {w: i for i, w in enumerate(words)}
    labels = np.concatenate([np.array([idx[d.words[int(k)]] for k in d.labels], np.int32) for d in datasets])
    clips = [d.clip_audio(i) for d in datasets for i in range(len(d))] if audio else []
    return Pooled(np.concatenate([d.stamps for d in datasets]), labels, words,
                  np.concatenate([d.speakers.astype(str) for d in datasets]),
                  np.concatenate([d.split.astype(str) for d in datasets]), clips, datasets[0].frontend,
                  datasets[0].segmenter, np.concatenate([d.sources.astype(str) for d in datasets]))


def calibrate_threshold(probs: np.ndarray, labels: np.ndarray, words: list[str], max_fa: float,
                        lo: float = 0.3, hi: float = 0.9, groups: np.ndarray | None = None,
                        fa_cost: float = 1.0, gate: str = "top",
                        gated_values: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, dict]:
    """The lowest threshold in [lo, hi] whose false-accept rate on held-out OOV clips is at most `max_fa`; when none
    reaches it, the one minimising missed words + `fa_cost` x false accepts. `gate`: what is compared with it
    (shared.runtime.gated); or `gated_values`, (choice, value) per clip from a gate that needs more than `probs`
    (CnnModel.gated).

    With `groups` (a speaker kind per clip), accuracy is the mean over the kinds, so hundreds of synthetic voices,
    which are recognised with high confidence, do not outvote the few recorded people the threshold is really for.
    """
    special = special_mask(words)
    oov = special[labels]
    best_idx, score = gated_values if gated_values is not None else gated(probs, special, gate)

    def fa_at(t: float) -> float:
        return float(np.mean((best_idx[oov] >= 0) & (score[oov] >= t))) if oov.any() else 0.0

    grid = [k / 100 for k in range(round(lo * 100), round(hi * 100) + 1)]  # exactly the values that get stored
    parts = [np.ones(len(labels), bool)] if groups is None else [groups == g for g in np.unique(groups)]
    parts = [m & ~oov for m in parts if np.any(~oov[m])]  # the in-vocabulary clips of each kind that has some

    def acc_at(t: float) -> float:
        """Accuracy on in-vocabulary clips (mean over kinds) when a rejected clip counts as wrong."""
        hit = (best_idx == labels) & (score >= t)
        return float(np.mean([hit[m].mean() for m in parts])) if parts else 0.0

    ok = [t for t in grid if fa_at(t) <= max_fa]
    best = ok[0] if ok else min(grid, key=lambda t: (1 - acc_at(t)) + fa_cost * fa_at(t))
    acc = acc_at(best)
    return best, {"val_in_vocab_accuracy": acc, "val_oov_false_accept": fa_at(best), "val_oov_n": int(oov.sum())}


def train(prefixes: list[Path], out: Path, cfg: TrainConfig | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train on the npz datasets `prefixes`; write the run folder `out`; return run.json's content."""
    cfg = cfg or TrainConfig()
    check_bn_stats(cfg.bn_stats)
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = pool_datasets([load_dataset(Path(p)) for p in prefixes])
    rng = np.random.default_rng(cfg.seed)
    train_pool = np.flatnonzero(data.split == "train")
    test_idx = np.flatnonzero(data.split == "test")
    model, history, tr_idx, val_idx, val_spk = _train_core(data, train_pool, cfg, rng, log, t0)
    threshold, metrics = validate(model, data, val_idx, cfg.gate, cfg.max_oov_false_accept, cfg.false_accept_cost)
    if test_idx.size:
        tp = model.predict(data.stamps[test_idx], batch_size=256, verbose=0)[1]
        metrics["test_float_accuracy"] = float(np.mean(tp.argmax(1) == data.labels[test_idx]))
        metrics["test_n"] = int(test_idx.size)
    tmp_model = out / f".model.{os.getpid()}.tmp.keras"  # Keras wants the suffix; renamed: old or new, never half
    model.save(tmp_model)
    os.replace(tmp_model, out / "model.keras")
    calib = rng.choice(tr_idx, size=min(400, tr_idx.size), replace=False)
    _save_npz(out / "calib.npz", representative=data.stamps[calib], test_stamps=data.stamps[test_idx],
              test_labels=data.labels[test_idx], val_stamps=data.stamps[val_idx], val_labels=data.labels[val_idx])
    run = {
        "words": data.words, "threshold": threshold, "gate": cfg.gate, "metrics": metrics, "history": history,
        "config": _cfg_dict(cfg), "datasets": [str(p) for p in prefixes], "frontend": data.frontend.to_dict(),
        "segmenter": data.segmenter.to_dict(), "params": int(model.count_params()),
        "embedding_dim": int(model.outputs[0].shape[-1]), "seconds": round(time.time() - t0, 1),
        "data": {"clips": int(len(data.labels)), "train_clips": int(tr_idx.size), "val_clips": int(val_idx.size),
                 "test_clips": int(test_idx.size), "speakers": int(len(set(data.speakers.tolist()))),
                 "per_word": {w: int(np.sum(data.labels == i)) for i, w in enumerate(data.words)},
                 "val_speakers": sorted(val_spk), "test_speakers": sorted(set(data.speakers[test_idx].tolist()))},
    }
    atomic_write_bytes(out / "run.json", (json.dumps(run, indent=1) + "\n").encode())
    _curve_png(history, out / "curve.png")
    log(f"done in {time.time() - t0:.0f} s: val acc {metrics['val_accuracy']:.3f}, threshold {threshold}")
    return run


def validate(model, data: Pooled, val_idx: np.ndarray, gate: str, max_fa: float,
             fa_cost: float) -> tuple[float, dict]:
    """The served threshold calibrated on the validation clips, and the validation metrics run.json keeps."""
    val_probs = model.predict(data.stamps[val_idx], batch_size=256, verbose=0)[1]
    kinds = np.array([speaker_kind(s) for s in data.speakers[val_idx]])
    # the distance gate is fitted and calibrated on the int8 model at export (trainer.gate); until then, this one
    threshold, cal = calibrate_threshold(val_probs, data.labels[val_idx], data.words, max_fa, groups=kinds,
                                         fa_cost=fa_cost, gate="vocabulary" if gate == "distance" else gate)
    return threshold, {"val_accuracy": float(np.mean(val_probs.argmax(1) == data.labels[val_idx])), **cal}


def run_split(info: dict, audio: bool = False) -> tuple[Pooled, np.ndarray, np.ndarray]:
    """A finished run's own data again (its run.json `info`): the pooled stamps (and with `audio` the clips' audio),
    and the indices of its training and validation clips as `train` chose them (spliced clips, which exist only in
    the run, left out)."""
    val_spk = info.get("data", {}).get("val_speakers")
    if not info.get("datasets") or val_spk is None:
        raise ValueError("run.json names no datasets or validation speakers (an older run: train it again)")
    data = pool_datasets([load_dataset(Path(p)) for p in info["datasets"]], audio=audio)
    if data.words != info["words"]:
        raise ValueError(f"{', '.join(info['datasets'])}: its words differ from the run's (rebuilt since training?)")
    tr_idx, val_idx = _speaker_split(data, np.flatnonzero(data.split == "train"), set(val_spk))
    return data, tr_idx, val_idx


def _speaker_split(data: Pooled, train_pool: np.ndarray, val_spk: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """`train_pool` split into the training clips and those of the validation speakers `val_spk`, in pool order."""
    is_val = np.array([s in val_spk for s in data.speakers[train_pool]], bool)
    return train_pool[~is_val], train_pool[is_val]


TEACHER_VIEWS = ("copy", "clean")
BN_STATS = ("clean", "trained")  # TrainConfig.bn_stats


def check_teaching(distill: float, teacher_sees: str) -> None:
    """Refuse a distillation weight outside 0..1 or an unknown teacher view (make_models asks before any data is
    built, training before augmenting)."""
    if teacher_sees not in TEACHER_VIEWS:
        raise ValueError(f"teacher_sees {teacher_sees!r}: expected {' or '.join(TEACHER_VIEWS)}")
    if not 0.0 <= distill <= 1.0:
        raise ValueError(f"distill {distill}: expected a weight from 0 to 1")


def check_bn_stats(bn_stats: str) -> None:
    """Refuse an unknown source of the served batch-norm statistics (before any data is loaded)."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats {bn_stats!r}: expected {' or '.join(BN_STATS)}")


def _train_core(data: Pooled, train_pool: np.ndarray, cfg: TrainConfig, rng, log, t0: float):
    """Split `train_pool` by speaker into train/validation, augment, fit; (model, history, train, val, val speakers)."""
    check_teaching(cfg.distill, cfg.teacher_sees)
    check_bn_stats(cfg.bn_stats)
    # Validation speakers from every kind (people, espeak, other TTS, noise), so that early stopping and the threshold
    # also see recorded people, not only the many synthetic voices.
    by_kind: dict[str, list[str]] = {}
    for s in sorted(set(data.speakers[train_pool].tolist())):
        by_kind.setdefault(speaker_kind(s), []).append(s)
    val_spk = {s for spk in by_kind.values() for s in choose_test_speakers(spk, cfg.val_fraction, cfg.seed + 1)}
    tr_idx, val_idx = _speaker_split(data, train_pool, val_spk)
    if tr_idx.size == 0 or val_idx.size == 0:
        raise ValueError("need at least two training speakers (one for validation)")
    log(f"{len(data.words)} classes, {tr_idx.size} train / {val_idx.size} val ({len(val_spk)} speakers) clips")
    own_tr = tr_idx  # the datasets' own training clips (the caller's indices; splices exist only in this run)
    if cfg.splices > 0:
        data, tr_idx = _with_splices(data, tr_idx, cfg.splices, cfg.seed)
        log(f"{tr_idx.size - own_tr.size} spliced non-words added to {UNKNOWN}")
    if cfg.reversals > 0:
        n0 = tr_idx.size
        data, tr_idx = _with_reversals(data, tr_idx, cfg.reversals, cfg.seed)
        log(f"{tr_idx.size - n0} reversed digits added to {UNKNOWN}")
    noises = load_noises(Path(cfg.noise_dir)) if cfg.noise_dir else []
    aug_x, src = _augment(data, tr_idx, cfg, noises)
    fine, fine_words = data.fine(cfg.fine_min_clips) if cfg.fine_unknown else (data.labels, list(data.words))
    dom = np.array([DOMAINS.get(speaker_kind(s), -1) for s in data.speakers[tr_idx]], np.int32)  # noise: -1
    clean = (data.stamps[tr_idx], fine[tr_idx], dom)  # (stamps, fine labels, domains) each
    pool = (aug_x, fine[tr_idx][src], dom[src])
    merge = np.zeros((len(fine_words), len(data.words)), np.float32)
    for i, w in enumerate(fine_words):
        merge[i, data.words.index(w.split(":")[0])] = 1.0
    log(f"augmented to {aug_x.shape[0]} stamps in {time.time() - t0:.0f} s; {len(fine_words)} training classes")
    if cfg.teachers:
        if cfg.teacher_sees == "clean":
            (soft,) = _teacher_probs(cfg.teachers, data.words, [clean[0]], log)
            clean, pool = clean + (soft,), pool + (soft[src],)
        else:
            soft = _teacher_probs(cfg.teachers, data.words, [clean[0], pool[0]], log)
            clean, pool = clean + (soft[0],), pool + (soft[1],)
    model, history = _fit(clean, pool, data.stamps[val_idx], data.labels[val_idx], merge, cfg, rng, log)
    return model, history, own_tr, val_idx, val_spk


def teacher_words(run: Path) -> list[str]:
    """The served words of the finished run `run`; a one-line error when it is not one."""
    run = Path(run)
    if not (run / "model.keras").is_file():
        raise FileNotFoundError(f"{run}: no model.keras (not a finished training run)")
    try:
        return list(json.loads((run / "run.json").read_text())["words"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{run / 'run.json'}: unreadable ({e})") from None


def _teacher_probs(teachers: list[str], words: list[str], stamps: list[np.ndarray],
                   log: Callable[[str], None]) -> list[np.ndarray]:
    """The teachers' served probabilities, averaged, for each array of `stamps`: computed once a run, on stamps
    without SpecAugment, so the student learns each masked stamp towards what the teachers make of the whole."""
    for t in teachers:
        if teacher_words(Path(t)) != list(words):
            raise ValueError(f"{t}: its words differ from the dataset's ({', '.join(words)})")
    import keras

    sums = [np.zeros((x.shape[0], len(words)), np.float64) for x in stamps]
    for t in teachers:
        net = keras.models.load_model(Path(t) / "model.keras", compile=False)
        for s, x in zip(sums, stamps):
            if x.shape[0]:
                s += net.predict(x, batch_size=512, verbose=0)[1]
        log(f"teacher {t}: probabilities of {sum(x.shape[0] for x in stamps)} stamps")
    return [(s / len(teachers)).astype(np.float32) for s in sums]


def _with_splices(data: Pooled, tr_idx: np.ndarray, n: int, seed: int) -> tuple[Pooled, np.ndarray]:
    """`data` with `n` spliced non-words of the training speakers' digits appended as `_unknown_` clips (their own
    fine word, "splice"), and the training indices including them. They are drawn from their own random stream."""
    from shared.features import Frontend

    words_idx = _word_clips(data, tr_idx, "splices")
    fe = Frontend(data.frontend)
    clips, starts = splice_words([data.clips[i] for i in words_idx], data.labels[words_idx],
                                 data.speakers[words_idx], n, np.random.default_rng(seed + 17), fe, data.segmenter)
    return _with_unknown(data, tr_idx, clips, data.speakers[words_idx][starts], "spliced", "splice")


def _with_reversals(data: Pooled, tr_idx: np.ndarray, n: int, seed: int) -> tuple[Pooled, np.ndarray]:
    """`data` with `n` of the training speakers' digits played backwards appended as `_unknown_` clips (fine word
    "reversed"): a digit's sounds in its speaker's voice, in the wrong order (round 18)."""
    words_idx = _word_clips(data, tr_idx, "reversals")
    pick = np.random.default_rng(seed + 19).choice(words_idx, size=min(n, words_idx.size), replace=False)
    return _with_unknown(data, tr_idx, [np.ascontiguousarray(data.clips[i][::-1]) for i in pick],
                         data.speakers[pick], "reversed", "reversed")


def _word_clips(data: Pooled, tr_idx: np.ndarray, what: str) -> np.ndarray:
    """The training clips of vocabulary words (what non-words are made of); `what` names the option in errors."""
    if UNKNOWN not in data.words:
        raise ValueError(f"{what} need an {UNKNOWN} class to join")
    return tr_idx[~special_mask(data.words)[data.labels[tr_idx]]]


def _with_unknown(data: Pooled, tr_idx: np.ndarray, clips: list[np.ndarray], spk: np.ndarray, folder: str,
                  fine: str) -> tuple[Pooled, np.ndarray]:
    """`data` with `clips` (said by `spk`) appended as training clips of `_unknown_`, learnt as the fine word `fine`;
    and the training indices including them."""
    from shared.features import Frontend
    from shared.segment import clip_stamp

    if not clips:
        return data, tr_idx
    k = len(clips)
    fe = Frontend(data.frontend)
    stamps = np.stack([clip_stamp(c, fe, data.segmenter) for c in clips]).astype(np.float32)
    more = dataclasses.replace(
        data, stamps=np.concatenate([data.stamps, stamps]),
        labels=np.concatenate([data.labels, np.full(k, data.words.index(UNKNOWN), data.labels.dtype)]),
        speakers=np.concatenate([data.speakers, spk]), split=np.concatenate([data.split, np.full(k, "train")]),
        clips=list(data.clips) + clips,
        sources=None if data.sources is None else np.concatenate(
            [data.sources, np.array([f"{folder}/{UNKNOWN}/s{i}_{fine}_{i}.wav" for i in range(k)])]))
    return more, np.concatenate([tr_idx, np.arange(len(data.labels), len(data.labels) + k)])


def fold_probs(data: Pooled, train_mask: np.ndarray, test_mask: np.ndarray, cfg: TrainConfig,
               log: Callable[[str], None] = print) -> np.ndarray:
    """One cross-validation fold: train on `train_mask` clips, return the float model's probabilities on `test_mask`."""
    rng = np.random.default_rng(cfg.seed)
    model, *_ = _train_core(data, np.flatnonzero(train_mask), cfg, rng, log, time.time())
    return model.predict(data.stamps[test_mask], batch_size=256, verbose=0)[1]


def train_fold(data: Pooled, train_mask: np.ndarray, test_mask: np.ndarray, cfg: TrainConfig, out: Path,
               log: Callable[[str], None] = print) -> float:
    """One cross-validation fold: train on `train_mask` clips, return float accuracy on `test_mask` clips."""
    probs = fold_probs(data, train_mask, test_mask, cfg, log)
    return float(np.mean(probs.argmax(1) == data.labels[test_mask]))


def _cfg_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def _save_npz(path: Path, **arrays) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def _augment(data: Pooled, idx: np.ndarray, cfg: TrainConfig, noises: list[np.ndarray]):
    """Precompute the augmented copies (before TensorFlow is imported: the pool forks)."""
    if cfg.copies <= 0:
        return np.zeros((0, *data.stamps.shape[1:]), np.float32), np.zeros(0, int)
    from rich.progress import Progress

    clips = [data.clips[i] for i in idx]
    with Progress(transient=True) as bar:
        task = bar.add_task("augmenting", total=len(clips) * max(cfg.copies, cfg.pool_copies))
        return augment_many(clips, max(cfg.copies, cfg.pool_copies), cfg.augment, noises, seed=cfg.seed,
                            fcfg=data.frontend,
                            seg_cfg=data.segmenter, workers=cfg.workers,
                            progress=lambda n: bar.advance(task, n))


def _fit(clean: tuple, pool: tuple, x_val, y_val, merge: np.ndarray, cfg: TrainConfig, rng, log):
    """Keras training on fine labels: every epoch the clean stamps plus `copies` x as many augmented ones drawn from
    the pool, with fresh SpecAugment masks; early stopping on the validation speakers' accuracy over the served
    (coarse) vocabulary. Returns the serving model and the history."""
    import keras
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from trainer.nets import build_aux, build_merged, build_net, tower_count

    keras.utils.set_random_seed(cfg.seed)
    n_fine, n_classes = merge.shape
    shape = clean[0].shape[1:]
    aux = n_fine > n_classes and cfg.fine_aux_weight > 0
    adversary = cfg.domain_weight > 0
    distil = len(clean) > 3
    if distil and n_fine != n_classes and not aux:
        raise ValueError("teachers need the served softmax trained directly (fine_aux_weight > 0)")
    if adversary and not aux:
        raise ValueError("domain_weight > 0 needs the side softmax (fine_aux_weight > 0 and _unknown_ words)")
    if n_fine == n_classes:
        model = serve = build_net(shape, n_classes, cfg.net)
    elif aux:
        reversal = keras.Variable(0.0, trainable=False, name="reversal") if adversary else 1.0  # set every epoch
        model, serve = build_aux(shape, n_classes, n_fine, cfg.net, n_domains=len(set(DOMAINS.values())) * adversary,
                                 reversal=reversal)
    else:
        model, serve = build_merged(shape, merge, cfg.net)
    coarse = merge.argmax(1)
    per_epoch = clean[0].shape[0] + min(pool[0].shape[0], cfg.copies * clean[0].shape[0])
    counts = np.bincount(coarse[np.concatenate([clean[1], pool[1]])], minlength=n_classes).astype(np.float64)
    weights = counts.sum() / (n_classes * np.maximum(counts, 1))  # balance the served classes ...
    if cfg.unknown_weight and n_fine > n_classes:  # ... _unknown_ (many words in one class) scaled by unknown_weight
        unk = int(np.argmax(np.bincount(coarse, minlength=n_classes)))  # the class most fine classes fold into
        weights[unk] *= cfg.unknown_weight
    steps = int(np.ceil(per_epoch / cfg.batch)) * cfg.epochs
    sched = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps, alpha=0.05)
    ce = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    opt = (keras.optimizers.AdamW(sched, weight_decay=cfg.weight_decay) if cfg.weight_decay > 0
           else keras.optimizers.Adam(sched))
    towers, emb_dim = tower_count(serve), int(serve.outputs[0].shape[-1])
    if aux:  # metrics name the served output first, so the history's "accuracy" is the served one (tower 0's)
        model.compile(optimizer=opt, loss=[None] + [ce] * (2 * towers + adversary),
                      loss_weights=[1.0] + [1.0] * towers + [cfg.fine_aux_weight] * towers
                      + [cfg.domain_weight] * adversary,
                      metrics=[None, ["accuracy"]] + [None] * (2 * towers - 1 + adversary))
    elif towers > 1:
        raise ValueError("towers > 1 needs the side softmax (fine_aux_weight > 0 and _unknown_ words)")
    else:
        model.compile(optimizer=opt, loss=[None, ce], metrics=[None, ["accuracy"]])
    average = _weight_average(serve, cfg.ema) if cfg.ema > 0 else None
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    best, best_w, wait = -1.0, None, 0
    cols = [TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}")]
    with Progress(*cols, transient=False) as bar:
        task = bar.add_task("train", total=cfg.epochs, epoch=0, info="")
        for epoch in range(cfg.epochs):
            pick = rng.choice(pool[0].shape[0], size=per_epoch - clean[0].shape[0], replace=False)
            x_tr = np.concatenate([clean[0], pool[0][pick]])
            y_tr = np.concatenate([clean[1], pool[1][pick]])
            d_tr = np.concatenate([clean[2], pool[2][pick]])
            perm = rng.permutation(x_tr.shape[0])
            xe = spec_augment(x_tr[perm], rng, cfg.augment)
            ye = keras.utils.to_categorical(y_tr[perm], n_fine)
            sw = weights[coarse[y_tr[perm]]]
            served = keras.utils.to_categorical(coarse[y_tr[perm]], n_classes)
            if distil:  # the served target moves towards the teachers' probabilities
                soft = np.concatenate([clean[3], pool[3][pick]])[perm]
                served = (1.0 - cfg.distill) * served + cfg.distill * soft
                if n_fine == n_classes:
                    ye = served
            targets = [np.zeros((xe.shape[0], emb_dim), np.float32), ye]  # the embedding output has no loss
            if aux:
                targets = [targets[0]] + [served] * towers + [ye] * towers
            if adversary:  # noise has no voice: an all-zero target row adds no loss
                # the reversed gradient ramps 0 -> 1 (2 / (1 + e^(-10 p)) - 1, p the share of epochs done), so the
                # adversary pushes only once the words have been learnt a little (Ganin & Lempitsky's schedule)
                reversal.assign(2.0 / (1.0 + np.exp(-10.0 * epoch / cfg.epochs)) - 1.0 if cfg.domain_ramp else 1.0)
                d = d_tr[perm]
                targets.append(np.eye(len(set(DOMAINS.values())), dtype=np.float32)[np.maximum(d, 0)] * (d >= 0)[:, None])
            xe, targets, sw = mixup(xe, targets, sw, cfg.mixup, rng)
            h = model.fit(xe, targets, sample_weight=sw, batch_size=cfg.batch, epochs=1, verbose=0,
                          callbacks=[average] if average else None)
            if average:  # validate (and keep) the averaged weights; training goes on from the raw ones
                raw = serve.get_weights()
                serve.set_weights(average.weights())
            pv = serve.predict(x_val, batch_size=256, verbose=0)[1]
            hist = {"loss": h.history["loss"][-1], "accuracy": _pick(h.history, "accuracy"),
                    "val_loss": float(-np.mean(np.log(np.clip(pv[np.arange(len(y_val)), y_val], 1e-7, 1)))),
                    "val_accuracy": float(np.mean(pv.argmax(1) == y_val))}
            for k, v in hist.items():
                history[k].append(float(v))
            bar.update(task, advance=1, epoch=epoch + 1,
                       info=f"acc {hist['accuracy']:.3f} val {hist['val_accuracy']:.3f}")
            if not bar.console.is_terminal:
                log(f"epoch {epoch + 1}: loss {hist['loss']:.3f} acc {hist['accuracy']:.3f} "
                    f"val_loss {hist['val_loss']:.3f} val_acc {hist['val_accuracy']:.3f}")
            improved = hist["val_accuracy"] > best + 1e-4
            if improved:
                best, best_w, wait = hist["val_accuracy"], serve.get_weights(), 0
            if average:
                serve.set_weights(raw)
            if not improved:
                wait += 1
                if wait >= cfg.patience:
                    log(f"early stop after epoch {epoch + 1} (best val acc {best:.3f})")
                    break
    if best_w is not None:
        serve.set_weights(best_w)
    if cfg.bn_stats == "clean":
        refresh_batch_norm(serve, clean[0])
    return serve, history


def refresh_batch_norm(net, stamps: np.ndarray, batch: int = 512) -> int:
    """Set each batch-norm layer's moving mean and variance to its input's exact ones over `stamps`, layer by layer
    in order (each layer sees its predecessors already set, as inference will); returns how many layers were set.

    Training leaves running averages over noisy, masked batches whose weights kept changing; the exact statistics
    of the training words as they are let the network normalise a word as it is heard (models/README.md, round 28)."""
    import keras

    n = 0
    for layer in net.layers:  # a functional model lists its layers in order
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(net.input, layer.input)
        total, squares, count = 0.0, 0.0, 0
        for a in range(0, len(stamps), batch):
            f = keras.ops.convert_to_numpy(probe(np.asarray(stamps[a:a + batch], np.float32), training=False))
            f = f.reshape(-1, f.shape[-1]).astype(np.float64)
            total, squares, count = total + f.sum(0), squares + (f * f).sum(0), count + f.shape[0]
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(squares / count - mean * mean, 0.0).astype(np.float32))
        n += 1
    return n


def _weight_average(net, momentum: float):
    """A Keras callback keeping an exponential moving average of `net`'s weights (batch norm statistics included)
    after every batch; its warm-up (momentum min(m, (1+n)/(10+n))) keeps the first batches from dominating."""
    import keras

    class WeightAverage(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.avg: list[np.ndarray] | None = None
            self.n = 0

        def on_train_batch_end(self, batch, logs=None) -> None:
            w = net.get_weights()
            self.n += 1
            if self.avg is None:
                self.avg = [x.astype(np.float64) for x in w]
                return
            m = min(momentum, (1 + self.n) / (10 + self.n))
            for a, x in zip(self.avg, w):
                a *= m
                a += (1 - m) * x

        def weights(self) -> list[np.ndarray]:
            return [a.astype(x.dtype) for a, x in zip(self.avg, net.get_weights())]

    return WeightAverage()


def _pick(d: dict, name: str) -> float:
    """Keras 3 names a multi-output metric after its output ('probs_accuracy'); take whichever is there."""
    for k, v in d.items():
        if k.endswith(name) and not k.startswith("val_"):
            return float(v[-1] if isinstance(v, list) else v)
    return float("nan")


def _curve_png(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(history[key], label="train (augmented)")
        ax.plot(history[f"val_{key}"], label="validation speakers")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
