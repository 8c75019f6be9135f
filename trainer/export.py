"""Keras model -> full-integer int8 TFLite -> a model bundle (model.tflite + manifest.json + ATTRIBUTION).

Full-integer quantisation (int8 input, int8 weights and activations) calibrated on real stamps keeps the model small
and fast on LiteRT; the output indices of "embedding" (what heads read: the net's embedding and its last blocks'
pooled outputs) and "logits" (the served softmax's input, `serve_logits`; shared.runtime makes the probabilities in
float) are found by shape and stored in the manifest, since the converter does not keep Keras's output order. A net
without a softmax to cut (towers average theirs) exports its probabilities as "probs", as every bundle did before
format 2.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.bundle import GATES, Bundle, Manifest, write_bundle
from shared.features import FrontendConfig
from shared.segment import SegmenterConfig

ATTRIBUTION_FSDD = ("Free Spoken Digit Dataset (FSDD), Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas, A. Thite, "
                    "github.com/Jakobovski/free-spoken-digit-dataset, licensed CC BY-SA 4.0.")
ATTRIBUTION_SC = ("Speech Commands, P. Warden, 'Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition', "
                  "2018, licensed CC BY 4.0 (including its _background_noise_ recordings).")
ATTRIBUTION_TTS = ("Synthetic speech from espeak-ng (GPL-3.0-or-later; generated audio is not covered by the GPL), "
                   "CMU Flite voices (BSD-style CMU licence) and Festival voices (kal_diphone, cmu_us_slt_arctic_hts: "
                   "free-software licences of CSTR Edinburgh / CMU permitting use and redistribution).")
DEFAULT_ATTRIBUTION = "\n\n".join(["This model was trained on data from:", "- " + ATTRIBUTION_FSDD,
                                   "- " + ATTRIBUTION_SC, "- " + ATTRIBUTION_TTS]) + "\n"


@dataclass
class ExportSpec:
    """Everything a cnn bundle's manifest needs beyond the model itself."""

    name: str
    vocabulary: list[str]
    threshold: float = 0.5
    gate: str = "top"  # what the threshold is compared with (shared.runtime.gated)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    description: str = ""
    attribution: str = DEFAULT_ATTRIBUTION
    files: dict[str, bytes] = field(default_factory=dict)  # more bundle files (the distance gate's distance.npz)


