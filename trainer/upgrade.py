"""Bundles of format 1 -> format 2: a cnn's int8 softmax output cut off so that it serves its logits (see
trainer.export.serve_logits), the heads fitted on it moved onto the upgraded bundle.

Nothing is retrained: the network, its embedding output (what heads read) and every other file stay as they were, so
a head's fit still holds once its manifest names the new base hash. A head that reads the base's probabilities
(head.json "input": "probs") would see slightly other numbers and is refused: refit it with `wordstamp enroll`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from shared.bundle import Bundle, BundleError, load_bundle, write_bundle
from shared.runtime import SvmHead, class_probs
from trainer.export import output_indices, serve_logits, tflite_outputs


@dataclass
class Upgrade:
    """What `upgrade_bundles` did to one bundle."""

    path: Path
    action: str  # "logits" (a cnn now serves logits), "rebased" (a head moved onto its upgraded base), "unchanged"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def upgrade_bundles(paths: list[str | Path]) -> list[Upgrade]:
    """Upgrade the cnn bundles among `paths`, then rebase the heads among them whose base was one of those; every new
    model is made and checked before anything is written."""
    bundles = [load_bundle(p) for p in paths]
    cnns = {b.hash: (b, _cut(b)) for b in bundles if b.manifest.kind == "cnn"}
    new_hash: dict[str, str] = {}
    done = []
    heads = [b for b in bundles if b.manifest.kind == "head"]
    for b in heads:
        base = b.manifest.base or {}
        if base.get("hash") in cnns and cnns[base["hash"]][1] is not None:
            if SvmHead(b).input != "embedding":
                raise BundleError(f"{b.path}: reads its base's probabilities, which the upgrade changes; refit it "
                                  f"with `wordstamp enroll` on the upgraded base instead")
    for old, (b, cut) in cnns.items():
        if cut is None:
            done.append(Upgrade(b.path, "unchanged", "serves logits already"))
            continue
        tflite, b.manifest.outputs = cut
        nb = _rewrite(b, "class output cut from the int8 softmax to its logits; metrics were measured on the softmax "
                         "output", {"model.tflite": tflite})
        new_hash[old] = nb.hash
        done.append(Upgrade(b.path, "logits", f"hash {old} -> {nb.hash}"))
    for b in heads:
        m = b.manifest
        old_base = (m.base or {}).get("hash")
        if old_base not in new_hash:
            done.append(Upgrade(b.path, "unchanged", "its base was not upgraded here"))
            continue
        m.base = {**m.base, "hash": new_hash[old_base]}
        nb = _rewrite(b, f"rebased from {old_base} (the same network, its embedding output unchanged)")
        done.append(Upgrade(nb.path, "rebased", f"onto {m.base['name']} {new_hash[old_base]}"))
    return done


def _cut(b: Bundle) -> tuple[bytes, dict[str, int]] | None:
    """The bundle's model serving logits and its output indices, checked against the model it has (None: it serves
    logits already)."""
    if "probs" not in b.manifest.outputs:
        return None
    old = b.file("model.tflite").read_bytes()
    new = serve_logits(old)
    idx, _ = output_indices(new, len(b.manifest.vocabulary))
    if "logits" not in idx:
        raise BundleError(f"{b.path}: its model has no softmax output to cut (not made by `wordstamp export`?)")
    probe = np.random.default_rng(0).normal(-3.0, 2.0, size=(16, *b.manifest.input_shape)).astype(np.float32)
    was = tflite_outputs(old, probe, [b.manifest.outputs["embedding"], b.manifest.outputs["probs"]])
    now = tflite_outputs(new, probe, [idx["embedding"], idx["logits"]])
    # the same network: the embedding to the bit, the probabilities within the int8 softmax's own rounding
    if not np.array_equal(was[0], now[0]) or np.abs(class_probs(now[1], "logits") - was[1]).max() > 2 / 256:
        raise BundleError(f"{b.path}: the model cut to its logits does not give its own outputs back; left as it was")
    return new, idx


def _rewrite(b: Bundle, what: str, replace: dict[str, bytes] | None = None) -> Bundle:
    """Write `b` in place (its manifest as changed, its files with `replace`d ones), the upgrade noted in its
    training summary."""
    m = b.manifest
    m.training = {**m.training, "upgraded": {"to_format": 2, "what": what,
                                             "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    return write_bundle(b.path, m, {name: b.file(name).read_bytes() for name in m.files} | (replace or {}))
