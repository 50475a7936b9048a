"""Content-addressed artifacts: stored once under their sha256, verified on every read."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from opsloop.store.artifacts import ArtifactStore, TamperedArtifactError, check_sha256
from opsloop.store.location import artifact_uri


def test_bytes_are_stored_under_their_sha256_and_read_back(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    data = b"model weights" * 1000
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "a" / digest[:2] / digest).read_bytes() == data
    assert store.get_bytes(digest) == data
    assert store.size(digest) == len(data)


def test_equal_content_is_stored_once(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.put_bytes(b"same")
    source = tmp_path / "copy.bin"
    source.write_bytes(b"same")
    assert store.put_file(source) == first
    assert [p.name for p in (tmp_path / first[:2]).iterdir()] == [first]


def test_a_tampered_artifact_is_refused_naming_both_hashes(tmp_path):
    store = ArtifactStore(tmp_path)
    digest = store.put_bytes(b"original")
    (tmp_path / digest[:2] / digest).write_bytes(b"changed")
    found = hashlib.sha256(b"changed").hexdigest()
    with pytest.raises(TamperedArtifactError) as caught:
        store.get_bytes(digest)
    assert caught.value.expected == digest
    assert caught.value.found == found
    assert f"expected sha256 {digest}, found sha256 {found}" in str(caught.value)
    with pytest.raises(ValueError):
        store.get_file(digest, tmp_path / "out")


def test_missing_and_malformed_hashes_get_clear_errors(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no artifact with sha256 0{64} in"):
        store.get_bytes("0" * 64)
    with pytest.raises(ValueError, match="64 lowercase hex digits, got 'XYZ'"):
        store.get_bytes("XYZ")
    with pytest.raises(ValueError, match="model_sha256 must be"):
        check_sha256("A" * 64, "model_sha256")
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        store.put_bytes("text")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        store.put_file(tmp_path / "absent")


def test_any_fsspec_url_works_as_root():
    store = ArtifactStore(f"memory://artifacts-{uuid.uuid4().hex}")
    digest = store.put_bytes(b"\x00\x01")
    assert store.get_bytes(digest) == b"\x00\x01"
    store.fs.pipe(store.path(digest), b"\x00\x02")
    with pytest.raises(TamperedArtifactError):
        store.get_bytes(digest)


def test_no_partial_files_are_left_behind(tmp_path):
    store = ArtifactStore(tmp_path)
    store.put_bytes(b"x" * 3_000_000)
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")] == []


def test_artifact_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path))
    assert artifact_uri() == str(tmp_path / "artifacts")
    monkeypatch.setenv("OPSLOOP_ARTIFACT_URI", "s3://bucket/prefix")
    assert artifact_uri() == "s3://bucket/prefix"
