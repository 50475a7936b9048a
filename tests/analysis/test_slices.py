import functools

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score, f1_score, recall_score

from opsloop.analysis.slices import ALL, resolve_metrics, slice_metrics


def test_equals_fairlearn_metricframe_per_tag_and_intersection(loans):
    df, _, predicted = loans
    truth = df["default"].to_numpy()
    tags = df[["gender", "device"]].astype(str)
    metrics = {"accuracy": accuracy_score, "recall": recall_score, "f1": f1_score}
    table = slice_metrics(truth, predicted, tags, metrics, n_boot=0, intersections=True)
    frame = table.to_frame()
    for tag in ["gender", "device"]:
        mf = MetricFrame(
            metrics=metrics, y_true=truth, y_pred=predicted, sensitive_features=tags[tag]
        )
        for name in metrics:
            got = frame[(frame["tag"] == tag) & (frame["metric"] == name)].set_index("value")
            expected = mf.by_group[name]
            np.testing.assert_allclose(
                got.loc[expected.index, "value_of_metric"], expected, atol=1e-12
            )
            overall = frame[(frame["tag"] == ALL) & (frame["metric"] == name)]
            assert overall["value_of_metric"].item() == pytest.approx(mf.overall[name], abs=1e-12)
    mf = MetricFrame(metrics=metrics, y_true=truth, y_pred=predicted, sensitive_features=tags)
    for name in metrics:
        got = frame[(frame["tag"] == "gender × device") & (frame["metric"] == name)].set_index(
            "value"
        )
        expected = mf.by_group[name]
        labels = [f"{g} × {d}" for g, d in expected.index]
        np.testing.assert_allclose(
            got.loc[labels, "value_of_metric"], expected.to_numpy(), atol=1e-12
        )
    counts = tags.groupby(["gender", "device"]).size()
    got = frame[(frame["tag"] == "gender × device") & (frame["metric"] == "f1")].set_index("value")
    assert got.loc[[f"{g} × {d}" for g, d in counts.index], "n"].tolist() == counts.tolist()
    assert (got["small"] == (got["n"] < 30)).all()


def test_bootstrap_interval_by_hand():
    # one slice of 4 rows; recompute the percentile bootstrap with the same generator
    y_true = np.array([1, 0, 1, 1])
    y_pred = np.array([1, 0, 0, 1])
    table = slice_metrics(y_true, y_pred, {"g": ["a"] * 4}, accuracy_score, n_boot=50, seed=3)
    rng = np.random.default_rng(3)
    expected = []
    for _ in range(2):  # the (all) row, then the slice, drawn in that order from one generator
        draws = rng.integers(0, 4, size=(50, 4))
        values = (y_true[draws] == y_pred[draws]).mean(axis=1)
        expected.append(np.quantile(values, [0.025, 0.975]))
    for row, (low, high) in zip(table.rows, expected, strict=True):
        assert row.value_of_metric == 0.75
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
    again = slice_metrics(y_true, y_pred, {"g": ["a"] * 4}, accuracy_score, n_boot=50, seed=3)
    assert again == table


def test_metric_undefined_on_slice_is_none():
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    with pytest.warns(UndefinedMetricWarning):
        table = slice_metrics(
            [1, 1, 0, 1], [1, 0, 0, 1], {"g": list("aabb")}, roc_auc_score, n_boot=0
        )
    by_value = {r.value: r.value_of_metric for r in table.rows}
    assert by_value["a"] is None  # one class only
    assert by_value["b"] == 1.0


def test_resolve_metrics_names_and_partials():
    resolved = resolve_metrics({"macro f1": functools.partial(f1_score, average="macro")})
    assert resolved["macro f1"]([0, 1, 2], [0, 1, 1]) == pytest.approx(
        f1_score([0, 1, 2], [0, 1, 1], average="macro")
    )
    assert resolve_metrics("accuracy_score")["accuracy_score"] is accuracy_score
    with pytest.raises(ValueError, match="'make_scorer' is not a scikit-learn metric function"):
        resolve_metrics("make_scorer")
    with pytest.raises(ValueError, match="at least one metric"):
        resolve_metrics([])
    with pytest.raises(TypeError, match="metrics must be a callable"):
        resolve_metrics(3)


def test_bad_parameters():
    with pytest.raises(ValueError, match="n_boot must be an integer >= 0"):
        slice_metrics([1], [1], {"g": ["a"]}, accuracy_score, n_boot=-1)
    with pytest.raises(ValueError, match="confidence must lie strictly between 0 and 1"):
        slice_metrics([1], [1], {"g": ["a"]}, accuracy_score, confidence=2)


def test_vectorised_bootstrap_equals_one_metric_call_per_resample():
    from sklearn.metrics import (
        accuracy_score,
        mean_absolute_error,
        mean_squared_error,
        zero_one_loss,
    )

    rng = np.random.default_rng(11)
    n = 1_500
    tags = pd.DataFrame({"g": rng.choice(list("abc"), n), "h": rng.choice(list("xy"), n)})
    labels = rng.choice(["no", "yes", "maybe"], n)
    guessed = np.where(rng.random(n) < 0.7, labels, rng.choice(["no", "yes", "maybe"], n))
    amounts = rng.gamma(2.0, 50.0, n)
    estimated = amounts + rng.normal(0, 20.0, n)
    cases = [
        (labels, guessed, accuracy_score),
        (labels, guessed, zero_one_loss),
        (amounts, estimated, mean_absolute_error),
        (amounts, estimated, mean_squared_error),
    ]
    for truth, predicted, metric in cases:
        # the wrapper is not the scikit-learn function itself: one call per resample
        called = {"metric": lambda t, p, metric=metric: metric(t, p)}
        fast = slice_metrics(
            truth, predicted, tags, {"metric": metric}, intersections=True, n_boot=50, seed=4
        )
        slow = slice_metrics(truth, predicted, tags, called, intersections=True, n_boot=50, seed=4)
        assert fast.rows == slow.rows
        assert all(r.ci_low is not None and r.ci_low < r.ci_high for r in fast.rows)
