import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis.baseline import hlp
from opsloop.analysis.errors import COLUMNS, error_analysis


def test_four_numbers_by_hand():
    # device pc: 4 rows, 1 error; tv: 6 rows, 3 errors; 4 errors in 10 rows; HLP 10%
    y_true = np.zeros(10, dtype=int)
    y_pred = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    tags = {"device": ["pc"] * 4 + ["tv"] * 6}
    result = error_analysis(y_true, y_pred, tags, hlp=0.1, min_size=5)
    tv, pc = result.rows
    assert (tv.value, tv.n, tv.errors) == ("tv", 6, 3)
    assert tv.share_of_errors == 0.75
    assert tv.error_rate == 0.5
    assert tv.share_of_data == 0.6
    assert tv.gap == pytest.approx(0.4)
    assert tv.room == pytest.approx(0.4 * 0.6)
    assert not tv.small
    assert (pc.share_of_errors, pc.error_rate, pc.share_of_data) == (0.25, 0.25, 0.4)
    assert pc.room == pytest.approx(0.15 * 0.4)
    assert pc.small
    assert result.error_rate == 0.4 and result.baseline_error_rate == 0.1
    low, high = proportion_confint(3, 6, method="wilson")
    assert (tv.error_rate_low, tv.error_rate_high) == pytest.approx((low, high), abs=1e-12)
    assert tv.room_low == pytest.approx(max(low - 0.1, 0) * 0.6, abs=1e-12)
    assert tv.room_high == pytest.approx((high - 0.1) * 0.6, abs=1e-12)
    low, high = proportion_confint(3, 4, method="wilson")
    assert (tv.share_of_errors_low, tv.share_of_errors_high) == pytest.approx((low, high))
    low, high = proportion_confint(6, 10, method="wilson")
    assert (tv.share_of_data_low, tv.share_of_data_high) == pytest.approx((low, high))
    assert [r.value for r in result.top(3)] == ["tv"]


def test_equals_pandas_groupby_with_intersections(loans):
    df, human, predicted = loans
    truth = df["default"].to_numpy()
    tags = df[["gender", "device", "age"]]
    baseline = hlp(human, truth, tags)
    result = error_analysis(truth, predicted, tags, hlp=baseline, intersections=True)
    frame = result.to_frame()
    assert list(frame.columns) == list(COLUMNS)
    wrong = pd.Series(predicted != truth)
    age_bins = pd.qcut(df["age"].astype(float), 5).astype(str)
    keys = {"gender": df["gender"].astype(str), "device": df["device"].astype(str), "age": age_bins}
    for tag, key in [
        *keys.items(),
        ("gender × device", keys["gender"] + " × " + keys["device"]),
        ("device × age", keys["device"] + " × " + keys["age"]),
    ]:
        expected = wrong.groupby(key.to_numpy()).agg(["size", "sum"])
        got = frame[frame["tag"] == tag].set_index("value").loc[expected.index]
        assert got["n"].tolist() == expected["size"].tolist()
        assert got["errors"].tolist() == expected["sum"].tolist()
        np.testing.assert_allclose(
            got["share_of_errors"], expected["sum"] / wrong.sum(), atol=1e-12
        )
        np.testing.assert_allclose(got["share_of_data"], expected["size"] / len(df), atol=1e-12)
        rate = expected["sum"] / expected["size"]
        np.testing.assert_allclose(got["error_rate"], rate, atol=1e-12)
        base = [baseline.error_rate_for(tag, v) for v in expected.index]
        np.testing.assert_allclose(got["baseline_error_rate"], base, atol=1e-12)
        room = np.maximum(rate - base, 0) * expected["size"] / len(df)
        np.testing.assert_allclose(got["room"], room, atol=1e-12)
    # sorted by room, and the planted slice (mobile errs at 30%) comes first among single tags
    rooms = frame["room"].to_numpy()
    assert np.all(rooms[:-1] >= rooms[1:])
    single = frame[~frame["tag"].str.contains("×")]
    assert (single.iloc[0]["tag"], single.iloc[0]["value"]) == ("device", "mobile")


def test_per_tag_hlp_is_used_where_measured():
    y_true = [0, 0, 0, 0]
    y_pred = [1, 1, 1, 0]
    tags = {"g": ["a", "a", "b", "b"]}
    baseline = hlp([1, 1, 0, 0], y_true, tags)  # humans err always on a, never on b
    result = error_analysis(y_true, y_pred, tags, hlp=baseline, min_size=1)
    by_value = {r.value: r for r in result.rows}
    assert by_value["a"].baseline_error_rate == 1.0 and by_value["a"].room == 0.0
    assert by_value["a"].gap == -0.0 or by_value["a"].gap == 0.0
    assert by_value["b"].baseline_error_rate == 0.0 and by_value["b"].room == 0.25
    assert result.rows[0].value == "b"


def test_without_baseline_and_without_errors():
    result = error_analysis([1, 1], [1, 1], {"g": ["a", "b"]})
    row = result.rows[0].to_dict()
    assert row["room"] is None and row["baseline_error_rate"] is None
    assert row["share_of_errors"] is None and row["error_rate"] == 0.0
    assert result.to_dict()["baseline_error_rate"] is None


