"""The feature-selection funnel's mergeable steps on a Dask frame give the in-memory funnel's
decisions and values on the same rows, computed on a real two-worker LocalCluster."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.feature_selection import f_regression

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from opsloop.data.distributed import read_parquet_dask  # noqa: E402
from opsloop.data.distributed import selection as distributed_selection  # noqa: E402
from opsloop.data.selection import (  # noqa: E402
    CategoricalRedundancy,
    FeatureFunnel,
    ModelImportance,
    NearZeroVariance,
    NullFraction,
    NumericRedundancy,
    Relevance,
    default_steps,
)
from opsloop.datasets import credit  # noqa: E402

#: The sums are added in another order (and standardised first): values agree with the
#: in-memory path's (scikit-learn's scoring functions, DataFrame.corr's r) to this.
RELATIVE = 1e-9


def assert_same_report(on_dask, in_memory) -> None:
    got, want = on_dask.report_, in_memory.report_
    assert got.kept == want.kept
    assert got.dropped == want.dropped
    assert got.counts == want.counts
    assert (got.n_rows, got.target, got.task) == (want.n_rows, want.target, want.task)
    for have, expected in zip(got.columns, want.columns, strict=True):
        assert (have.column, have.kind, have.kept, have.step, have.statistic) == (
            expected.column,
            expected.kind,
            expected.kept,
            expected.step,
            expected.statistic,
        )
        assert have.redundant_with == expected.redundant_with, have.column
        assert have.reason == expected.reason, have.column
        assert have.null_fraction == expected.null_fraction  # exact counts
        assert have.top_share == expected.top_share, have.column  # exact counts
        for name in ("value", "threshold", "relevance"):
            a, b = getattr(have, name), getattr(expected, name)
            assert (a is None) == (b is None), (have.column, name)
            if b is not None:
                assert a == pytest.approx(b, rel=RELATIVE), (have.column, name)
    np.testing.assert_array_equal(on_dask.support_, in_memory.support_)
    np.testing.assert_array_equal(
        on_dask.get_feature_names_out(), in_memory.get_feature_names_out()
    )


def fitted_both_ways(frame: pd.DataFrame, target: str, steps, ddf=None, task="auto"):
    X, y = frame.drop(columns=[target]), frame[target]
    in_memory = FeatureFunnel(steps=steps, task=task).fit(X, y)
    ddf = dd.from_pandas(frame, npartitions=5, sort=False) if ddf is None else ddf
    on_dask = FeatureFunnel(steps=steps, task=task).fit(ddf.drop(columns=[target]), ddf[target])
    return on_dask, in_memory


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    """Breast cancer's 569 rows, in memory and as four Parquet files read lazily."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(malignant=1 - y)
    folder = tmp_path_factory.mktemp("cancer")
    for i, start in enumerate(range(0, len(frame), 150)):
        frame.iloc[start : start + 150].to_parquet(folder / f"part-{i}.parquet", index=False)
    return frame, read_parquet_dask(folder)


@pytest.mark.parametrize("score_func", ["f_classif", "chi2"])
def test_breast_cancer_redundancy_and_relevance_equal_the_in_memory_funnel(
    dask_client, cancer, score_func
):
    frame, ddf = cancer
    assert ddf.npartitions == 4
    steps = [
        NullFraction(),
        NumericRedundancy(threshold=0.9),
        Relevance(score_func=score_func, k=8),
    ]
    on_dask, in_memory = fitted_both_ways(frame, "malignant", steps, ddf=ddf)
    report = on_dask.report_
    assert report.counts == [30, 30, 21, 8]  # nine redundant columns, then the best eight
    assert report["mean perimeter"].redundant_with == "worst perimeter"
    assert report.task == "classification"
    assert_same_report(on_dask, in_memory)
    # transform picks the kept columns of the Dask frame, lazily.
    kept = on_dask.transform(ddf.drop(columns=["malignant"]))
    assert list(kept.columns) == report.kept
    pd.testing.assert_frame_equal(kept.compute().reset_index(drop=True), frame[report.kept])


def test_diabetes_regression_scores_equal_the_in_memory_funnel(dask_client):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.assign(progression=y)
    steps = [NumericRedundancy(threshold=0.85), Relevance(score_func="f_regression", k=5)]
    # Its target holds whole numbers, which scikit-learn's rule would call classes.
    on_dask, in_memory = fitted_both_ways(frame, "progression", steps, task="regression")
    assert on_dask.report_.task == "regression"
    assert on_dask.report_.counts == [10, 9, 5]
    assert on_dask.report_["s2"].redundant_with == "s1"
    assert_same_report(on_dask, in_memory)


