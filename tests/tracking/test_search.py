"""search_runs: the filter language run as SQL, ordering, limits and the result frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.filter_parser import FilterSyntaxError
from opsloop.tracking.metric_buffer import MetricBatch

# name: (params, metrics, tags, status, start_ms)
RUNS = {
    "r1": (
        {"model": "rf", "depth": 3},
        {"auc": 0.85, "loss": 0.3},
        {"team": "risk"},
        "FINISHED",
        1_000,
    ),
    "r2": (
        {"model": "gbm", "depth": 5},
        {"auc": 0.90, "loss": 0.2},
        {"team": "risk"},
        "FINISHED",
        2_000,
    ),
    "r3": (
        {"model": "lr", "depth": 1},
        {"auc": 0.70, "loss": 0.5},
        {"team": "growth"},
        "FAILED",
        3_000,
    ),
    "r4": ({"model": "rf", "depth": 8}, {"auc": 0.78}, {}, "FINISHED", 4_000),
    "r5": ({"model": "gbm", "depth": 2}, {"loss": 0.4}, {"team": "Risk"}, "RUNNING", 5_000),
    "r6": ({}, {"auc": 0.95}, {}, "FINISHED", 6_000),
}


@pytest.fixture
def runs(store):
    ids = {}
    environment = Environment.from_parts("3.11.7", "Linux", [])
    for name, (params, metrics, tags, status, start) in RUNS.items():
        run_id = store.create_run(
            "churn",
            name=name,
            tags=tags,
            start_ms=start,
            code=CodeVersion("abc", "main", name == "r2", None),
            environment=environment,
        )
        keys = list(metrics)
        # An older, worse value first: search must use the latest one.
        store.write_batch(
            run_id,
            metrics=MetricBatch(
                tuple(keys * 2),
                np.array([0.0] * len(keys) + list(metrics.values())),
                np.array([0] * len(keys) + [1] * len(keys)),
                np.array([start] * 2 * len(keys)),
            ),
            params=params,
        )
        if status != "RUNNING":
            store.end_run(run_id, status, end_ms=start + 500)
        ids[name] = run_id
    other = store.create_run("other", name="x")
    store.write_batch(
        other,
        metrics=MetricBatch(("auc",), np.array([0.99]), np.array([0]), np.array([0])),
        params={"model": "rf"},
    )
    return ids


def names(store, filter=None, order_by=None, experiments="churn", **kwargs):
    return store.search_runs(experiments, filter, order_by, **kwargs)["name"].tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ["r6", "r5", "r4", "r3", "r2", "r1"]),
        ("metrics.auc > 0.8", ["r6", "r2", "r1"]),
        ("metrics.auc > 0.8 and (params.model = 'rf' or params.model = 'gbm')", ["r2", "r1"]),
        ("metrics.auc > 0.8 and params.model = 'rf' or params.model = 'gbm'", ["r5", "r2", "r1"]),
        ("not metrics.auc > 0.8", ["r5", "r4", "r3"]),
        ("metrics.auc IS NULL", ["r5"]),
        ("metrics.loss IS NOT NULL and metrics.loss <= 0.3", ["r2", "r1"]),
        ("params.model IN ('rf', 'lr')", ["r4", "r3", "r1"]),
        ("params.model NOT IN ('rf', 'lr')", ["r5", "r2"]),
        ("params.model != 'rf'", ["r5", "r3", "r2"]),
        ("params.depth = 3", ["r1"]),
        ("tags.team = 'risk'", ["r2", "r1"]),
        ("tags.team LIKE 'r%'", ["r2", "r1"]),
        ("tags.team ILIKE 'r%'", ["r5", "r2", "r1"]),
        ("status = 'FINISHED' and not (metrics.auc < 0.8 or metrics.auc > 0.9)", ["r2", "r1"]),
        ("status IN ('FAILED', 'RUNNING')", ["r5", "r3"]),
        ("start_time >= 4000", ["r6", "r5", "r4"]),
        ("start_time < '1970-01-01T00:00:02.5'", ["r2", "r1"]),
        ("end_time IS NULL", ["r5"]),
        ("name LIKE 'r_' and git_dirty = true", ["r2"]),
        ("git_branch = 'main' and metrics.`auc` >= 0.95", ["r6"]),
    ],
)
def test_filters_select_exactly_the_runs_worked_out_by_hand(store, runs, text, expected):
    assert names(store, text) == expected


def test_order_by_metric_with_missing_values_last(store, runs):
    assert names(store, order_by=["metrics.auc DESC"]) == ["r6", "r2", "r1", "r4", "r3", "r5"]
    assert names(store, order_by=["metrics.auc"]) == ["r3", "r4", "r1", "r2", "r6", "r5"]
    assert names(store, order_by=["params.model ASC", "metrics.loss DESC"]) == [
        "r5",
        "r2",
        "r3",
        "r1",
        "r4",
        "r6",
    ]
    assert names(store, order_by=["start_time"], max_results=2) == ["r1", "r2"]


def test_experiments_can_be_one_many_or_all(store, runs):
    assert names(store, "metrics.auc > 0.96", experiments=None) == ["x"]
    assert names(store, "params.model = 'rf'", experiments=["churn", "other"]) == ["x", "r4", "r1"]


def test_the_frame_has_one_row_per_run_with_params_metrics_tags_and_versions(store, runs):
    frame = store.search_runs("churn", "params.model = 'gbm'", ["metrics.loss"])
    assert frame["run_id"].tolist() == [runs["r2"], runs["r5"]]
    assert frame["metrics.auc"].tolist()[0] == 0.90 and np.isnan(frame["metrics.auc"].iloc[1])
    assert frame["metrics.loss"].tolist() == [0.2, 0.4]
    assert frame["params.depth"].tolist() == ["5", "2"]
    assert frame["tags.team"].tolist() == ["risk", "Risk"]
    assert frame["status"].tolist() == ["FINISHED", "RUNNING"]
    assert frame["start_time"].tolist() == [
        pd.Timestamp(2_000, unit="ms", tz="UTC"),
        pd.Timestamp(5_000, unit="ms", tz="UTC"),
    ]
    assert frame["end_time"].iloc[0] == pd.Timestamp(2_500, unit="ms", tz="UTC")
    assert pd.isna(frame["end_time"].iloc[1])
    assert frame["git_dirty"].tolist() == [True, False]
    assert frame["python_version"].tolist() == ["3.11.7", "3.11.7"]
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
    ]


def test_an_empty_result_still_has_the_run_columns(store, runs):
    frame = store.search_runs("churn", "metrics.auc > 5")
    assert len(frame) == 0
    assert "run_id" in frame.columns


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("metrics.auc > 'high'", ValueError, "metrics.auc compares with a number, got 'high'"),
        ("metrics.auc LIKE 'x'", ValueError, "LIKE and ILIKE apply to text"),
        ("params.model = true", ValueError, "params.model is text"),
        ("git_dirty > 1", ValueError, "git_dirty compares with = or !="),
        ("start_time > 'yesterday-ish'", ValueError, "start_time needs milliseconds or an ISO"),
        ("metrics.auc >> 1", FilterSyntaxError, "expected a number"),
    ],
)
def test_bad_filters_get_clear_errors(store, runs, text, error, message):
    with pytest.raises(error, match=message):
        store.search_runs("churn", text)


def test_bad_order_and_limit_get_clear_errors(store, runs):
    with pytest.raises(FilterSyntaxError, match="expected ASC, DESC or the end"):
        store.search_runs("churn", order_by=["metrics.auc DOWN"])
    with pytest.raises(TypeError, match="order_by must be a list"):
        store.search_runs("churn", order_by="metrics.auc")
    with pytest.raises(
        ValueError, match=r"max_results must be a positive integer \(at most \d+\), got 0"
    ):
        store.search_runs("churn", max_results=0)


def test_the_wide_frame_agrees_with_reading_each_run_on_its_own(store):
    rng = np.random.default_rng(7)
    for index in range(40):
        run_id = store.create_run("wide", name=f"w{index}", start_ms=index)
        # Each run gets a random subset of keys, so the pivot must place holes correctly.
        keys = [k for k in ("auc", "loss", "f1") if rng.random() < 0.6]
        store.write_batch(
            run_id,
            metrics=MetricBatch(
                tuple(keys),
                rng.random(len(keys)),
                np.zeros(len(keys), np.int64),
                np.zeros(len(keys), np.int64),
            )
            if keys
            else None,
            params={f"p{j}": int(rng.integers(5)) for j in range(4) if rng.random() < 0.7},
            tags={"half": "a"} if index % 2 else {},
        )
    frame = store.search_runs("wide")
    assert frame["name"].tolist() == [f"w{i}" for i in range(39, -1, -1)]
    for row in frame.to_dict("records"):
        run = store.get_run(row["run_id"])
        for column, value in row.items():
            kind, _, key = column.partition(".")
            if kind == "metrics":
                expected = run.metrics.get(key)
                assert (np.isnan(value) and expected is None) or value == expected
            elif kind == "params":
                assert value == run.params.get(key)
            elif kind == "tags":
                assert value == run.tags.get(key)


def test_params_logged_in_several_calls_all_reach_the_search_frame(store):
    run_id = store.create_run("packed")
    store.write_batch(run_id, params={"a": 1, "b": "x"})
    store.write_batch(run_id, params={"a": 1, "c": 2.5})  # "a" again, unchanged: no copy
    other = store.create_run("packed", start_ms=0)
    frame = store.search_runs("packed")
    assert frame["run_id"].tolist() == [run_id, other]
    assert frame["params.a"].tolist() == ["1", None]
    assert frame["params.b"].tolist() == ["x", None]
    assert frame["params.c"].tolist() == ["2.5", None]
    with store.db.read() as connection:
        packed, count = connection.execute(
            sa.select(tables.runs.c.params_packed, tables.runs.c.param_count).where(
                tables.runs.c.run_id == run_id
            )
        ).one()
    assert (packed, count) == ("a\x1f1\x1fb\x1fx\x1fc\x1f2.5", 3)


def test_a_param_holding_the_packing_separator_is_read_whole(store):
    tricky = "left\x1fright"
    first = store.create_run("sep", start_ms=1)
    store.write_batch(first, params={"odd": tricky, "key": "v"})
    second = store.create_run("sep", start_ms=2)
    store.write_batch(second, params={"odd": "plain"})
    frame = store.search_runs("sep")
    assert frame["params.odd"].tolist() == ["plain", tricky]
    assert frame["params.key"].tolist() == [None, "v"]
    assert store.search_runs("sep", f"params.odd = 'left{chr(31)}right'")["run_id"].tolist() == [
        first
    ]
