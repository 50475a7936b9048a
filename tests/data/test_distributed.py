"""Profiles, schemas, validation and drift on a Dask frame equal the pandas path's on the
same rows, computed on a real two-worker LocalCluster of processes."""

from __future__ import annotations

import datetime as dt
import os
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from opsloop.data.distributed import PartitionDtypeError, read_parquet_dask  # noqa: E402
from opsloop.data.distributed.drift import reference_profile  # noqa: E402
from opsloop.data.drift import ReferenceProfile, compare  # noqa: E402
from opsloop.data.profile import profile  # noqa: E402
from opsloop.data.schema import infer_schema, validate  # noqa: E402
from opsloop.datasets import ColumnShift, credit, drift_table  # noqa: E402

CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PARTS = 3


@pytest.fixture(scope="module")
def client(dask_client):
    import cloudpickle

    # The workers cannot import this test module: its functions travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield dask_client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def credit_with_gaps(n: int, seed: int) -> pd.DataFrame:
    frame = credit(n, seed=seed)
    rng = np.random.default_rng(seed)
    frame.loc[rng.random(n) < 0.05, "salary"] = np.nan
    frame.loc[rng.random(n) < 0.02, "region"] = None
    frame.loc[rng.random(n) < 0.01, "commission"] = np.inf
    return frame


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """The same 6,000 rows in memory and as three Parquet files read lazily."""
    frame = credit_with_gaps(6000, seed=1)
    folder = tmp_path_factory.mktemp("training")
    size = len(frame) // PARTS
    for i in range(PARTS):
        frame.iloc[i * size : (i + 1) * size].to_parquet(folder / f"part-{i}.parquet", index=False)
    return pd.read_parquet(sorted(folder.glob("*.parquet"))), read_parquet_dask(folder)


def test_parquet_directory_is_read_lazily_one_partition_per_file(training):
    frame, ddf = training
    assert ddf.npartitions == PARTS
    assert list(ddf.columns) == list(frame.columns)


def test_profile_counts_and_moments_equal_the_pandas_profile(client, training):
    frame, ddf = training
    expected, got = profile(frame), profile(ddf)
    assert got.n_rows == expected.n_rows == 6000
    assert got.names == expected.names
    for want, have in zip(expected, got, strict=True):
        assert (have.logical_type, have.count, have.null_count, have.invalid_count) == (
            want.logical_type,
            want.count,
            want.null_count,
            want.invalid_count,
        ), want.name
        if want.numeric is not None:
            a, b = want.numeric, have.numeric
            assert (b.count, b.n_zero, b.n_pos_inf, b.minimum, b.maximum) == (
                a.count,
                a.n_zero,
                a.n_pos_inf,
                a.minimum,
                a.maximum,
            )
            assert b.sum == a.sum and b.mean == a.mean  # exact sums, rounded once
            for name in ("variance", "std"):
                assert getattr(b, name)() == pytest.approx(getattr(a, name)(), rel=1e-12)
            # Epoch seconds (~1.7e9) with a spread of days: both paths' skewness and
            # kurtosis lie within 2e-12 of the exact value (computed in fractions), so
            # they are compared absolutely there.
            tolerance = {"abs": 1e-11} if want.logical_type == "datetime" else {"rel": 1e-12}
            for name in ("skewness", "kurtosis"):
                assert getattr(b, name) == pytest.approx(getattr(a, name), **tolerance)
        if want.text is not None:
            assert have.frequencies.counts == want.frequencies.counts
            assert have.frequencies.is_exact == want.frequencies.is_exact
            # Beyond max_exact_values the distinct count is an HLL sketch's: the true count
            # lies within its stated bounds (3 standard deviations).
            low, high = have.frequencies.distinct_bounds(3)
            assert low <= frame[want.name].nunique() <= high, want.name


def test_profile_quantiles_lie_within_the_sketch_bound(client, training):
    frame, ddf = training
    got = profile(ddf)
    for name in ("salary", "loan_amount", "house_value"):
        values = np.sort(frame[name].to_numpy(dtype=float))
        values = values[np.isfinite(values)]
        summary = got[name].numeric
        bound = summary.quantile_rank_error
        assert 0 < bound < 0.05  # the sketch is past its exact range at 6,000 values
        for q in (0.01, 0.25, 0.5, 0.75, 0.99):
            estimate = summary.quantile(q)
            below = np.searchsorted(values, estimate, side="left") / values.size
            at_or_below = np.searchsorted(values, estimate, side="right") / values.size
            assert below - bound <= q <= at_or_below + bound, (name, q)


