"""The model-bundle format: a folder with `manifest.json` and either `model.tflite` (a CNN) or `head.json` (an SVM head
on a base CNN's embedding). Loading validates everything before any byte reaches LiteRT: format version, files and
their sizes and SHA-256 hashes, and that the bundle's frontend is the one this code computes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from shared.features import BUNDLE_CHOICES, FrontendConfig
from shared.segment import SegmenterConfig

FORMAT_VERSION = 2  # 2: a cnn's class output may be its logits (manifest.outputs "logits"), not only "probs"
READ_VERSIONS = (1, 2)
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
SPECIAL_LABELS = (UNKNOWN, SILENCE)
GATES = ("top", "vocabulary", "distance")  # see Manifest.gate
DISTANCE_FILE = "distance.npz"  # the distance gate's file in a cnn bundle (shared.distance)


def special_mask(labels: list[str]) -> np.ndarray:
    """True for each label that is no word (`_unknown_`, `_silence_`): what a reject gate sets apart."""
    return np.array([lab in SPECIAL_LABELS for lab in labels], bool)

MAX_FILE_BYTES = 64 * 1024 * 1024  # nothing in a bundle is this big; refuse before reading


class BundleError(Exception):
    """A bundle that cannot be used; str() is one line naming the bundle and the problem."""


@dataclass
class Manifest:
    """manifest.json: what the model outputs, what it expects, where it came from, how well it did."""

    name: str
    kind: str  # "cnn" (model.tflite) or "head" (head.json on a base cnn bundle)
    vocabulary: list[str]  # output labels in output order; may include _unknown_ and _silence_
    frontend: dict
    threshold: float = 0.5  # reject when the gated score (below) is under this
    # What a cnn's threshold is compared with: "top" = the top label's probability; "vocabulary" = the probability of
    # all vocabulary words together (is it a word we know?), the word being the likeliest of them; "distance" = the
    # mean of that probability's and the embedding's closeness to the word's training clips' percentiles among
    # validation words (shared.distance, its file distance.npz). Heads gate on score.
    gate: str = "top"
    input_shape: list[int] = field(default_factory=list)
    embedding_dim: int = 0
    outputs: dict[str, int] = field(default_factory=dict)  # LiteRT output index of "embedding" and "logits"/"probs"
    segmenter: dict = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)  # name -> {"sha256": ..., "bytes": ...}
    base: dict | None = None  # for heads: {"name": ..., "hash": ...} of the base cnn bundle
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: str = ""
    description: str = ""
    format_version: int = FORMAT_VERSION
    frontend_hash: str = ""

    @property
    def words(self) -> list[str]:
        """The vocabulary without the special labels."""
        return [w for w in self.vocabulary if w not in SPECIAL_LABELS]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Bundle:
    """A validated bundle on disk."""

    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def hash(self) -> str:
        """Identity of the bundle: hash of its files' hashes (stable across copies and renames)."""
        return bundle_hash(self.manifest.files)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def reject_gate(self) -> str:
        """What the reject threshold in effect is compared with: a cnn's manifest gate, or a head's (its SVM "score"
        or "margin", shared.runtime.SvmHead)."""
        if self.manifest.kind == "cnn":
            return self.manifest.gate
        try:
            return str(json.loads(self.file("head.json").read_text()).get("gate", "score"))
        except (OSError, ValueError, AttributeError):
            return "score"

    @property
    def frontend_config(self) -> FrontendConfig:
        return FrontendConfig.from_dict(self.manifest.frontend)

    @property
    def segmenter_config(self) -> SegmenterConfig:
        return SegmenterConfig.from_dict(self.manifest.segmenter) if self.manifest.segmenter else SegmenterConfig()


