"""FSDD leave-one-speaker-out for the shipped recipe's network, with the trainer's own machinery
(trainer.evaluate.cross_speaker, the code behind `wordstamp evaluate --cross-speaker`): per FSDD speaker, retrain on
every other clip of the digits dataset and test on that speaker. Float Keras models (the machinery's choice; the
int8 export costs ~2 points on the shipped model, see its manifest).

Six retrainings take ~15 min on two shared cores, more than `make bench`'s budget, so `python -m bench.loso` writes
bench/loso.json once per dataset and `make bench` quotes it, with the dataset's size and date to show it is current.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.stats import git_commit, now_iso
from shared.audio import atomic_write_bytes

FSDD_SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
OUT = Path(__file__).with_name("loso.json")


def dataset_id(path: Path) -> dict:
    """What identifies the dataset a LOSO figure was measured on."""
    st = path.stat()
    return {"path": str(path), "bytes": st.st_size, "mtime": int(st.st_mtime)}


def load_current(dataset: Path, out: Path = OUT) -> dict | None:
    """bench/loso.json if it was measured on this very dataset file, else None."""
    try:
        d = json.loads(out.read_text())
    except (OSError, ValueError):
        return None
    return d if d.get("dataset") == dataset_id(dataset) else None


def run(dataset: Path, epochs: int = 8, copies: int = 1, speakers: list[str] | None = None, out: Path = OUT,
        sets: list[str] | None = None) -> dict:
    """Retrain per fold with `wordstamp evaluate --cross-speaker`'s defaults (8 epochs, 1 augmented copy), or with
    TrainConfig overrides `sets` (KEY=VALUE, as scripts.speaker_folds) to measure a recipe change."""
    from scripts.speaker_folds import apply_sets
    from trainer.evaluate import cross_speaker
    from trainer.train import TrainConfig

    t0 = time.time()
    ident = dataset_id(dataset)  # before training: the recipe may replace the file meanwhile (then this is stale)
    cfg = apply_sets(TrainConfig(epochs=epochs, copies=copies, patience=3), sets or [])
    res = cross_speaker([dataset], cfg, speakers or FSDD_SPEAKERS, log=lambda m: print(f"  {m}", flush=True))
    command = " ".join(["python -m bench.loso", *(f"--set {x}" for x in sets or [])])
    d = {"measured": now_iso(), "commit": git_commit(str(Path(__file__).resolve().parents[1])),
         "command": command, "dataset": ident, "seconds": round(time.time() - t0, 1),
         **res}
    atomic_write_bytes(out, (json.dumps(d, indent=1) + "\n").encode())
    return d


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.loso", description=__doc__)
    ap.add_argument("--dataset", type=Path, default=None, help="default: the digits bundle's training dataset")
    ap.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="TrainConfig override, e.g. ema=0.998 (repeatable); use with --out to keep bench's figure")
    ap.add_argument("--out", type=Path, default=OUT, help=f"default {OUT.name}, which `make bench` quotes")
    a = ap.parse_args()
    if a.sets and a.out == OUT:
        ap.error("--set measures another recipe than the shipped one: give --out too")
    ds = a.dataset or Path(json.loads((a.models / "digits" / "manifest.json").read_text())["training"]["datasets"][0])
    d = run(ds, out=a.out, sets=a.sets)
    print(json.dumps({k: d[k] for k in ("folds", "mean_accuracy", "seconds")}))


if __name__ == "__main__":
    main()