@pytest.fixture(scope="module")
def applicants():
    """Credit applications with missing values, categories (one a coarser copy of another)
    and text."""
    frame = credit(4000, seed=5).drop(columns=["applied_at"])
    rng = np.random.default_rng(5)
    frame.loc[rng.random(len(frame)) < 0.05, "salary"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.03, "region"] = None
    # Relabelled with two regions merged: as redundant, but less related to the target (an
    # exact relabelling would tie with it, and rounding would pick between the two).
    merged = frame["region"].astype(object).replace({"lakeside": "coast"})
    frame["region_code"] = merged.map(lambda v: None if pd.isna(v) else f"R-{v}")
    frame["salary_monthly"] = frame["salary"] / 12 + rng.normal(size=len(frame))
    return frame


@pytest.mark.parametrize(
    ("target", "score_func", "task"),
    [("default", "f_classif", "auto"), ("loan_amount", "f_regression", "regression")],
)
def test_categories_missing_values_and_both_tasks_equal_the_in_memory_funnel(
    dask_client, applicants, target, score_func, task
):
    steps = [
        NullFraction(threshold=0.5),
        NumericRedundancy(threshold=0.9),
        CategoricalRedundancy(threshold=0.9),
        Relevance(score_func=score_func, k=5),
    ]
    on_dask, in_memory = fitted_both_ways(applicants, target, steps, task=task)
    report = on_dask.report_
    assert report.task == ("classification" if target == "default" else "regression")
    # The relabelled copy and the rescaled salary go as redundant, with their partner named.
    pairs = {(c.column, c.redundant_with) for c in report.columns if c.redundant_with}
    assert len(pairs & {("region", "region_code"), ("region_code", "region")}) == 1
    assert len(pairs & {("salary", "salary_monthly"), ("salary_monthly", "salary")}) == 1
    assert report["region"].null_fraction == applicants["region"].isna().mean()
    assert_same_report(on_dask, in_memory)


def test_steps_that_do_not_merge_are_refused_naming_them(dask_client, cancer):
    frame, ddf = cancer
    X, y = ddf.drop(columns=["malignant"]), ddf["malignant"]
    with pytest.raises(ValueError) as refused:
        FeatureFunnel(steps=[NearZeroVariance(), ModelImportance()]).fit(X, y)
    message = str(refused.value)
    assert message.startswith("on a Dask frame the funnel runs only steps whose statistics")
    assert "near_zero_variance" not in message
    assert "model_importance fits a model on the rows" in message
    assert "funnel.transform(ddf).sample(frac=...).compute()" in message
    with pytest.raises(ValueError, match="relevance with mutual_info_classif"):
        FeatureFunnel(steps=[Relevance(score_func="mutual_info_classif")]).fit(X, y)
    with pytest.raises(TypeError, match="y must be a Dask Series partitioned like X"):
        FeatureFunnel(steps=[Relevance()]).fit(X, frame["malignant"])


def test_a_target_with_missing_values_is_refused_as_in_memory(dask_client, cancer):
    frame, _ = cancer
    broken = frame.assign(malignant=frame["malignant"].astype(float))
    broken.loc[[3, 400], "malignant"] = np.nan
    ddf = dd.from_pandas(broken, npartitions=3)
    steps = [Relevance(k=3)]
    with pytest.raises(ValueError) as in_memory:
        FeatureFunnel(steps=steps).fit(broken.drop(columns=["malignant"]), broken["malignant"])
    with pytest.raises(ValueError) as on_dask:
        FeatureFunnel(steps=steps).fit(ddf.drop(columns=["malignant"]), ddf["malignant"])
    assert str(on_dask.value) == str(in_memory.value)
    assert str(on_dask.value).startswith("y has 2 missing value(s) of 569")


def exact_f_classif(values: pd.Series, classes: pd.Series) -> float:
    """The one-way ANOVA F of ``values`` by ``classes`` in exact rational arithmetic."""
    numbers = [Fraction(v) for v in values.tolist()]
    n, mean = len(numbers), sum(numbers, Fraction(0)) / len(numbers)
    groups: dict = {}
    for value, label in zip(numbers, classes.tolist(), strict=True):
        groups.setdefault(label, []).append(value)
    total = sum(((v - mean) ** 2 for v in numbers), Fraction(0))
    between = sum(
        (len(g) * (sum(g, Fraction(0)) / len(g) - mean) ** 2 for g in groups.values()),
        Fraction(0),
    )
    k = len(groups)
    return float((between / (k - 1)) / ((total - between) / (n - k)))


