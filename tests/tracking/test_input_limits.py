"""The Python API refuses what the database could not store or give back: integers beyond
their column, times beyond a timestamp's span, overlong names and texts, and NUL characters
(which PostgreSQL refuses in text), each with a ValueError naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.tracking.capture import CodeVersion
from opsloop.tracking.filter_parser import FilterSyntaxError, parse_filter
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.records import DatasetInput

NUL = "a\x00b"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x" * 251}, "run name: 251 characters; the limit is 250"),
        ({"name": NUL}, "run name: NUL characters are not allowed"),
        ({"tags": {"team": NUL}}, "tag 'team': NUL characters are not allowed"),
        ({"command": "x" * 10_001}, "command: 10001 characters; the limit is 10000"),
        ({"code": CodeVersion("c" * 65, None, None, None)}, "git commit: 65 characters"),
        ({"start_ms": 10**19}, "start_ms must be an integer from -9223372036854 to"),
        ({"start_ms": 2**62}, "start_ms must be an integer from"),
    ],
)
def test_create_run_refuses_what_the_database_could_not_keep(store, fields, message):
    with pytest.raises(ValueError, match=message):
        store.create_run("e", **fields)
    assert store.list_experiments().empty


def test_writes_refuse_nul_and_out_of_range_values_naming_the_field(store):
    run_id = store.create_run("e")
    with pytest.raises(ValueError, match="param 'depth': NUL characters are not allowed"):
        store.write_batch(run_id, params={"depth": NUL})
    with pytest.raises(ValueError, match="end_ms must be an integer from"):
        store.end_run(run_id, "FINISHED", 10**19)
    with pytest.raises(ValueError, match="end_ms must be an integer from"):
        store.write_batch(run_id, status="FINISHED", end_ms=-(10**19))
    late = MetricBatch(
        ("auc", "loss"), np.array([0.5, 0.1]), np.array([0, 0]), np.array([1_000, 2**62])
    )
    with pytest.raises(ValueError, match="metric 'loss': timestamp_ms must be from"):
        store.write_batch(run_id, late)
    with pytest.raises(ValueError, match="artifact path: NUL characters are not allowed"):
        store.log_artifact(run_id, b"x", NUL)
    with pytest.raises(ValueError, match="n_columns must be an integer from 0 to 2147483647"):
        store.log_dataset(run_id, DatasetInput("train", "a" * 64, 10, 2**31))
    with pytest.raises(ValueError, match="experiment description: NUL characters"):
        store.create_experiment("e", NUL)
    with pytest.raises(ValueError, match=r"max_results must be a positive integer \(at most"):
        store.search_runs("e", max_results=2**63)
    # Nothing was written by the refused calls.
    run = store.get_run(run_id)
    assert (run.params, run.metrics, run.artifacts, run.status) == ({}, {}, (), "RUNNING")


def test_filter_nesting_is_bounded_at_32():
    assert parse_filter("not " * 32 + "metrics.a > 1") is not None
    assert parse_filter("(" * 32 + "metrics.a > 1" + ")" * 32) is not None
    with pytest.raises(FilterSyntaxError, match="nest too deep at position 128; the limit is 32"):
        parse_filter("not " * 33 + "metrics.a > 1")
    with pytest.raises(FilterSyntaxError, match="nest too deep at position 80; the limit is 32"):
        parse_filter("not (" * 16 + "(metrics.a > 1" + ")" * 17)


def test_filter_integers_beyond_64_bits_are_refused():
    assert parse_filter("metrics.a > 9223372036854775807").value == 2**63 - 1
    assert parse_filter("metrics.a > -9223372036854775808").value == -(2**63)
    with pytest.raises(FilterSyntaxError, match="integer 9223372036854775808 at position 12"):
        parse_filter("metrics.a > 9223372036854775808")
