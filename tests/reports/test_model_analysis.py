"""analyze_model: the report opsloop analyze prints, from the library, with its numbers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import accuracy_score, mean_absolute_error

from opsloop import analysis
from opsloop.analysis.fairness import fairness
from opsloop.datasets import credit, human_labels
from opsloop.reports import analyze_model

FEATURES = ["age", "salary", "commission", "loan_amount"]


@pytest.fixture(scope="module")
def loans():
    df = credit(600, seed=3).drop(columns=["applied_at", "purpose"])
    df["human"] = human_labels(df, seed=3)
    return df


def test_a_classifier_gets_errors_against_the_human_baseline_slices_and_fairness(loans):
    model = RandomForestClassifier(n_estimators=8, max_depth=3, random_state=0)
    model.fit(loans[FEATURES], loans["default"])
    report = analyze_model(
        model,
        loans,
        "default",
        tags=["gender", "device"],
        human_labels="human",
        seed=4,
        explain=False,
        model_name="rf",
        data_name="loans",
    )
    y, predicted = loans["default"].to_numpy(), model.predict(loans[FEATURES])
    tags = loans[["gender", "device"]]
    assert report.title == "Analysis of rf on loans"
    assert report.errors.errors == int((predicted != y).sum())
    assert report.errors.baseline_error_rate == float(np.mean(loans["human"] != y))
    expected = analysis.slice_metrics(
        y, predicted, tags, {"accuracy": accuracy_score}, intersections=True, n_boot=100, seed=4
    )
    pd.testing.assert_frame_equal(report.slices.to_frame(), expected.to_frame())
    assert report.tree is not None and report.found is not None
    assert report.residuals is None and report.explanation is None
    # Accuracy by device, by hand.
    for device, part in loans.groupby("device"):
        rows = (loans["device"] == device).to_numpy()
        found = report.slices.to_frame()
        row = found[(found["tag"] == "device") & (found["value"] == device)].iloc[0]
        assert row["value_of_metric"] == pytest.approx(float(np.mean(predicted[rows] == y[rows])))
        assert len(part) == row["n"]


def test_a_regressor_gets_residuals_and_mae_by_slice(loans):
    model = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0)
    model.fit(loans[["age", "commission"]], loans["salary"])
    report = analyze_model(model, loans, "salary", tags=["gender"], explain=False)
    predicted = model.predict(loans[["age", "commission"]])
    frame = report.slices.to_frame()
    for gender in loans["gender"].unique():
        rows = (loans["gender"] == gender).to_numpy()
        row = frame[(frame["tag"] == "gender") & (frame["value"] == gender)].iloc[0]
        assert row["value_of_metric"] == pytest.approx(
            mean_absolute_error(loans["salary"].to_numpy()[rows], predicted[rows])
        )
    assert report.errors is None and report.residuals is not None


def test_bad_input_names_the_column_and_the_failing_predict():
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    with pytest.raises(ValueError, match="data has no column 'region'"):
        analyze_model(None, frame, "y", tags=["region"])

    class Broken:
        def predict(self, X):
            raise RuntimeError("boom")

    with pytest.raises(ValueError, match=r"m: predict failed on d \(RuntimeError: boom\)"):
        analyze_model(Broken(), frame, "y", model_name="m", data_name="d")


def test_a_classifier_of_many_integer_classes_is_analysed_as_classes():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(
        n_samples=1500, n_features=10, n_informative=8, n_classes=25, random_state=0
    )
    assert fairness(y, y, {"g": y % 2}).task == "multiclass"  # 25 integers
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    model = LogisticRegression(max_iter=500).fit(frame, y)
    frame = frame.assign(label=y, group=np.where(X[:, 0] > 0, "high", "low"))
    report = analyze_model(model, frame, "label", ["group"], explain=False)
    predicted = model.predict(frame[[f"x{i}" for i in range(10)]])
    assert report.errors.errors == int((predicted != y).sum())
    assert report.fairness.task == "multiclass"
    by_group = {r.value: r.errors for r in report.errors.rows}
    for value in ("high", "low"):
        rows = frame["group"].to_numpy() == value
        assert by_group[value] == int((predicted[rows] != y[rows]).sum())


def test_float_human_labels_of_many_integer_classes_match_a_hand_count():
    # integer labels 0..25 and human labels read as floats (3.0 is the label 3)
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    n = 1000
    X = rng.normal(size=(n, 2))
    y = rng.integers(0, 26, n)
    human = np.where(rng.random(n) < 0.9, y, (y + 1) % 26).astype(float)
    frame = pd.DataFrame(
        {"x0": X[:, 0], "x1": X[:, 1], "label": y, "human": human, "g": rng.choice(["a", "b"], n)}
    )
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[["x0", "x1"]], y)
    report = analyze_model(model, frame, "label", ["g"], human_labels="human", explain=False)
    human_wrong = human != y
    assert 0.05 < human_wrong.mean() < 0.15
    assert report.errors.baseline_error_rate == pytest.approx(human_wrong.mean(), rel=1e-12)
    predicted = model.predict(frame[["x0", "x1"]])
    assert report.errors.errors == int((predicted != y).sum())
    by_group = {r.value: r for r in report.errors.rows}
    for value in ("a", "b"):
        rows = frame["g"].to_numpy() == value
        assert by_group[value].errors == int((predicted[rows] != y[rows]).sum())
    # missing human labels are refused, not read as a label "nan"
    human[:5] = np.nan
    with pytest.raises(ValueError, match="human_labels holds missing values"):
        analyze_model(
            model, frame.assign(human=human), "label", ["g"], human_labels="human", explain=False
        )


def test_a_binary_classifier_of_named_classes_gets_fairness_for_its_second_class():
    import statsmodels.api as sm
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    from sklearn.linear_model import LogisticRegression

    # statsmodels' Fair data: did a woman report an affair, by how religious she is
    frame = sm.datasets.fair.load_pandas().data
    frame["had_affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
    features = ["rate_marriage", "age", "yrs_married", "children", "educ"]
    model = LogisticRegression(max_iter=2000).fit(frame[features], frame["had_affair"])
    report = analyze_model(
        model,
        frame[[*features, "religious", "had_affair"]],
        "had_affair",
        tags=["religious"],
        explain=False,
    )
    y = (frame["had_affair"] == "yes").to_numpy().astype(int)
    p = (model.predict(frame[features]) == "yes").astype(int)
    groups = frame["religious"].to_numpy()
    assert report.fairness.summary_value("religious", "demographic_parity_difference") == (
        demographic_parity_difference(y, p, sensitive_features=groups)
    )
    assert report.fairness.summary_value("religious", "equalized_odds_difference") == (
        equalized_odds_difference(y, p, sensitive_features=groups)
    )
    # read with class 1 as the positive one, no row would be positive and every disparity 0
    assert (
        report.fairness.group_value("religious", "1.0", "selection_rate") == p[groups == 1].mean()
    )
    assert report.fairness.summary_value("religious", "demographic_parity_difference") > 0.05


def _three_class_frame():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=["x0", "x1"])
    frame["y"] = np.where(frame.x0 > 0.5, "c", np.where(frame.x0 > -0.5, "b", "a"))
    frame["g"] = np.where(frame.x1 > 0, "hi", "lo")
    model = LogisticRegression().fit(frame[["x0", "x1"]], frame["y"])
    return model, frame


def test_a_three_class_model_on_data_of_two_of_its_classes_is_read_as_multiclass():
    model, frame = _three_class_frame()
    subset = frame[frame.x0 < 0.3]
    predicted = model.predict(subset[["x0", "x1"]])
    # the data show two of the model's three classes, in truth and in prediction
    assert set(subset.y) == set(predicted) == {"a", "b"}
    report = analyze_model(model, subset, "y", tags=["g"], explain=False)
    assert report.fairness.task == "multiclass"
    lo = (subset.g == "lo").to_numpy()
    assert report.fairness.group_value("g", "lo", "selection_rate[b]") == pytest.approx(
        float(np.mean(predicted[lo] == "b"))
    )
    assert report.fairness.group_value("g", "lo", "accuracy") == pytest.approx(
        accuracy_score(subset.y[lo], predicted[lo])
    )


def test_a_binary_model_of_classes_1_and_2_counts_class_2_as_positive():
    from sklearn.linear_model import LogisticRegression

    _, frame = _three_class_frame()
    frame["y"] = np.where(frame.x0 > 0, 2, 1)
    model = LogisticRegression().fit(frame[["x0", "x1"]], frame["y"])
    report = analyze_model(model, frame, "y", tags=["g"], explain=False)
    predicted = model.predict(frame[["x0", "x1"]])
    lo = (frame.g == "lo").to_numpy()
    # scikit-learn's positive class of a binary model is classes_[1], here 2
    assert report.fairness.group_value("g", "lo", "selection_rate") == pytest.approx(
        float(np.mean(predicted[lo] == 2))
    )
    assert float(np.mean(predicted[lo] == 2)) != pytest.approx(float(np.mean(predicted[lo] == 1)))


def test_a_classifier_without_classes_takes_the_second_sorted_label_as_positive():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Threshold(ClassifierMixin, BaseEstimator):
        # a hand-written rule: no fit, so no classes_
        def predict(self, X):
            return np.where(np.asarray(X)[:, 0] > 0.2, "yes", "no")

    _, frame = _three_class_frame()
    frame["y"] = np.where(frame.x0 > 0, "yes", "no")
    report = analyze_model(Threshold(), frame, "y", tags=["g"], explain=False)
    predicted = Threshold().predict(frame[["x0", "x1"]])
    lo = (frame.g == "lo").to_numpy()
    assert report.fairness.task == "binary"
    assert report.fairness.group_value("g", "lo", "selection_rate") == pytest.approx(
        float(np.mean(predicted[lo] == "yes"))
    )
