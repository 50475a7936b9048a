"""The database backend: runs, batched metric points, params, tags, inputs, artifacts."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.store import TamperedArtifactError, tables
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.local_store import UnknownExperimentError, UnknownRunError
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.records import DatasetInput


def batch(keys, values, steps, stamps):
    return MetricBatch(
        tuple(keys),
        np.asarray(values, dtype=float),
        np.asarray(steps, dtype=np.int64),
        np.asarray(stamps, dtype=np.int64),
    )


def test_a_run_reads_back_with_everything_it_was_given(store):
    code = CodeVersion("c" * 40, "main", True, "d" * 64)
    environment = Environment.from_parts("3.11.7", "Linux-x86_64", ["numpy==2.4.0", "a==1"])
    run_id = store.create_run(
        "churn",
        name="baseline",
        tags={"team": "risk"},
        user="ana",
        command="python train.py --depth 3",
        code=code,
        environment=environment,
        start_ms=1_000,
    )
    store.write_batch(
        run_id,
        metrics=batch(["auc", "loss", "auc"], [0.7, 0.5, 0.8], [0, 0, 1], [10, 10, 20]),
        params={"depth": 3, "model": "rf"},
        tags={"stage": "dev"},
    )
    store.end_run(run_id, "FINISHED", end_ms=4_500)
    run = store.get_run(run_id)
    assert (run.experiment, run.name, run.status, run.user) == (
        "churn",
        "baseline",
        "FINISHED",
        "ana",
    )
    assert (run.start_ms, run.end_ms, run.duration_s) == (1_000, 4_500, 3.5)
    assert run.command == "python train.py --depth 3"
    assert run.params == {"depth": "3", "model": "rf"}
    assert run.metrics == {"auc": 0.8, "loss": 0.5}
    assert run.tags == {"stage": "dev", "team": "risk"}
    assert run.code == code
    assert run.environment == environment
    assert run.environment.packages == ("a==1", "numpy==2.4.0")
    assert run.to_dict()["code"]["dirty"] is True


def test_latest_metric_is_the_highest_step_then_the_latest_time(store):
    run_id = store.create_run("e")
    store.write_batch(run_id, metrics=batch(["a"] * 3, [5.0, 1.0, 2.0], [9, 3, 4], [1, 2, 3]))
    assert store.get_run(run_id).metrics == {"a": 5.0}
    # A later batch with a lower step does not replace the latest value ...
    store.write_batch(run_id, metrics=batch(["a"], [7.0], [8], [100]))
    assert store.get_run(run_id).metrics == {"a": 5.0}
    # ... the same step with a later time does.
    store.write_batch(run_id, metrics=batch(["a"], [6.0], [9], [100]))
    assert store.get_run(run_id).metrics == {"a": 6.0}


def test_history_keeps_every_point_including_repeated_steps(store):
    run_id = store.create_run("e")
    store.write_batch(run_id, metrics=batch(["x"] * 3, [1.0, 2.0, 3.0], [0, 0, 0], [5, 5, 5]))
    store.write_batch(run_id, metrics=batch(["x", "y"], [4.0, 9.0], [1, 0], [6, 6]))
    history = store.metric_history(run_id, "x")
    assert history["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert history["step"].tolist() == [0, 0, 0, 1]
    assert history["timestamp"].tolist() == [
        pd.Timestamp(t, unit="ms", tz="UTC") for t in (5, 5, 5, 6)
    ]
    assert str(history["timestamp"].dtype) == "datetime64[ms, UTC]"
    with store.db.read() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(tables.metrics)).scalar()
    assert count == 5
    assert store.get_run(run_id).metric_history("y")["value"].tolist() == [9.0]


def test_params_are_immutable_and_tags_are_not(store):
    run_id = store.create_run("e")
    store.write_batch(run_id, params={"lr": 0.1}, tags={"t": "a"})
    store.write_batch(run_id, params={"lr": "0.1"}, tags={"t": "b"})
    with pytest.raises(
        ValueError, match=r"param 'lr' of run \w+ is already '0.1'; cannot change it to '0.2'"
    ):
        store.write_batch(run_id, params={"lr": 0.2}, tags={"t": "c"})
    run = store.get_run(run_id)
    # The refused batch was written not at all, its tag included.
    assert (run.params, run.tags) == ({"lr": "0.1"}, {"t": "b"})


def test_bad_input_is_refused_with_the_rule_broken(store):
    run_id = store.create_run("e")
    with pytest.raises(ValueError, match=r"metric 'loss': value must be a finite number, got nan"):
        store.write_batch(run_id, metrics=batch(["ok", "loss"], [1.0, np.nan], [0, 0], [0, 0]))
    with pytest.raises(
        ValueError, match="param 'blob': value is 6001 characters; the limit is 6000"
    ):
        store.write_batch(run_id, params={"blob": "x" * 6001})
    with pytest.raises(ValueError, match="metric key 'a,b'"):
        store.write_batch(run_id, metrics=batch(["a,b"], [1.0], [0], [0]))
    with pytest.raises(UnknownRunError, match="unknown run id 'f00'"):
        store.write_batch("f00", params={"a": 1})
    with pytest.raises(UnknownRunError):
        store.get_run("f00")
    with pytest.raises(UnknownRunError):
        store.create_run("e", parent_run_id="f00")
    with pytest.raises(ValueError, match="status must be one of RUNNING, FINISHED"):
        store.end_run(run_id, "DONE")
    with pytest.raises(UnknownExperimentError, match="unknown experiment 'nope'"):
        store.search_runs("nope")
    assert store.get_run(run_id).metrics == {}


def test_nested_runs_point_at_their_parent(store):
    parent = store.create_run("e")
    child = store.create_run("e", parent_run_id=parent)
    assert store.get_run(child).parent_run_id == parent
    assert store.get_run(parent).parent_run_id is None


def test_datasets_are_stored_once_per_content_hash(store):
    sha = hashlib.sha256(b"data").hexdigest()
    first, second = store.create_run("e"), store.create_run("e")
    schema = {"columns": {"x": {"type": "int"}}}
    store.log_dataset(first, DatasetInput("train", sha, 100, 1, schema, {"n_rows": 100}))
    store.log_dataset(second, DatasetInput("eval", sha, 100, 1))
    with store.db.read() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(tables.datasets)).scalar()
            == 1
        )
    got = store.get_run(first).datasets
    assert got == (DatasetInput("train", sha, 100, 1, schema, {"n_rows": 100}),)
    assert store.get_run(second).datasets[0].name == "eval"


def test_environments_are_stored_once_and_shared(store):
    environment = Environment.from_parts("3.11.7", "Linux", ["x==1"])
    for _ in range(3):
        store.create_run("e", environment=environment)
    with store.db.read() as connection:
        rows = connection.execute(sa.select(tables.environments.c.sha256)).scalars().all()
    assert rows == [environment.sha256]


def test_artifacts_are_content_addressed_and_verified(store, tmp_path):
    run_id = store.create_run("e")
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    record = store.log_artifact(run_id, source)
    assert (record.path, record.sha256, record.size) == (
        "model.bin",
        hashlib.sha256(b"weights").hexdigest(),
        7,
    )
    assert store.get_run(run_id).artifacts == (record,)
    assert store.artifacts.get_bytes(record.sha256) == b"weights"
    store.artifacts.fs.pipe(store.artifacts.path(record.sha256), b"evil")
    with pytest.raises(TamperedArtifactError, match=f"expected sha256 {record.sha256}"):
        store.artifacts.get_bytes(record.sha256)


def test_metric_histories_of_several_runs(store):
    a, b = store.create_run("e"), store.create_run("e")
    store.write_batch(a, metrics=batch(["k", "j"], [1.0, 2.0], [0, 0], [0, 0]))
    store.write_batch(b, metrics=batch(["k"], [3.0], [0], [0]))
    frame = store.metric_histories([a, b], ["k"])
    assert sorted(zip(frame["run_id"], frame["value"], strict=True)) == sorted([(a, 1.0), (b, 3.0)])


def test_metric_histories_give_every_point_exactly_in_run_key_step_order(store):
    """The whole frame, column by column and with its dtypes: runs in creation order, keys by
    name, points by step then logging order; the smallest subnormal and steps past a float's
    53 bits come back as written."""
    a, b = store.create_run("e"), store.create_run("e")
    big = 2**53 + 1
    store.write_batch(b, metrics=batch(["y", "x", "x"], [7.5, 5e-324, -2.0], [3, 1, 0], [9, 8, 7]))
    store.write_batch(a, metrics=batch(["x", "x"], [1.0, 0.25], [big, 5], [1_000, 2_000]))
    frame = store.metric_histories([b, a])
    want = pd.DataFrame(
        {
            "run_id": pd.Series([a, a, b, b, b], dtype=object),
            "key": pd.Series(["x", "x", "x", "x", "y"], dtype=object),
            "step": np.array([5, big, 0, 1, 3], dtype=np.int64),
            "value": [0.25, 1.0, -2.0, 5e-324, 7.5],
            "timestamp": pd.to_datetime([2_000, 1_000, 7, 8, 9], unit="ms", utc=True).astype(
                "datetime64[ms, UTC]"
            ),
        }
    )
    pd.testing.assert_frame_equal(frame, want, check_exact=True)
    pd.testing.assert_frame_equal(
        store.metric_histories([a, b], ["y"]), want.iloc[[4]].reset_index(drop=True)
    )
    empty = store.metric_histories([a], ["never-logged"])
    assert empty.dtypes.astype(str).tolist() == [
        "object",
        "object",
        "int64",
        "float64",
        "datetime64[ms, UTC]",
    ]


def test_metric_histories_of_many_runs_read_their_ids_in_few_queries(store):
    """1,200 runs (past one query's chunk of 500), asked for in a shuffled order with a
    repeat: the same points as asking run by run, and the run ids in 3 queries, not 1,200."""
    runs = [store.create_run("e") for _ in range(1_200)]
    for i, run in enumerate(runs[:5]):
        store.write_batch(run, metrics=batch(["k"], [float(i)], [0], [0]))
    fresh = type(store)(store.db, store.artifacts)  # nothing known of the runs yet
    asked = runs[::-1] + runs[:1]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(store.db.engine, "before_cursor_execute", count)
    try:
        frame = fresh.metric_histories(asked, ["k"])
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", count)
    assert sorted(zip(frame["run_id"], frame["value"], strict=True)) == [
        (run, float(i)) for i, run in sorted(enumerate(runs[:5]), key=lambda p: p[1])
    ]
    assert sum("FROM runs" in statement for statement in statements) == 3
    with pytest.raises(UnknownRunError, match="nope"):
        fresh.metric_histories([runs[0], "nope"])


def test_list_experiments_counts_runs(store):
    store.create_run("b")
    store.create_run("a")
    store.create_run("a")
    frame = store.list_experiments()
    assert frame[["name", "runs"]].to_dict("records") == [
        {"name": "a", "runs": 2},
        {"name": "b", "runs": 1},
    ]


def test_a_batch_can_end_the_run_in_the_same_transaction(store):
    run_id = store.create_run("e")
    batch = MetricBatch(("x",), np.array([2.0]), np.array([0]), np.array([5]))
    with pytest.raises(ValueError, match=r"status must be one of .*, got 'DONE'"):
        store.write_batch(run_id, metrics=batch, status="DONE")
    # The refused call wrote nothing.
    assert store.get_run(run_id).metrics == {} and store.get_run(run_id).status == "RUNNING"
    store.write_batch(run_id, metrics=batch, params={"a": 1}, status="FAILED", end_ms=7_000)
    run = store.get_run(run_id)
    assert (run.status, run.end_ms, run.metrics, run.params) == (
        "FAILED",
        7_000,
        {"x": 2.0},
        {"a": "1"},
    )
