"""The A/B report's newest feedback per request is read from the index on
``prediction_feedback (deployment, request_id, id)`` (migration 0028), on SQLite and
PostgreSQL: ``EXPLAIN`` of the statement the report sends names the index, and on SQLite the
grouping needs no temporary B-tree of its own. The migration goes down and up again with
feedback in the store, which keeps its rows and the report's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, tables
from opsloop.store.database import Database
from opsloop.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)

INDEX = "ix_prediction_feedback_deployment_request_id_id"
REQUESTS = 300


def _fill(db: Database, tmp_path) -> None:
    """Deployment ``ab-api`` (arms a and b) with a primary answer per request and a reward
    per request, a second (newer) reward for the first tenth; and as many rows of another
    deployment, so that reading every row would show in the plan."""
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"), actor="t")
    registry.register("m", b"a", flavor="onnx")
    registry.register("m", b"b", flavor="onnx")
    Deployments(db).deploy(
        "ab-api",
        [
            Variant("a", "m", version=1, weight=0.5),
            Variant("b", "m", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    rng = np.random.default_rng(3)
    events, feedback = [], []
    for deployment in ("ab-api", "other"):
        for i in range(REQUESTS):
            variant = "ab"[i % 2]
            request = f"{deployment}-{i:05d}"
            events.append(
                {
                    "deployment": deployment,
                    "model": "m",
                    "request_id": request,
                    "latency_ms": 1.0,
                    "variant": variant,
                    "role": "primary",
                    "version": 1 + i % 2,
                    "output_json": "[1]",
                    "at_ms": 1_000 + i,
                }
            )
            for _ in range(2 if i < REQUESTS // 10 else 1):
                feedback.append(
                    {
                        "deployment": deployment,
                        "request_id": request,
                        "label_json": None,
                        "reward": float(rng.normal(20, 6)),
                        "created_ms": 2_000 + len(feedback),
                        "created_by": "t",
                    }
                )
    with db.write() as connection:
        connection.execute(tables.prediction_events.insert(), events)
        connection.execute(tables.prediction_feedback.insert(), feedback)
        if db.dialect == "postgresql":
            connection.exec_driver_sql("ANALYZE prediction_feedback")
            connection.exec_driver_sql("ANALYZE prediction_events")


def _report(db: Database) -> list[tuple]:
    """The report's arms, and the one statement of it that groups the feedback."""
    caught = []

    def catch(connection, cursor, statement, parameters, context, executemany):
        if "prediction_feedback" in statement and "GROUP BY" in statement:
            caught.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", catch)
    try:
        report = Deployments(db).ab_report("ab-api")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", catch)
    assert len(caught) == 1, caught
    arms = [(arm.variant, arm.outcomes, arm.mean, arm.std) for arm in report.arms]
    return [arms, caught[0]]


def _plan(db: Database, statement: str, parameters) -> str:
    with db.read() as connection:
        if db.dialect == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(row[-1] for row in rows)
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


def _reference(db: Database) -> dict[str, tuple[int, float]]:
    """Per arm, by hand: the newest reward of each request, counted and averaged."""
    with db.read() as connection:
        rows = connection.execute(
            sa.select(tables.prediction_feedback.c.request_id, tables.prediction_feedback.c.reward)
            .where(tables.prediction_feedback.c.deployment == "ab-api")
            .order_by(tables.prediction_feedback.c.id)
        ).all()
    newest = dict(rows)
    arms: dict[str, list[float]] = {"a": [], "b": []}
    for request, reward in newest.items():
        arms["ab"[int(request.rsplit("-", 1)[1]) % 2]].append(reward)
    return {arm: (len(values), float(np.mean(values))) for arm, values in arms.items()}


def _indexes(db: Database) -> set[str]:
    with db.read() as connection:
        return {i["name"] for i in sa.inspect(connection).get_indexes("prediction_feedback")}


def test_the_newest_feedback_per_request_is_read_from_the_index(store_uri, tmp_path):
    db = Database(store_uri)
    try:
        _fill(db, tmp_path)
        arms, (statement, parameters) = _report(db)
        reference = _reference(db)
        assert (
            [(name, n) for name, n, _mean, _std in arms]
            == [(arm, reference[arm][0]) for arm in ("a", "b")]
            == [("a", REQUESTS // 2), ("b", REQUESTS // 2)]
        )
        for name, _n, mean, _std in arms:
            assert mean == pytest.approx(reference[name][1], rel=1e-12)
        plan = _plan(db, statement, parameters)
        assert INDEX in plan, plan
        if db.dialect == "sqlite":
            assert f"SEARCH prediction_feedback USING COVERING INDEX {INDEX} (deployment=?)" in (
                plan
            ), plan
            # The two groupings by variant remain; the one by request reads the index in order.
            assert plan.count("USE TEMP B-TREE FOR GROUP BY") == 2, plan
    finally:
        db.dispose()


def test_migration_0028_goes_down_and_up_with_feedback_in_the_store(store_uri, tmp_path):
    db = Database(store_uri)
    try:
        _fill(db, tmp_path)
        arms, _ = _report(db)
        with db.read() as connection:
            count = sa.select(sa.func.count()).select_from(tables.prediction_feedback)
            rows = connection.execute(count).scalar_one()
        assert INDEX in _indexes(db)
        with db.write() as connection:
            command.downgrade(alembic_config(connection), "0027")
            assert current_revision(connection) == "0027"
        assert INDEX not in _indexes(db)
        assert _report(db)[0] == arms
        with db.write() as connection:
            upgrade_to_head(connection)
            assert current_revision(connection) == head_revision()
            assert connection.execute(count).scalar_one() == rows == REQUESTS * 2 * 11 // 10
        assert INDEX in _indexes(db)
        assert _report(db)[0] == arms
    finally:
        db.dispose()
