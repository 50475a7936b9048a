import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate

from opsloop.analysis.errors import error_analysis
from opsloop.analysis.fairness import fairness


def test_binary_group_rates_and_disparities_by_hand(loans):
    df, _, predicted = loans
    truth = df["default"].to_numpy()
    result = fairness(truth, predicted, df[["gender", "device"]])
    assert result.task == "binary"
    frame = result.to_frame()
    for column in ["gender", "device"]:
        key = df[column].astype(str).to_numpy()
        rows = pd.DataFrame({"t": truth, "p": predicted, "g": key}).groupby("g")
        sel = rows["p"].mean()
        tpr = rows.apply(lambda r: r.loc[r.t == 1, "p"].mean())
        fpr = rows.apply(lambda r: r.loc[r.t == 0, "p"].mean())
        got = frame[frame["feature"] == column].set_index("group")
        np.testing.assert_allclose(got.loc[sel.index, "selection_rate"], sel, atol=1e-12)
        np.testing.assert_allclose(got.loc[tpr.index, "true_positive_rate"], tpr, atol=1e-12)
        np.testing.assert_allclose(got.loc[fpr.index, "false_positive_rate"], fpr, atol=1e-12)
        assert result.summary_value(column, "demographic_parity_difference") == pytest.approx(
            sel.max() - sel.min(), abs=1e-12
        )
        eod = max(tpr.max() - tpr.min(), fpr.max() - fpr.min())
        assert result.summary_value(column, "equalized_odds_difference") == pytest.approx(
            eod, abs=1e-12
        )


def test_joined_to_error_analysis(loans):
    df, _, predicted = loans
    truth = df["default"].to_numpy()
    tags = df[["gender", "age"]]  # age is a number: binned the same way in both
    errors = error_analysis(truth, predicted, tags, hlp=0.05)
    table = fairness(truth, predicted, tags).to_frame(errors)
    assert table["room"].notna().all()
    for row in table.itertuples():
        expected = next(r for r in errors.rows if (r.tag, r.value) == (row.feature, row.group))
        assert row.room == expected.room
        assert 1 - row.accuracy == pytest.approx(row.error_rate_in_group, abs=1e-12)
    assert set(table.loc[table["feature"] == "age", "group"]) == {
        str(c) for c in pd.qcut(df["age"].astype(float), 5).cat.categories
    }


def test_multiclass_per_class_rates():
    y_true = np.array(["a", "b", "c", "a", "b", "c", "a", "a"])
    y_pred = np.array(["a", "b", "a", "a", "c", "c", "b", "a"])
    group = np.array(["x", "x", "x", "x", "y", "y", "y", "y"])
    result = fairness(y_true, y_pred, {"grp": group})
    assert result.task == "multiclass"
    assert result.group_value("grp", "x", "selection_rate[a]") == 0.75
    assert result.group_value("grp", "y", "selection_rate[a]") == 0.25
    assert result.group_value("grp", "y", "recall[a]") == 0.5
    assert result.summary_value("grp", "demographic_parity_difference[a]") == 0.5
    per_class = [result.summary_value("grp", f"demographic_parity_difference[{c}]") for c in "abc"]
    assert result.summary_value("grp", "demographic_parity_difference") == max(per_class)


def test_regression_group_metrics():
    y_true = np.linspace(0, 10, 40)
    y_pred = y_true + np.where(np.arange(40) < 20, 1.0, -0.5)
    result = fairness(y_true, y_pred, {"g": np.repeat(["a", "b"], 20)})
    assert result.task == "regression"
    assert result.group_value("g", "a", "mean_residual") == pytest.approx(-1.0)
    assert result.group_value("g", "b", "mean_absolute_error") == pytest.approx(0.5)
    assert result.summary_value("g", "mean_residual_difference") == pytest.approx(1.5)


def test_bootstrap_intervals_equal_fairlearn(loans):
    df, _, predicted = loans
    truth = df["default"].to_numpy()
    result = fairness(truth, predicted, df[["gender"]], n_boot=20, seed=4)
    mf = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=truth,
        y_pred=predicted,
        sensitive_features=pd.Series(df["gender"].astype(str).to_numpy(), name="gender"),
        n_boot=20,
        ci_quantiles=[0.025, 0.975],
        random_state=4,
    )
    rows = {(g, m): (lo, hi) for f, g, m, _, lo, hi in result.groups}
    assert "selection_rate" in mf.by_group_ci[0].columns
    # the same seed over a different metric set draws the same resamples
    for group in mf.by_group.index:
        assert rows[(group, "selection_rate")] == pytest.approx(
            (
                mf.by_group_ci[0].loc[group, "selection_rate"],
                mf.by_group_ci[1].loc[group, "selection_rate"],
            ),
            abs=1e-12,
        )


def test_bad_input():
    with pytest.raises(ValueError, match="task must be 'auto'"):
        fairness([1], [1], {"g": ["a"]}, task="ranking")
    with pytest.raises(ValueError, match="sensitive has 1 rows but the labels have 2"):
        fairness([1, 0], [1, 0], {"g": ["a"]})
    with pytest.raises(ValueError, match="n_boot must be an integer >= 0"):
        fairness([1], [1], {"g": ["a"]}, n_boot=-2)


