"""Where each audited change came from: a real server on loopback records ``via: http``,
the token's id and the client's address; a change in this process records ``via: python``,
its program and host; the origin is covered by the entry's hash."""

from __future__ import annotations

import json
import socket

import sqlalchemy as sa
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.cli.audit import audit_app
from opsloop.registry import HttpModelRegistry, add_user
from opsloop.registry.audit import verify_audit_log
from opsloop.registry.users import token_id
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.store import tables
from opsloop.store.audit_origin import ORIGIN_LENGTH, program_name

_log = tables.audit_log


def _origins(db) -> dict[str, dict | None]:
    """The origin of each entity's newest entry, as stored."""
    with db.read() as connection:
        rows = connection.execute(sa.select(_log.c.entity, _log.c.origin).order_by(_log.c.id))
        return {entity: None if text is None else json.loads(text) for entity, text in rows}


def test_a_change_over_http_records_the_token_id_and_the_client_address(registry):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    _, token = add_user(registry.db, "eda", "admin")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpModelRegistry(url, token=token)
        client.set_description("churn", "scores churn")
        over_http = client.audit("churn")
        remote_deployments = HttpDeployments(url, token=token)
        remote_deployments.deploy("api", [Variant("live", "churn", version=1)])
        history = remote_deployments.history("api")
        client.close()
    expected = {"via": "http", "token": token_id(token), "client": "127.0.0.1"}
    assert len(token_id(token)) == 12 and token not in json.dumps(expected)
    stored = _origins(registry.db)
    assert stored["model:churn"] == expected
    assert stored["deployment:api"] == expected
    # The REST operations give it back as the local registry reads it.
    assert over_http["origin"].tolist()[-1] == expected
    assert registry.audit("churn")["origin"].tolist()[-1] == expected
    assert history["origin"].tolist() == [expected]
    assert verify_audit_log(registry.db).ok


def test_a_change_in_this_process_records_python_its_program_and_host(registry):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    Deployments(registry.db).deploy("api", [Variant("live", "churn", version=1)])
    expected = {"via": "python", "process": program_name(), "host": socket.gethostname()}
    stored = _origins(registry.db)
    assert stored["model:churn/version:1"] == expected
    assert stored["deployment:api"] == expected
    assert program_name() not in ("", "__main__.py")
    assert verify_audit_log(registry.db).ok


def test_the_installation_token_is_named_as_such(registry):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpModelRegistry(url)  # a loopback client sends the installation token
        client.set_description("churn", "embedded")
        client.close()
    assert _origins(registry.db)["model:churn"] == {
        "via": "http",
        "token": "installation",
        "client": "127.0.0.1",
    }


def test_changing_or_removing_an_origin_breaks_verification(registry):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    registry.set_description("churn", "first")
    registry.set_description("churn", "second")
    assert verify_audit_log(registry.db).ok
    with registry.db.read() as connection:
        target = connection.execute(sa.select(sa.func.max(_log.c.id))).scalar_one() - 1
        kept = connection.execute(sa.select(_log.c.origin).where(_log.c.id == target)).scalar()
    forged = json.dumps({"via": "http", "token": "0" * 12, "client": "10.0.0.9"})
    for value in (forged, None):
        with registry.db.write() as connection:
            connection.execute(_log.update().where(_log.c.id == target).values(origin=value))
        result = verify_audit_log(registry.db)
        assert not result.ok and result.first_bad_id == target
        assert f"entry {target} was changed" in result.problem
    with registry.db.write() as connection:
        connection.execute(_log.update().where(_log.c.id == target).values(origin=kept))
    assert verify_audit_log(registry.db).ok


def test_an_origin_is_bounded(registry, monkeypatch):
    # Characters JSON would escape (quotes, backslashes, control characters) and non-ASCII.
    monkeypatch.setattr("sys.argv", ["/opt/" + '"\\\n\u00e9' * 2_000])
    from opsloop.store import audit_origin

    audit_origin.process_origin.cache_clear()
    try:
        registry.register("churn", b"\x08\x01", flavor="onnx")
    finally:
        audit_origin.process_origin.cache_clear()
    stored = _origins(registry.db)["model:churn/version:1"]
    assert stored["process"] == "???\u00e9" * 16
    with registry.db.read() as connection:
        texts = connection.execute(sa.select(_log.c.origin)).scalars().all()
    assert max(len(text) for text in texts) <= ORIGIN_LENGTH
    assert verify_audit_log(registry.db).ok


def test_the_export_carries_each_entry_origin(registry, tmp_path):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    path = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(audit_app, ["export", str(path)])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["origin"]["via"] for e in entries] == ["python"] * len(entries)


def test_the_audit_log_command_shows_where_each_change_came_from(registry, monkeypatch):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    _, token = add_user(registry.db, "eda", "admin")
    runner = CliRunner()
    local = runner.invoke(audit_app, ["log", "--model", "churn", "--json"])
    assert local.exit_code == 0, local.output
    assert [e["origin"]["via"] for e in json.loads(local.output)] == ["python", "python"]
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", token)
        client = HttpModelRegistry(url, token=token)
        client.set_description("churn", "scores churn")
        client.close()
        monkeypatch.setenv("COLUMNS", "250")
        shown = runner.invoke(audit_app, ["log", "--model", "churn", "--last", "1"])
    assert shown.exit_code == 0, shown.output
    assert f"http from 127.0.0.1, token {token_id(token)}" in shown.output
    assert "describe_model" in shown.output and "register_version" not in shown.output