def test_multiclass_labels_and_class_as_tag():
    y_true = np.array(["cat", "dog", "bird", "dog"])
    y_pred = np.array(["cat", "cat", "bird", "dog"])
    result = error_analysis(y_true, y_pred, {"true class": y_true}, min_size=1)
    assert [(r.value, r.errors, r.n) for r in result.rows] == [
        ("dog", 1, 2),
        ("bird", 0, 1),
        ("cat", 0, 1),
    ]


def test_bad_input():
    with pytest.raises(ValueError, match="y_pred has 1 rows but y_true has 2"):
        error_analysis([1, 0], [1], {"g": ["a", "b"]})
    with pytest.raises(ValueError, match="hlp must be an error rate between 0 and 1"):
        error_analysis([1], [1], {"g": ["a"]}, hlp=1.5)
    with pytest.raises(TypeError, match="hlp must be None, an error rate, a HumanLevel"):
        error_analysis([1], [1], {"g": ["a"]}, hlp="human")
    with pytest.raises(ValueError, match="min_size must be an integer >= 1"):
        error_analysis([1], [1], {"g": ["a"]}, min_size=0)


def test_baseline_given_as_another_models_predictions():
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([1, 1, 0, 0, 0, 1])
    other = np.array([1, 0, 0, 0, 1, 1])  # errs once, on slice a
    tags = {"g": ["a", "a", "a", "b", "b", "b"]}
    result = error_analysis(y_true, y_pred, tags, hlp=other, min_size=1)
    by_value = {r.value: r for r in result.rows}
    assert by_value["a"].baseline_error_rate == pytest.approx(1 / 3)
    assert by_value["a"].room == pytest.approx((2 / 3 - 1 / 3) * 0.5)
    assert by_value["b"].baseline_error_rate == 0.0
    assert result.baseline_error_rate == pytest.approx(1 / 6)
    assert result == error_analysis(y_true, y_pred, tags, hlp=hlp(other, y_true, tags), min_size=1)


def test_baseline_predictions_measured_on_intersections_too():
    y_true = np.zeros(8, dtype=int)
    y_pred = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    other = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    tags = {"g": list("aaaabbbb"), "d": list("xyxyxyxy")}
    result = error_analysis(y_true, y_pred, tags, hlp=other, intersections=True, min_size=1)
    by_slice = {(r.tag, r.value): r for r in result.rows}
    # a × x holds rows 0 and 2: the baseline errs on row 0, the model on row 0 too
    assert by_slice[("g × d", "a × x")].baseline_error_rate == 0.5
    assert by_slice[("g × d", "a × x")].room == 0.0
    # a × y holds rows 1 and 3: the model errs on row 1, the baseline never
    assert by_slice[("g × d", "a × y")].baseline_error_rate == 0.0
    assert by_slice[("g × d", "a × y")].room == pytest.approx(0.5 * 2 / 8)


def test_regression_predictions_are_refused_pointing_to_slice_metrics():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    from opsloop.analysis import slice_metrics

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    predicted = Ridge().fit(X, y).predict(X)
    with pytest.raises(ValueError, match=r"y_pred holds a regression's numbers.*slice_metrics"):
        error_analysis(y, predicted, X[["sex"]], hlp=0.05)
    # a constant whole-number prediction, but the labels (214 values) are a regression's
    with pytest.raises(ValueError, match=r"y_true holds a regression's numbers"):
        error_analysis(y, np.full(len(y), 150.0), X[["sex"]])
    # what the message points to gives the slice's error the user wanted
    table = slice_metrics(y, predicted, X[["sex"]], {"mae": mean_absolute_error}, n_boot=0)
    by_value = {r.value: r.value_of_metric for r in table.rows}
    sex = X["sex"].to_numpy()
    for value in np.unique(sex):
        rows = sex == value
        assert by_value[str(value)] == pytest.approx(
            mean_absolute_error(y[rows], predicted[rows]), rel=1e-12
        )


def test_twenty_six_integer_classes_are_counted_by_hand():
    # 26 classes coded 0..25 are classes (as scikit-learn's type_of_target says), not a
    # regression's numbers; whole-valued floats with as many values still are refused
    rng = np.random.default_rng(3)
    n = 2000
    y_true = rng.integers(0, 26, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, (y_true + 1) % 26)
    group = rng.choice(["a", "b", "c"], n)
    result = error_analysis(y_true, y_pred, {"g": group}, min_size=1)
    wrong = y_pred != y_true
    assert result.errors == int(wrong.sum())
    assert result.error_rate == pytest.approx(wrong.mean(), rel=1e-12)
    by_value = {r.value: (r.n, r.errors) for r in result.rows}
    for value in "abc":
        rows = group == value
        assert by_value[value] == (int(rows.sum()), int(wrong[rows].sum()))
    with pytest.raises(ValueError, match=r"y_true holds a regression's numbers"):
        error_analysis(y_true.astype(float), y_pred, {"g": group})
