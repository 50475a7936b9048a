"""One rule for the task of labels, shared by the funnel (in memory and on Dask), fairness
and the label-shift test, checked on scikit-learn's bundled data sets."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.feature_selection import f_classif, f_regression

from opsloop.analysis import fairness
from opsloop.data.label_task import MAX_CLASSES, infer_task
from opsloop.data.selection import FeatureFunnel, Relevance
from opsloop.data.selection.target import prepare_target


def test_whole_valued_float_target_with_many_values_is_regression_everywhere():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    # whole-valued floats, 214 distinct values: a quantity, not 214 classes
    assert np.array_equal(y, np.floor(y)) and y.nunique() == 214
    assert infer_task(y) == "regression"
    assert prepare_target(y, len(y)).task == "regression"
    funnel = FeatureFunnel(steps=[Relevance()]).fit(X, y)
    assert funnel.report_.task == "regression"
    frame = funnel.report_.to_frame().set_index("column")
    expected = f_regression(X, y)[0]
    np.testing.assert_allclose(frame.loc[list(X.columns), "relevance"], expected, rtol=1e-9)
    assert list(funnel.get_feature_names_out()) == list(X.columns)
    assert fairness(y, y + 1.0, {"sex": X["sex"] > 0}).task == "regression"


def test_integer_class_labels_stay_classification():
    X, y = load_wine(return_X_y=True, as_frame=True)
    assert infer_task(y) == "classification"
    funnel = FeatureFunnel(steps=[Relevance()]).fit(X, y)
    assert funnel.report_.task == "classification"
    frame = funnel.report_.to_frame().set_index("column")
    np.testing.assert_allclose(
        frame.loc[list(X.columns), "relevance"], f_classif(X, y)[0], rtol=1e-9
    )
    assert fairness(y, y, {"g": X["alcohol"] > 13}).task == "multiclass"


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        (pd.Categorical([1.5, 2.5, 1.5]), "classification"),
        ([0.0, 1.0, 2.0], "classification"),
        ([0.5, 1.0, 2.0], "regression"),
        (list(range(MAX_CLASSES)), "classification"),
        # integers are classes however many, as scikit-learn's type_of_target says
        (list(range(MAX_CLASSES + 1)), "classification"),
        (np.arange(26), "classification"),
        (np.arange(26, dtype=np.uint8), "classification"),
        (pd.Series([*range(26), None], dtype="Int64"), "classification"),
        (np.array([*range(26), None], dtype=object), "classification"),
        # whole-valued floats: classes up to MAX_CLASSES values, a quantity beyond
        ([float(v) for v in range(MAX_CLASSES)], "classification"),
        ([float(v) for v in range(MAX_CLASSES + 1)], "regression"),
        (pd.Series([float(v) for v in range(26)], dtype="Float64"), "regression"),
        (np.array([1.0, np.nan, 2.0]), "classification"),
        (np.array([3, None, 4], dtype=object), "classification"),
        (np.array([3.5, None, 4], dtype=object), "regression"),
        # a float among Python ints makes the object column floats, as in memory on Dask
        (np.array([*range(25), 3.0], dtype=object), "regression"),
    ],
)
def test_rule(values, task):
    assert infer_task(values) == task


def test_the_rule_agrees_with_scikit_learn_type_of_target_on_integers_and_fractions():
    from sklearn.utils.multiclass import type_of_target

    for values in (np.arange(26), np.arange(30, dtype=np.uint8), np.array([0.5, 1.0, 2.0])):
        expected = "continuous" if type_of_target(values) == "continuous" else "classes"
        assert ("regression" if expected == "continuous" else "classification") == infer_task(
            values
        )


@pytest.mark.parametrize(
    "values", [np.array([1.0, np.inf, 2.0]), np.array([0.5, -np.inf]), [1, float("inf")]]
)
def test_infinite_labels_are_refused(values):
    with pytest.raises(ValueError, match="y has infinite values"):
        infer_task(values, "y")
    with pytest.raises(ValueError, match="y has infinite values"):
        prepare_target(np.asarray(values, dtype=np.float64), len(values))


def test_dask_funnel_reads_the_task_by_the_same_rule():
    dd = pytest.importorskip("dask.dataframe")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.assign(target=y)
    # every partition alone holds at most 20 values of the target; together 214
    parts = dd.from_pandas(frame.sort_values("target"), npartitions=40)
    funnel = FeatureFunnel(steps=[Relevance()]).fit(parts.drop(columns="target"), parts["target"])
    assert funnel.report_.task == "regression"
    relevance = funnel.report_.to_frame().set_index("column")["relevance"]
    np.testing.assert_allclose(relevance[list(X.columns)], f_regression(X, y)[0], rtol=1e-6)


def _dask_task(values, npartitions, dtype=None):
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=len(values))})
    y = pd.Series(values, dtype=dtype, name="target")
    dask = pytest.importorskip("dask")
    # Dask turns object columns into text by default; keep the Python numbers
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_pandas(X.assign(target=y), npartitions=npartitions, sort=False)
        funnel = FeatureFunnel(steps=[Relevance()]).fit(frame[["x"]], frame["target"])
    return funnel.report_.task


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.repeat(np.arange(26), 4), None),
        (np.repeat(np.arange(26), 4), "Int64"),
        (np.repeat(np.arange(26.0), 4), None),
        (np.repeat(np.arange(12.0), 8), None),
        (np.array([*np.repeat(np.arange(18), 4), 3.0, 3.0, 3.0, 3.0], dtype=object), None),
        (np.array(list(np.repeat(np.arange(26), 4).tolist()), dtype=object), None),
    ],
)
def test_dask_partitions_read_the_task_of_the_whole_column(values, dtype):
    in_memory = infer_task(pd.Series(values, dtype=dtype))
    # every partition alone holds few values; the union decides as in memory
    assert _dask_task(values, 13, dtype) == in_memory
    assert _dask_task(values, 1, dtype) == in_memory


def test_dask_refuses_infinite_labels_like_memory():
    values = np.array([*np.arange(40.0), np.inf])
    with pytest.raises(ValueError, match="y has infinite values"):
        _dask_task(values, 4)