def test_infer_schema_equals_the_pandas_schema(client, training):
    frame, ddf = training
    environments = {"training": [], "serving": ["default"]}
    expected = infer_schema(frame, environments=environments, created_at=CREATED)
    got = infer_schema(ddf, environments=environments, created_at=CREATED)
    assert got.to_dict() == expected.to_dict()
    assert got["region"].max_null_fraction > 0 and got["commission"].allow_non_finite


def test_identifiers_repeating_only_across_partitions_are_not_id_like(client):
    unique = pd.DataFrame({"id": np.arange(300), "code": np.arange(300) % 150})
    ddf = dd.from_pandas(unique, npartitions=2, sort=False)  # each half repeats no code
    schema = infer_schema(ddf, created_at=CREATED)
    assert schema.to_dict() == infer_schema(unique, created_at=CREATED).to_dict()
    assert (schema["id"].id_like, schema["code"].id_like) == (True, False)


def serving_batch() -> pd.DataFrame:
    frame = credit_with_gaps(3000, seed=2)
    frame.loc[[5, 1700, 2999], "age"] = [150, -3, 200]
    frame["gender"] = frame["gender"].astype(object)
    frame.loc[[10, 2500], "gender"] = ["unknown", "robot"]
    frame["purpose"] = frame["purpose"].astype(object)
    frame.loc[2001, "purpose"] = 17  # a number where text was trained
    frame.loc[2000:2200, "salary"] = np.nan  # nulls beyond the allowed share, all in one part
    return frame.drop(columns=["default"]).assign(extra=1)


def test_validate_gives_the_pandas_anomalies_with_global_positions(client, training):
    frame, _ = training
    schema = infer_schema(frame, environments={"serving": ["default"]}, created_at=CREATED)
    batch = serving_batch()
    expected = validate(batch, schema, "serving")
    import dask

    # Dask turns object columns into Arrow strings by default (the 17 would become "17").
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(batch, npartitions=PARTS, sort=False)
    got = validate(ddf, schema, "serving")
    assert got.anomalies == expected.anomalies
    kinds = {(a.column, a.kind) for a in got}
    assert {
        ("age", "out_of_range"),
        ("gender", "unknown_category"),
        ("purpose", "type_mismatch"),
        ("salary", "null_fraction_exceeded"),
        ("extra", "unexpected_column"),
    } <= kinds
    (unknown,) = got.select("gender", "unknown_category")
    assert unknown.examples == ((10, "unknown"), (2500, "robot"))
    assert got.partition_rows == (1000, 1000, 1000)
    assert [got.locate(p) for p, _ in unknown.examples] == [(0, 10), (2, 500)]


def test_a_column_whose_dtype_differs_between_files_is_a_clear_error(client, tmp_path):
    pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", "c"]}).to_parquet(tmp_path / "0.parquet")
    pd.DataFrame({"n": [1.5, None, 3.0], "s": ["a", "b", "c"]}).to_parquet(tmp_path / "1.parquet")
    ddf = read_parquet_dask(tmp_path)
    message = "column 'n' is float64 in partition 1 but int64 in the frame's dtypes"
    for run in (profile, infer_schema):
        with pytest.raises(PartitionDtypeError, match=message):
            run(ddf)
    # The documented way out: one dtype for every partition, as pandas.concat would make it.
    promoted = ddf.astype({"n": "float64"})
    whole = pd.concat([pd.read_parquet(tmp_path / f"{i}.parquet") for i in range(2)])
    got, expected = profile(promoted)["n"], profile(whole)["n"]
    assert (got.logical_type, got.null_count) == (expected.logical_type, expected.null_count)
    assert got.numeric.sum == expected.numeric.sum == 10.5
    assert got.numeric.quantiles([0.25, 0.5]) == expected.numeric.quantiles([0.25, 0.5])
    assert got.numeric.skewness == pytest.approx(expected.numeric.skewness, rel=1e-12)


