"""The keyed audit log against the probe's attacks: rewrite and recompute, delete the newest
entry, move an alias without a log entry; verification over HTTP and on the command line."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.cli.audit import audit_app
from opsloop.registry.audit import (
    GENESIS,
    audit_head,
    entry_hash,
    seal_audit_log,
    verify_audit_log,
)
from opsloop.registry.audit_key import audit_key
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.store import tables

_log = tables.audit_log


@pytest.fixture
def history(registry):
    registry.register("churn", b"\x08\x01", flavor="onnx")
    registry.register("churn", b"\x08\x02", flavor="onnx")
    registry.set_alias("churn", "champion", 1)
    registry.protect_alias("churn", "champion", 0)
    Deployments(registry.db).deploy("api", [Variant("live", "churn", alias="champion")])
    return registry


def _rows(db):
    with db.read() as connection:
        return connection.execute(sa.select(_log).order_by(_log.c.id)).mappings().all()


def _rewrite_with_sha256(db, keyed_to_plain: bool):
    """What an attacker with write access to the database can do: change an entry and
    recompute every later link with a plain sha256 (they have no key)."""
    rows = _rows(db)
    prev = GENESIS
    with db.write() as connection:
        for row in rows:
            reason = "edited" if row["id"] == rows[1]["id"] else row["reason"]
            digest = entry_hash(
                prev,
                row["at_ms"],
                row["actor"],
                row["action"],
                row["entity"],
                reason,
                row["before_json"],
                row["after_json"],
                origin=row["origin"],
            )
            connection.execute(
                _log.update()
                .where(_log.c.id == row["id"])
                .values(
                    reason=reason,
                    prev_hash=f"{row['id']:064x}",  # clear the unique column first
                    hash=f"{row['id'] + 10_000:064x}",
                )
            )
            connection.execute(
                _log.update()
                .where(_log.c.id == row["id"])
                .values(prev_hash=prev, hash=digest, keyed=row["keyed"] and not keyed_to_plain)
            )
            prev = digest


def test_a_clean_log_verifies_and_the_key_file_is_private(history):
    result = history.verify_audit_log()
    assert result.ok, result.problem
    assert result.entries == result.keyed_entries == len(_rows(history.db))
    assert result.head == audit_head(history.db)["hash"]
    key_file = Path(os.environ["OPSLOOP_HOME"]) / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert audit_key() == bytes.fromhex(key_file.read_text().strip())


def test_editing_an_entry_and_recomputing_every_later_hash_is_caught(history):
    _rewrite_with_sha256(history.db, keyed_to_plain=False)
    result = history.verify_audit_log()
    assert not result.ok
    assert "was changed, or written without this audit key" in result.problem
    assert result.first_bad_id == _rows(history.db)[0]["id"]


def test_a_log_rewritten_as_plain_links_is_caught(history):
    _rewrite_with_sha256(history.db, keyed_to_plain=True)
    result = history.verify_audit_log()
    assert not result.ok and "no entry is keyed" in result.problem


def test_deleting_the_newest_entry_is_caught_by_the_published_head(history):
    published = history.audit_head()["hash"]
    newest = _rows(history.db)[-1]["id"]
    with history.db.write() as connection:
        connection.execute(_log.delete().where(_log.c.id == newest))
    # A shorter chain is a valid chain, so the state check and the head catch it.
    result = history.verify_audit_log(head=published)
    assert not result.ok
    assert f"the published head {published} is not in the log" in result.problem
    assert "deployment:api: the tables hold a definition the log never recorded" in (
        result.state_problems
    )


def test_moving_an_alias_in_the_table_without_a_log_entry_is_caught(history):
    with history.db.write() as connection:
        version_2 = connection.execute(
            sa.select(tables.model_versions.c.id).where(tables.model_versions.c.version == 2)
        ).scalar_one()
        connection.execute(tables.aliases.update().values(version_id=version_2))
        connection.execute(
            tables.protected_aliases.insert().values(
                model_id=1, name="champion", required_approvals=3
            )
        )
        connection.execute(tables.deployments.update().values(strategy="shadow"))
    result = history.verify_audit_log()
    assert not result.ok
    assert result.state_problems == (
        "model:churn/alias:champion: the log says version 1, the table holds 2",
        "model:churn/alias:champion: the log says 0 required approval(s), the table holds 3",
        "deployment:api: the tables hold another definition than the log's last",
    )
    assert result.problem == f"the state differs from the log: {result.state_problems[0]}"


def test_another_key_cannot_extend_or_verify_the_log(history):
    assert not verify_audit_log(history.db, key=b"\x01" * 32).ok
    assert verify_audit_log(history.db, key=audit_key()).ok


def test_an_unkeyed_log_from_before_is_sealed_under_the_key(history):
    _rewrite_with_sha256(history.db, keyed_to_plain=True)  # as an older version wrote it
    assert "no entry is keyed" in history.verify_audit_log().problem
    sealed = seal_audit_log(history.db, "owner", reason="upgrade")
    result = history.verify_audit_log()
    assert result.ok and result.keyed_entries == 1 and result.head == sealed
    # A plain link after the seal is refused.
    with history.db.write() as connection:
        prev = _rows(history.db)[-1]["hash"]
        document = json.dumps([prev, 1, "x", "y", "z", None, None, None], separators=(",", ":"))
        connection.execute(
            _log.insert().values(
                at_ms=1,
                actor="x",
                action="y",
                entity="z",
                prev_hash=prev,
                keyed=False,
                hash=hashlib.sha256(document.encode()).hexdigest(),
            )
        )
    assert "is a plain sha256 link after keyed entries" in history.verify_audit_log().problem


def test_verify_and_head_over_http_and_on_the_command_line(history, monkeypatch):
    runner = CliRunner()
    with running_server(create_app(history.db, history.artifacts)) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", "")
        head = runner.invoke(audit_app, ["head", "--json"])
        assert head.exit_code == 0, head.output
        published = json.loads(head.output)["hash"]
        assert published == audit_head(history.db)["hash"]
        verified = runner.invoke(audit_app, ["verify", "--head", published])
        assert verified.exit_code == 0, verified.output
        assert f"audit log intact: {len(_rows(history.db))} entries" in verified.output
        with history.db.write() as connection:
            connection.execute(_log.delete().where(_log.c.hash == published))
        failed = runner.invoke(audit_app, ["verify", "--head", published, "--json"])
        assert failed.exit_code == 1
        document = json.loads(failed.output)
        assert document["ok"] is False and published in document["problem"]
