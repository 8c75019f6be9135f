"""The model commands: train, export, upgrade, evaluate, predict, enroll. Heavy imports happen inside each command.

Every expected failure (missing file, bad bundle, unreadable audio, bad dataset) prints one line naming the file
and exits 1; tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, OSError, KeyError)


def _fail(exc: BaseException) -> None:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def _run(fn):
    """Call fn(), turning the project's one-line errors into a clean exit."""
    from shared.audio import AudioError
    from shared.bundle import BundleError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return fn()
    except (AudioError, BundleError, *EXPECTED_ERRORS) as exc:
        _fail(exc)


def _dataset_path(prefix: str, data: Path) -> Path:
    """A PREFIX names data/PREFIX.npz; a path to an .npz is taken as is."""
    p = Path(prefix)
    return p if p.suffix == ".npz" else data / f"{prefix}.npz"


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `wordstamp` app."""

    @app.command()
    def train(prefixes: List[str] = typer.Argument(..., help="dataset prefixes (data/PREFIX.npz) or .npz paths"),
              out: Path = typer.Option(None, "--out", help="run folder (default runs/<first prefix>)"),
              epochs: int = typer.Option(15, help="maximum epochs (early stopping on held-out speakers)"),
              seed: int = typer.Option(0),
              arch: str = typer.Option("dscnn", help="dscnn or baseline (the seed's MNIST-style net)"),
              width: int = typer.Option(64, help="channels of the DS-CNN blocks"),
              towers: int = typer.Option(1, help="independent DS-CNNs in one model, probabilities averaged"),
              copies: int = typer.Option(2, help="augmented copies of every training clip an epoch"),
              pool_copies: int = typer.Option(0, help="... drawn afresh each epoch from this many (0: always the same)"),
              noise: Optional[Path] = typer.Option(None, "--noise", help="background-noise folder (default ../shared/data/noise)"),
              teacher: List[Path] = typer.Option([], "--teacher", help="a finished run (repeatable) whose averaged "
                                                 "probabilities the new run learns towards (knowledge distillation)"),
              distill: float = typer.Option(0.5, min=0.0, max=1.0, help="with --teacher: the target is (1 - A) x "
                                            "the word + A x the teachers' probabilities"),
              teacher_sees: str = typer.Option("copy", help="with --teacher: the teachers judge each augmented "
                                               "copy, or the clean clip it came from (copy or clean)"),
              bn_stats: str = typer.Option("clean", help="served batch-norm statistics: of the clean training "
                                           "words, or the running averages training left (clean or trained)"),
              data: Path = typer.Option(Path("data"), help="folder of the datasets")) -> None:
        """Train a CNN on stamp datasets; writes model.keras, run.json, calib.npz and curve.png to the run folder."""
        from trainer.nets import NetConfig
        from trainer.train import TrainConfig, train as do_train

        cfg = TrainConfig(epochs=epochs, seed=seed, copies=copies, pool_copies=pool_copies,
                          net=NetConfig(arch=arch, width=width, towers=towers),
                          teachers=[str(t) for t in teacher], distill=distill,
                          teacher_sees=teacher_sees, bn_stats=bn_stats)
        if noise is not None:
            if not noise.is_dir():
                _fail(FileNotFoundError(f"{noise}: no such noise folder"))
            cfg.noise_dir = str(noise)
        run = out or Path("runs") / Path(prefixes[0]).stem
        res = _run(lambda: do_train([_dataset_path(p, data) for p in prefixes], run, cfg))
        typer.echo(json.dumps({"run": str(run), "threshold": res["threshold"], **res["metrics"]}, indent=1))

    @app.command()
    def export(run: Path = typer.Argument(..., help="a training run folder"),
               name: str = typer.Option(..., "--name", help="bundle name"),
               out: Optional[Path] = typer.Option(None, "--out", help="bundle folder (default models/NAME)"),
               gate: Optional[str] = typer.Option(
                   None, help="what the reject threshold is compared with: top, vocabulary, or distance (also how "
                              "near the word's training clips the embedding is; default: the run's own)")) -> None:
        """Export a run to an int8 bundle (model.tflite, manifest.json, ATTRIBUTION)."""
        from trainer.export import export_run

        b = _run(lambda: export_run(run, name, out or Path("models") / name, gate=gate))
        m = b.manifest.metrics
        served = (f"; answered as served (threshold, rejections): float {m['float_served_accuracy']} / int8 "
                  f"{m['int8_served_accuracy']}" if "int8_served_accuracy" in m else "")
        typer.echo(f"{b.path}: {m.get('model_bytes')} bytes, float {m.get('float_accuracy')} / int8 "
                   f"{m.get('int8_accuracy')} on {m.get('quantisation_n')} {m.get('quantisation_split')} clips{served}, "
                   f"threshold {b.manifest.threshold} ({b.manifest.gate} gate)")

    @app.command()
    def upgrade(bundles: List[Path] = typer.Argument(..., help="cnn bundle folders and the heads on them")) -> None:
        """Make format-1 cnn bundles serve their logits (format 2: a finer score at strict thresholds) and move the
        heads given with them onto them; the network is unchanged, nothing is retrained."""
        from trainer.upgrade import upgrade_bundles

        for u in _run(lambda: upgrade_bundles(bundles)):
            typer.echo(str(u))

    @app.command()
    def evaluate(bundle: Optional[Path] = typer.Argument(None, help="bundle folder (cnn or head)"),
                 folder: Optional[Path] = typer.Argument(None, help="folder of <word>/*.wav"),
                 json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
                 plot: Optional[Path] = typer.Option(None, "--plot", help="confusion-matrix PNG"),
                 threshold: Optional[float] = typer.Option(
                     None, help="reject threshold instead of the bundle's (a CNN's: a probability; a head's: a score)"),
                 cross_speaker: Optional[str] = typer.Option(None, "--cross-speaker", metavar="PREFIX",
                                                             help="leave-one-speaker-out on a dataset (retrains per fold)"),
                 speakers: Optional[str] = typer.Option(None, help="comma-separated fold speakers for --cross-speaker"),
                 epochs: int = typer.Option(8, help="epochs per fold for --cross-speaker"),
                 copies: int = typer.Option(1, help="augmented copies per fold for --cross-speaker"),
                 data: Path = typer.Option(Path("data"))) -> None:
        """Accuracy, per-word accuracy, confusion and OOV false accepts through LiteRT; or --cross-speaker folds."""
        if cross_speaker:
            from trainer.evaluate import cross_speaker as xs
            from trainer.train import TrainConfig

            cfg = TrainConfig(epochs=epochs, copies=copies, patience=3)
            spk = speakers.split(",") if speakers else None
            res = _run(lambda: xs([_dataset_path(cross_speaker, data)], cfg, spk,
                                  log=(lambda m: None) if json_out else typer.echo))
            typer.echo(json.dumps(res, indent=None if json_out else 1))
            return
        if bundle is None or folder is None:
            _fail(ValueError("give BUNDLE and DIR, or --cross-speaker PREFIX"))
        from shared.audio import LEVEL_ISSUES
        from trainer.evaluate import confusion_png, evaluate_folder

        rep = _run(lambda: evaluate_folder(bundle, folder, threshold=threshold))
        if plot:
            _run(lambda: confusion_png(rep, plot))
        if json_out:
            typer.echo(json.dumps(rep.to_dict()))
            return
        (alo, ahi), (flo, fhi) = rep.accuracy_ci95, rep.oov_false_accept_ci95
        typer.echo(f"{rep.bundle} on {folder}: accuracy {rep.accuracy:.1%} (n={rep.n}, 95% {alo:.0%}-{ahi:.0%}); "
                   f"OOV false accepts {rep.oov_false_accept_rate:.1%} (n={rep.oov_n}, 95% {flo:.0%}-{fhi:.0%}); "
                   f"threshold {rep.threshold:g} ({rep.gate} gate)")
        for w, pw in sorted(rep.per_word.items()):
            typer.echo(f"  {w:>12} {pw['accuracy']:.1%}  (n={pw['n']})")
        for w, po in sorted(rep.oov_per_folder.items()):
            typer.echo(f"  {w:>12} false accepts {po['false_accepts']}/{po['n']}")
        for line in rep.unreadable:
            typer.echo(f"  skipped {line}", err=True)
        for issue, files in sorted(rep.level_notes.items()):
            typer.echo(f"  note: {len(files)} clip{'s' * (len(files) > 1)} {LEVEL_ISSUES[issue]}, e.g. {files[0]} "
                       "(such files cost accuracy: models/README.md, Files as users make them)", err=True)

    @app.command()
    def predict(bundle: Path = typer.Argument(..., help="bundle folder"),
                paths: List[Path] = typer.Argument(..., help="audio files or folders"),
                plot: Optional[Path] = typer.Option(None, "--plot", help="heat-map PNG"),
                top: int = typer.Option(3, help="alternatives per segment")) -> None:
        """Segment recordings and print each segment's top words with probabilities."""
        from trainer.predict import heatmap_png, predict_files

        results, labels = _run(lambda: predict_files(bundle, paths, top_k=top))
        for r in results:
            word = r.word if r.word is not None else f"(rejected: {r.label})"
            alts = ", ".join(f"{w} {p:.2f}" for w, p in r.alternatives)
            typer.echo(f"{r.file} {r.start_s:6.2f}-{r.end_s:6.2f}s  {word:<24} [{alts}]")
        if not results:
            typer.echo("no words found", err=True)
        if plot:
            _run(lambda: heatmap_png(results, labels, plot))

    @app.command()
    def enroll(name: str = typer.Argument(..., help="name of the new head bundle"),
               folder: Path = typer.Argument(..., help="folder of <word>/*.wav examples (an _unknown_/ folder helps reject)"),
               base: Path = typer.Option(Path("models/digits"), "--base", help="base cnn bundle"),
               out: Optional[Path] = typer.Option(None, "--out", help="bundle folder (default beside the base)"),
               negatives: Optional[Path] = typer.Option(None, help="folder of other words' clips, learnt as _unknown_"),
               input: str = typer.Option("embedding", help="embedding or probs (what the SVM sees)"),
               threshold: float = typer.Option(-0.5, help="reject when the gated SVM score is below this"),
               gate: str = typer.Option("margin", help="margin: the best word's score minus the best reject class's "
                                                        "(needs --negatives or an _unknown_ folder); score: the top "
                                                        "class's own score"),
               c: float = typer.Option(0.003, "-C", help="SVM regularisation (small: a handful of clips must not be "
                                                        "fitted exactly)"),
               copies: int = typer.Option(0, "--copies", min=0, help="perturbed copies of each clip added to the "
                                                                     "examples (speed, room, microphone, gain, shift; "
                                                                     "more accepted, also of noise)"),
               noise: Optional[Path] = typer.Option(None, "--noise", help="folder of background-noise recordings "
                                                                          "mixed into some copies"),
               tts: int = typer.Option(0, "--tts", min=0, help="also synthesise each word (its folder's name) with "
                                                              "this many espeak-ng voices plus the flite and festival "
                                                              "voices; an empty word folder is learnt from "
                                                              "them alone (models/README.md, round 9)")) -> None:
        """Learn new words with a linear SVM on the base CNN's embedding; writes a head bundle (head.json)."""
        from trainer.enroll import enroll_folder

        b = _run(lambda: enroll_folder(name, folder, base, out or base.parent / name, negatives=negatives,
                                       input=input, threshold=threshold, gate=gate, c=c, copies=copies, noise_dir=noise,
                                       tts=tts))
        typer.echo(f"{b.path}: {', '.join(b.manifest.words)} on {b.manifest.base['name']} ({b.manifest.base['hash']}); "
                   f"training accuracy {b.manifest.metrics.get('train_accuracy')}")