def assert_same_drift(got, expected):
    assert got.drifted == expected.drifted and got.skipped == expected.skipped
    assert [c.column for c in got.columns] == [c.column for c in expected.columns]
    for have, want in zip(got.columns, expected.columns, strict=True):
        assert have.to_dict() == want.to_dict(), want.column


@pytest.fixture(scope="module")
def drift_frames():
    shifts = {
        "x01_lognormal": ColumnShift("mean", 0.5),
        "c01_50levels": ColumnShift("frequency", 0.1),
    }
    return drift_table(8000, seed=3, n_numeric=7, n_categorical=2, shifted=shifts)


def test_drift_on_a_dask_current_equals_the_in_memory_result(client, drift_frames):
    reference, current, truth = drift_frames
    expected = compare(reference, current)
    got = compare(reference, dd.from_pandas(current, npartitions=4, sort=False))
    assert_same_drift(got, expected)
    assert {c.column for c in got.columns if c.drifted} == set(truth.shifted)
    assert {c.kind for c in got.columns} == {"numeric", "discrete", "categorical"}


def test_a_reference_profile_from_dask_serves_in_memory_windows(client, drift_frames, tmp_path):
    reference, current, _ = drift_frames
    ddf = dd.from_pandas(reference, npartitions=3, sort=False)
    built = reference_profile(ddf)
    in_memory = ReferenceProfile.from_frame(reference)
    for name in in_memory:
        a, b = in_memory[name], built[name]
        assert (b.kind, b.n_rows, b.n_missing, b.counts) == (
            a.kind,
            a.n_rows,
            a.n_missing,
            a.counts,
        )
        if a.sample is not None:
            np.testing.assert_array_equal(b.sample.values, a.sample.values)
    saved = ReferenceProfile.load(built.save(tmp_path / "ref.npz"))
    window = current.iloc[:2000]
    assert_same_drift(compare(saved, window), compare(reference, window))


def test_drift_report_with_both_sides_on_dask_and_text_and_dates(client):
    from opsloop.reports.drift import drift_report

    reference, current = credit_with_gaps(4000, seed=4), credit_with_gaps(4000, seed=5)
    current["salary"] = current["salary"] * 1.1
    expected = drift_report(reference, current)
    got = drift_report(
        dd.from_pandas(reference, npartitions=2, sort=False),
        dd.from_pandas(current, npartitions=3, sort=False),
    )
    assert_same_drift(got, expected)
    assert got["salary"].drifted and got["applied_at"].kind == "datetime"
    assert got["purpose"].kind == expected["purpose"].kind


def test_a_duration_column_on_dask_is_compared_as_seconds_as_in_memory(client):
    from opsloop.reports.drift import drift_report

    rng = np.random.default_rng(11)
    seconds = rng.gamma(2.0, 600.0, 3000)
    reference = pd.DataFrame({"session": pd.to_timedelta(seconds[:1500], unit="s")})
    current = pd.DataFrame({"session": pd.to_timedelta(seconds[1500:] * 1.5, unit="s")})
    expected = drift_report(reference, current)
    got = drift_report(
        dd.from_pandas(reference, npartitions=2, sort=False),
        dd.from_pandas(current, npartitions=3, sort=False),
    )
    assert_same_drift(got, expected)
    ks = stats.ks_2samp(seconds[:1500], seconds[1500:] * 1.5)
    assert got["session"].kind == "numeric"
    assert (got["session"].statistic, got["session"].p_value) == (ks.statistic, ks.pvalue)


# -- a worker lost mid-computation ------------------------------------------------------------


def load_or_die(part: int, marker: str, every_time: bool) -> pd.DataFrame:
    """Partition ``part``; partition 1 kills its worker process (once, or every time)."""
    if part == 1 and (every_time or not os.path.exists(marker)):
        open(marker, "w").close()
        os._exit(1)
    return pd.DataFrame({"x": np.arange(part * 100, part * 100 + 100, dtype=float)})