def convert_int8(model: Any, representative: np.ndarray, max_samples: int = 300, seed: int = 0,
                 head_features: bool = True, logits: bool = True) -> bytes:
    """Full-integer int8 TFLite (int8 input and outputs) calibrated on up to `max_samples` representative stamps; the
    embedding output widened with the last blocks' pooled outputs (trainer.nets.serving_model) unless told not to,
    the logits in place of the probabilities (`serve_logits`) unless told not to."""
    import tensorflow as tf

    rep = np.asarray(representative, np.float32)
    if rep.ndim != 3 or rep.shape[0] == 0:
        raise ValueError("the representative dataset must be a non-empty (N, frames, mels) array of stamps")
    if rep.shape[0] > max_samples:
        rep = rep[np.random.default_rng(seed).choice(rep.shape[0], max_samples, replace=False)]
    in_shape = (None, *rep.shape[1:])  # batch left open so LiteRT can resize it
    from trainer.nets import serving_model

    with tempfile.TemporaryDirectory(prefix="wordstamp-export-") as tmp:
        _save_serving(serving_model(model, rep) if head_features else model, in_shape, tmp)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)

        def gen():
            for s in rep:
                yield [s[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        tflite = bytes(conv.convert())
    return serve_logits(tflite) if logits else tflite


def serve_logits(tflite: bytes) -> bytes:
    """The converted model with its softmax cut off: the class output becomes the softmax's int8 input, the logits,
    which shared.runtime turns into probabilities in float; nothing else in the model changes (a model without a
    softmax output comes back as it was).

    An int8 softmax output moves in steps of 1/256: a word's probabilities tie near the bottom, and the vocabulary's
    summed probability stops at 255/256, where the clips the network is surest of, words and never-trained words
    alike, tie and no threshold parts them (models/README.md, rounds 24 and 27). The logits keep their order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]
    for k, out in enumerate(list(graph.outputs)):
        op = next((o for o in graph.operators if out in list(o.outputs)), None)
        if op is None or model.operatorCodes[op.opcodeIndex].builtinCode != schema.BuiltinOperator.SOFTMAX:
            continue
        graph.outputs[k] = op.inputs[0]
        graph.operators.remove(op)
        for sig in model.signatureDefs or []:  # LiteRT's signature runner reads the outputs from here
            for t in sig.outputs:
                if t.tensorIndex == out:
                    t.tensorIndex = op.inputs[0]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _save_serving(model: Any, in_shape: tuple, folder: str) -> None:
    """A SavedModel whose one signature maps a stamp to {"embedding", "probs"} (Keras 3's ExportArchive)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(x):
        emb, probs = model(x, training=False)
        return {"embedding": emb, "probs": probs}

    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec(in_shape, tf.float32)])
    archive.write_out(folder, verbose=False)


def output_indices(tflite: bytes, n_classes: int) -> tuple[dict[str, int], int]:
    """Which LiteRT output is which, and the embedding's size: {"embedding": i, "logits" or "probs": j}.

    The class output is the one of `n_classes` values (the other when both are that size, as a tiny test net's can
    be: the embedding is a ReLU's, quantised from zero up). It holds probabilities when quantised as TFLite fixes an
    int8 softmax's output (scale 1/256, zero point -128), else logits."""
    from ai_edge_litert.interpreter import Interpreter

    outs = Interpreter(model_content=tflite).get_output_details()
    if len(outs) != 2:
        raise ValueError(f"expected two outputs (embedding, class scores), the model has {len(outs)}")
    sizes = [int(np.prod(o["shape"][1:])) for o in outs]
    if sizes[0] != sizes[1]:
        i_cls = sizes.index(n_classes)
    else:  # a ReLU embedding's int8 zero point is -128 (zero is its least value); logits reach below zero
        i_cls = next((i for i, o in enumerate(outs) if _is_softmax(o)), None)
        if i_cls is None:
            i_cls = 1 - next(i for i, o in enumerate(outs) if o["quantization"][1] == -128)
    kind = "probs" if _is_softmax(outs[i_cls]) else "logits"
    return {"embedding": 1 - i_cls, kind: i_cls}, sizes[1 - i_cls]


def _is_softmax(detail: dict) -> bool:
    scale, zero = detail["quantization"]
    return detail["dtype"] == np.int8 and zero == -128 and abs(scale - 1 / 256) < 1e-9


def class_output(outputs: dict[str, int]) -> tuple[str, int]:
    """`output_indices`' answer -> (what the class output holds, "logits" or "probs"; its index)."""
    from shared.runtime import CLASS_OUTPUTS

    kind = next(k for k in CLASS_OUTPUTS if k in outputs)
    return kind, outputs[kind]


def tflite_probs(tflite: bytes, stamps: np.ndarray, outputs: dict[str, int], batch: int = 256) -> np.ndarray:
    """The class probabilities a converted model gives the stamps, as shared.runtime makes them from its outputs."""
    from shared.runtime import class_probs

    kind, index = class_output(outputs)
    return class_probs(tflite_predict(tflite, stamps, index, batch), kind)


def tflite_predict(tflite: bytes, stamps: np.ndarray, index: int, batch: int = 256) -> np.ndarray:
    """Run a converted model on stamps via LiteRT and dequantise output `index` (for float-vs-int8 checks)."""
    return tflite_outputs(tflite, stamps, [index], batch)[0]


def tflite_outputs(tflite: bytes, stamps: np.ndarray, indices: list[int], batch: int = 256) -> list[np.ndarray]:
    """Several dequantised outputs of a converted model from one LiteRT pass over the stamps."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite)
    inp = it.get_input_details()[0]
    x = np.asarray(stamps, np.float32)
    res: list[list[np.ndarray]] = [[] for _ in indices]
    for a in range(0, x.shape[0], batch):
        xb = x[a:a + batch]
        it.resize_tensor_input(inp["index"], [xb.shape[0], *inp["shape"][1:]])
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        scale, zero = inp["quantization"]
        q = np.clip(np.round(xb / scale + zero), -128, 127).astype(np.int8) if inp["dtype"] == np.int8 else xb
        it.set_tensor(inp["index"], q)
        it.invoke()
        for k, index in enumerate(indices):
            out = it.get_output_details()[index]
            y = it.get_tensor(out["index"]).astype(np.float32)
            if out["dtype"] != np.float32:
                s, z = out["quantization"]
                y = (y - z) * s
            res[k].append(y.reshape(y.shape[0], -1))
    return [np.concatenate(r) for r in res]


def write_cnn_bundle(out: str | os.PathLike, tflite: bytes, spec: ExportSpec) -> Bundle:
    """Write model.tflite, manifest.json and ATTRIBUTION atomically; returns the validated bundle."""
    outputs, embedding_dim = output_indices(tflite, len(spec.vocabulary))
    m = Manifest(
        name=spec.name, kind="cnn", vocabulary=list(spec.vocabulary), frontend=spec.frontend.to_dict(),
        threshold=float(spec.threshold), gate=spec.gate, input_shape=list(spec.frontend.stamp_shape),
        embedding_dim=int(embedding_dim), outputs=outputs, segmenter=spec.segmenter.to_dict(), training=spec.training,
        metrics=spec.metrics, description=spec.description,
    )
    files = {"model.tflite": tflite, "ATTRIBUTION": spec.attribution.encode(), **spec.files}
    return write_bundle(out, m, files)


def export_model(model: Any, out: str | os.PathLike, spec: ExportSpec, representative: np.ndarray) -> Bundle:
    """Keras model -> int8 bundle at `out`."""
    return write_cnn_bundle(out, convert_int8(model, representative), spec)


def served_accuracy(probs: np.ndarray, labels: np.ndarray, words: list[str], threshold: float, gate: str) -> float:
    """The share of clips answered right as the daemon answers them: a vocabulary word's clip must be accepted as that
    word (a rejection is wrong, as `wordstamp evaluate` counts), an `_unknown_`/`_silence_` clip must be rejected.

    The top-1 figure beside it, read from int8 probabilities (a model exported without logits) in steps of 1/256,
    gives a clip whose two likeliest words tie to the first of them; such clips sit far below any threshold, where
    float and int8 both reject them, so they do not move this figure."""
    from shared.runtime import gated, special_mask

    special = special_mask(words)
    choice, score = gated(probs, special, gate)
    answer = np.where(score >= threshold, choice, -1)
    return float(np.mean(np.where(special[labels], answer == -1, answer == labels)))


def _top_tied(probs: np.ndarray) -> np.ndarray:
    """Rows whose two largest values are equal (int8 outputs tie often at low confidence)."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 0] == top2[:, 1]


def export_run(run: str | os.PathLike, name: str, out: str | os.PathLike, *, description: str = "",
               attribution: str = DEFAULT_ATTRIBUTION, extra_metrics: dict | None = None,
               gate: str | None = None) -> Bundle:
    """A training run folder -> an int8 bundle; measures float vs int8 accuracy on the run's test (or val) split.
    `gate` (default: the run's own): "distance" fits the distance gate on the int8 model and calibrates its threshold
    (trainer.gate; needs the run's datasets where run.json says they are)."""
    import keras

    run = Path(run)
    if not (run / "run.json").is_file() or not (run / "model.keras").is_file():
        raise FileNotFoundError(f"{run}: not a training run (no run.json / model.keras; run `wordstamp train`)")
    info = json.loads((run / "run.json").read_text())
    gate = gate or info.get("gate", "top")
    if gate not in GATES:
        raise ValueError(f"gate {gate!r}: expected one of {', '.join(GATES)}")
    model = keras.models.load_model(run / "model.keras", compile=False)
    cal = np.load(run / "calib.npz", allow_pickle=False)
    tflite = convert_int8(model, cal["representative"])
    # every held-out stamp the run kept (validation speakers and test split): on the 120 test clips alone one clip is
    # almost a point, and a model with near-ties flips a few of them either way
    xs = np.concatenate([cal["val_stamps"], cal["test_stamps"]])
    ys = np.concatenate([cal["val_labels"], cal["test_labels"]])
    metrics = dict(info.get("metrics", {}))
    idx, _ = output_indices(tflite, len(info["words"]))
    if ys.size:
        pf = model.predict(xs, batch_size=256, verbose=0)[1]
        pq = tflite_probs(tflite, xs, idx)
        f_acc, q_acc = float(np.mean(pf.argmax(1) == ys)), float(np.mean(pq.argmax(1) == ys))
        split = "val+test" if cal["test_labels"].size else "val"
        metrics.update({"float_accuracy": round(f_acc, 4), "int8_accuracy": round(q_acc, 4),
                        "int8_minus_float_points": round(100 * (q_acc - f_acc), 2), "quantisation_split": split,
                        "quantisation_n": int(ys.size), "int8_top_ties": int(np.sum(_top_tied(pq)))})
        if gate != "distance":  # the distance gate's threshold is fitted below, on the int8 model alone
            f_srv, q_srv = (served_accuracy(p, ys, info["words"], float(info["threshold"]), gate) for p in (pf, pq))
            metrics.update({"float_served_accuracy": round(f_srv, 4), "int8_served_accuracy": round(q_srv, 4),
                            "int8_minus_float_served_points": round(100 * (q_srv - f_srv), 2)})
    metrics["model_bytes"] = len(tflite)
    metrics["params"] = info.get("params")
    metrics.update(extra_metrics or {})
    training = {"run": str(run), "datasets": info.get("datasets"), "data": info.get("data"),
                "config": info.get("config"), "seconds": info.get("seconds"),
                "epochs_run": len(info.get("history", {}).get("loss", []))}
    threshold, files = float(info["threshold"]), {}
    if gate == "distance":
        from shared.distance import FILE
        from trainer.gate import distance_gate_for_run

        g, threshold, cal_metrics = distance_gate_for_run(run, info, tflite, idx, cal)
        files[FILE] = g.to_npz()
        metrics.update({f"distance_{k}": v for k, v in cal_metrics.items()})
    spec = ExportSpec(name=name, vocabulary=info["words"], threshold=threshold, gate=gate, files=files,
                      frontend=FrontendConfig.from_dict(info["frontend"]),
                      segmenter=SegmenterConfig.from_dict(info["segmenter"]), training=training, metrics=metrics,
                      description=description, attribution=attribution)
    return write_cnn_bundle(out, tflite, spec)
