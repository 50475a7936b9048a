"""The feature funnel as a scikit-learn transformer: decisions, report, awkward input."""

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from opsloop.data.selection import (
    CategoricalRedundancy,
    FeatureFunnel,
    ModelImportance,
    NearZeroVariance,
    NullFraction,
    NumericRedundancy,
    Relevance,
    SelectionReport,
)
from opsloop.datasets import credit

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def small_frame(n=2000, seed=0):
    """credit's columns plus one planted case per step."""
    frame = credit(n, seed=seed)
    y = frame.pop("default")
    rng = np.random.default_rng(seed)
    frame["sparse"] = np.where(rng.random(n) < 0.9, np.nan, rng.normal(size=n))
    frame["constant"] = 3.0
    frame["salary_copy"] = frame["salary"] * 1.1 + rng.normal(scale=500, size=n)
    # A relabelled copy ties with the original on every count; the earlier column stays.
    frame["education_copy"] = frame["education"].cat.rename_categories(lambda s: "e_" + s)
    return frame, y


FIVE_STEPS = [
    NullFraction(),
    NearZeroVariance(),
    NumericRedundancy(),
    CategoricalRedundancy(),
    Relevance(k=8),
]


def test_funnel_records_every_drop_with_its_statistic():
    frame, y = small_frame()
    funnel = FeatureFunnel(steps=FIVE_STEPS).fit(frame, y)
    report = funnel.report_
    assert report.counts == [17, 16, 15, 14, 13, 9]
    assert report.dropped_by("null_fraction") == ["sparse"]
    assert report.dropped_by("near_zero_variance") == ["constant"]
    assert report.dropped_by("numeric_redundancy") == ["salary_copy"]
    assert report.dropped_by("categorical_redundancy") == ["education_copy"]
    sparse = report["sparse"]
    assert (sparse.statistic, sparse.threshold) == ("null_fraction", 0.8)
    assert sparse.value == pytest.approx(frame["sparse"].isna().mean())
    copy = report["salary_copy"]
    assert copy.redundant_with == "salary"
    assert copy.value == pytest.approx(frame["salary"].corr(frame["salary_copy"]), abs=1e-9)
    assert report["education_copy"].redundant_with == "education"
    assert report["education_copy"].reason.endswith("which comes first")
    purpose = report["purpose"]
    assert purpose.kind == "text" and not purpose.kept and not purpose.judged
    assert report.not_judged == ["purpose"] and "purpose" not in report.dropped
    assert purpose.reason.startswith("text column: relevance cannot measure it")
    assert len(report.kept) == 8
    assert {"salary", "loan_amount", "education"} <= set(report.kept)
    assert list(funnel.get_feature_names_out()) == report.kept
    assert funnel.get_support().sum() == 8
    assert funnel.get_support(indices=True).tolist() == [
        i for i, c in enumerate(frame.columns) if c in report.kept
    ]


def test_report_frame_and_dict_are_complete_and_json_safe():
    frame, y = small_frame(800)
    report = FeatureFunnel(steps=FIVE_STEPS).fit(frame, y).report_
    table = report.to_frame()
    assert table["column"].tolist() == list(frame.columns)
    assert table.loc[table["column"] == "sparse", "step"].item() == "null_fraction"
    assert table["null_fraction"].notna().all()
    steps = report.steps_frame()
    assert steps["step"].tolist() == [s.name for s in FIVE_STEPS]
    assert (steps["n_out"] == steps["n_in"] - steps["n_dropped"]).all()
    document = json.loads(json.dumps(report.to_dict()))
    assert document["counts"] == report.counts
    assert document["task"] == "classification" and document["target"] == "default"
    with pytest.raises(KeyError, match="no column 'nope'"):
        report["nope"]


def test_transform_pipeline_and_clone():
    frame, y = small_frame(1500)
    pipeline = Pipeline(
        [
            ("select", FeatureFunnel(steps=[NullFraction(), NearZeroVariance(), Relevance(k=3)])),
            ("drop_text", "passthrough"),
        ]
    )
    out = pipeline.fit_transform(frame, y)
    assert list(out.columns) == list(pipeline[0].get_feature_names_out())
    numeric = frame.select_dtypes("number")
    model = Pipeline(
        [("select", FeatureFunnel(steps=[Relevance(k=2)])), ("model", LogisticRegression())]
    )
    model.fit(numeric, y)
    assert model.predict(numeric.iloc[:5]).shape == (5,)
    twin = clone(pipeline[0])
    assert not hasattr(twin, "report_") and twin.steps[2].k == 3