def wine_frame():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X.assign(cultivar=y), "cultivar", 3


def cancer_frame():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.assign(malignant=1 - y), "malignant", 4


@pytest.mark.parametrize("dataset", [cancer_frame, wine_frame], ids=["cancer", "wine"])
def test_the_default_funnel_keeps_what_the_in_memory_default_funnel_keeps(dask_client, dataset):
    frame, target, npartitions = dataset()
    X, y = frame.drop(columns=[target]), frame[target]
    in_memory = FeatureFunnel().fit(X, y)
    ddf = dd.from_pandas(frame, npartitions=npartitions, sort=False)
    on_dask = FeatureFunnel().fit(ddf.drop(columns=[target]), ddf[target])
    got, want = on_dask.report_, in_memory.report_
    assert [s.step for s in got.steps] == [s.name for s in default_steps()]
    # The model step ran, on the rows of the columns the other steps kept.
    assert got.steps[-1].description == want.steps[-1].description
    assert got.counts == want.counts
    assert got.kept == want.kept
    assert len(got.kept) == {"malignant": 4, "cultivar": 6}[target]
    for have, expected in zip(got.columns, want.columns, strict=True):
        assert (have.kept, have.step, have.redundant_with, have.reason) == (
            expected.kept,
            expected.step,
            expected.redundant_with,
            expected.reason,
        ), have.column
        # Counts, and the model step's figures (run in memory on the same rows), are exact.
        assert (have.null_fraction, have.top_share, have.importance) == (
            expected.null_fraction,
            expected.top_share,
            expected.importance,
        ), have.column
        if expected.value is not None and expected.step != "model_importance":
            assert have.value == pytest.approx(expected.value, rel=1e-12), have.column
        elif expected.step == "model_importance":
            assert have.value == expected.value, have.column
    # The F scores are functions of sums: the standardised sums give the exact F to 1e-12;
    # scikit-learn's raw sums lose digits on a column far from zero against its spread
    # (mean fractal dimension: 4e-11), so against them the bound is 1e-9.
    for decision in got.columns:
        if decision.relevance is not None:
            exact = exact_f_classif(frame[decision.column], y)
            assert decision.relevance == pytest.approx(exact, rel=1e-12), decision.column
            assert decision.relevance == pytest.approx(
                want[decision.column].relevance, rel=RELATIVE
            )
    np.testing.assert_array_equal(on_dask.support_, in_memory.support_)


def test_the_default_funnel_lists_its_model_step_as_not_run_when_its_rows_do_not_fit(
    dask_client, cancer, monkeypatch
):
    # No share of this machine's memory for gathered rows: the rows never fit.
    monkeypatch.setattr(distributed_selection, "GATHER_MEMORY_SHARE", 0.0)
    frame, ddf = cancer
    on_dask = FeatureFunnel().fit(ddf.drop(columns=["malignant"]), ddf["malignant"])
    in_memory = FeatureFunnel(steps=default_steps()[:-1]).fit(
        frame.drop(columns=["malignant"]), frame["malignant"]
    )
    report = on_dask.report_
    assert [s.step for s in report.steps] == [s.name for s in default_steps()]
    not_run = report.steps[-1]
    assert (not_run.step, not_run.n_in, not_run.n_dropped) == ("model_importance", 23, 0)
    assert not_run.description.startswith(
        "not run on a Dask frame: model_importance fits a model on the rows, and the rows of "
        "23 columns and the target (106.7 KiB) against 0% of "
    )
    assert not_run.description.endswith(
        "do not fit; run it in memory on a sample of the kept columns: "
        "funnel.transform(ddf).sample(frac=...).compute()"
    )
    # Nothing in breast cancer is near-constant (no value is any column's majority, so no
    # share is counted); seven radius, perimeter and area columns are redundant at r 0.95;
    # the 23 left pass the relevance step's k=50.
    assert report.counts == [30, 30, 30, 23, 23, 23, 23]
    assert all(c.top_share is None for c in report.columns)
    on_dask.report_ = dataclasses.replace(report, steps=report.steps[:-1])
    assert_same_report(on_dask, in_memory)