def bundle_hash(files: dict[str, dict]) -> str:
    blob = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_bundle(path: str | os.PathLike, expect_frontend: FrontendConfig | None = None) -> Bundle:
    """Read and validate a bundle folder; raise BundleError with one line on any problem."""
    p = Path(path)
    mf = p / "manifest.json"
    if not p.is_dir():
        recover_bundle(p)
    if not p.is_dir():
        raise BundleError(f"{p}: no such bundle folder")
    if not mf.is_file():
        raise BundleError(f"{p}: missing manifest.json")
    if mf.stat().st_size > MAX_FILE_BYTES:
        raise BundleError(f"{mf}: manifest is implausibly large")
    try:
        raw = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mf}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{mf}: not a JSON object")
    version = raw.get("format_version")
    if version not in READ_VERSIONS:
        raise BundleError(f"{p}: unknown bundle format version {version!r} "
                          f"(this wordstamp reads {', '.join(map(str, READ_VERSIONS))})")
    for key in ("name", "kind", "vocabulary", "frontend", "files"):
        if key not in raw:
            raise BundleError(f"{mf}: missing field {key!r}")
    try:
        m = Manifest.from_dict(raw)
        fcfg = FrontendConfig.from_dict(m.frontend)
        if m.segmenter:
            SegmenterConfig.from_dict(m.segmenter)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{mf}: bad field ({exc})") from None
    if m.gate not in GATES:
        raise BundleError(f"{mf}: unknown gate {m.gate!r} (expected one of {', '.join(GATES)})")
    if m.kind not in ("cnn", "head"):
        raise BundleError(f"{mf}: unknown kind {m.kind!r} (expected 'cnn' or 'head')")
    if not isinstance(m.vocabulary, list) or not m.vocabulary or not all(isinstance(w, str) for w in m.vocabulary):
        raise BundleError(f"{mf}: vocabulary must be a non-empty list of words")
    if m.frontend_hash and m.frontend_hash != fcfg.hash:
        raise BundleError(f"{mf}: frontend_hash does not match its frontend config")
    want = expect_frontend or FrontendConfig()
    # the stamp options a bundle chooses for itself: any wordstamp that knows the key computes them
    want = dataclasses.replace(want, **{k: getattr(fcfg, k) for k in BUNDLE_CHOICES})
    if fcfg.hash != want.hash:
        raise BundleError(f"{p}: made for feature frontend {fcfg.hash}, but this wordstamp computes {want.hash}; "
                          "re-export the model or use a matching wordstamp")
    needed = ["model.tflite"] if m.kind == "cnn" else ["head.json"]
    if m.kind == "cnn" and m.gate == "distance":
        needed.append(DISTANCE_FILE)
    for name in needed:
        if name not in m.files:
            raise BundleError(f"{mf}: lists no {name}" + (" (the distance gate's file)" if name == DISTANCE_FILE else ""))
    for name, meta in m.files.items():
        f = p / name
        if "/" in name or name.startswith("."):
            raise BundleError(f"{mf}: file name {name!r} is not a plain name")
        if not f.is_file():
            raise BundleError(f"{p}: missing {name}")
        size = f.stat().st_size
        if size != meta.get("bytes") or size > MAX_FILE_BYTES:
            raise BundleError(f"{f}: size {size} bytes does not match the manifest ({meta.get('bytes')})")
        if _sha256(f.read_bytes()) != meta.get("sha256"):
            raise BundleError(f"{f}: SHA-256 does not match the manifest (corrupt or altered)")
    if m.kind == "head" and not (isinstance(m.base, dict) and "name" in m.base and "hash" in m.base):
        raise BundleError(f"{mf}: a head bundle must name its base bundle (base.name, base.hash)")
    return Bundle(p, m)


def _fsync_dir(d: Path) -> None:
    """Make renames in (and files of) folder `d` durable."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_bundle(dest: str | os.PathLike) -> bool:
    """If `dest` is missing because a write_bundle was killed between its two renames, rename the old bundle it
    had moved aside (`.NAME.old-<pid>`, the newest if several) back to `dest`. True if it did.

    Temporary folders of killed writers (`.NAME.<random>`) are left alone: they were never the bundle."""
    dest = Path(dest)
    if dest.exists() or not dest.parent.is_dir():
        return False
    olds = sorted(dest.parent.glob(f".{dest.name}.old-*"), key=lambda q: q.stat().st_mtime, reverse=True)
    for old in olds:
        if (old / "manifest.json").is_file():
            try:
                os.rename(old, dest)
            except OSError:  # another process recovered it first
                return dest.exists()
            _fsync_dir(dest.parent)
            return True
    return False


def write_bundle(folder: str | os.PathLike, manifest: Manifest, files: dict[str, bytes]) -> Bundle:
    """Write a bundle atomically: into a temporary sibling folder, then swapped in by rename.

    A crash leaves either the old bundle or the new one in place, never a half-written folder.
    """
    dest = Path(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    manifest.files = {n: {"sha256": _sha256(b), "bytes": len(b)} for n, b in files.items()}
    manifest.frontend_hash = FrontendConfig.from_dict(manifest.frontend).hash
    manifest.format_version = FORMAT_VERSION
    if not manifest.created:
        manifest.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp's 0700 would make shipped bundles unreadable to a service user
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / "manifest.json").write_text(manifest.to_json())
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        recover_bundle(dest)  # an earlier writer killed between its two renames: put its old bundle back first
        if dest.exists():
            # Two renames: between them `dest` is missing, and a crash there leaves the old bundle as `.NAME.old-*`;
            # recover_bundle (called by load_bundle and by the next write) renames it back.
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.rename(dest, old)
            os.rename(tmp, dest)
            _fsync_dir(dest.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
            _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(dest, FrontendConfig.from_dict(manifest.frontend))