def test_transform_checks_columns_and_arrays_work():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[:, 3] = 1.0
    funnel = FeatureFunnel(steps=[NearZeroVariance()]).fit(X)
    assert funnel.get_feature_names_out().tolist() == ["x0", "x1", "x2"]
    assert funnel.transform(X).shape == (200, 3)
    with pytest.raises(ValueError, match="X has 2 features, but FeatureFunnel is expecting 4"):
        funnel.transform(X[:, :2])
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    fitted = FeatureFunnel(steps=[NearZeroVariance()]).fit(frame)
    with pytest.raises(ValueError, match="X lacks columns seen in fit: 'a'"):
        fitted.transform(frame.drop(columns="a"))
    assert list(fitted.transform(frame[["d", "c", "b", "a"]]).columns) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        fitted.get_feature_names_out(["x", "y", "z", "w"])


def test_integer_column_names_become_text():
    frame = pd.DataFrame(np.random.default_rng(1).normal(size=(50, 3)))
    frame[3] = np.nan
    funnel = FeatureFunnel(steps=[NullFraction()]).fit(frame)
    assert funnel.get_feature_names_out().tolist() == ["0", "1", "2"]
    assert funnel.transform(frame).shape == (50, 3)


# --- awkward input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.ones(100), r"y is constant \(every value is 1.0\)"),
        (np.full(100, np.nan), "y has no values: every value is missing"),
        (np.r_[np.zeros(50), np.ones(49), np.nan], r"y has 1 missing value\(s\) of 100"),
        (np.zeros(99), "y has 99 values but X has 100 rows"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(y, message):
    frame = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) % 7})
    with pytest.raises(ValueError, match=message):
        FeatureFunnel(steps=[Relevance(k=1)]).fit(frame, y)


def test_steps_needing_a_target_say_so():
    frame = pd.DataFrame({"a": np.arange(10.0)})
    with pytest.raises(ValueError, match=r"steps \['relevance'\] need a target: pass y"):
        FeatureFunnel(steps=[NullFraction(), Relevance()]).fit(frame)


def test_mixed_type_column_is_refused_naming_it():
    frame = pd.DataFrame({"ok": np.arange(6.0), "id": pd.Series([1, 2, "x3", 4, None, 6.5])})
    with pytest.raises(TypeError, match=r"column 'id' mixes value types \(float: 1, int: 3"):
        FeatureFunnel(steps=[NullFraction()]).fit(frame)


def test_empty_and_degenerate_frames():
    with pytest.raises(ValueError, match="X has no rows"):
        FeatureFunnel(steps=[NullFraction()]).fit(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    with pytest.raises(ValueError, match="X has no columns"):
        FeatureFunnel(steps=[NullFraction()]).fit(pd.DataFrame(index=range(3)))
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValueError, match=r"duplicate column names \['a'\]"):
        FeatureFunnel(steps=[NullFraction()]).fit(duplicated)
    infinite = pd.DataFrame({"a": [1.0, np.inf, 2.0]})
    with pytest.raises(ValueError, match="column 'a' has 1 infinite values"):
        FeatureFunnel(steps=[NullFraction()]).fit(infinite)


def test_bad_steps_are_refused():
    frame = pd.DataFrame({"a": np.arange(10.0)})
    with pytest.raises(TypeError, match=r"steps\[0\] must be a selection step"):
        FeatureFunnel(steps=["nulls"]).fit(frame)
    with pytest.raises(ValueError, match="'null_fraction' appears twice"):
        FeatureFunnel(steps=[NullFraction(), NullFraction(0.5)]).fit(frame)
    with pytest.raises(ValueError, match="task must be one of"):
        FeatureFunnel(steps=[NullFraction()], task="ranking").fit(frame)


