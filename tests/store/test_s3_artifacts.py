"""Artifacts on an S3 API: a real server (moto's) on loopback, reached over HTTP by s3fs.

The store is configured as a team would configure it: ``OPSLOOP_ARTIFACT_URI=s3://...``
and the server's address in ``AWS_ENDPOINT_URL``; nothing is patched inside opsloop.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import s3fs
from moto.server import ThreadedMotoServer
from sklearn.linear_model import LogisticRegression

from opsloop.registry import ModelRegistry
from opsloop.store import ArtifactStore, TamperedArtifactError, open_database
from opsloop.store.location import artifact_uri
from opsloop.tracking import get_run, start_run


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch) -> str:
    """A new bucket, with the environment a team sets for an S3-compatible server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "opsloop")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "opsloop-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).mkdir(name)
    return name


def _objects(bucket: str, endpoint: str) -> list[str]:
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    return sorted(fs.find(bucket))


def test_bytes_round_trip_once_per_content_and_tampering_is_refused(bucket, s3_endpoint):
    store = ArtifactStore(f"s3://{bucket}/team")
    data = b"weights" * 100_000
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put_bytes(data) == digest
    assert (store.exists(digest), store.size(digest), store.get_bytes(digest)) == (
        True,
        len(data),
        data,
    )
    # One object under its hash, no partial upload left behind.
    assert _objects(bucket, s3_endpoint) == [f"{bucket}/team/{digest[:2]}/{digest}"]
    s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).pipe(
        f"{bucket}/team/{digest[:2]}/{digest}", b"changed"
    )
    fresh = ArtifactStore(f"s3://{bucket}/team", skip_instance_cache=True)
    with pytest.raises(TamperedArtifactError) as caught:
        fresh.get_bytes(digest)
    assert (caught.value.expected, caught.value.found) == (
        digest,
        hashlib.sha256(b"changed").hexdigest(),
    )
    with pytest.raises(FileNotFoundError, match=f"no artifact with sha256 {'0' * 64}"):
        fresh.get_bytes("0" * 64)


def test_an_upload_received_in_pieces_is_stored_on_s3_under_its_hash(bucket, s3_endpoint):
    # What the server's upload route does: pieces staged locally, then one object under S3.
    store = ArtifactStore(f"s3://{bucket}/team")
    data = b"weights" * 300_000
    with store.receive() as incoming:
        for start in range(0, len(data), 1 << 20):
            incoming.write(data[start : start + (1 << 20)])
        digest = incoming.commit()
    assert digest == hashlib.sha256(data).hexdigest()
    assert _objects(bucket, s3_endpoint) == [f"{bucket}/team/{digest[:2]}/{digest}"]
    assert store.get_bytes(digest) == data
    with store.receive() as incoming, pytest.raises(ValueError, match="expected sha256 0000"):
        incoming.write(b"other")
        incoming.commit(expected="0" * 64)
    assert _objects(bucket, s3_endpoint) == [f"{bucket}/team/{digest[:2]}/{digest}"]


def test_runs_and_registered_models_keep_their_artifacts_on_s3(
    bucket, s3_endpoint, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPSLOOP_STORE_URI", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("OPSLOOP_ARTIFACT_URI", f"s3://{bucket}/opsloop")
    assert artifact_uri() == f"s3://{bucket}/opsloop"
    report = tmp_path / "report.json"
    report.write_text('{"auc": 0.9}')
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, np.array([0, 0, 1, 1]))
    with start_run("s3", capture=False) as run:
        run.log_artifact(report)
    registry = ModelRegistry(open_database(), ArtifactStore(artifact_uri()))
    version = registry.register("scorer", model, run_id=run.run_id)
    stored = _objects(bucket, s3_endpoint)
    report_sha = hashlib.sha256(report.read_bytes()).hexdigest()
    assert f"{bucket}/opsloop/{report_sha[:2]}/{report_sha}" in stored
    assert f"{bucket}/opsloop/{version.artifact_sha256[:2]}/{version.artifact_sha256}" in stored
    loaded = registry.load("scorer", 1)
    assert loaded.predict(x).tolist() == model.predict(x).tolist()
    assert [(a.path, a.sha256) for a in get_run(run.run_id).artifacts] == [
        ("report.json", report_sha)
    ]
