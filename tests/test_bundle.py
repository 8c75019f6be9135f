"""The bundle format: atomic writes, validation of versions, files, hashes and the frontend."""

from __future__ import annotations

import json
import shutil

import pytest

from shared.bundle import FORMAT_VERSION, BundleError, Manifest, load_bundle, write_bundle
from shared.features import FrontendConfig


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit(b, **changes):
    m = json.loads((b / "manifest.json").read_text())
    m.update(changes)
    (b / "manifest.json").write_text(json.dumps(m))


def test_roundtrip_and_hash_stable_across_copies(tiny_bundle, tmp_path):
    a = load_bundle(tiny_bundle)
    b = load_bundle(_copy(tiny_bundle, tmp_path / "renamed"))
    assert a.hash == b.hash and a.manifest.vocabulary == b.manifest.vocabulary
    assert a.manifest.created and a.manifest.format_version == FORMAT_VERSION == 2


@pytest.mark.parametrize("change, needle", [
    ({"format_version": 99}, "format version"),
    ({"kind": "rnn"}, "unknown kind"),
    ({"vocabulary": []}, "vocabulary"),
    ({"frontend_hash": "0" * 16}, "frontend_hash"),
    ({"gate": "median"}, "unknown gate"),
])
def test_bad_manifest_fields(tiny_bundle, tmp_path, change, needle):
    b = _copy(tiny_bundle, tmp_path / "b")
    _edit(b, **change)
    with pytest.raises(BundleError, match=needle):
        load_bundle(b)


def test_tampered_model_is_refused(tiny_bundle, tmp_path):
    b = _copy(tiny_bundle, tmp_path / "b")
    data = bytearray((b / "model.tflite").read_bytes())
    data[100] ^= 0xFF
    (b / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        load_bundle(b)


def test_other_frontend_is_refused(tiny_bundle):
    with pytest.raises(BundleError, match="frontend"):
        load_bundle(tiny_bundle, expect_frontend=FrontendConfig(n_mels=64))


def test_write_replaces_atomically(tmp_path):
    m = Manifest(name="h", kind="head", vocabulary=["a", "b"], frontend=FrontendConfig().to_dict(),
                 base={"name": "digits", "hash": "x" * 16})
    write_bundle(tmp_path / "h", m, {"head.json": b"{}"})
    m2 = Manifest(name="h", kind="head", vocabulary=["a", "c"], frontend=FrontendConfig().to_dict(),
                  base={"name": "digits", "hash": "x" * 16})
    b = write_bundle(tmp_path / "h", m2, {"head.json": b"{ }"})
    assert b.manifest.vocabulary == ["a", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h"]  # no temporary or old folders left behind


@pytest.mark.parametrize("key", ["band_floor_db", "stamp_floor_db", "pcen_ms"])
def test_a_bundle_may_choose_its_stamp_options(tiny_bundle, tmp_path, key):
    """band_floor_db, stamp_floor_db and pcen_ms are the bundle's own choice (every wordstamp that knows the key
    computes it), and what reads the bundle - the recognizer, hence the daemon and evaluate - computes its stamps with
    it; the rest of the frontend must still be this wordstamp's."""
    from shared.runtime import Recognizer

    b = _copy(tiny_bundle, tmp_path / "floored")
    front = {**json.loads((b / "manifest.json").read_text())["frontend"], key: 20.0}
    _edit(b, frontend=front, frontend_hash=FrontendConfig.from_dict(front).hash)
    loaded = load_bundle(b)
    assert getattr(loaded.frontend_config, key) == 20.0
    assert loaded.frontend_config.hash != FrontendConfig().hash
    assert getattr(Recognizer([b]).frontend_config, key) == 20.0
    other = _copy(tiny_bundle, tmp_path / "other")
    front64 = {**front, "n_mels": 64}
    _edit(other, frontend=front64, frontend_hash=FrontendConfig.from_dict(front64).hash)
    with pytest.raises(BundleError, match="frontend"):
        load_bundle(other)