def test_a_worker_killed_mid_computation_is_replaced_and_the_result_is_whole(client, tmp_path):
    ddf = dd.from_map(load_or_die, range(3), marker=str(tmp_path / "died"), every_time=False)
    got = profile(ddf)
    assert (tmp_path / "died").exists()  # a worker did die
    assert got.n_rows == 300 and got["x"].numeric.sum == float(np.arange(300).sum())


def set_allowed_failures(dask_scheduler, value: int) -> int:
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = value
    return previous


def test_a_computation_that_keeps_killing_workers_fails_loudly(client, tmp_path):
    ddf = dd.from_map(load_or_die, range(3), marker=str(tmp_path / "died"), every_time=True)
    # The scheduler gives up on a task after this many lost workers (3 by default; 0 here,
    # so that one loss is enough to show the failure).
    previous = client.run_on_scheduler(set_allowed_failures, value=0)
    try:
        # The scheduler names the task that was running when the worker died: the load, or
        # the checked step Dask fused with it, depending on how the graph was scheduled.
        with pytest.raises(distributed.scheduler.KilledWorker, match=r"load_or_die|_run_checked"):
            profile(ddf)
    finally:
        client.run_on_scheduler(set_allowed_failures, value=previous)


# -- the sketch mode --------------------------------------------------------------------------


def with_ties(frame: pd.DataFrame, seed: int, heavy: float) -> pd.DataFrame:
    """Adversarial ties: 300 levels (too many to be discrete), one of them holding a
    ``heavy`` share; and whole numbers whose ties fall where both samples tie."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    levels = rng.integers(0, 300, size=n).astype(float)
    levels[rng.random(n) < heavy] = 150.0
    frame = frame.assign(tied=levels)
    return frame.assign(rounded=np.round(rng.normal(heavy * 40, 60, size=n)))


@pytest.fixture(scope="module")
def sketch_frames():
    shifts = {
        "x01_lognormal": ColumnShift("mean", 0.05),
        "c00_2levels": ColumnShift("frequency", 0.05),
    }
    reference, current, _ = drift_table(
        24_000, seed=7, n_numeric=4, n_categorical=2, shifted=shifts
    )
    return with_ties(reference, 1, 0.3), with_ties(current, 2, 0.25)


def unadjusted(column) -> dict:
    """A column's document without what the multiple-testing correction decides."""
    document = column.to_dict()
    for key in ("p_adjusted", "drifted", "reason", "p_adjusted_bounds", "verdict_certain"):
        document.pop(key, None)
    document["statistics"] = [
        {k: v for k, v in s.items() if k not in ("p_adjusted", "drifted", "p_adjusted_bounds")}
        for s in document["statistics"]
    ]
    return document


def test_sketch_mode_bounds_hold_the_exact_statistics_and_chi_square_is_exact(
    client, sketch_frames
):
    reference, current = sketch_frames
    exact = compare(reference, current, mode="exact")
    got = compare(
        dd.from_pandas(reference, npartitions=3, sort=False),
        dd.from_pandas(current, npartitions=4, sort=False),
        mode="sketch",
    )
    assert (got.mode, got.mode_reason) == ("sketch", "mode='sketch' asked for")
    assert [c.column for c in got.columns] == [c.column for c in exact.columns]
    sketched = [c for c in got.columns if c.sketched]
    assert {c.column for c in sketched} == {
        "x00_normal",
        "x01_lognormal",
        "x02_exponential",
        "x03_uniform",
        "tied",
        "rounded",
    }
    for have in got.columns:
        want = exact[have.column]
        if not have.sketched:  # counts are exact: chi-square equals the exact mode's
            assert have.kind in ("categorical", "discrete")
            assert unadjusted(have) == unadjusted(want)
            # Holm adjusts it with the sketched columns' p-values: an interval here too.
            assert have.p_adjusted_bounds[0] <= want.p_adjusted <= have.p_adjusted_bounds[1]
            continue
        eps_ref, eps_cur = have.rank_errors
        assert 0 < eps_ref < 0.01 and 0 < eps_cur < 0.01  # past the sketch's exact range
        low, high = have.statistic_bounds
        assert high - low <= 2 * (eps_ref + eps_cur) + 1e-15
        assert low <= want.statistic <= high, have.column
        # 24,000 rows a side: the exact mode's p-value is scipy's large-sample one, which
        # the bound on D carries over to.
        assert have.p_value_bounds[0] <= want.p_value <= have.p_value_bounds[1], have.column
        assert have.p_adjusted_bounds[0] <= want.p_adjusted <= have.p_adjusted_bounds[1]
        w_low, w_high = have.statistics[1].statistic_bounds
        assert have.statistics[1].test == "wasserstein"
        assert w_low <= want.statistics[1].statistic <= w_high, have.column
        document = have.to_dict()["sketch"]
        assert document["confidence"] == 0.99
        assert document["statistic_bounds"] == [low, high]
    assert got["x01_lognormal"].drifted and got["x01_lognormal"].verdict_certain
    assert got["c00_2levels"].drifted == exact["c00_2levels"].drifted


