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
        (list(range(MAX_CLASSES + 1)), "regression"),
        (np.array([1.0, np.nan, 2.0]), "classification"),
        (np.array([3, None, 4], dtype=object), "classification"),
        (np.array([3.5, None, 4], dtype=object), "regression"),
    ],
)
def test_rule(values, task):
    assert infer_task(values) == task


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
