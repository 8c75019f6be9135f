"""The networks: the seed's MNIST-style baseline and a small DS-CNN, both with two outputs (embedding, probs).

Every net exposes its penultimate layer as a named "embedding" output, so SVM heads can learn new words on it
without retraining the CNN; the served model (`serving_model`) widens it with the pooled outputs of the last two
blocks, which describe words the digits were not trained on better. TensorFlow/Keras is imported inside the builders
only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ARCHS = ("baseline", "dscnn")


@dataclass(frozen=True)
class NetConfig:
    """What shapes a net: architecture, its width, the embedding size, and regularisation."""

    arch: str = "dscnn"
    width: int = 64  # channels of the DS-CNN blocks
    blocks: int = 4
    embedding_dim: int = 64
    dropout: float = 0.2
    bn_momentum: float = 0.9  # Keras's 0.99 lags for hundreds of steps, too many for small datasets
    # > 1 (DS-CNN): that many independent towers side by side on the same stamp, each with its own loss while
    # training; the served probabilities are their mean and the embedding their embeddings joined (an ensemble in
    # one model: one draw's luck averaged out)
    towers: int = 1


def build_net(input_shape: tuple[int, int], n_classes: int, cfg: NetConfig | None = None):
    """An uncompiled Keras model: stamp (frames, mels) -> [embedding (E,), probs (C,)]."""
    cfg = cfg or NetConfig()
    if cfg.towers > 1 and cfg.arch != "dscnn":
        raise ValueError(f"towers: only the DS-CNN comes in towers, not {cfg.arch!r}")
    if cfg.arch == "baseline":
        return _baseline(input_shape, n_classes, cfg)
    if cfg.arch == "dscnn":
        return _dscnn(input_shape, n_classes, cfg)
    raise ValueError(f"unknown architecture {cfg.arch!r} (choose from {', '.join(ARCHS)})")


def build_merged(input_shape: tuple[int, int], merge, cfg: NetConfig | None = None):
    """(train model, serve model) for fine classes folded into coarse ones by the 0/1 matrix `merge` (fine x coarse).

    Training on fine classes (every "unknown" word its own class) gives the embedding more to describe and the
    unknown words sharper boundaries; serving sums the fine probabilities into the vocabulary's (a fixed Dense layer).
    """
    import keras
    from keras import layers

    fine = build_net(input_shape, merge.shape[0], cfg)
    emb, fine_probs = fine.outputs
    fold = layers.Dense(merge.shape[1], use_bias=False, trainable=False, name="probs_merged")
    probs = fold(fine_probs)
    fold.set_weights([merge.astype("float32")])
    return fine, keras.Model(fine.inputs, [emb, probs], name=f"{fine.name}_merged")


def build_aux(input_shape: tuple[int, int], n_classes: int, n_fine: int, cfg: NetConfig | None = None,
              n_domains: int = 0, reversal: Any = 1.0):
    """(train model, serve model): the served softmax over the vocabulary plus a training-only fine softmax.

    Both read the same embedding; the fine one (every "unknown" word its own class) keeps the embedding describing
    words in general for SVM heads, while the served one spends the loss on the vocabulary itself. With towers, the
    train model's outputs are [embedding, each tower's probs..., each tower's fine probs...]: every tower learns
    from its own loss, as if trained alone.
    """
    import keras
    from keras import layers

    cfg = cfg or NetConfig()
    serve = build_net(input_shape, n_classes, cfg)
    n = tower_count(serve)
    embs = [serve.get_layer(f"embedding{_suffix(i, n)}").output for i in range(n)]
    probs = [serve.get_layer(f"probs{_suffix(i, n)}").output for i in range(n)]
    fine = [layers.Dense(n_fine, activation="softmax", name=f"probs_fine{_suffix(i, n)}")(layers.Dropout(cfg.dropout)(e))
            for i, e in enumerate(embs)]
    outs = [serve.outputs[0], *probs, *fine]
    if n_domains:  # an adversary guessing what made the clip, through a gradient reversal (`_reverse_gradient`)
        h = layers.Dense(32, activation="relu", name="domain_hidden")(_reverse_gradient(serve.outputs[0], reversal))
        outs.append(layers.Dense(n_domains, activation="softmax", name="domain")(h))
    return keras.Model(serve.inputs, outs, name=f"{serve.name}_aux"), serve


def _reverse_gradient(x: Any, scale: Any = 1.0) -> Any:
    """Identity forward, gradient times -scale backward (domain-adversarial training, Ganin & Lempitsky 2015): the
    adversary learns to tell recorded people from synthetic voices while the layers below learn to leave it unable
    to. Written with stop_gradient, so it needs no backend-specific custom gradient: d/dx [sg((1+s)x) - sx] = -s.
    `scale` may be a keras.Variable, raised while training (DANN's ramp)."""
    from keras import layers, ops

    return layers.Lambda(lambda t: ops.stop_gradient((1.0 + scale) * t) - scale * t, name="reverse_gradient")(x)


def tower_count(model: Any) -> int:
    """How many towers a net built here has (1 for a plain net)."""
    return sum(1 for layer in model.layers if re.fullmatch(r"probs_t\d+", layer.name)) or 1


def _suffix(i: int, towers: int) -> str:
    """Layer-name suffix of tower i: none for a single net, so its names stay as before towers existed."""
    return f"_t{i}" if towers > 1 else ""


def serving_model(model: Any, representative: Any) -> Any:
    """The model as exported: stamp -> [head features, probs], the features being the embedding followed by the
    global average of each of the DS-CNN's last two blocks (the baseline: the embedding alone); with towers, each
    tower's three parts in turn.

    The embedding is trained for the digits and forgets what else a word sounds like; the blocks before it still hold
    it (on the animals head, 10 clips a word: 71 -> 86 % of unseen speakers' words kept, models/README.md round 7).
    Each feature is divided by its spread on the `representative` stamps, so one int8 scale serves them all (the
    pooled values vary 20x less than the embedding's).
    """
    import keras
    import numpy as np
    from keras import layers, ops

    if not any(isinstance(layer, layers.GlobalAveragePooling2D) for layer in model.layers):
        return model
    emb, probs = model.outputs[:2]
    n = tower_count(model)
    if n == 1:
        relus = [layer for layer in model.layers if isinstance(layer, layers.ReLU)]
        towers = [(emb, relus[2::2][-2:])]  # after the stem's ReLU, each block ends with the pointwise conv's ReLU
    else:
        blocks = sum(1 for layer in model.layers if layer.name.startswith("block") and layer.name.endswith("_t0"))
        towers = [(model.get_layer(f"embedding_t{i}").output,
                   [model.get_layer(f"block{b}_t{i}") for b in range(blocks - 2, blocks)]) for i in range(n)]
    parts = []
    for t, (e, taps) in enumerate(towers):
        parts += [e] + [layers.GlobalAveragePooling2D(name=f"head_pool{_suffix(t, n)}_{i}")(tap.output)
                        for i, tap in enumerate(taps)]
    values = keras.Model(model.inputs, parts).predict(np.asarray(representative, np.float32), verbose=0)
    # scaled one part at a time: int8 concatenation gives its inputs the output's scale, and the embedding and the
    # last pool also feed the classifier, whose int8 accuracy must not change
    scaled = []
    for part, v in zip(parts, values):
        spread = v.std(0)
        inv = np.where(spread > 1e-6, 1.0 / np.maximum(spread, 1e-6), 1.0).astype(np.float32)
        scaled.append(ops.multiply(part, inv))
    feats = layers.Concatenate(name="head_features")(scaled)
    return keras.Model(model.inputs, [feats, probs], name=f"{model.name}_served")


def _baseline(input_shape, n_classes, cfg):
    """The seed's net: two convs, a max-pool, dense; kept to measure the DS-CNN against."""
    import keras
    from keras import layers

    inp = keras.Input(shape=tuple(input_shape), name="stamp")
    x = layers.Reshape((*input_shape, 1))(inp)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D((4, 4))(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(cfg.dropout)(x)
    emb = layers.Dense(cfg.embedding_dim, activation="relu", name="embedding")(x)
    probs = layers.Dense(n_classes, activation="softmax", name="probs")(layers.Dropout(cfg.dropout)(emb))
    return keras.Model(inp, [emb, probs], name="baseline")


def _dscnn(input_shape, n_classes, cfg):
    """DS-CNN (Zhang et al. 2017, 'Hello Edge'): a strided conv, depthwise-separable blocks, global average pool;
    with `cfg.towers` > 1 that many of them side by side, probabilities averaged."""
    import keras
    from keras import layers

    inp = keras.Input(shape=tuple(input_shape), name="stamp")
    x = layers.Reshape((*input_shape, 1))(inp)
    n = max(1, cfg.towers)
    outs = [_dscnn_tower(x, n_classes, cfg, _suffix(i, n)) for i in range(n)]
    if n == 1:
        return keras.Model(inp, list(outs[0]), name="dscnn")
    emb = layers.Concatenate(name="embedding")([e for e, _ in outs])
    probs = layers.Average(name="probs")([p for _, p in outs])
    return keras.Model(inp, [emb, probs], name=f"dscnn_x{n}")


def _dscnn_tower(x, n_classes, cfg, suffix: str):
    """One DS-CNN on the reshaped stamp `x`: (embedding, probs), its layers' names ending in `suffix`."""
    from keras import layers

    named = bool(suffix)  # a single net keeps Keras's own layer names, as in models trained before towers

    def name(base: str) -> str | None:
        return f"{base}{suffix}" if named else None

    x = layers.Conv2D(cfg.width, (10, 4), strides=(2, 2), padding="same", use_bias=False, name=name("stem"))(x)
    x = layers.BatchNormalization(momentum=cfg.bn_momentum, name=name("stem_bn"))(x)
    x = layers.ReLU(name=name("stem_relu"))(x)
    for i in range(cfg.blocks):
        stride = (2, 2) if i == 0 else (1, 1)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=name(f"dw{i}"))(x)
        x = layers.BatchNormalization(momentum=cfg.bn_momentum, name=name(f"dw{i}_bn"))(x)
        x = layers.ReLU(name=name(f"dw{i}_relu"))(x)
        x = layers.Conv2D(cfg.width, 1, use_bias=False, name=name(f"pw{i}"))(x)
        x = layers.BatchNormalization(momentum=cfg.bn_momentum, name=name(f"pw{i}_bn"))(x)
        x = layers.ReLU(name=name(f"block{i}"))(x)
    x = layers.GlobalAveragePooling2D(name=name("pool"))(x)
    x = layers.Dropout(cfg.dropout, name=name("pool_drop"))(x)
    emb = layers.Dense(cfg.embedding_dim, activation="relu", name=f"embedding{suffix}")(x)
    # the Dense is made before its Dropout, as before towers existed: the order of creation draws the seeds
    probs = layers.Dense(n_classes, activation="softmax", name=f"probs{suffix}")(
        layers.Dropout(cfg.dropout, name=name("emb_drop"))(emb))
    return emb, probs
