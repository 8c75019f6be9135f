"""The distance gate: is a stamp near the words the CNN learnt, not only likely to be one of them?

A softmax only says which of its classes a sound resembles most; a never-trained word that shares a digit's vowel
can still get 0.99 ("sheila" as zero, "tree" as three; models/README.md, round 18), while its embedding may lie far
from where that digit's training clips lie. On its own that distance tells never-trained words apart worse than the
probability does; the two together do a little better where few of them may pass (round 18). The gate keeps each vocabulary word's mean embedding and one
shared precision matrix (the inverse of the words' pooled covariance, Mahalanobis distance), and scores a stamp by
two percentiles among validation clips of vocabulary words: of its vocabulary probability (as the "vocabulary" gate)
and of its closeness to its likeliest word's mean. The gated value is their mean, so a clip that looks like a word we
know on one count only needs to on the other more; its threshold is in [0, 1]. (The lower of the two, tried too,
lost most of the gain at 2 % false accepts; models/README.md, round 18.) Stored as `distance.npz` in a cnn
bundle (float32 arrays, read with allow_pickle=False); fitted by trainer.gate at export, on the int8 model's own
outputs.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.bundle import DISTANCE_FILE as FILE
from shared.bundle import SPECIAL_LABELS

KIND = "mahalanobis-percentile"


class DistanceGateError(ValueError):
    """A distance.npz that cannot be used; str() is one line naming the file and the problem."""


@dataclass(frozen=True)
class DistanceGate:
    """Per vocabulary word (in the bundle's vocabulary order, special labels left out) its mean embedding; the words'
    shared precision matrix; and the sorted reference values the two percentiles are read against."""

    words: list[str]
    means: np.ndarray  # (W, E)
    precision: np.ndarray  # (E, E)
    ref_prob: np.ndarray  # sorted vocabulary probabilities of validation clips of vocabulary words
    ref_close: np.ndarray  # sorted closeness (-log squared distance) of the same clips

    def __post_init__(self) -> None:
        # float32 as stored: the gate a bundle serves is bit for bit the one its threshold was calibrated with
        for name in ("means", "precision", "ref_prob", "ref_close"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), np.float32))
        object.__setattr__(self, "ref_prob", np.sort(self.ref_prob))
        object.__setattr__(self, "ref_close", np.sort(self.ref_close))

    def closeness(self, emb: np.ndarray, word_rows: np.ndarray) -> np.ndarray:
        """-log of each embedding's squared Mahalanobis distance to the mean of its word (a row of `means`)."""
        diff = np.atleast_2d(emb).astype(np.float64) - self.means[word_rows].astype(np.float64)
        d2 = np.einsum("ij,jk,ik->i", diff, self.precision.astype(np.float64), diff)
        return (-np.log(np.maximum(d2, 1e-12))).astype(np.float32)

    def gated(self, emb: np.ndarray, probs: np.ndarray, special: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of (embedding, class probabilities) -> (the label index each would be accepted as: the likeliest
        vocabulary word; the value the threshold is compared with: the mean of the two percentiles)."""
        probs = np.atleast_2d(probs)
        inv = np.flatnonzero(~special)
        rows = probs[:, inv].argmax(1)
        p = _percentile(probs[:, inv].sum(1).astype(np.float32), self.ref_prob)
        c = _percentile(self.closeness(emb, rows), self.ref_close)
        return inv[rows], (p + c) / 2

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, kind=np.array(KIND), words=np.array(self.words, dtype=str), means=self.means,
                 precision=self.precision, ref_prob=self.ref_prob, ref_close=self.ref_close)
        return buf.getvalue()

    @classmethod
    def read(cls, path: Path, vocabulary: list[str], embedding_dim: int) -> "DistanceGate":
        """Load and check a bundle's distance.npz against the bundle's vocabulary and embedding size."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                if str(z["kind"]) != KIND:
                    raise DistanceGateError(f"{path}: unknown kind {str(z['kind'])!r} (expected {KIND!r})")
                g = cls([str(w) for w in z["words"]], z["means"], z["precision"], z["ref_prob"], z["ref_close"])
        except DistanceGateError:
            raise
        except (OSError, KeyError, TypeError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DistanceGateError(f"{path}: not a valid distance gate ({type(exc).__name__}: {exc})") from None
        w, e = len(g.words), g.means.shape[-1] if g.means.ndim == 2 else -1
        if g.words != [v for v in vocabulary if v not in SPECIAL_LABELS]:
            raise DistanceGateError(f"{path}: its words {g.words} are not the bundle's vocabulary words")
        if g.means.shape != (w, e) or g.precision.shape != (e, e) or (embedding_dim and e != embedding_dim):
            raise DistanceGateError(f"{path}: array shapes disagree (words {w}, means {g.means.shape}, "
                                    f"precision {g.precision.shape}, embedding {embedding_dim})")
        if g.ref_prob.size == 0 or g.ref_close.size == 0 or not all(
                np.isfinite(a).all() for a in (g.means, g.precision, g.ref_prob, g.ref_close)):
            raise DistanceGateError(f"{path}: empty or non-finite reference values")
        return g


def _percentile(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The share of `ref` (sorted) at or below each value: 0 under all of them, 1 at or over the highest."""
    return np.searchsorted(ref, values, side="right") / ref.size
