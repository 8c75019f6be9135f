"""Inference without TensorFlow: the int8 CNN on LiteRT (stamp -> embedding and class probabilities) and SVM heads
applied to that embedding in numpy. `Recognizer` loads several bundles and runs each base CNN once per stamp, however
many heads share it (the openWakeWord idea: features once, many heads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.bundle import Bundle, BundleError, load_bundle, special_mask

HEAD_KINDS = ("linear-svm",)
CLASS_OUTPUTS = ("logits", "probs")  # what a cnn bundle's class output holds (manifest.outputs names one of them)


@dataclass(frozen=True)
class Decision:
    """One bundle's verdict on one stamp."""

    model: str
    model_hash: str
    word: str | None  # None when rejected
    label: str  # the top label, even when rejected (may be _unknown_ / _silence_)
    confidence: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # top-k (label, score), best first

    @property
    def rejected(self) -> bool:
        return self.word is None


class CnnModel:
    """A cnn bundle's model.tflite on a LiteRT interpreter; quantises the input, dequantises the outputs."""

    def __init__(self, bundle: Bundle, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.bundle = bundle
        try:
            self.interp = Interpreter(model_path=str(bundle.file("model.tflite")), num_threads=num_threads)
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError with long text
            raise BundleError(f"{bundle.file('model.tflite')}: LiteRT cannot load it ({str(exc).splitlines()[0]})") from None
        self.inp = self.interp.get_input_details()[0]
        self.outs = self.interp.get_output_details()
        m = bundle.manifest
        self.i_emb = m.outputs.get("embedding")
        kinds = [k for k in CLASS_OUTPUTS if k in m.outputs]
        if len(kinds) != 1 or not (0 <= m.outputs[kinds[0]] < len(self.outs)):
            raise BundleError(f"{bundle.path}: manifest.outputs must name one valid class output, 'logits' or 'probs'")
        self.kind = kinds[0]
        self.i_cls = m.outputs[self.kind]
        shape = list(self.inp["shape"][1:])
        if m.input_shape and list(m.input_shape) != shape:
            raise BundleError(f"{bundle.path}: model input {shape} differs from the manifest's {m.input_shape}")
        self.interp.allocate_tensors()
        self._allocated = int(self.inp["shape"][0])
        self.special = special_mask(m.vocabulary)
        self.distance = None
        if m.gate == "distance":
            from shared.distance import FILE, DistanceGate, DistanceGateError

            if self.i_emb is None:
                raise BundleError(f"{bundle.path}: the distance gate needs the model's embedding output")
            try:
                self.distance = DistanceGate.read(bundle.file(FILE), m.vocabulary, m.embedding_dim)
            except DistanceGateError as exc:
                raise BundleError(str(exc)) from None

    def infer(self, stamps: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(B, frames, mels) float stamps -> (embeddings (B, E) or None, probabilities (B, C); float64 from logits)."""
        x = np.asarray(stamps, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        x = x.reshape((x.shape[0], *self.inp["shape"][1:]))
        if x.shape[0] != self._allocated:
            self.interp.resize_tensor_input(self.inp["index"], [x.shape[0], *self.inp["shape"][1:]])
            self.interp.allocate_tensors()
            self._allocated = x.shape[0]
        self.interp.set_tensor(self.inp["index"], _quantise(x, self.inp))
        self.interp.invoke()
        probs = class_probs(_dequantise(self.interp.get_tensor(self.outs[self.i_cls]["index"]), self.outs[self.i_cls]),
                            self.kind)
        emb = None
        if self.i_emb is not None:
            emb = _dequantise(self.interp.get_tensor(self.outs[self.i_emb]["index"]), self.outs[self.i_emb])
            emb = emb.reshape(emb.shape[0], -1)
        return emb, probs.reshape(probs.shape[0], -1)

    def gated(self, emb: np.ndarray | None, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`infer`'s outputs -> (the label index each row would be accepted as, -1 when a reject class wins; the
        value the threshold is compared with), by the bundle's gate."""
        if self.distance is not None:
            return self.distance.gated(emb, probs, self.special)
        return gated(probs, self.special, self.bundle.manifest.gate)


HEAD_GATES = ("score", "margin")


class SvmHead:
    """head.json: a linear SVM (one-vs-rest) on the base CNN's head features (its embedding output), with scaling and
    a reject threshold.

    score_k = coef_k . ((e - mean) / scale) + intercept_k; confidence = softmax(temperature * scores). What the
    threshold is compared with is the head's `gate`: "score" (what a head.json without the key means) = the top
    class's raw score, the clip being rejected when a reject class (`_unknown_`/`_silence_`) is on top; "margin" =
    how far the likeliest word's score is above the best reject class's (negative: below), the word being the
    likeliest of the words. Fitted on ten clips a word against hundreds of negatives, the reject classes win most
    close calls, and "margin" lets the threshold say how close a call may be (models/README.md, round 7).
    """

    def __init__(self, bundle: Bundle) -> None:
        f = bundle.file("head.json")
        try:
            h = json.loads(f.read_text())
            self.kind = h["kind"]
            self.classes = [str(c) for c in h["classes"]]
            self.mean = np.asarray(h["mean"], np.float32)
            self.scale = np.asarray(h["scale"], np.float32)
            self.coef = np.asarray(h["coef"], np.float32)
            self.intercept = np.asarray(h["intercept"], np.float32)
            self.threshold = float(h.get("threshold", 0.0))
            self.temperature = float(h.get("temperature", 1.0))
            self.input = h.get("input", "embedding")
            self.gate = str(h.get("gate", "score"))
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise BundleError(f"{f}: not a valid head ({type(exc).__name__}: {exc})") from None
        if self.kind not in HEAD_KINDS:
            raise BundleError(f"{f}: unknown head kind {self.kind!r}")
        k, d = len(self.classes), self.mean.shape[0]
        if self.coef.shape != (k, d) or self.intercept.shape != (k,) or self.scale.shape != (d,):
            raise BundleError(f"{f}: array shapes disagree (classes {k}, dim {d}, coef {self.coef.shape})")
        if self.input not in ("embedding", "probs"):
            raise BundleError(f"{f}: input must be 'embedding' or 'probs'")
        if self.gate not in HEAD_GATES:
            raise BundleError(f"{f}: unknown gate {self.gate!r} (known: {', '.join(HEAD_GATES)})")
        self.special = special_mask(self.classes)

    def scores(self, features: np.ndarray) -> np.ndarray:
        return head_scores(np.asarray(features, np.float32), self.mean, self.scale, self.coef, self.intercept)

    def gated(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return head_gated(scores, self.special, self.gate)


def head_scores(features: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                intercept: np.ndarray) -> np.ndarray:
    """A linear head's raw scores: each class's hyperplane on the standardised features (the trainer scores the
    heads it fits with this too, before they are written)."""
    return ((features - mean) / scale) @ coef.T + intercept


def head_gated(scores: np.ndarray, special: np.ndarray, gate: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a head's raw scores -> (the class index each would be accepted as, -1 when a reject class is the
    answer; the value its threshold is compared with), as `gated` does for a cnn's probabilities."""
    scores = np.atleast_2d(scores)
    if gate == "margin" and special.any() and (~special).any():
        words = np.flatnonzero(~special)
        return words[scores[:, words].argmax(1)], scores[:, words].max(1) - scores[:, special].max(1)
    top = scores.argmax(1)
    return np.where(special[top], -1, top), scores.max(1)


def _quantise(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantise(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def class_probs(scores: np.ndarray, kind: str) -> np.ndarray:
    """A cnn's dequantised class output -> probabilities: logits through a float64 softmax, so that a vocabulary's
    summed probability still orders clips a few parts in a million from 1, where an int8 softmax output stops at
    255/256; probabilities (bundles of format 1) as they are."""
    if kind == "probs":
        return scores
    return _softmax(np.asarray(scores, np.float64))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def gated(probs: np.ndarray, special: np.ndarray, gate: str = "top") -> tuple[np.ndarray, np.ndarray]:
    """For each row of class probabilities: the label index a clip would be accepted as (-1: a special label wins)
    and the score its threshold is compared with.

    Gate "top" scores the top label's probability. Gate "vocabulary" scores the vocabulary words' summed probability
    and proposes the likeliest of them: whether a clip is a word we know is one question, which word another; a clip
    heard as "five or nine" is still no out-of-vocabulary word. Gate "distance" also needs the embedding:
    CnnModel.gated.
    """
    if gate == "distance":
        raise ValueError("the distance gate needs the embedding too: use CnnModel.gated")
    probs = np.atleast_2d(probs)
    if gate == "vocabulary" and (~special).any():
        inv = np.flatnonzero(~special)
        return inv[probs[:, inv].argmax(1)], probs[:, inv].sum(1)
    top = probs.argmax(1)
    return np.where(special[top], -1, top), probs.max(1)


def decide(model: str, model_hash: str, labels: list[str], probs: np.ndarray, threshold: float,
           top_k: int = 3, score: float | None = None, choice: int | None = None, gate: str = "top") -> Decision:
    """The accepted word (or None) with its own probability, and the top-k alternatives. A caller that gated the
    stamp itself (SvmHead.gated, CnnModel.gated) passes `score` and `choice`, which then are what the threshold is
    compared with and the word proposed; without them the probabilities are gated as `gated` says."""
    order = np.argsort(-probs)[:top_k]
    alts = [(labels[i], round(float(probs[i]), 4)) for i in order]
    if score is None or choice is None:
        best, gate_value = gated(probs, special_mask(labels), gate)
        idx, value = int(best[0]), float(gate_value[0])
    else:
        idx, value = choice, score
    if idx >= 0 and value >= threshold:
        return Decision(model, model_hash, labels[idx], labels[idx], float(probs[idx]), alts)
    return Decision(model, model_hash, None, labels[int(order[0])], float(probs[order[0]]), alts)


class Recognizer:
    """Several bundles at once: each distinct base CNN runs once per stamp; heads reuse its embedding."""

    def __init__(self, paths: list[str | Path], models_root: str | Path | None = None, num_threads: int = 1,
                 thresholds: dict[str, float] | None = None) -> None:
        self.bundles: list[Bundle] = [load_bundle(p) for p in paths]
        self.cnns: dict[str, CnnModel] = {}
        self.heads: dict[str, SvmHead] = {}
        self.base_of: dict[str, str] = {}
        search = [Path(models_root)] if models_root else []
        for b in self.bundles:
            search.append(b.path.parent)
        for b in self.bundles:
            if b.manifest.kind == "cnn":
                self.cnns.setdefault(b.hash, CnnModel(b, num_threads))
                self.base_of[b.name] = b.hash
        for b in self.bundles:
            if b.manifest.kind == "head":
                base_hash = b.manifest.base["hash"]
                if base_hash not in self.cnns:
                    base = _find_base(b, search)
                    self.cnns[base_hash] = CnnModel(base, num_threads)
                self.base_of[b.name] = base_hash
                self.heads[b.name] = SvmHead(b)
        # The reject threshold in effect per bundle: its calibrated one unless overridden (a point further along the
        # accuracy / false-accept curve of models/README.md). A cnn's is a probability, a head's a raw SVM score.
        self.thresholds = {b.name: (self.heads[b.name].threshold if b.name in self.heads else b.manifest.threshold)
                           for b in self.bundles}
        for name, value in (thresholds or {}).items():
            if name not in self.thresholds:
                raise BundleError(f"threshold for {name!r}: no such model loaded "
                                  f"(loaded: {', '.join(self.thresholds)})")
            if name not in self.heads and not 0.0 <= value <= 1.0:
                raise BundleError(f"threshold for {name!r}: a probability between 0 and 1, not {value}")
            self.thresholds[name] = float(value)

    @property
    def frontend_config(self):
        return self.bundles[0].frontend_config

    def classify(self, stamp: np.ndarray, top_k: int = 3) -> list[Decision]:
        """One stamp -> one Decision per loaded bundle, in load order."""
        outputs = {h: m.infer(stamp) for h, m in self.cnns.items()}
        out = []
        for b in self.bundles:
            emb, probs = outputs[self.base_of[b.name]]
            m = b.manifest
            if m.kind == "cnn":
                idx, score = self.cnns[b.hash].gated(emb, probs)
                out.append(decide(b.name, b.hash, m.vocabulary, probs[0], self.thresholds[b.name], top_k,
                                  score=float(score[0]), choice=int(idx[0])))
            else:
                head = self.heads[b.name]
                feats = emb[0] if head.input == "embedding" else probs[0]
                if feats is None:
                    raise BundleError(f"{b.path}: its base model exposes no embedding output")
                s = head.scores(feats)
                idx, score = head.gated(s)
                p = _softmax(head.temperature * s)
                out.append(decide(b.name, b.hash, head.classes, p, self.thresholds[b.name], top_k,
                                  score=float(score[0]), choice=int(idx[0])))
        return out


def _find_base(head: Bundle, search: list[Path]) -> Bundle:
    """The base cnn bundle a head names: same folder as the head's siblings, matched by hash."""
    want = head.manifest.base
    for root in search:
        cand = root / want["name"]
        if (cand / "manifest.json").is_file():
            b = load_bundle(cand)
            if b.hash == want["hash"]:
                return b
            raise BundleError(f"{head.path}: base bundle {cand} has hash {b.hash}, the head was fitted on {want['hash']}")
    raise BundleError(f"{head.path}: base bundle {want['name']!r} not found beside it")
