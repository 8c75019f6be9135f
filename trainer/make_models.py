"""`make models`: the whole recipe for models/digits and models/animals, with every figure measured on the way.

    python -m trainer.make_models ../shared/data [--work data/recipe] [--epochs 15] [--copies 2]

Steps: clip folders (FSDD, Speech Commands, TTS, noise) -> data/digits.npz -> train -> int8 bundle -> evaluate on
held-out Speech Commands speakers and on never-trained words/noise -> animals head (+ accuracy vs shots) ->
models/RESULTS.json. Timings are recorded too (the recipe's budget is 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from shared.audio import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared", type=Path)
    ap.add_argument("--work", type=Path, default=REPO / "data" / "recipe")
    ap.add_argument("--models", type=Path, default=REPO / "models")
    ap.add_argument("--runs", type=Path, default=REPO / "runs")
    ap.add_argument("--epochs", type=int, default=22)
    ap.add_argument("--copies", type=int, default=2, help="augmented copies of each clip an epoch")
    ap.add_argument("--pool-copies", type=int, default=6, help="... drawn from this many precomputed ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-seed", type=int, default=None,
                    help="the training run's seed alone (default --seed): another draw of the same data")
    ap.add_argument("--width", type=int, default=64, help="channels of the DS-CNN blocks")
    ap.add_argument("--towers", type=int, default=1, help="independent DS-CNNs in the model, probabilities averaged")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--espeak-voices", type=int, default=200, help="espeak-ng voice+variant speakers of the digits")
    ap.add_argument("--sc-unknown", type=int, default=40,
                    help="at most this many clips of each other Speech Commands word in _unknown_")
    ap.add_argument("--sc-unknown-voices", choices=("any", "digit-speakers"), default="any",
                    help="whose recorded words _unknown_ learns: anyone's, or only people who also say digits")
    ap.add_argument("--sc-train-share", type=float, default=1.0, metavar="F",
                    help="train on the digits of only this random share of the Speech Commands speakers not held "
                         "out (a learning curve; 1: all, as shipped)")
    ap.add_argument("--sc-repeat", type=int, default=3, help="links of each Speech Commands digit clip (oversampling)")
    ap.add_argument("--warp", type=float, nargs=2, default=(0.9, 1.1), metavar=("LO", "HI"),
                    help="mel-axis stretch range of the augmentation (vocal-tract length)")
    ap.add_argument("--snr", type=float, nargs=2, default=(0.0, 20.0), metavar=("LO", "HI"),
                    help="background-noise SNR range of the augmentation, dB")
    ap.add_argument("--noise-p", type=float, default=0.6,
                    help="how often a training copy gets background noise mixed in")
    ap.add_argument("--quiet-room", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="copies without background noise get a noise recording LO-HI dB under them instead of "
                         "digital silence around the word (off, as shipped)")
    ap.add_argument("--eq", type=float, nargs=2, default=(0.0, 10.0), metavar=("P", "DB"),
                    help="how often a training copy gets a random microphone colouring, and its largest swing in dB")
    ap.add_argument("--masks", type=int, nargs=4, default=(1, 8, 1, 5), metavar=("T", "T_MAX", "F", "F_MAX"),
                    help="SpecAugment: T time masks of up to T_MAX frames and F frequency masks of up to F_MAX bands")
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="blend every training stamp with another, Beta(ALPHA, ALPHA) (0: off, as shipped)")
    ap.add_argument("--band-floor", type=float, default=0.0, metavar="DB",
                    help="floor every band of a stamp this many dB below its loudest frame (0: off, as shipped)")
    ap.add_argument("--stamp-floor", type=float, default=0.0, metavar="DB",
                    help="floor the whole stamp this many dB below its loudest value (0: off, as shipped)")
    ap.add_argument("--on-db", type=float, default=None, metavar="DB",
                    help="the segmenter's start threshold above the noise floor, for the training clips' word spans "
                         "and in the bundles (default: SegmenterConfig's)")
    ap.add_argument("--pcen", type=float, default=0.0, metavar="MS",
                    help="stamps of PCEN values with a running average over about MS ms instead of the mean-removed "
                         "log-mel (0: off, as shipped)")
    ap.add_argument("--clipping", type=float, default=0.0, metavar="P",
                    help="how often a training copy is driven 1-12 dB past full scale and clipped (0: off, as shipped)")
    ap.add_argument("--voice", type=float, default=0.0, metavar="P",
                    help="how often a training copy is said by another voice first: formants and pitch moved "
                         "independently (Praat's Change gender; 0: off, as shipped)")
    ap.add_argument("--splices", type=int, default=0, metavar="N",
                    help="N non-words spliced from two training digits of one speaker, learnt as _unknown_ "
                         "(0: off, as shipped)")
    ap.add_argument("--reversals", type=int, default=0, metavar="N",
                    help="N training digits played backwards, learnt as _unknown_ (0: off, as shipped)")
    ap.add_argument("--teachers", nargs="+", default=[], metavar="RUN",
                    help="finished digits runs whose averaged probabilities the new run learns towards "
                         "(knowledge distillation; none, as shipped)")
    ap.add_argument("--distill", type=float, default=0.5, metavar="A",
                    help="with --teachers: the target is (1 - A) x the word + A x the teachers' probabilities")
    ap.add_argument("--teacher-sees", choices=("copy", "clean"), default="copy",
                    help="with --teachers: the teachers judge each augmented copy, or the clean clip it came from")
    ap.add_argument("--gate", choices=("top", "vocabulary", "distance"), default=None,
                    help="the digits bundle's reject gate (default: the training config's, vocabulary)")
    ap.add_argument("--snr-ref", choices=("clip", "speech"), default="clip",
                    help="SNR against the whole clip or the word's loud frames")
    ap.add_argument("--unknown-weight", type=float, default=1.0, help="loss weight of _unknown_ against one word")
    ap.add_argument("--fine-unknown", action=argparse.BooleanOptionalAction, default=True,
                    help="train every _unknown_ word as its own class (folded back for serving) or one class")
    ap.add_argument("--fine-aux", type=float, default=0.5, metavar="WEIGHT",
                    help="> 0: train the served classes directly, the fine ones as a side softmax of this loss weight")
    ap.add_argument("--ema", type=float, default=0.0, metavar="MOMENTUM",
                    help="serve a moving average of the weights (0: the last weights, as shipped)")
    ap.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's weight decay (0: Adam, as shipped)")
    ap.add_argument("--bn-stats", choices=("clean", "trained"), default="clean",
                    help="served batch-norm statistics: of the clean training words (the recipe since round 28) or "
                         "the running averages training left")
    ap.add_argument("--domain-weight", type=float, default=0.0, metavar="WEIGHT",
                    help="domain-adversarial loss weight: people vs synthetic voices (0: off)")
    ap.add_argument("--enroll-copies", type=int, default=0,
                    help="perturbed copies of each animals clip in enrolment (of each negative: half as many)")
    ap.add_argument("--sc-fold", default=None, metavar="K/N",
                    help="hold out the K-th (from 0) of N disjoint groups of Speech Commands digit speakers "
                         "instead of a random 40 %%")
    ap.add_argument("--fresh", action="store_true", help="delete the work folder first")
    ap.add_argument("--no-rhymes", action="store_true", help="leave near-digit words (fine, free, hive...) out of _unknown_")
    ap.add_argument("--rhyme-share", type=float, default=1.0, metavar="F",
                    help="only a random share F of the TTS voices say the near-digit words (1: all, as shipped)")
    ap.add_argument("--accents", action="store_true",
                    help="festival's non-English voices say the digits too, respelt (trainer/accents.py; festvox-*)")
    ap.add_argument("--extra", type=Path, default=None, metavar="DIR",
                    help="train the digits on DIR/<word>/*.wav clips too (a digit, _unknown_ or _silence_)")
    a = ap.parse_args(argv)
    fold = None
    if a.sc_fold is not None:
        try:
            k, n = (int(v) for v in a.sc_fold.split("/"))
        except ValueError:
            ap.error(f"--sc-fold {a.sc_fold!r}: expected K/N, e.g. 0/3")
        if not 0 <= k < n:
            ap.error(f"--sc-fold {a.sc_fold}: K counts from 0 and must be below N")
        fold = (k, n)
    if not 0 < a.sc_train_share <= 1:
        ap.error(f"--sc-train-share {a.sc_train_share}: must be above 0 and at most 1")
    if not 0 < a.rhyme_share <= 1:
        ap.error(f"--rhyme-share {a.rhyme_share}: must be above 0 and at most 1")
    if a.accents:
        from trainer.accents import missing_packages

        missing = missing_packages()
        if missing:
            print(f"warning: --accents: these festival voices are not installed and are left out: {' '.join(missing)} "
                  f"(apt-get install them)", file=sys.stderr)
    if not (a.shared / "fsdd").is_dir() or not (a.shared / "speech-commands").is_dir():
        print(f"error: {a.shared}: needs fsdd/ and speech-commands/ (the developers' data folder)", file=sys.stderr)
        return 1
    from trainer.recipe import DIGITS_LABELS, check_extra
    from trainer.train import check_teaching, teacher_words

    if a.extra is not None:
        try:
            check_extra(a.extra, DIGITS_LABELS)
        except ValueError as e:
            print(f"error: --extra {e}", file=sys.stderr)
            return 1

    try:
        check_teaching(a.distill, a.teacher_sees)
    except ValueError as e:
        ap.error(f"--{e}")
    for t in a.teachers:  # a folder that is no finished run is told before the datasets are built, not after
        try:
            teacher_words(t)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainer.dataset import build_dataset
    from trainer.enroll import embed_folder, enroll_folder, shots_curve
    from trainer.evaluate import confusion_png, evaluate_folder
    from trainer.export import export_run
    from shared.features import FrontendConfig
    from shared.segment import SegmenterConfig
    from trainer.augment import AugmentConfig
    from trainer.nets import NetConfig
    from trainer.recipe import prepare_animals, prepare_digits
    from trainer.train import TrainConfig, train

    t0 = time.time()
    times: dict[str, float] = {}

    def lap(name: str) -> None:
        times[name] = round(time.time() - t0 - sum(times.values()), 1)
        print(f"[{time.time() - t0:6.0f} s] {name} done", flush=True)

    if a.fresh and a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True, exist_ok=True)
    info = prepare_digits(a.shared, a.work, seed=a.seed, rhymes=not a.no_rhymes, n_espeak=a.espeak_voices,
                          sc_repeat=a.sc_repeat, sc_unknown=a.sc_unknown, sc_fold=fold,
                          sc_unknown_voices=a.sc_unknown_voices, sc_train_share=a.sc_train_share,
                          rhyme_share=a.rhyme_share, accents=a.accents, extra=a.extra)
    npz = a.work / "digits.npz"
    rep = build_dataset(a.work, "digits", out=npz, test_speakers=info["test_speakers"], seed=a.seed,
                        frontend_cfg=FrontendConfig(band_floor_db=a.band_floor, stamp_floor_db=a.stamp_floor,
                                                    pcen_ms=a.pcen),
                        seg_cfg=SegmenterConfig() if a.on_db is None else SegmenterConfig(on_db=a.on_db))
    lap("digits data")
    cfg = TrainConfig(epochs=a.epochs, copies=a.copies, pool_copies=a.pool_copies, mixup=a.mixup,
                      seed=a.seed if a.train_seed is None else a.train_seed,
                      noise_dir=str(a.shared / "noise"), batch=a.batch, lr=a.lr, unknown_weight=a.unknown_weight,
                      fine_unknown=a.fine_unknown, fine_aux_weight=a.fine_aux, ema=a.ema, weight_decay=a.weight_decay,
                      domain_weight=a.domain_weight, splices=a.splices, reversals=a.reversals, bn_stats=a.bn_stats,
                      teachers=[str(t) for t in a.teachers], distill=a.distill,
                      teacher_sees=a.teacher_sees,
                      net=NetConfig(arch="dscnn", width=a.width, towers=a.towers),
                      augment=AugmentConfig(warp=tuple(a.warp), snr_db=tuple(a.snr), snr_ref=a.snr_ref,
                                            noise_p=a.noise_p, eq_p=a.eq[0], eq_db=a.eq[1],
                                            quiet_snr_db=None if a.quiet_room is None else tuple(a.quiet_room),
                                            clip_p=a.clipping, voice_p=a.voice,
                                            time_masks=a.masks[0], time_mask_max=a.masks[1],
                                            freq_masks=a.masks[2], freq_mask_max=a.masks[3]))
    run = a.runs / "digits"
    train([npz], run, cfg)
    lap("digits training")
    digits = export_run(run, "digits", a.models / "digits", gate=a.gate,
                        description="spoken digits zero..nine with _unknown_ and _silence_; DS-CNN, int8")
    sc = evaluate_folder(digits.path, a.work / "sc-test")
    oov = evaluate_folder(digits.path, a.work / "oov")
    confusion_png(sc, run / "confusion-sc-test.png")
    results = {"digits": {"bundle": str(digits.path), "bytes": digits.manifest.metrics["model_bytes"],
                          "params": digits.manifest.metrics.get("params"),
                          "threshold": digits.manifest.threshold, "gate": digits.manifest.gate,
                          "float_vs_int8": {k: digits.manifest.metrics.get(k) for k in
                                            ("float_accuracy", "int8_accuracy", "int8_minus_float_points",
                                             "int8_top_ties", "float_served_accuracy", "int8_served_accuracy",
                                             "int8_minus_float_served_points", "quantisation_n",
                                             "quantisation_split")},
                          "sc_heldout_speakers": {"accuracy": round(sc.accuracy, 4), "n": sc.n,
                                                  "per_word": sc.per_word},
                          "oov": {"false_accept_rate": round(oov.oov_false_accept_rate, 4), "n": oov.oov_n,
                                  "per_folder": oov.oov_per_folder},
                          "dataset": {"clips": rep.n, "per_word": rep.per_word, "speakers": rep.speakers}}}
    lap("digits export + evaluation")
    an = prepare_animals(a.shared, a.work, seed=a.seed)
    base = digits
    noise = a.shared / "noise"
    pool = embed_folder(base, a.work / "animals", copies=a.enroll_copies, noise_dir=noise, seed=a.seed)
    test = embed_folder(base, a.work / "animals-test")
    neg = embed_folder(base, a.work / "animals-neg", copies=a.enroll_copies // 2, noise_dir=noise, seed=a.seed + 1)
    import numpy as np

    both = type(pool)(np.concatenate([pool.emb, test.emb]), np.concatenate([pool.probs, test.probs]),
                      np.concatenate([pool.words, test.words]), np.concatenate([pool.speakers, test.speakers]),
                      pool.files + test.files)
    if a.enroll_copies:  # shots are drawn from the pool's speakers only, so the test clips need no copies
        both.aug_emb = np.concatenate([pool.aug_emb, np.zeros((len(test.words), *pool.aug_emb.shape[1:]), np.float32)])
        both.aug_probs = np.concatenate([pool.aug_probs,
                                         np.zeros((len(test.words), *pool.aug_probs.shape[1:]), np.float32)])
    curve = shots_curve(both, set(an["test_speakers"]), shots=(1, 3, 5, 10), repeats=5, seed=a.seed, negatives=neg)
    kind = "embedding" if curve["embedding"]["10"] >= curve["probs"]["10"] else "probs"
    animals = enroll_folder("animals", a.work / "animals", base.path, a.models / "animals",
                            negatives=a.work / "animals-neg", input=kind, copies=a.enroll_copies, noise_dir=noise,
                            seed=a.seed,
                            metrics={"accuracy_vs_shots_unseen_speakers": curve, "input_chosen": kind})
    at = evaluate_folder(animals.path, a.work / "animals-test")
    ao = evaluate_folder(animals.path, a.work / "oov")
    results["animals"] = {"bundle": str(animals.path), "input": kind, "accuracy_vs_shots": curve,
                          "full_pool_unseen_speakers": {"accuracy": round(at.accuracy, 4), "n": at.n,
                                                        "per_word": at.per_word},
                          "oov": {"false_accept_rate": round(ao.oov_false_accept_rate, 4), "n": ao.oov_n}}
    lap("animals head")
    attribution = (a.models / "digits" / "ATTRIBUTION").read_text()
    atomic_write_bytes(a.models / "ATTRIBUTION", attribution.encode())
    results["seconds"] = times | {"total": round(time.time() - t0, 1)}
    atomic_write_bytes(a.models / "RESULTS.json", (json.dumps(results, indent=1) + "\n").encode())
    print(json.dumps({"digits_sc_heldout": results["digits"]["sc_heldout_speakers"]["accuracy"],
                      "digits_oov_fa": results["digits"]["oov"]["false_accept_rate"],
                      "int8": results["digits"]["float_vs_int8"], "animals_shots": curve,
                      "seconds": results["seconds"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
