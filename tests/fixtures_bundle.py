"""Session fixtures: a tiny random-weight digits bundle (the real vocabulary layout) and a head bundle on it.

Nothing is trained: the point is a real int8 LiteRT model with the shipped bundle's shape, inputs and outputs, so
daemon and runtime tests can run inference before (and without) the real models. Built once a session (~5 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TINY_VOCABULARY = DIGITS + ["_unknown_", "_silence_"]
TINY_HEAD_CLASSES = ["cat", "dog", "bird", "fox"]
TINY_EMBEDDING_DIM = 16
TINY_WIDTH = 8
TINY_FEATURE_DIM = TINY_EMBEDDING_DIM + TINY_WIDTH  # served: the embedding and its one block's pooled output


def tiny_net(seed: int = 0):
    """The fixture's random-weight small DS-CNN (uncompiled Keras), on the default frontend's stamps."""
    import keras

    from shared.features import FrontendConfig
    from trainer.nets import NetConfig, build_net

    keras.utils.set_random_seed(seed)
    return build_net(FrontendConfig().stamp_shape, len(TINY_VOCABULARY),
                     NetConfig(arch="dscnn", width=TINY_WIDTH, blocks=1, embedding_dim=TINY_EMBEDDING_DIM))


def make_tiny_bundle(folder: Path, name: str = "digits", seed: int = 0) -> Path:
    """Export a random-weight small DS-CNN to `folder/name` and return the bundle path."""
    from shared.features import FrontendConfig
    from trainer.export import ExportSpec, export_model

    fcfg = FrontendConfig()
    net = tiny_net(seed)
    rep = np.random.default_rng(seed).normal(-3.0, 2.0, size=(16, *fcfg.stamp_shape)).astype(np.float32)
    spec = ExportSpec(name=name, vocabulary=TINY_VOCABULARY, threshold=0.5, frontend=fcfg,
                      description="test fixture: random weights, untrained", training={"fixture": True})
    export_model(net, folder / name, spec, rep)
    return folder / name


def make_tiny_head(base_path: Path, name: str = "animals", seed: int = 0, head_input: str = "embedding") -> Path:
    """A linear-svm head with random weights on the tiny bundle's embedding (or, `head_input` "probs", on its class
    probabilities), written beside its base."""
    from shared.bundle import load_bundle
    from trainer.enroll import HeadParams, write_head_bundle

    base = load_bundle(base_path)
    rng = np.random.default_rng(seed)
    d = base.manifest.embedding_dim if head_input == "embedding" else len(base.manifest.vocabulary)
    k = len(TINY_HEAD_CLASSES)
    head = HeadParams(classes=list(TINY_HEAD_CLASSES), mean=np.zeros(d), scale=np.ones(d),
                      coef=rng.normal(size=(k, d)), intercept=rng.normal(size=k), threshold=0.0, input=head_input)
    write_head_bundle(base_path.parent / name, name, base, head, description="test fixture: random head")
    return base_path.parent / name


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny untrained int8 cnn bundle named 'digits' (zero..nine, _unknown_, _silence_)."""
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def tiny_head_bundle(tiny_bundle: Path) -> Path:
    """Path of a head bundle 'animals' (cat, dog, bird, fox) on `tiny_bundle`, in the same folder."""
    return make_tiny_head(tiny_bundle)
