"""Would a threshold for each word beat one threshold for all, and what does the int8 output's resolution cost the
strict end? Read at equal false accepts, as scripts.stamp_variants reads a model's open-set curve, so a gate that only
moves confidences up or down does not count as a gain.

    python -m scripts.class_gate data/exp-f0:/tmp/m_f0:/tmp/r_f0 data/exp-f1:/tmp/m_f1:/tmp/r_f1 ...

Each WORK:MODELS:RUNS triple is one SC fold as for scripts.sc_folds, plus its training runs folder (RUNS/digits:
run.json names the validation speakers). One threshold compares every clip's gate value with the same number. A
threshold per word compares it with that word's own validation clips instead: the value becomes its rank among the
gate values of the validation clips of the word it proposes (the share of them at or below it), so one number read as
"at most this share of the word's own clips would be lost" sets a different cut for each word. Three references:
the validation speakers' clips of the word, recorded people's only, and (the other side) the validation
`_unknown_`/`_silence_` clips proposed as the word, whose rank says how many of them would pass. The int8 models
run on LiteRT; the test clips are segmented and stamped as `wordstamp evaluate` does.

The served probabilities are int8: the vocabulary's summed probability tops out at 255/256, so the clips the network is
surest of, words and never-trained words alike, tie there and no threshold parts them. The last row reads the run's
float network (RUNS/digits/model.keras) on the same stamps by the vocabulary's log-odds (the same order as its summed
probability, without the ties): what a finer served value would give.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

FALSE_ACCEPTS = (0.02, 0.03, 0.05, 0.08, 0.10, 0.12, 0.15)
REFERENCES = ("one threshold", "word's clips", "word's recorded clips", "word's impostors")
FLOAT = "float log-odds"


def fold_triples(ap: argparse.ArgumentParser, specs: list[str]) -> list[tuple[Path, Path, Path]]:
    """WORK:MODELS:RUNS -> (fold's recipe folder, its digits bundle, its digits run); else an argparse error. WORK:MODELS
    is checked as scripts.sc_folds checks it."""
    from scripts.sc_folds import fold_pairs

    out = []
    for spec in specs:
        pair, _, runs = spec.rpartition(":")
        if pair.count(":") != 1 or not (Path(runs) / "digits" / "run.json").is_file():
            ap.error(f"{spec}: expected WORK:MODELS:RUNS with WORK/sc-test, MODELS/digits and RUNS/digits/run.json")
        ((work, bundle),) = fold_pairs(ap, [pair])
        out.append((work, bundle, Path(runs) / "digits"))
    return out


def rank(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each value's share of `ref` at or below it (0 when `ref` is empty: nothing to compare with, reject)."""
    if ref.size == 0:
        return np.zeros(len(values))
    return np.searchsorted(np.sort(ref), values, side="right") / ref.size


def references(cnn, run: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per reference kind, each word's validation gate values under the loaded bundle `cnn`: its own clips proposed
    as it (all speakers, recorded people), and the reject-class clips proposed as it."""
    from scripts.threshold_curve import batched_outputs
    from shared.bundle import special_mask
    from trainer.dataset import speaker_kind
    from trainer.train import run_split

    data, _, val = run_split(json.loads((run / "run.json").read_text()))
    labels = cnn.bundle.manifest.vocabulary
    if labels != data.words:
        raise SystemExit(f"{cnn.bundle.path}: its vocabulary is not its run's ({run})")
    special = special_mask(labels)
    choice, value = cnn.gated(*batched_outputs(cnn, data.stamps[val]))
    lab = data.labels[val]
    human = np.array([speaker_kind(s) == "human" for s in data.speakers[val]])
    refs: dict[str, dict[str, np.ndarray]] = {k: {} for k in REFERENCES[1:]}
    for i, w in enumerate(labels):
        if special[i]:
            continue
        own = (lab == i) & (choice == i)
        refs["word's clips"][w] = value[own]
        refs["word's recorded clips"][w] = value[own & human]
        refs["word's impostors"][w] = value[special[lab] & (choice == i)]
    return refs


def scored(clips: list[tuple[str | None, float]], refs: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each clip's value under each reference: its gate value, or its rank among the proposed word's references (for
    impostors, 1 minus the share of them at or above it, so higher still means accept)."""
    out = {"one threshold": np.array([v if w is not None else -1.0 for w, v in clips])}
    for name, by_word in refs.items():
        vals = []
        for w, v in clips:
            if w is None:
                vals.append(-1.0)
            elif name == "word's impostors":
                ref = by_word.get(w, np.zeros(0))
                vals.append(1.0 - (np.sum(ref >= v) + 1) / (ref.size + 2))
            else:
                vals.append(float(rank(np.array([v]), by_word.get(w, np.zeros(0)))[0]))
        out[name] = np.array(vals)
    return out


def vocab_log_odds(logits: np.ndarray, special: np.ndarray) -> np.ndarray:
    """log(sum of the vocabulary words' probabilities / sum of the reject classes'), from softmax logits without
    forming the probabilities (which saturate); +inf with no reject class."""
    def lse(z: np.ndarray) -> np.ndarray:
        top = z.max(1, keepdims=True)
        return np.log(np.exp(z - top).sum(1)) + top[:, 0]
    z = np.asarray(logits, np.float64)
    return lse(z[:, ~special]) - (lse(z[:, special]) if special.any() else -np.inf)


@lru_cache(maxsize=4)
def _float_net(run: Path):
    """The run's float network up to its served softmax's input, and that layer's weights (loaded once a run)."""
    import keras

    model = keras.models.load_model(run / "model.keras", compile=False)
    try:
        dense = model.get_layer("probs")
    except ValueError:
        raise SystemExit(f"{run}: no single 'probs' layer (a net of several towers?); the float row needs one")
    return keras.Model(model.inputs, dense.input), *dense.get_weights()


def float_values(run: Path, stamps: np.ndarray, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """The run's float network on `stamps`: (the likeliest vocabulary word, the vocabulary's log-odds) per stamp."""
    from shared.bundle import special_mask

    net, w, b = _float_net(run)
    logits = net.predict(stamps, verbose=0).astype(np.float64) @ w + b
    special = special_mask(labels)
    inv = np.flatnonzero(~special)
    return [labels[i] for i in inv[logits[:, inv].argmax(1)]], vocab_log_odds(logits, special)


def at_false_accepts(right: np.ndarray, sc_v: np.ndarray, oov_acc: np.ndarray, oov_v: np.ndarray,
                     levels: list[float]) -> list[float]:
    """SC digits right (share) at the best cut whose never-trained accept share is at most each level."""
    cuts = np.unique(np.concatenate([sc_v, oov_v, [np.inf]]))[:, None]
    acc = (right & (sc_v[None] >= cuts)).mean(1)
    fa = (oov_acc & (oov_v[None] >= cuts)).mean(1)
    return [float(acc[fa <= f].max()) if (fa <= f).any() else float("nan") for f in levels]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.class_gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("folds", nargs="+", metavar="WORK:MODELS:RUNS")
    ap.add_argument("--false-accepts", default=",".join(f"{100 * f:g}" for f in FALSE_ACCEPTS), metavar="P,P,...")
    a = ap.parse_args(argv)
    try:
        levels = [float(v) / 100 for v in a.false_accepts.split(",")]
    except ValueError:
        ap.error(f"--false-accepts {a.false_accepts!r}: expected percentages such as 2,5,10")
    from scripts.threshold_curve import batched_outputs, folder_stamps
    from shared.bundle import load_bundle
    from shared.features import Frontend
    from shared.runtime import CnnModel

    right, oov_acc, sc_v, oov_v = [], [], {k: [] for k in REFERENCES}, {k: [] for k in REFERENCES}
    f_right, f_sc, f_oov = [], [], []
    for work, bundle, run in fold_triples(ap, a.folds):
        b = load_bundle(bundle)
        cnn, fe, labels = CnnModel(b), Frontend(b.frontend_config), b.manifest.vocabulary
        refs = references(cnn, run)
        for sub in ("sc-test", "oov"):
            stamps, words = folder_stamps(fe, b.segmenter_config, work / sub)
            choice, value = cnn.gated(*batched_outputs(cnn, stamps))
            clips = [(labels[c] if c >= 0 else None, float(v)) for c, v in zip(choice, value)]
            f_words, f_value = float_values(run, stamps, labels)
            for name, v in scored(clips, refs).items():
                (sc_v if sub == "sc-test" else oov_v)[name].append(v)
            if sub == "sc-test":
                right += [w == got for w, (got, _) in zip(words, clips)]
                f_right += [w == got for w, got in zip(words, f_words)]
                f_sc.append(f_value)
            else:
                oov_acc += [got is not None for got, _ in clips]
                f_oov.append(f_value)
    r, o = np.array(right), np.array(oov_acc)
    print(f"{'threshold':<24} SC digits right at never-trained accepted "
          + " / ".join(f"{100 * f:g}" for f in levels) + f" %   (SC {r.size}, never-trained {o.size})")
    rows = {name: (r, np.concatenate(sc_v[name]), np.concatenate(oov_v[name])) for name in REFERENCES}
    rows[FLOAT] = (np.array(f_right), np.concatenate(f_sc), np.concatenate(f_oov))
    for name, (rr, sv, ov) in rows.items():
        accepted = o if name != FLOAT else np.ones(o.size, bool)  # log-odds always propose the likeliest word
        at = at_false_accepts(rr, sv, accepted, ov, levels)
        print(f"{name:<24} " + " / ".join(f"{100 * v:.1f}" for v in at) + f"   (top-1 {100 * rr.mean():.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
