"""The networks: the seed's MNIST-style baseline and a small DS-CNN, both with two outputs (embedding, probs).

Every net exposes its penultimate layer as a named "embedding" output, so SVM heads can learn new words on it
without retraining the CNN; the served model (`serving_model`) widens it with the pooled outputs of the last two
blocks, which describe words the digits were not trained on better. TensorFlow/Keras is imported inside the builders
only.
"""

from __future__ import annotations

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


def build_net(input_shape: tuple[int, int], n_classes: int, cfg: NetConfig | None = None):
    """An uncompiled Keras model: stamp (frames, mels) -> [embedding (E,), probs (C,)]."""
    cfg = cfg or NetConfig()
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


def build_aux(input_shape: tuple[int, int], n_classes: int, n_fine: int, cfg: NetConfig | None = None):
    """(train model, serve model): the served softmax over the vocabulary plus a training-only fine softmax.

    Both read the same embedding; the fine one (every "unknown" word its own class) keeps the embedding describing
    words in general for SVM heads, while the served one spends the loss on the vocabulary itself.
    """
    import keras
    from keras import layers

    serve = build_net(input_shape, n_classes, cfg)
    emb, probs = serve.outputs
    drop = (cfg or NetConfig()).dropout
    fine = layers.Dense(n_fine, activation="softmax", name="probs_fine")(layers.Dropout(drop)(emb))
    return keras.Model(serve.inputs, [emb, probs, fine], name=f"{serve.name}_aux"), serve


def serving_model(model: Any, representative: Any) -> Any:
    """The model as exported: stamp -> [head features, probs], the features being the embedding followed by the
    global average of each of the DS-CNN's last two blocks (the baseline: the embedding alone).

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
    relus = [layer for layer in model.layers if isinstance(layer, layers.ReLU)]
    taps = relus[2::2][-2:]  # after the stem's ReLU, each block ends with the pointwise conv's ReLU
    parts = [emb] + [layers.GlobalAveragePooling2D(name=f"head_pool_{i}")(t.output) for i, t in enumerate(taps)]
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
    """DS-CNN (Zhang et al. 2017, 'Hello Edge'): a strided conv, depthwise-separable blocks, global average pool."""
    import keras
    from keras import layers

    inp = keras.Input(shape=tuple(input_shape), name="stamp")
    x = layers.Reshape((*input_shape, 1))(inp)
    x = layers.Conv2D(cfg.width, (10, 4), strides=(2, 2), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=cfg.bn_momentum)(x)
    x = layers.ReLU()(x)
    for i in range(cfg.blocks):
        stride = (2, 2) if i == 0 else (1, 1)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=cfg.bn_momentum)(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(cfg.width, 1, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=cfg.bn_momentum)(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(cfg.dropout)(x)
    emb = layers.Dense(cfg.embedding_dim, activation="relu", name="embedding")(x)
    probs = layers.Dense(n_classes, activation="softmax", name="probs")(layers.Dropout(cfg.dropout)(emb))
    return keras.Model(inp, [emb, probs], name="dscnn")
