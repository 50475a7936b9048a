import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.feature_selection import mutual_info_regression
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson

from opsloop.analysis.residuals import durbin_watson_test, residual_analysis


@pytest.fixture
def regression():
    rng = np.random.default_rng(2)
    n = 400
    hidden = rng.normal(size=n)  # a feature the model left out
    y_pred = rng.normal(size=n)
    y_true = y_pred + 0.8 * hidden + 0.3 * rng.normal(size=n)
    left_out = pd.DataFrame(
        {
            "hidden": hidden,
            "unrelated": rng.normal(size=n),
            "region": pd.Categorical(np.where(hidden > 0, "north", "south")),
        }
    )
    return y_true, y_pred, left_out


def test_equals_statsmodels_and_scipy(regression):
    y_true, y_pred, left_out = regression
    order = np.random.default_rng(9).permutation(len(y_true))
    result = residual_analysis(y_true, y_pred, left_out, order=order, lags=5, n_permutations=99)
    residuals = y_true - y_pred
    in_time = residuals[np.argsort(order)]
    assert result.durbin_watson == pytest.approx(durbin_watson(in_time), abs=1e-12)
    reference = acorr_ljungbox(in_time, lags=5)
    got = np.array([(s, p) for _, s, p in result.ljung_box])
    np.testing.assert_allclose(got[:, 0], reference["lb_stat"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(got[:, 1], reference["lb_pvalue"], atol=1e-12, rtol=0)
    by_feature = {c.feature: c for c in result.correlations}
    hidden = by_feature["hidden"]
    pearson = stats.pearsonr(left_out["hidden"], residuals)
    spearman = stats.spearmanr(left_out["hidden"], residuals)
    assert (hidden.pearson, hidden.pearson_p_value) == pytest.approx(
        (pearson.statistic, pearson.pvalue), abs=1e-12
    )
    assert (hidden.spearman, hidden.spearman_p_value) == pytest.approx(
        (spearman.statistic, spearman.pvalue), abs=1e-12
    )
    mi = mutual_info_regression(left_out[["hidden"]].to_numpy(), residuals, random_state=0)[0]
    assert hidden.mutual_information == pytest.approx(mi, abs=1e-12)
    codes = (left_out["region"] == "south").to_numpy().astype(int)
    region_mi = mutual_info_regression(
        codes[:, None], residuals, discrete_features=True, random_state=0
    )[0]
    assert by_feature["region"].mutual_information == pytest.approx(region_mi, abs=1e-12)
    assert by_feature["region"].pearson is None
    assert result.correlations[0].feature == "hidden"
    assert result.correlations[-1].feature == "unrelated"
    assert result.residual_mean == pytest.approx(residuals.mean())
    assert result.residual_std == pytest.approx(residuals.std(ddof=1))


def test_durbin_watson_permutation_p_value_by_hand():
    rng = np.random.default_rng(4)
    residuals = rng.normal(size=60)
    statistic, p = durbin_watson_test(residuals, n_permutations=500, seed=13)
    draws = np.random.default_rng(13).permuted(np.tile(residuals, (500, 1)), axis=1)
    null = np.sum(np.diff(draws, axis=1) ** 2, axis=1) / np.sum(residuals**2)
    below = (1 + np.sum(null <= statistic)) / 501
    above = (1 + np.sum(null >= statistic)) / 501
    assert statistic == pytest.approx(durbin_watson(residuals), abs=1e-12)
    assert p == pytest.approx(min(1.0, 2 * min(below, above)), abs=1e-15)


def test_durbin_watson_detects_autocorrelation():
    rng = np.random.default_rng(6)
    noise = rng.normal(size=300)
    ar = np.empty(300)
    ar[0] = noise[0]
    for t in range(1, 300):
        ar[t] = 0.7 * ar[t - 1] + noise[t]
    _, p_ar = durbin_watson_test(ar, n_permutations=199)
    _, p_iid = durbin_watson_test(noise, n_permutations=199)
    assert p_ar == pytest.approx(2 / 200)
    assert p_iid > 0.05


def test_bad_input(regression):
    y_true, y_pred, left_out = regression
    with pytest.raises(ValueError, match="lags must be an integer >= 1"):
        residual_analysis(y_true, y_pred, lags=0)
    with pytest.raises(ValueError, match="left_out has 2 rows but y_true has 400"):
        residual_analysis(y_true, y_pred, left_out.head(2))
    with pytest.raises(ValueError, match="n_permutations must be an integer >= 0"):
        durbin_watson_test(y_true, n_permutations=-1)
    with pytest.raises(ValueError, match="order has 3 rows but y_true has 400"):
        residual_analysis(y_true, y_pred, order=[1, 2, 3])


def test_result_keeps_fitted_and_residuals_in_row_order(regression):
    y_true, y_pred, _ = regression
    order = np.arange(len(y_true))[::-1]
    result = residual_analysis(y_true, y_pred, order=order, lags=2, n_permutations=0)
    np.testing.assert_array_equal(result.fitted, y_pred)
    np.testing.assert_array_equal(result.residuals, y_true - y_pred)
    with pytest.raises(ValueError, match="read-only"):
        result.residuals[0] = 1.0
    assert "residuals" not in result.to_dict() and "fitted" not in result.to_dict()


def test_sample_is_seeded_and_without_replacement(regression):
    y_true, y_pred, _ = regression
    result = residual_analysis(y_true, y_pred, lags=2, n_permutations=0, seed=5)
    rows = result.sample(50)
    expected = np.sort(np.random.default_rng(5).choice(400, size=50, replace=False))
    np.testing.assert_array_equal(rows, expected)
    assert len(np.unique(rows)) == 50
    np.testing.assert_array_equal(result.sample(400), np.arange(400))
    with pytest.raises(ValueError, match="max_points must be an integer >= 1, got 0"):
        result.sample(0)


def test_binned_means_by_hand():
    # fitted 1..8, residuals 10 * fitted; 4 bins at quantiles [1, 2.75, 4.5, 6.25, 8]:
    # {1, 2}, {3, 4}, {5, 6}, {7, 8} (the maximum joins the last bin)
    fitted = np.arange(1.0, 9.0)
    result = residual_analysis(11 * fitted, fitted, lags=1, n_permutations=0)
    table = result.binned_means(4)
    assert table["n"].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(table["fitted"], [1.5, 3.5, 5.5, 7.5], rtol=1e-15)
    np.testing.assert_allclose(table["residual"], [15.0, 35.0, 55.0, 75.0], rtol=1e-15)
    # ties merge bins: two distinct fitted values give at most two bins
    tied = residual_analysis([1.0, 2.0, 3.0, 5.0], [0.0, 0.0, 1.0, 1.0], lags=1)
    assert tied.binned_means(10).to_dict("list") == {
        "fitted": [0.0, 1.0],
        "residual": [1.5, 3.0],
        "n": [2, 2],
    }


def test_histogram_and_normal_qq_match_numpy_and_scipy(regression):
    y_true, y_pred, _ = regression
    result = residual_analysis(y_true, y_pred, lags=2, n_permutations=0)
    residuals = y_true - y_pred
    counts, edges = result.histogram(12)
    reference_counts, reference_edges = np.histogram(residuals, bins=12)
    np.testing.assert_array_equal(counts, reference_counts)
    np.testing.assert_array_equal(edges, reference_edges)
    theoretical, ordered, slope, intercept, r = result.normal_qq()
    (osm, osr), (ref_slope, ref_intercept, ref_r) = stats.probplot(residuals, fit=True)
    np.testing.assert_array_equal(theoretical, osm)
    np.testing.assert_array_equal(ordered, osr)
    assert (slope, intercept, r) == pytest.approx((ref_slope, ref_intercept, ref_r), abs=1e-12)
    # a straight line through the normal quantiles: slope ~ sd, intercept ~ mean
    assert slope == pytest.approx(residuals.std(ddof=1), rel=0.05)
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        result.histogram(0)