def test_auto_mode_is_exact_when_the_values_fit_and_says_why(client, sketch_frames):
    reference, current = sketch_frames
    got = compare(reference, dd.from_pandas(current, npartitions=2, sort=False))
    assert got.mode == "exact"
    assert got.mode_reason.startswith("exact: the sorted values (1.1 MiB) against 50% of")
    assert "(the workers' memory limits (n = 2) " in got.mode_reason
    assert_same_drift(got, compare(reference, current))


def test_auto_mode_sketches_what_does_not_fit_the_workers_memory(sketch_frames):
    import dask

    reference, current = sketch_frames
    # A worker whose memory limit (1 MiB) is below the sorted values' 1.1 MiB; its memory
    # manager is off, so that the limit is only a number to decide by.
    off = {
        f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause", "terminate")
    }
    with (
        dask.config.set(off),
        distributed.LocalCluster(
            n_workers=1, processes=False, memory_limit="1MiB", dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = compare(reference, dd.from_pandas(current, npartitions=2, sort=False))
    assert got.mode == "sketch"
    assert got.mode_reason.startswith(
        "sketch: the sorted values (1.1 MiB) against 50% of 1.0 MiB "
        "(the workers' memory limits (n = 1) 1.0 MiB, available here "
    )
    assert got.mode_reason.endswith(") do not fit")
    assert got.to_dict()["dataset"]["mode"] == "sketch"
    assert all(c.sketched for c in got.columns if c.kind == "numeric")


def flat_merge(ddf, plan: dict, sketch_k: int) -> dict:
    """The sketch mode's summaries as the client merged them before the tree reduction:
    every partition's summaries gathered, then merged left to right."""
    from opsloop.data.distributed.drift import _numeric_or_discrete, _summarize_partition
    from opsloop.data.distributed.frames import map_partitions_checked
    from opsloop.data.drift.summary import merge_summaries

    parts = map_partitions_checked(ddf, _summarize_partition, plan, sketch_k)
    return {
        name: _numeric_or_discrete(name, [p[name] for p in parts])
        if kind == "number"
        else merge_summaries([p[name] for p in parts])
        for name, kind in plan.items()
    }


def sketch_plan(frame: pd.DataFrame) -> dict:
    return {
        name: "number" if pd.api.types.is_numeric_dtype(frame[name]) else "categorical"
        for name in frame.columns
    }


def test_sketches_merged_on_the_workers_equal_the_flat_merge_in_the_exact_range(client):
    from opsloop.data.distributed.drift import summarize_columns_dask

    # 900 rows: a k = 1000 sketch still holds every value, so merging in a tree or in a row
    # gives the same sketch, value for value.
    reference, _, _ = drift_table(900, seed=3, n_numeric=2, n_categorical=1, shifted={})
    frame = reference.assign(level=(np.arange(900) % 7).astype(float))
    ddf = dd.from_pandas(frame, npartitions=9, sort=False)
    plan = sketch_plan(frame)
    flat = flat_merge(ddf, plan, 1000)
    tree = summarize_columns_dask(
        ddf, {n: None if k == "number" else k for n, k in plan.items()}, sketch_k=1000
    )
    assert [tree[n].kind for n in plan] == [flat[n].kind for n in plan]
    assert {tree[n].kind for n in plan} == {"numeric", "discrete", "categorical"}
    for name in plan:
        have, want = tree[name], flat[name]
        assert (have.n_rows, have.n_missing, have.n_invalid) == (
            want.n_rows,
            want.n_missing,
            want.n_invalid,
        )
        assert have.counts == want.counts, name
        if want.sample is not None:
            assert have.sample.rank_error == want.sample.rank_error == 0.0
            for a, b in zip(have.sample.cdf_steps(), want.sample.cdf_steps(), strict=True):
                np.testing.assert_array_equal(a, b)
            assert (have.sample.n, have.sample.minimum, have.sample.maximum) == (
                want.sample.n,
                want.sample.minimum,
                want.sample.maximum,
            )
            assert have.sample.moments.mean == pytest.approx(want.sample.moments.mean, rel=1e-12)


def test_sketches_merged_on_the_workers_keep_the_counts_and_the_rank_bound(client, sketch_frames):
    from opsloop.data.distributed.drift import summarize_columns_dask

    reference, _ = sketch_frames
    ddf = dd.from_pandas(reference, npartitions=10, sort=False)  # two levels of merges
    plan = sketch_plan(reference)
    flat = flat_merge(ddf, plan, 200)
    with distributed.get_task_stream(client) as stream:
        tree = summarize_columns_dask(ddf, dict.fromkeys(plan), sketch_k=200)
    # Ten partitions' sketches merged on the workers, eight a task: two merges, then one
    # whose result alone reaches this process.
    merges = [t for t in stream.data if str(t["key"]).startswith("_merge_in_order")]
    assert len(merges) == 3
    for name in plan:
        have, want = tree[name], flat[name]
        assert (have.kind, have.n_rows, have.n_missing, have.counts) == (
            want.kind,
            want.n_rows,
            want.n_missing,
            want.counts,
        ), name
        if want.sample is None:
            continue
        # KLL compacts at random, so past its exact range two merges of the same sketches
        # differ; both estimate the true CDF within the stated rank error.
        values = np.sort(reference[name].to_numpy(dtype=float))
        values = values[np.isfinite(values)]
        assert (have.sample.n, have.sample.minimum, have.sample.maximum) == (
            values.size,
            values[0],
            values[-1],
        )
        assert have.sample.moments.mean == pytest.approx(want.sample.moments.mean, rel=1e-12)
        assert have.sample.std() == pytest.approx(want.sample.std(), rel=1e-12)
        eps = have.sample.rank_error
        assert 0 < eps < 0.02
        points, shares = have.sample.cdf_steps()
        true = np.searchsorted(values, points, side="right") / values.size
        assert np.abs(shares - true).max() <= eps, name


def test_exact_passes_carry_the_counted_columns_with_the_first_sampled_pass():
    from opsloop.data.distributed.drift import column_passes

    kinds = {
        "x1": "numeric",
        "c1": "categorical",
        "x2": "number",
        "b": "bool",
        "t": "text",
        "d": "discrete",
        "when": "datetime",
    }
    # Four columns send sorted values: two passes of two; the three counted ones go first.
    assert column_passes(kinds, 2) == [["c1", "b", "d", "x1", "x2"], ["t", "when"]]
    assert column_passes(kinds, 8) == [["c1", "b", "d", "x1", "x2", "t", "when"]]
    assert column_passes({"c": "categorical", "d": "discrete"}, 1) == [["c", "d"]]
    assert column_passes({"x": "numeric"}, 1) == [["x"]] and column_passes({}, 3) == []
    with pytest.raises(ValueError, match="per_pass must be at least 1, got 0"):
        column_passes(kinds, 0)


def test_exact_drift_in_one_column_a_pass_equals_the_in_memory_result(
    client, drift_frames, monkeypatch
):
    import opsloop.data.distributed.drift as distributed_drift

    # Every sampled column in a pass of its own, the counted ones with the first: the
    # passes change what each read carries, never the result.
    monkeypatch.setattr(distributed_drift, "COLUMNS_PER_PASS", 1)
    reference, current, _ = drift_frames
    got = compare(
        dd.from_pandas(reference, npartitions=2),
        dd.from_pandas(current, npartitions=PARTS),
        mode="exact",
    )
    assert_same_drift(got, compare(reference, current))
    assert {c.kind for c in got.columns} == {"numeric", "discrete", "categorical"}
