"""Shared test fixtures: paths, the shared-data marker, small synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORDSTAMP_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = REPO / "tests" / "fixtures"

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "fsdd").is_dir(),
    reason=f"needs the developers' data folder {SHARED_DATA} (FSDD, Speech Commands), absent on this machine",
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def tone_word(rng: np.random.Generator, seconds: float = 0.4, rate: int = 16000, f0: float = 220.0) -> np.ndarray:
    """A word-like burst: harmonics with an envelope and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    env = np.sin(np.pi * t / seconds) ** 2
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * env
    return (0.3 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)

from tests.fixtures_bundle import tiny_bundle, tiny_head_bundle  # noqa: E402,F401  (session bundle fixtures)