def test_near_zero_variance_on_diabetes_equals_the_in_memory_step(dask_client):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.assign(progression=y)
    steps = [NearZeroVariance(top_share=0.5, ratio=1.1), Relevance(score_func="f_regression")]
    on_dask, in_memory = fitted_both_ways(frame, "progression", steps, task="regression")
    sex = on_dask.report_["sex"]
    # sex takes two values, 235 and 207 times of 442: a majority 1.135 times the other.
    counts = X["sex"].value_counts()
    assert counts.tolist() == [235, 207]
    assert sex.step == "near_zero_variance"
    assert sex.value == 235 / 442
    assert (
        sex.reason
        == "top value in 53.2% of non-missing rows, 1.14x the second (limits 50% and 1.1x)"
    )
    assert on_dask.report_.dropped == ["sex"]
    assert_same_report(on_dask, in_memory)


def near_constant_frame(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Columns near-constant or not, with ties, missing values, integers, categories,
    booleans, text and signed zeros; the top value of "drifting" changes between the first
    partitions and the rest."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    position = np.arange(n)
    frame = pd.DataFrame(
        {
            "constant": 5.0,
            "flag": np.where(u < 0.97, 0, 1),
            # 95% ones, the rest split evenly between 2 and 3: the second value's count
            # is a tie.
            "tied_second": np.where(u < 0.95, 1.0, np.where(position % 2 == 0, 2.0, 3.0)),
            # Two values tied at the top: ratio 1.
            "tied_top": np.where(position % 2 == 0, "left", "right"),
            "continuous": rng.normal(size=n),
            "mostly_missing": np.where(rng.random(n) < 0.6, np.nan, np.round(u * 3)),
            "empty": np.nan,
            "count": pd.array(np.where(rng.random(n) < 0.99, 1, 2), dtype="Int64"),
            "level": pd.Categorical(
                np.where(u < 0.96, "a", np.where(u < 0.98, "b", "c")),
                categories=["a", "b", "c", "never"],
            ),
            "word": np.where(rng.random(n) < 0.93, "x", "y"),
            "rare": rng.random(n) < 0.01,
            "signed_zero": np.where(rng.random(n) < 0.5, -0.0, 0.0) + np.where(u > 0.985, 1.0, 0.0),
            "drifting": np.where(position < n // 5, 7.0, np.where(u < 0.99, 2.0, 7.0)),
            "ident": [f"id-{i}" for i in position],
        }
    )
    frame.loc[rng.random(n) < 0.1, "count"] = pd.NA
    frame.loc[rng.random(n) < 0.05, "word"] = None
    frame["target"] = (rng.random(n) < 0.3).astype(int)
    return frame


@pytest.mark.parametrize(
    "step",
    [NearZeroVariance(), NearZeroVariance(top_share=0.95, ratio=50), NearZeroVariance(0.3, 2.0)],
)
def test_near_zero_variance_equals_the_in_memory_step_on_awkward_columns(dask_client, step):
    frame = near_constant_frame()
    steps = [NullFraction(threshold=0.9), step]
    on_dask, in_memory = fitted_both_ways(frame, "target", steps)
    report = on_dask.report_
    assert report["empty"].step == "null_fraction"
    assert report["constant"].reason == "a single value in every non-missing row"
    signed = frame["signed_zero"]
    share = float((signed == 0).mean())  # -0.0 and 0.0 are one value, in memory as here
    assert report["signed_zero"].top_share == share
    assert report["tied_top"].top_share == 0.5 and report["tied_top"].kept
    if step.top_share == 0.9:
        # flag: 97.x% zeros, over 19 times the ones.
        zeros = int((frame["flag"] == 0).sum())
        assert report["flag"].value == zeros / len(frame)
        assert report["flag"].reason.startswith(f"top value in {zeros / len(frame):.1%}")
        assert report["continuous"].top_share is None  # no majority: not counted in memory
    assert_same_report(on_dask, in_memory)


def diabetes_with_target(target: pd.Series) -> pd.DataFrame:
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    return X.assign(progression=target)


def object_frame(frame: pd.DataFrame, npartitions: int = 4):
    # dd.from_pandas turns object columns into Arrow strings by default ("151.0"), which
    # are labels; a frame whose partitions hold the Python objects keeps them.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(frame, npartitions=npartitions, sort=False)


@pytest.mark.parametrize(
    "as_object",
    [
        pytest.param(lambda y: y.astype(object), id="python-floats"),
        pytest.param(lambda y: y.map(lambda v: Decimal(str(v))).astype(object), id="decimals"),
    ],
)
@pytest.mark.parametrize("task", ["auto", "regression"])
def test_an_object_regression_target_gives_the_in_memory_task_and_scores(
    dask_client, as_object, task
):
    _, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = diabetes_with_target(as_object(y))
    ddf = object_frame(frame)
    assert ddf["progression"].dtype == object
    steps = [NumericRedundancy(threshold=0.85), Relevance(score_func="auto", k=5)]
    on_dask, in_memory = fitted_both_ways(frame, "progression", steps, ddf=ddf, task=task)
    # 214 distinct whole numbers: a regression target by the label rule, as in float64.
    assert on_dask.report_.task == in_memory.report_.task == "regression"
    assert_same_report(on_dask, in_memory)
    # And the scores are those of the float64 target: scikit-learn's f_regression.
    as_floats = FeatureFunnel(steps=steps, task=task).fit(frame.drop(columns="progression"), y)
    for have, want in zip(on_dask.report_.columns, as_floats.report_.columns, strict=True):
        if want.value is not None:
            assert have.value == pytest.approx(want.value, rel=RELATIVE), have.column
    kept = on_dask.report_.kept
    scores = f_regression(frame[kept], y)[0]
    for name, score in zip(kept, scores, strict=True):
        assert on_dask.report_[name].relevance == pytest.approx(score, rel=RELATIVE)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda y: y.map(str).astype(object), id="numeric-strings"),
        pytest.param(lambda y: y > 150, id="booleans"),
        pytest.param(lambda y: y.astype("category"), id="categorical-numbers"),
    ],
)
def test_targets_the_in_memory_path_converts_for_regression_are_accepted_alike(dask_client, target):
    _, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = diabetes_with_target(target(y))
    steps = [Relevance(score_func="f_regression", k=4)]
    on_dask, in_memory = fitted_both_ways(
        frame, "progression", steps, ddf=object_frame(frame), task="regression"
    )
    assert on_dask.report_.task == "regression"
    assert_same_report(on_dask, in_memory)
    # Left to the rule, none of them is a regression target (strings, booleans and a
    # categorical are labels), on either path.
    on_dask, in_memory = fitted_both_ways(
        frame, "progression", [Relevance(k=4)], ddf=object_frame(frame)
    )
    assert on_dask.report_.task == in_memory.report_.task == "classification"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1.5", "high"] * 50, "regression needs a numeric y, got values like '1.5'"),
        ([1.5, float("inf")] + [2.5] * 98, "y has non-finite (NaN or infinite) values; a"),
        ([f"{v / 7:.3f}" for v in range(99)] + ["nan"], "y has non-finite (NaN or infinite)"),
        (["7"] * 100, "y is constant (every value is 7)"),
        (["7"] * 50 + ["7.0"] * 50, "y is constant (every value is 7)"),
    ],
)
def test_object_targets_refused_for_regression_are_refused_alike(dask_client, values, message):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=100), "y": pd.Series(values, dtype=object)})
    steps = [Relevance(score_func="f_regression", k=1)]
    with pytest.raises(ValueError) as in_memory:
        FeatureFunnel(steps=steps, task="regression").fit(frame[["x"]], frame["y"])
    ddf = object_frame(frame, npartitions=3)
    with pytest.raises(ValueError) as on_dask:
        FeatureFunnel(steps=steps, task="regression").fit(ddf[["x"]], ddf["y"])
    assert str(on_dask.value) == str(in_memory.value)
    assert str(on_dask.value).startswith(message)