def test_fewer_rows_than_columns_without_numpy_warnings():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(12, 40)), columns=[f"c{i}" for i in range(40)])
    frame["c1"] = frame["c0"] * 2
    frame["constant"] = 1.0
    frame["one_value"] = np.r_[5.0, np.full(11, np.nan)]
    frame["cat_a"] = pd.Categorical(list("ab") * 6)
    frame["cat_b"] = pd.Categorical(list("xy") * 6)
    y = np.r_[np.zeros(6), np.ones(6)]
    steps = [
        NullFraction(),
        NearZeroVariance(),
        NumericRedundancy(),
        CategoricalRedundancy(),
        Relevance(k=10),
        ModelImportance(threshold=None, k=5, cv=2),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        funnel = FeatureFunnel(steps=steps).fit(frame, y)
    report = funnel.report_
    assert report["c1"].redundant_with == "c0"
    assert report["cat_b"].redundant_with == "cat_a"
    assert report["one_value"].step == "null_fraction"
    assert report.counts[-1] == 5


def test_constant_column_statistics_are_nan_never_a_drop_reason():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "flat": 1.0, "b": rng.normal(size=100)})
    y = (frame["a"] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = FeatureFunnel(steps=[NumericRedundancy(0.5), Relevance(k=2)]).fit(frame, y)
    report = report.report_
    assert report["flat"].step == "relevance" and report["flat"].value is None
    assert "undefined (constant column)" in report["flat"].reason


def test_regression_target_and_default_steps():
    frame = credit(3000, seed=1)
    y = frame.pop("salary") / 1000 + frame["age"]
    funnel = FeatureFunnel().fit(frame, y)
    assert funnel.report_.task == "regression"
    assert [s.step for s in funnel.report_.steps][-2:] == ["relevance", "model_importance"]
    assert "age" in funnel.report_.kept


def test_planted_informative_columns_survive_the_wide_funnel(monkeypatch):
    # The benchmark's frame, smaller: the benchmark itself runs 100,000 x 1,000.
    spec = importlib.util.spec_from_file_location(
        "selection_data", BENCHMARKS / "selection_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "selection_data", module)
    spec.loader.exec_module(module)
    frame, planted = module.wide_frame(6000, columns=300, seed=0)
    y = frame.pop(module.TARGET)
    funnel = FeatureFunnel(
        steps=[
            NullFraction(),
            NearZeroVariance(),
            NumericRedundancy(),
            CategoricalRedundancy(),
            Relevance(k=30),
            ModelImportance(threshold=0.005),
        ]
    ).fit(frame, y)
    report = funnel.report_
    assert set(planted.informative) <= set(report.kept)
    assert set(planted.roles["mostly_null"]) == set(report.dropped_by("null_fraction"))
    assert set(planted.roles["constant"]) == set(report.dropped_by("near_zero_variance"))
    assert all(report[c].step is not None for c in planted.roles["noise"])
    assert len(report.kept) <= 10
    assert isinstance(report, SelectionReport)


def test_a_categorical_target_of_numbers_is_classes_in_memory_unless_regression_is_asked():
    from decimal import Decimal

    from sklearn.feature_selection import f_classif, f_regression

    from opsloop.data.selection.target import regression_numbers

    rng = np.random.default_rng(4)
    x = rng.normal(size=300)
    # Five distinct numbers held as a pandas categorical.
    numbers = np.round(np.clip(x * 2 + rng.normal(size=300), -2, 2)).astype(float)
    y = pd.Series(numbers).astype("category")
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=300)})
    steps = [Relevance(score_func="auto", k=2)]
    as_classes = FeatureFunnel(steps=steps).fit(X, y)
    assert as_classes.report_.task == "classification"
    want = f_classif(X, numbers)[0]
    assert as_classes.report_["x"].relevance == pytest.approx(want[0], rel=1e-9)
    as_numbers = FeatureFunnel(steps=steps, task="regression").fit(X, y)
    assert as_numbers.report_.task == "regression"
    want = f_regression(X, numbers)[0]
    assert as_numbers.report_["x"].relevance == pytest.approx(want[0], rel=1e-9)
    # Values no float holds are not numbers (they are refused, not an exception of their own).
    assert regression_numbers(np.array([10**400], dtype=object)) is None
    assert regression_numbers(np.array([Decimal("sNaN")], dtype=object)) is None
