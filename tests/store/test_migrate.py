"""Migrations: a fresh database reaches head, the tables match the models, re-runs are no-ops."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.migrate import alembic_config, current_revision, head_revision, upgrade_to_head


def test_fresh_database_is_migrated_to_head_and_matches_the_models(store_uri):
    db = Database(store_uri)
    with db.read() as connection:
        assert current_revision(connection) == head_revision() == "0034"
        names = set(sa.inspect(connection).get_table_names())
        differences = compare_metadata(MigrationContext.configure(connection), tables.metadata)
    assert set(tables.metadata.tables) <= names
    assert differences == []
    db.dispose()


def test_migrating_again_changes_nothing(store_uri):
    db = Database(store_uri)
    with db.write() as connection:
        connection.execute(tables.experiments.insert().values(name="kept", created_ms=1))
    db.migrate()
    Database(store_uri).dispose()
    with db.read() as connection:
        kept = connection.execute(sa.select(tables.experiments.c.name)).scalars().all()
    assert kept == ["kept"]
    db.dispose()


def test_downgrade_to_base_then_upgrade_recreates_every_table(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as connection:
        upgrade_to_head(connection)
        command.downgrade(alembic_config(connection), "base")
        assert set(sa.inspect(connection).get_table_names()) == {"alembic_version"}
        assert current_revision(connection) is None
        upgrade_to_head(connection)
        assert set(tables.metadata.tables) <= set(sa.inspect(connection).get_table_names())
    engine.dispose()


def test_sqlite_uses_wal_busy_timeout_and_foreign_keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    with db.read() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 60_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    db.dispose()


def test_metric_points_table_has_no_rowid_on_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as connection:
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'metrics'"
        ).scalar_one()
    assert sql.rstrip().endswith("WITHOUT ROWID")
    db.dispose()


def test_default_database_is_a_file_under_opsloop_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "state"))
    db = Database()
    assert db.uri == f"sqlite:///{tmp_path / 'state' / 'opsloop.db'}"
    assert (tmp_path / "state" / "opsloop.db").is_file()
    db.dispose()


def test_unsupported_database_is_refused():
    import pytest

    with pytest.raises(ValueError, match="only sqlite and postgresql"):
        Database("mysql://u@h/db")


def test_upgrading_a_store_from_0001_packs_the_params_of_existing_runs(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.exec_driver_sql(
            "INSERT INTO experiments (id, name, created_ms) VALUES (1, 'e', 0)"
        )
        for pk in (1, 2, 3):
            connection.exec_driver_sql(
                "INSERT INTO runs (id, run_id, experiment_id, status, start_ms) "
                f"VALUES ({pk}, 'r{pk}', 1, 'FINISHED', {pk})"
            )
        connection.exec_driver_sql(
            "INSERT INTO params (run_id, key, value) VALUES "
            "(1, 'lr', '0.1'), (1, 'depth', '3'), (3, 'model', 'rf')"
        )
        upgrade_to_head(connection)
        rows = connection.execute(
            sa.select(
                tables.runs.c.id, tables.runs.c.params_packed, tables.runs.c.param_count
            ).order_by(tables.runs.c.id)
        ).all()
    engine.dispose()
    assert sorted(rows[0][1].split("\x1f")) == sorted(["lr", "0.1", "depth", "3"])
    assert [tuple(row) for row in rows[1:]] == [(2, None, 0), (3, "model\x1frf", 1)]


def test_0015_gives_batched_inputs_back_as_text_on_downgrade_and_keeps_them_on_upgrade(
    store_uri,
):
    import json

    import pandas as pd

    from opsloop.monitoring.event_log import log_predictions
    from opsloop.serving.prediction_events import read_prediction_events

    db = Database(store_uri)
    frame = pd.DataFrame({"x": [1.5, None, 1e-05] * 30, "k": ["a", "b", None] * 30})
    log_predictions(db, "api", frame, [0, 1, 0] * 30, at_ms=5)
    records = [
        [{"x": 1.5, "k": "a"}],
        [{"x": None, "k": "b"}],
        [{"x": 1e-05, "k": None}],
    ] * 30
    with db.read() as connection:
        batched = connection.execute(
            sa.select(sa.func.count()).where(tables.prediction_events.c.input_batch_id.is_not(None))
        ).scalar_one()
    assert batched == 90
    assert read_prediction_events(db, "api")["inputs"].tolist() == records
    db.dispose()
    engine = sa.create_engine(store_uri)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0014")
        texts = connection.exec_driver_sql(
            "SELECT inputs_json FROM prediction_events ORDER BY id"
        ).scalars()
        assert [json.loads(text) for text in texts] == records
        assert "prediction_input_batches" not in sa.inspect(connection).get_table_names()
        upgrade_to_head(connection)
    engine.dispose()
    db = Database(store_uri)
    assert read_prediction_events(db, "api")["inputs"].tolist() == records
    db.dispose()


def test_0018_computes_the_summaries_of_points_already_stored_as_writes_keep_them(
    store_uri, tmp_path
):
    import numpy as np

    from opsloop.store import ArtifactStore
    from opsloop.tracking.local_store import LocalTrackingStore
    from opsloop.tracking.metric_buffer import MetricBatch

    db = Database(store_uri)
    store = LocalTrackingStore(db, ArtifactStore(tmp_path / "artifacts"))
    rng = np.random.default_rng(0)
    for _run in range(2):
        run_id = store.create_run("e")
        for _piece in range(4):  # values tied, steps repeated and negative, out of order
            n = 3_000
            keys = tuple(rng.choice(["loss", "auc"], n))
            steps = rng.integers(-70_000, 70_000, n)
            batch = MetricBatch(keys, rng.integers(0, 5, n) * 0.5, steps, np.full(n, 9))
            store.write_batch(run_id, batch)
    blocks = tables.metric_blocks
    order = [blocks.c.run_id, blocks.c.key_id, blocks.c.level, blocks.c.block]
    with db.read() as connection:
        written = connection.execute(sa.select(blocks).order_by(*order)).all()
    db.dispose()
    assert len(written) > 4 * 2 * 2  # every level, run and key
    engine = sa.create_engine(store_uri)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0017")
        assert "metric_blocks" not in sa.inspect(connection).get_table_names()
        upgrade_to_head(connection)
        assert connection.execute(sa.select(blocks).order_by(*order)).all() == written
    engine.dispose()


def test_0023_entries_written_before_origins_still_verify_beside_new_ones(store_uri):
    import hashlib
    import hmac
    import json

    from opsloop.registry.audit import GENESIS, append_audit, verify_audit_log
    from opsloop.registry.audit_key import audit_key

    log = tables.audit_log
    Database(store_uri).dispose()  # at head
    engine = sa.create_engine(store_uri)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0022")
        assert "origin" not in {c["name"] for c in sa.inspect(connection).get_columns("audit_log")}
        # Entries as 0022 wrote them: HMAC over the eight fields, no origin.
        prev = GENESIS
        for n in range(3):
            fields = [prev, 1_000 + n, "ana", "describe_model", "model:m", None, None, str(n)]
            document = json.dumps(fields, separators=(",", ":")).encode()
            digest = hmac.new(audit_key(), document, hashlib.sha256).hexdigest()
            connection.execute(
                sa.text(
                    "INSERT INTO audit_log (at_ms, actor, action, entity, after_json, "
                    "prev_hash, hash, keyed) VALUES (:at, 'ana', 'describe_model', 'model:m', "
                    ":after, :prev, :hash, :keyed)"
                ),
                {"at": 1_000 + n, "after": str(n), "prev": prev, "hash": digest, "keyed": True},
            )
            prev = digest
        upgrade_to_head(connection)
    engine.dispose()
    db = Database(store_uri)
    with db.write() as connection:
        append_audit(connection, "bo", "describe_model", "model:m", None, None, 3)
    with db.read() as connection:
        origins = connection.execute(sa.select(log.c.origin).order_by(log.c.id)).scalars().all()
    assert origins[:3] == [None, None, None]
    assert json.loads(origins[3])["via"] == "python"
    result = verify_audit_log(db)
    assert result.ok, result.problem
    assert result.entries == result.keyed_entries == 4
    # An origin given to an entry written before origins were recorded is a change.
    with db.write() as connection:
        first = connection.execute(sa.select(sa.func.min(log.c.id))).scalar_one()
        connection.execute(log.update().where(log.c.id == first).values(origin=origins[3]))
    result = verify_audit_log(db)
    assert not result.ok and result.first_bad_id == first
    db.dispose()


def test_0025_entries_written_before_decisions_still_verify_beside_new_ones(store_uri):
    import hashlib
    import hmac
    import json

    from opsloop.registry.audit import GENESIS, append_audit, verify_audit_log
    from opsloop.registry.audit_key import audit_key

    log = tables.audit_log
    Database(store_uri).dispose()  # at head
    engine = sa.create_engine(store_uri)
    origin = '{"host":"h","process":"p","via":"python"}'
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0024")
        assert "decision" not in {
            c["name"] for c in sa.inspect(connection).get_columns("audit_log")
        }
        # Entries as 0023 and 0024 wrote them: HMAC over the eight fields and the origin.
        prev = GENESIS
        for n in range(2):
            fields = [prev, 1_000 + n, "ana", "describe_model", "model:m", None, None, str(n)]
            document = json.dumps([*fields, origin], separators=(",", ":")).encode()
            digest = hmac.new(audit_key(), document, hashlib.sha256).hexdigest()
            connection.execute(
                sa.text(
                    "INSERT INTO audit_log (at_ms, actor, action, entity, after_json, "
                    "prev_hash, hash, keyed, origin) VALUES (:at, 'ana', 'describe_model', "
                    "'model:m', :after, :prev, :hash, :keyed, :origin)"
                ),
                {"at": 1_000 + n, "after": str(n), "prev": prev, "hash": digest,
                 "keyed": True, "origin": origin},
            )  # fmt: skip
            prev = digest
        upgrade_to_head(connection)
    engine.dispose()
    db = Database(store_uri)
    decided = {"rollout": "canary", "action": "step", "share": 0.5, "evidence": {"step": 1}}
    with db.write() as connection:
        append_audit(connection, "bo", "describe_model", "model:m", "step", None, 2,
                     decision=decided)  # fmt: skip
    with db.read() as connection:
        decisions = connection.execute(sa.select(log.c.decision).order_by(log.c.id)).scalars()
        decisions = list(decisions)
    assert decisions[:2] == [None, None]
    assert json.loads(decisions[2]) == decided
    result = verify_audit_log(db)
    assert result.ok, result.problem
    assert result.entries == result.keyed_entries == 3
    # A decision given to an entry written before decisions were recorded is a change.
    with db.write() as connection:
        first = connection.execute(sa.select(sa.func.min(log.c.id))).scalar_one()
        connection.execute(log.update().where(log.c.id == first).values(decision=decisions[2]))
    result = verify_audit_log(db)
    assert not result.ok and result.first_bad_id == first
    db.dispose()


def test_0026_a_reference_set_before_it_says_no_version_and_one_set_after_says_its(store_uri):
    import pandas as pd

    from opsloop.data.training_reference import build_reference
    from opsloop.monitoring.reference import set_reference, stored_reference

    Database(store_uri).dispose()  # at head
    engine = sa.create_engine(store_uri)
    data = build_reference(pd.DataFrame({"x": [1.0, 2.0]}), predictions=[0, 1]).to_bytes()
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0025")
        columns = {c["name"] for c in sa.inspect(connection).get_columns("monitoring_references")}
        assert "predicted_model" not in columns
        # A reference as 0025 wrote it.
        connection.execute(
            sa.text(
                "INSERT INTO monitoring_references (deployment, reference, created_ms, "
                "created_by) VALUES ('old', :data, 1, 'ana')"
            ),
            {"data": data},
        )
        upgrade_to_head(connection)
    engine.dispose()
    db = Database(store_uri)
    old = stored_reference(db, "old")
    assert old.predicted_by is None and old.reference.to_bytes() == data
    set_reference(db, "new", pd.DataFrame({"x": [1.0]}), predictions=[1], predicted_by=("m", 2))
    assert stored_reference(db, "new").predicted_by == ("m", 2)
    db.dispose()
