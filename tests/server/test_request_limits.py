"""Request size limits against a real server on loopback: bodies over the configured bound
are a 413 naming the setting, before they are read; uploads are streamed to disk; metric
batches over the point bound are refused, and the HTTP client splits them to fit; a NUL in
the URL is a 422 naming the path or parameter."""

from __future__ import annotations

import hashlib
import json
import socket
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from opsloop.server import create_app
from opsloop.server.limits import RequestLimits
from opsloop.store import ArtifactStore, Database
from opsloop.tracking.http_store import HttpTrackingStore
from opsloop.tracking.limits import MAX_BATCH_POINTS
from opsloop.tracking.metric_buffer import MetricBatch

from .running import running_server

API = "/api/v1"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server whose bounds are small enough to cross cheaply: 4 MiB of JSON, 2,000 bytes
    of upload."""
    root = tmp_path_factory.mktemp("limits")
    limits = RequestLimits(max_json_bytes=4 << 20, max_upload_bytes=2_000)
    with pytest.MonkeyPatch.context() as patch:
        # The module's own home: the server keeps its installation token there.
        patch.setenv("OPSLOOP_HOME", str(root / "home"))
        database = Database(f"sqlite:///{root / 'store.db'}")
        app = create_app(database, ArtifactStore(root / "artifacts"), limits=limits)
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with (
        running_server(app) as url,
        httpx.Client(base_url=url + API, timeout=30, headers=token) as client,
    ):
        yield client, root
    database.dispose()


def _names(response: httpx.Response, field: str) -> bool:
    detail = response.json()["detail"]
    return any(".".join(str(part) for part in item["loc"]) == field for item in detail)


def test_a_json_body_over_the_limit_is_a_413_naming_the_setting(server):
    client, _root = server
    body = json.dumps({"experiment": "e", "name": "x" * (4 << 20)})
    response = client.post("/runs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "at most 4194304 bytes" in response.json()["detail"]
    assert "OPSLOOP_MAX_JSON_BYTES" in response.json()["detail"]


def test_a_chunked_body_over_the_limit_is_a_413(server):
    client, _root = server
    pieces = (b"x" * 1_000 for _ in range(3))  # no Content-Length: counted as it arrives
    response = client.put(f"/artifacts/{'a' * 64}", content=pieces, headers=OCTETS)
    assert response.status_code == 413
    assert "OPSLOOP_MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_an_oversized_body_is_refused_before_it_is_sent(server):
    """The server answers from the headers alone: the client sends none of the body."""
    client, _root = server
    address = urlsplit(str(client.base_url))
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(
            f"PUT {API}/artifacts/{'a' * 64} HTTP/1.1\r\nHost: {address.hostname}\r\n"
            f"Content-Length: {1 << 40}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(4096)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_an_upload_within_the_limit_is_stored_and_a_bad_hash_leaves_nothing(server):
    client, root = server
    data = bytes(range(256)) * 7  # 1,792 bytes
    digest = hashlib.sha256(data).hexdigest()
    pieces = (data[start : start + 100] for start in range(0, len(data), 100))
    response = client.put(f"/artifacts/{digest}", content=pieces, headers=OCTETS)
    assert response.status_code == 201, response.text
    assert response.json() == {"sha256": digest, "size": len(data)}
    assert client.get(f"/artifacts/{digest}").content == data
    wrong = client.put(f"/artifacts/{'0' * 64}", content=data, headers=OCTETS)
    assert wrong.status_code == 422
    assert f"found sha256 {digest}" in wrong.json()["detail"]
    assert not (root / "artifacts" / "00").exists()
    assert list((root / "artifacts" / ".incoming").iterdir()) == []


def test_a_batch_over_the_point_limit_is_refused_and_the_client_splits_it(server):
    client, _root = server
    run_id = client.post("/runs", json={"experiment": "split"}).json()["run_id"]
    n = MAX_BATCH_POINTS + 5
    steps = np.arange(n)
    batch = MetricBatch(("loss",) * n, steps / n, steps, steps + 1_000)
    response = client.post(f"/runs/{run_id}/batch", json={"metrics": batch.to_dict()})
    assert response.status_code == 422
    assert _names(response, "body.metrics.keys"), response.text[:300]
    remote = HttpTrackingStore(
        str(client.base_url).rstrip("/").removesuffix(API),
        token=client.headers["Authorization"].removeprefix("Bearer "),
    )
    try:
        remote.write_batch(run_id, batch, params={"n": n}, status="FINISHED")
    finally:
        remote.close()
    history = client.get(f"/runs/{run_id}/metrics/loss").json()
    assert history["step"] == steps.tolist()
    assert history["value"] == (steps / n).tolist()
    run = client.get(f"/runs/{run_id}").json()
    assert run["status"] == "FINISHED" and run["params"] == {"n": str(n)}


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPSLOOP_MAX_JSON_BYTES", "1K")
    monkeypatch.setenv("OPSLOOP_MAX_UPLOAD_BYTES", "3M")
    app = create_app(Database("sqlite://"))
    assert app.state.request_limits == RequestLimits(1_024, 3 << 20)
    monkeypatch.setenv("OPSLOOP_MAX_JSON_BYTES", "-1")
    with pytest.raises(ValueError, match="OPSLOOP_MAX_JSON_BYTES must be a positive number"):
        create_app(Database("sqlite://"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/runs/a%00b", "path: NUL characters are not allowed (at position 14)"),
        ("/deployments/a%00b", "path: NUL characters are not allowed (at position 21)"),
        ("/models/a%00b/version", "path: NUL characters are not allowed (at position 16)"),
        ("/audit?model=a%00b", "query parameter 'model': NUL characters are not allowed"),
    ],
)
def test_a_nul_in_the_url_is_a_422_naming_the_path_or_parameter(server, path, message):
    # On PostgreSQL each was a 500: the name is looked up, and NUL is refused in text.
    client, _root = server
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message
