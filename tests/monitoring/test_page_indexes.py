"""The queries that page a monitor's windows and alerts from a cursor (and the look-back
of a window's evaluation) are served by an index in the order they ask for: on SQLite
``EXPLAIN QUERY PLAN`` names the index with a range on the cursor and neither a scan of the
table nor a temporary B-tree for the order; on PostgreSQL, with sequential scans disabled,
``EXPLAIN`` gives an index scan of the same index and no sort (for a page: reading every row
of a key may cost less as a bitmap scan then a sort; the alerts of a deployment that holds
a large share of them may be read walking the primary key back, so the alert indexes are
asked for by name on a deployment with few alerts among many). The statements explained
are the ones the readers send, caught on the engine."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from tests.store.databases import postgres_store_database, store_uri

from opsloop.monitoring.earlier_windows import EarlierWindows
from opsloop.monitoring.evaluation import read_alerts, read_evaluations
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables
from opsloop.store.database import Database

__all__ = ["postgres_store_database", "store_uri"]

HOUR = Windowing("1h")
EVALUATIONS_BY_START = "ix_monitoring_evaluations_by_start"
EVALUATIONS_KEY = {
    "sqlite": "sqlite_autoindex_monitoring_evaluations_1",
    "postgresql": "uq_monitoring_evaluations_deployment_variant_window_ms_start_ms",
}
ALERTS_BY_ID = "ix_monitoring_alerts_deployment_id"
ALERTS_OF_VARIANT_BY_ID = "ix_monitoring_alerts_deployment_variant_id"


def _fill(db: Database) -> None:
    """Windows of two deployments, three variants and two lengths, and alerts of four
    deployments: enough rows of other keys that reading them all would show."""
    evaluations, alerts = [], []
    for deployment in ("api", "other"):
        for window_ms in (HOUR.window_ms, 60_000):
            for k in range(120):
                for variant in ("a", "b", "c"):
                    evaluations.append(
                        {
                            "deployment": deployment,
                            "variant": variant,
                            "window_ms": window_ms,
                            "start_ms": k * window_ms,
                            "metrics_json": "{}",
                            "evaluated_ms": 0,
                        }
                    )
    # Three alerts of a deployment that raised few, long ago (ids 1 to 3, of the variants a,
    # b, a), then the alerts
    # of four deployments interleaved, as monitors raise them side by side: the k-th alert
    # of "api" has the id 4k + 4.
    for k in range(3):
        alerts.append(
            {
                "deployment": "rare",
                "variant": "aba"[k],
                "rule": "error_rate > 0.1 -> alert",
                "action": "alert",
                "evidence_json": json.dumps({"start_ms": k}),
                "at_ms": k,
            }
        )
    for k in range(120):
        for deployment in ("api", "other", "third", "fourth"):
            alerts.append(
                {
                    "deployment": deployment,
                    "variant": "abc"[k % 3],
                    "rule": "drift_share > 0.3 -> alert",
                    "action": "alert",
                    "evidence_json": json.dumps({"start_ms": k}),
                    "at_ms": k,
                }
            )
    with db.write() as connection:
        connection.execute(tables.monitoring_evaluations.insert(), evaluations)
        connection.execute(tables.monitoring_alerts.insert(), alerts)
        if db.dialect == "postgresql":
            connection.exec_driver_sql("ANALYZE monitoring_evaluations")
            connection.exec_driver_sql("ANALYZE monitoring_alerts")


def _sent(db: Database, read) -> tuple[str, object]:
    """The one SELECT of ``monitoring_*`` that ``read`` sends, with its parameters."""
    caught = []

    def catch(connection, cursor, statement, parameters, context, executemany):
        if "FROM monitoring_" in statement:
            caught.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", catch)
    try:
        read()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", catch)
    assert len(caught) == 1, caught
    return caught[0]


def _plan(db: Database, statement: str, parameters) -> str:
    with db.read() as connection:
        if db.dialect == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(row[-1] for row in rows)
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


def _reads(db: Database):
    """(what, reader, the index it should use, the page it should return)."""
    last = 5
    one_hour = HOUR.window_ms
    return [
        (
            "newest windows of every variant",
            lambda: read_evaluations(db, "api", HOUR, last=last),
            EVALUATIONS_BY_START,
            [("b", 118), ("c", 118), ("a", 119), ("b", 119), ("c", 119)],
        ),
        (
            "windows before a start",
            lambda: read_evaluations(db, "api", HOUR, last=last, before_ms=20 * one_hour),
            EVALUATIONS_BY_START,
            [("b", 18), ("c", 18), ("a", 19), ("b", 19), ("c", 19)],
        ),
        (
            "windows before a start and a variant",
            lambda: read_evaluations(
                db, "api", HOUR, last=last, before_ms=20 * one_hour, before_variant="c"
            ),
            EVALUATIONS_BY_START,
            [("a", 19), ("b", 19), ("c", 19), ("a", 20), ("b", 20)],
        ),
        (
            "every window, oldest first",
            lambda: read_evaluations(db, "api", HOUR),
            EVALUATIONS_BY_START,
            None,
        ),
        (
            "one variant's windows before a start and a variant",
            lambda: read_evaluations(
                db,
                "api",
                HOUR,
                variant="a",
                last=last,
                before_ms=20 * one_hour,
                before_variant="b",
            ),
            EVALUATIONS_KEY,
            [("a", 16), ("a", 17), ("a", 18), ("a", 19), ("a", 20)],
        ),
        (
            "the windows before one, looking back",
            lambda: next(iter(EarlierWindows(db, "api", "a", HOUR, 100 * one_hour))),
            EVALUATIONS_KEY,
            None,
        ),
        (
            "newest alerts",
            lambda: read_alerts(db, "api", last=last),
            ALERTS_BY_ID,
            [464, 468, 472, 476, 480],
        ),
        (
            "alerts before one",
            lambda: read_alerts(db, "api", last=last, before_id=50),
            ALERTS_BY_ID,
            [32, 36, 40, 44, 48],
        ),
        (
            "one variant's alerts before one",
            lambda: read_alerts(db, "api", variant="b", last=3, before_id=50),
            ALERTS_OF_VARIANT_BY_ID,
            [20, 32, 44],
        ),
        (
            "a rare deployment's alerts before one",
            lambda: read_alerts(db, "rare", last=2, before_id=3),
            ALERTS_BY_ID,
            [1, 2],
        ),
        (
            "a rare deployment's variant's alerts before one",
            lambda: read_alerts(db, "rare", variant="a", last=2, before_id=4),
            ALERTS_OF_VARIANT_BY_ID,
            [1, 3],
        ),
    ]


def _page(found) -> list:
    if isinstance(found, list):
        return [(e.variant, e.start_ms // HOUR.window_ms) for e in found]
    return found["id"].tolist()


def test_each_page_is_read_by_an_index_range_in_its_order(store_uri):
    db = Database(store_uri)
    _fill(db)
    for what, read, index, page in _reads(db):
        if page is not None:
            assert _page(read()) == page, what
        statement, parameters = _sent(db, read)
        plan = _plan(db, statement, parameters)
        expected = index[db.dialect] if isinstance(index, dict) else index
        if db.dialect == "postgresql" and "alerts" in what and "rare" not in what:
            # The primary key gives the order of ids too: where a deployment's alerts are a
            # large share of all, PostgreSQL walks it back and filters, reading a few rows
            # for each one of the page; either way an index in the order asked for. A
            # deployment with few alerts among many is where the alert indexes serve, and
            # there they are asked for alone (the "rare" reads).
            assert expected in plan or "using pk_monitoring_alerts" in plan, (what, plan)
        else:
            assert expected in plan, (what, plan)
        if db.dialect == "sqlite":
            assert "SEARCH monitoring_" in plan and "SCAN" not in plan, (what, plan)
            assert "TEMP B-TREE" not in plan, (what, plan)
            assert "(deployment=?" in plan, (what, plan)
        elif "every" not in what:
            assert "Index Scan" in plan or "Index Only Scan" in plan, (what, plan)
            assert "Sort" not in plan and "Seq Scan" not in plan, (what, plan)
            assert "Bitmap" not in plan, (what, plan)
        else:
            # Every row of the key, no page: a bitmap scan of the index then a sort may cost
            # less than walking the index in order; the index is used either way.
            assert "Seq Scan" not in plan, (what, plan)
    db.dispose()


@pytest.mark.parametrize("cursor", ["before_ms", "before_variant"])
def test_a_cursor_page_is_a_range_of_the_index_on_sqlite(tmp_path, cursor):
    """Where the cursor bounds the range itself, not a filter over the deployment's rows."""
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    _fill(db)
    before = {"before_ms": 7 * HOUR.window_ms}
    if cursor == "before_variant":
        before["before_variant"] = "b"
    statement, parameters = _sent(db, lambda: read_evaluations(db, "api", HOUR, last=5, **before))
    plan = _plan(db, statement, parameters)
    bound = "start_ms<?" if cursor == "before_ms" else "(start_ms,variant)<(?,?)"
    assert f"(deployment=? AND window_ms=? AND {bound})" in plan, plan
    statement, parameters = _sent(db, lambda: read_alerts(db, "api", last=5, before_id=9))
    assert "(deployment=? AND id<?)" in _plan(db, statement, parameters)
    db.dispose()
