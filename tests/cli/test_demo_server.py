"""The demo's server records the TCP peer as a change's client: an ``X-Forwarded-For`` from
a loopback caller names no one (uvicorn would trust it from loopback by default)."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from opsloop.cli.demo_server import DemoServer
from opsloop.registry import ModelRegistry, add_user
from opsloop.store import ArtifactStore, Database, tables


def test_a_forwarded_for_header_from_loopback_is_not_the_recorded_client(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    artifacts = ArtifactStore(tmp_path / "artifacts")
    ModelRegistry(db, artifacts, actor="owner").register("churn", b"\x08\x01", flavor="onnx")
    add_user(db, "ana", "admin")
    with DemoServer() as server:
        server.start(db, artifacts, "ana")
        answer = httpx.put(
            f"{server.url}/api/v1/models/churn/description",
            json={"description": "scores churn"},
            headers={
                "Authorization": f"Bearer {server.token}",
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
            },
            timeout=60,
        )
    assert answer.status_code < 300, answer.text
    with db.read() as connection:
        origin = connection.execute(
            sa.select(tables.audit_log.c.origin).order_by(tables.audit_log.c.id.desc()).limit(1)
        ).scalar_one()
    assert json.loads(origin)["client"] == "127.0.0.1"
    db.dispose()