def _fair_affairs():
    sm = pytest.importorskip("statsmodels.api")
    from sklearn.linear_model import LogisticRegression

    d = sm.datasets.fair.load_pandas().data
    y = (d["affairs"] > 0).astype(int).to_numpy()
    X = d[["rate_marriage", "age", "yrs_married", "children", "religious", "educ"]]
    predicted = LogisticRegression(max_iter=2000).fit(X, y).predict(X)
    return d, y, predicted


@pytest.mark.parametrize("as_int", [True, False])
def test_integer_coded_sensitive_column_is_groups_as_fairlearn_takes_it(as_int):
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    d, y, predicted = _fair_affairs()
    # occupation codes 1..6 (floats in the bundled data): six groups, not three bins
    occupation = d["occupation"].astype(int) if as_int else d["occupation"]
    result = fairness(y, predicted, pd.DataFrame({"occupation": occupation}))
    assert sorted({g for _, g, *_ in result.groups}) == sorted(str(v) for v in occupation.unique())
    assert result.binned == ()
    expected_dpd = demographic_parity_difference(y, predicted, sensitive_features=occupation)
    expected_eod = equalized_odds_difference(y, predicted, sensitive_features=occupation)
    assert result.summary_value("occupation", "demographic_parity_difference") == pytest.approx(
        expected_dpd, abs=1e-12
    )
    assert result.summary_value("occupation", "equalized_odds_difference") == pytest.approx(
        expected_eod, abs=1e-12
    )
    assert expected_dpd == pytest.approx(0.1345, abs=1e-4)


def test_binned_sensitive_column_is_reported_with_its_bins():
    from fairlearn.metrics import demographic_parity_difference

    from opsloop.analysis import error_analysis, hlp

    d, y, predicted = _fair_affairs()
    # ages 17.5, 22, 27, ...: not whole numbers, so more than bins=3 values are binned
    ages = d[["age"]]
    bins = pd.qcut(d["age"], q=3, duplicates="drop").astype(str)
    labels = tuple(str(c) for c in pd.qcut(d["age"], q=3, duplicates="drop").cat.categories)
    result = fairness(y, predicted, ages, bins=3)
    assert result.binned == (("age", labels),)
    assert result.to_dict()["binned"] == {"age": list(labels)}
    assert result.summary_value("age", "demographic_parity_difference") == pytest.approx(
        demographic_parity_difference(y, predicted, sensitive_features=bins), abs=1e-12
    )
    errors = error_analysis(y, predicted, ages, bins=3)
    assert errors.binned == (("age", labels),)
    wrong = pd.Series(y != predicted).groupby(bins.to_numpy()).sum()
    assert {r.value: r.errors for r in errors.rows} == {k: int(v) for k, v in wrong.items()}
    assert hlp(predicted, y, ages, bins=3).binned == (("age", labels),)
    coded = error_analysis(y, predicted, d[["occupation"]], bins=3)
    assert coded.binned == () and len(coded.rows) == 6


def test_twenty_six_integer_classes_are_multiclass_as_fairlearn_counts():
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(4)
    n = 2000
    y_true = rng.integers(0, 26, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, (y_true + 3) % 26)
    group = rng.choice(["a", "b"], n)
    result = fairness(y_true, y_pred, {"g": group})
    assert result.task == "multiclass"
    expected = MetricFrame(
        metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=group
    ).by_group
    for value in "ab":
        rows = group == value
        assert expected[value] == pytest.approx(np.mean(y_pred[rows] == y_true[rows]))
        assert result.group_value("g", value, "accuracy") == pytest.approx(expected[value])
    # the same codes as whole-valued floats (26 values) are a regression's numbers
    assert fairness(y_true.astype(float), y_pred.astype(float), {"g": group}).task == ("regression")


def _fair_affairs_named():
    import statsmodels.api as sm
    from sklearn.linear_model import LogisticRegression

    df = sm.datasets.fair.load_pandas().data
    had = (df["affairs"] > 0).to_numpy()
    X = df.drop(columns=["affairs"]).to_numpy()
    predicted = LogisticRegression(max_iter=2000).fit(X, had).predict(X)
    names = np.array(["none", "some"])
    return df, names[had.astype(int)], names[predicted.astype(int)]


def test_string_labels_with_their_positive_class_equal_fairlearn():
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    df, truth, predicted = _fair_affairs_named()
    result = fairness(truth, predicted, {"religious": df["religious"]}, pos_label="some")
    t, p = (truth == "some").astype(int), (predicted == "some").astype(int)
    groups = df["religious"].to_numpy()
    assert result.summary_value("religious", "demographic_parity_difference") == (
        demographic_parity_difference(t, p, sensitive_features=groups)
    )
    assert result.summary_value("religious", "equalized_odds_difference") == (
        equalized_odds_difference(t, p, sensitive_features=groups)
    )
    # religious 1 (not at all) is flagged most often by this model: 0.2899 of its 1,588 women
    assert result.group_value("religious", "1.0", "selection_rate") == pytest.approx(
        p[groups == 1].mean(), abs=0
    )


def test_positive_class_outside_the_labels_is_refused_not_read_as_all_negative():
    df, truth, predicted = _fair_affairs_named()
    refused = r"pos_label 1 is not one of the labels \['none', 'some'\]"
    with pytest.raises(ValueError, match=refused):
        fairness(truth, predicted, {"religious": df["religious"]})
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        fairness(truth, predicted, {"age": df["age"]}, pos_label="some", bins=0)