def test_the_model_steps_rows_travel_partition_by_partition_to_the_client(dask_client, cancer):
    from dask.utils import key_split
    from distributed import get_task_stream

    frame, ddf = cancer
    with get_task_stream(client=dask_client) as stream:
        on_dask = FeatureFunnel().fit(ddf.drop(columns=["malignant"]), ddf["malignant"])
    prefixes = {key_split(task["key"]) for task in stream.data}
    # No task joins the partitions on a worker (dask-expr's compute() would repartition the
    # frame into one partition there first).
    assert not {p for p in prefixes if p.startswith("repartition")}, prefixes
    in_memory = FeatureFunnel().fit(frame.drop(columns=["malignant"]), frame["malignant"])
    assert on_dask.report_.steps[-1].description == in_memory.report_.steps[-1].description
    assert_same_report(on_dask, in_memory)


def test_the_model_step_is_not_run_when_a_partition_exceeds_half_a_workers_memory_limit(cancer):
    from distributed import Client, LocalCluster

    frame, ddf = cancer
    # Workers in this process with a 52 KiB limit that is reported, never enforced.
    quiet = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")}
    with (
        dask.config.set(quiet),
        LocalCluster(
            n_workers=1, processes=False, memory_limit="52KiB", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        size = distributed_selection.gather_size(
            ddf, ddf["malignant"], [c for c in frame.columns if c != "malignant"][:23]
        )
        # 150 rows of 23 float64 columns and an int64 target: 8 bytes a value.
        assert (size.total, size.largest) == (569 * 24 * 8, 150 * 24 * 8)
        on_dask = FeatureFunnel().fit(ddf.drop(columns=["malignant"]), ddf["malignant"])
        client.close()
    not_run = on_dask.report_.steps[-1]
    assert (not_run.step, not_run.n_dropped) == ("model_importance", 0)
    assert (
        "; the largest partition (28.1 KiB) against 50% of 52.0 KiB, the smallest worker "
        "memory limit do not fit" in not_run.description
    )


def test_text_columns_the_model_step_does_not_read_are_not_gathered(
    dask_client, cancer, monkeypatch
):
    frame, _ = cancer
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    review = [" ".join(rng.choice(words, 60)) + f" #{i}" for i in range(len(frame))]
    frame = frame.assign(review=pd.Series(review, dtype=object))
    X, y = frame.drop(columns=["malignant"]), frame["malignant"]
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    gathered = []
    prepare = distributed_selection.prepare_columns

    def recording(columns):
        gathered.append(list(columns.columns))
        return prepare(columns)

    monkeypatch.setattr(distributed_selection, "prepare_columns", recording)
    on_dask = FeatureFunnel().fit(ddf.drop(columns=["malignant"]), ddf["malignant"])
    in_memory = FeatureFunnel().fit(X, y)
    assert len(gathered) == 1
    assert "review" not in gathered[0]
    # The columns the model step read in memory, and those only.
    entering = [
        d.column
        for d in in_memory.report_.columns
        if (d.kept or d.step == "model_importance") and d.column != "review"
    ]
    assert gathered[0] == entering
    assert on_dask.report_["review"].kept == in_memory.report_["review"].kept
    assert assert_same_report(on_dask, in_memory) is None
    # The estimate of a text column is its deep memory, measured on every partition.
    size = distributed_selection.gather_size(ddf, ddf["malignant"], ["review"])
    assert size.total == frame[["review", "malignant"]].memory_usage(deep=True, index=False).sum()
    # Also where the first partition holds no row (a filter) or shorter texts than the rest.
    with dask.config.set({"dataframe.convert-string": False}):
        uneven = dd.from_pandas(frame, npartitions=4, sort=False)
        uneven = uneven.map_partitions(lambda part: part[part.index >= len(frame) // 4 + 1])
    size = distributed_selection.gather_size(uneven, uneven["malignant"], ["review"])
    kept = frame.iloc[len(frame) // 4 + 1 :][["review", "malignant"]]
    assert size.total == kept.memory_usage(deep=True, index=False).sum()


def test_a_categorical_spread_over_parquet_files_stays_categorical_for_the_model_step(
    dask_client, tmp_path
):
    # Each file knows its own categories: joined by pandas the column would be text, which
    # the model step leaves out; in memory it is a categorical the model reads.
    rng = np.random.default_rng(0)
    n = 3000
    code = rng.permutation(n) // 5
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "noise": rng.normal(size=n),
            "c": [f"L{v:03d}" for v in code],
            "y": ((x + rng.normal(size=600)[code] + 0.3 * rng.normal(size=n)) > 0).astype(int),
        }
    )
    for k in range(3):
        part = frame.iloc[k * 1000 : (k + 1) * 1000].copy()
        part["c"] = part["c"].astype("category")
        part.to_parquet(tmp_path / f"part{k}.parquet", index=False)
    ddf = dd.read_parquet(str(tmp_path))
    on_dask = FeatureFunnel().fit(ddf.drop(columns=["y"]), ddf["y"])
    read = ddf.compute()
    in_memory = FeatureFunnel().fit(read.drop(columns=["y"]), read["y"])
    assert in_memory.report_["c"].kind == on_dask.report_["c"].kind == "categorical"
    assert assert_same_report(on_dask, in_memory) is None
