"""Drift statistics against scipy, and the column-by-column comparison's verdicts."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from opsloop.data import drift
from opsloop.data.drift.binning import bin_counts, quantile_edges, sorted_quantiles
from opsloop.data.drift.kernels import ecdf_walk, merge_sorted, sort_floats


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "ties"),
    [
        (50, 70, 0.0, False),
        (3_000, 9_000, 0.3, False),
        (20_000, 15_000, 0.0, False),
        (60_000, 40_000, 0.02, False),
        (30_000, 50_000, 0.1, True),
        (12_000, 12_000, 0.0, True),
    ],
)
def test_ks_equals_scipy_bit_for_bit(n1, n2, shift, ties):
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    if ties:
        a, b = np.round(a * 3), np.round(b * 3)
    expected = stats.ks_2samp(a, b)
    statistic, p_value = drift.ks_test(a, b)
    assert statistic == expected.statistic
    assert p_value == expected.pvalue


def _exact_cases():
    """Samples within scipy's exact distribution: unequal and equal sizes, ties, a
    window far from its reference, identical samples, a single value."""
    rng = np.random.default_rng(17)
    yield rng.normal(size=5_000), rng.normal(0.3, size=1_000)
    yield rng.normal(size=5_000), rng.normal(2.0, size=1_000)
    yield rng.normal(size=1_000), rng.normal(0.1, size=1_000)
    yield np.round(rng.normal(size=4_000) * 2), np.round(rng.normal(0.2, size=700) * 2)
    same = rng.exponential(size=300)
    yield same, same.copy()
    yield rng.normal(size=10_000), rng.normal(size=9_973)
    yield np.array([0.5]), rng.normal(size=40)


def test_exact_ks_equals_scipy_bit_for_bit():
    # The exact p-value from our compiled sum after one merge pass: what ks_2samp gives.
    for a, b in _exact_cases():
        expected = stats.ks_2samp(a, b)
        assert drift.ks_test(a, b) == (expected.statistic, expected.pvalue)
        d, p, w = drift.numeric.ks_and_wasserstein(
            drift.SortedSample.from_values(a), drift.SortedSample.from_values(b)
        )
        assert (d, p) == (expected.statistic, expected.pvalue)
        assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(size=5_000 + seed * 777)
    b = rng.lognormal(0.1, size=4_000)
    if seed % 2:
        a, b = np.round(a, 1), np.round(b, 1)
    expected = stats.wasserstein_distance(a, b)
    assert drift.wasserstein(a, b) == pytest.approx(expected, rel=1e-12)
    assert drift.wasserstein(a, b, normalize=True) == pytest.approx(expected / np.std(a), 1e-12)


def test_sort_floats_equals_numpy_with_signs_infinities_and_ties():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=50_000), [np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324]])
    x = np.concatenate([x, np.round(x[:10_000])])
    np.testing.assert_array_equal(sort_floats(x), np.sort(x))


@pytest.mark.parametrize(
    "sizes",
    [(3_000,), (1_000, 500), (40_000, 0, 25_000, 7), (900,) * 9, (6_000, 2_500, 6_000, 1, 3_333)],
)
def test_merge_sorted_is_the_radix_sort_of_the_runs_bit_for_bit(sizes):
    # Zeros of both signs in every run: a stable merge keeps them in run order (0.0 of the
    # first run before -0.0 of the second), the radix sort puts every -0.0 first.
    rng = np.random.default_rng(len(sizes))
    runs = []
    for size in sizes:
        run = np.round(rng.normal(size=size), 1)  # ties, and zeros from rounding
        run[: min(size, 4)] = [0.0, -0.0, np.inf, -np.inf][: min(size, 4)]
        runs.append(sort_floats(run))
    merged = merge_sorted(runs)
    expected = sort_floats(np.concatenate(runs))
    assert merged.dtype == np.float64 and merged.size == expected.size
    np.testing.assert_array_equal(merged.view(np.uint64), expected.view(np.uint64))
    assert all(merged is not run for run in runs)


def test_ecdf_walk_matches_searchsorted_definition():
    rng = np.random.default_rng(5)
    a, b = np.sort(rng.integers(0, 30, 700).astype(float)), np.sort(rng.integers(5, 40, 900) * 1.0)
    pooled = np.concatenate([a, b])
    diff = (
        np.searchsorted(a, pooled, "right") / a.size - np.searchsorted(b, pooled, "right") / b.size
    )
    max_diff, max_at, min_diff, min_at, area = ecdf_walk(a, b)
    assert max_diff == diff.max() and min_diff == diff.min()
    assert max_at == pooled[np.argmax(diff)] and min_at == pooled[np.argmin(diff)]
    assert area == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-13)


def test_chi_square_equals_scipy_when_nothing_is_pooled():
    ref, cur = np.array([400, 300, 200, 100]), np.array([380, 330, 180, 110])
    expected = stats.chi2_contingency(np.vstack([ref, cur]))
    assert drift.chi_square(ref, cur) == (expected.statistic, expected.pvalue)
    two = stats.chi2_contingency(np.array([[60, 40], [45, 55]]))  # Yates' correction, dof 1
    assert drift.chi_square(np.array([60, 40]), np.array([45, 55])) == (two.statistic, two.pvalue)


def test_chi_square_pools_rare_cells_by_hand():
    # Cells 3 and 4 have expected counts below 5 and are pooled into (3, 1); that cell is still
    # too small (expected 4 * 101 / 204 < 5), so it joins the smallest other cell, the first.
    ref, cur = np.array([50, 50, 2, 1]), np.array([40, 60, 1, 0])
    expected = stats.chi2_contingency(np.array([[53, 50], [41, 60]]))
    assert drift.chi_square(ref, cur) == (expected.statistic, expected.pvalue)


def test_distances_by_hand_and_against_scipy():
    ref, cur = np.array([30, 50, 20]), np.array([20, 50, 30])
    p, q = ref / 100, cur / 100
    assert drift.jensen_shannon(ref, cur) == jensenshannon(p, q, base=2)
    assert drift.psi(ref, cur) == pytest.approx(
        (0.2 - 0.3) * np.log(0.2 / 0.3) + (0.3 - 0.2) * np.log(0.3 / 0.2)
    )
    bc = np.sqrt(0.3 * 0.2) + 0.5 + np.sqrt(0.2 * 0.3)
    assert drift.hellinger(ref, cur) == pytest.approx(np.sqrt(1 - bc))
    assert drift.l_infinity(ref, cur) == pytest.approx(0.1)
    # An empty bin is floored at 1e-4 rather than making PSI infinite.
    assert drift.psi(np.array([10, 0]), np.array([5, 5])) == pytest.approx(
        (0.5 - 1.0) * np.log(0.5 / 1.0) + (0.5 - 1e-4) * np.log(0.5 / 1e-4)
    )


def test_anderson_darling_equals_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=400), rng.normal(0.15, size=300)
    assert drift.anderson_darling(a, b) == _anderson(a, b)


def _anderson(a, b):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.anderson_ksamp([np.sort(a), np.sort(b)])
    return float(result.statistic), float(result.pvalue)


def test_corrections_against_scipy_and_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    np.testing.assert_allclose(
        drift.adjust_p_values(p, "bh"), stats.false_discovery_control(p, method="bh")
    )
    # Holm by hand: sorted 0.001, 0.01, 0.03, 0.04, 0.2 times 5, 4, 3, 2, 1, made monotone.
    np.testing.assert_allclose(drift.adjust_p_values(p, "holm"), [0.04, 0.09, 0.09, 0.2, 0.005])
    np.testing.assert_allclose(drift.adjust_p_values(p, "bonferroni"), np.minimum(1, p * 5))
    with pytest.raises(ValueError, match="correction must be one of"):
        drift.adjust_p_values(p, "fdr")


def test_quantile_helpers_match_numpy():
    rng = np.random.default_rng(9)
    x = np.sort(rng.exponential(size=1001))
    probs = np.linspace(0, 1, 17)
    np.testing.assert_allclose(sorted_quantiles(x, probs), np.quantile(x, probs), rtol=1e-14)
    edges = quantile_edges(x, 10)
    counts = bin_counts(x, edges)
    assert counts.sum() == x.size and counts.size == edges.size + 1
    bounds = np.r_[-np.inf, edges, np.inf]
    by_hand = [np.sum((x > lo) & (x <= hi)) for lo, hi in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(counts, by_hand)


def _frames(n=20_000, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    categories = ["north", "south", "east", "west"]

    def frame(mu, weights):
        return pd.DataFrame(
            {
                "salary": rng.lognormal(10 + mu, 0.5, n),
                "age": rng.integers(18, 80, n),
                "region": pd.Categorical(rng.choice(categories, n, p=weights), categories),
                "stable": rng.normal(size=n),
            }
        )

    return frame(0.0, [0.4, 0.3, 0.2, 0.1]), frame(shift, [0.25, 0.25, 0.25, 0.25])


def test_compare_detects_shift_and_matches_scipy_per_column():
    ref, cur = _frames(shift=0.05)
    result = drift.compare(ref, cur)
    salary, region, stable = result["salary"], result["region"], result["stable"]
    expected = stats.ks_2samp(ref["salary"], cur["salary"])
    assert (salary.test, salary.statistic, salary.p_value) == (
        "ks",
        expected.statistic,
        expected.pvalue,
    )
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))],
        pd.concat([ref["region"], cur["region"]]).to_numpy(),
    )
    chi = stats.chi2_contingency(table.to_numpy())
    assert region.test == "chi2"
    assert region.statistic == pytest.approx(chi.statistic, rel=1e-12)
    assert region.p_value == pytest.approx(chi.pvalue, rel=1e-9, abs=1e-300)
    assert salary.drifted and region.drifted and not stable.drifted
    # 62 distinct ages, each repeated hundreds of times: tested as discrete (chi-square), with
    # the Wasserstein distance on the value counts as the effect, equal to scipy's on values.
    age = result["age"]
    assert (age.kind, age.test, age.effect_name) == ("discrete", "chi2", "wasserstein")
    assert age.effect == pytest.approx(
        stats.wasserstein_distance(ref["age"], cur["age"]) / np.std(ref["age"]), rel=1e-9
    )
    assert salary.effect_name == "wasserstein"
    assert salary.effect == pytest.approx(
        stats.wasserstein_distance(ref["salary"], cur["salary"]) / np.std(ref["salary"]), 1e-12
    )
    assert result.drifted and result.n_drifted == 2


def test_holm_adjusted_p_values_drive_the_verdict():
    ref, cur = _frames(shift=0.05)
    result = drift.compare(ref, cur, correction="holm")
    raw = np.array([c.p_value for c in result.columns])
    np.testing.assert_allclose(
        [c.p_adjusted for c in result.columns], drift.adjust_p_values(raw, "holm")
    )
    for column in result.columns:
        assert column.drifted == (column.p_adjusted < 0.05)


def test_min_effect_and_drift_share_and_overrides():
    ref, cur = _frames(shift=0.05)
    strict = drift.compare(ref, cur, min_effect={"salary": 0.5})
    assert not strict["salary"].drifted and strict["salary"].min_effect == 0.5
    share = drift.compare(ref, cur, drift_share=0.75)
    assert share.n_drifted == 2 and not share.drifted
    psi = drift.compare(ref, cur, tests={"salary": "psi"}, thresholds={"psi": 0.001})
    assert psi["salary"].test == "psi" and psi["salary"].threshold == 0.001
    assert psi["salary"].p_value is None and psi["salary"].drifted
    with pytest.raises(ValueError, match=r"'salary'.*test must be one of"):
        drift.compare(ref, cur, tests={"salary": "chi2"})


def test_unchanged_data_is_not_flagged():
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=30_000), "c": rng.choice(list("abc"), 30_000)})
    cur = pd.DataFrame({"x": rng.normal(size=30_000), "c": rng.choice(list("abc"), 30_000)})
    result = drift.compare(ref, cur)
    assert not result.drifted and result.share_drifted == 0.0


def test_reference_profile_round_trip_gives_identical_results(tmp_path):
    ref, cur = _frames(shift=0.05)
    direct = drift.compare(ref, cur)
    profile = drift.ReferenceProfile.from_frame(ref)
    loaded = drift.ReferenceProfile.load(profile.save(tmp_path / "ref.npz"))
    assert drift.compare(loaded, cur).to_dict() == direct.to_dict()
    lazy = drift.ReferenceProfile.load(tmp_path / "ref.npz", lazy=True)
    assert list(lazy) == list(profile)
    assert drift.compare(lazy, cur).to_dict() == direct.to_dict()
    # each lookup reads the column anew: the profile keeps no sorted values between columns
    first, again = lazy["salary"].sample.values, lazy["salary"].sample.values
    assert first is not again
    np.testing.assert_array_equal(first, profile["salary"].sample.values)
    # a lazy profile saves like an eager one
    assert drift.ReferenceProfile.load(lazy.save(tmp_path / "copy.npz"))["salary"].n_valid == (
        profile["salary"].n_valid
    )
    # asking whether it holds a column reads nothing: it works with the file gone
    (tmp_path / "ref.npz").unlink()
    assert "salary" in lazy and "nothing" not in lazy
    with pytest.raises(FileNotFoundError):
        lazy["salary"]


def test_bad_values_missing_columns_and_bad_arguments():
    ref, cur = _frames(n=2_000)
    cur = cur.drop(columns=["stable"]).astype({"salary": object})
    cur.loc[:9, "salary"] = "n/a"
    result = drift.compare(ref, cur, columns=["salary", "age", "stable"])
    assert result["salary"].invalid_current == 10
    assert result["salary"].n_current == len(cur) - 10
    assert result.skipped == (("stable", "missing from current"),)
    with pytest.raises(ValueError, match="alpha"):
        drift.compare(ref, cur, alpha=1.5)
    with pytest.raises(ValueError, match="columns not in the reference"):
        drift.compare(ref, cur, columns=["nope"])
    with pytest.raises(ValueError, match="no common columns"):
        drift.compare(ref[["age"]], pd.DataFrame({"other": [1, 2]}))
    with pytest.raises(TypeError, match="current must be a pandas DataFrame"):
        drift.compare(ref, [1, 2, 3])


def test_text_datetime_bool_and_discrete_columns():
    rng = np.random.default_rng(4)
    n = 4_000
    words = np.array(["car", "home improvement", "medical bills", "wedding", "school"])
    ref = pd.DataFrame(
        {
            "purpose": words[rng.integers(0, 5, n)],
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1e6, n), "s"),
            "flag": rng.random(n) < 0.3,
            "children": rng.integers(0, 4, n),
        }
    )
    ref["purpose"] = ref["purpose"] + " " + pd.Series(rng.integers(0, 10**6, n)).astype(str)
    result = drift.compare(ref, ref.sample(frac=1.0, random_state=1).reset_index(drop=True))
    kinds = {c.column: c.kind for c in result.columns}
    assert kinds == {"purpose": "text", "when": "datetime", "flag": "bool", "children": "discrete"}
    assert not result.drifted
    assert all(c.statistic == 0.0 for c in result.columns)


def test_report_serialisations_are_consistent():
    ref, cur = _frames(n=3_000, shift=0.2)
    result = drift.compare(ref, cur)
    doc = json.loads(result.to_json())
    assert doc["dataset"]["n_drifted"] == result.n_drifted
    entry = {c["column"]: c for c in doc["columns"]}["salary"]
    assert set(entry) >= {"column", "test", "statistic", "p_value", "threshold", "drifted"}
    frame = result.to_frame()
    assert list(frame["column"]) == [c.column for c in result.columns]
    assert frame.loc[frame["column"] == "salary", "drifted"].item() == result["salary"].drifted


def test_classifier_test_finds_joint_drift_that_marginals_miss():
    rng = np.random.default_rng(7)
    x, noise = rng.normal(size=6_000), rng.normal(0, 0.2, 6_000)
    ref = pd.DataFrame({"a": x[:3000], "b": x[:3000] + noise[:3000]})
    cur = pd.DataFrame({"a": x[3000:], "b": -x[3000:] + noise[3000:]})
    assert not drift.compare(ref, cur).drifted  # each marginal is unchanged
    result = drift.classifier_two_sample_test(ref, cur, seed=1)
    assert result.drifted and result.auc > 0.9
    assert {name for name, _ in result.importances} == {"a", "b"}


def test_prior_shift_equals_scipy_chi_square():
    ref = np.array([0] * 800 + [1] * 200)
    cur = np.array([0] * 700 + [1] * 300)
    result = drift.prior_shift(ref, cur)
    expected = stats.chi2_contingency(np.array([[800, 200], [700, 300]]))
    assert (result.statistic, result.p_value) == (expected.statistic, expected.pvalue)
    assert result.current_shares == {"0": 0.7, "1": 0.3}


def test_concept_shift_is_quiet_without_change():
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    y1 = (x1[:, 0] + rng.normal(0, 0.5, 3000) > 0).astype(int)
    y2 = (x2[:, 0] + rng.normal(0, 0.5, 3000) > 0).astype(int)
    frame = lambda a: pd.DataFrame(a, columns=["a", "b"])  # noqa: E731
    assert not drift.concept_shift(frame(x1), y1, frame(x2), y2).drifted


def test_threshold_by_test_name_applies_to_the_default_test():
    ref, cur = _frames(shift=0.05)
    default = drift.compare(ref, cur)
    assert default["salary"].test == "ks" and default["salary"].drifted
    # the default deciding test ("ks" for a numeric column) takes its threshold by name
    strict = drift.compare(ref, cur, thresholds={"ks": 1e-30})
    salary = strict["salary"]
    assert salary.threshold == 1e-30 and not salary.drifted
    assert salary.p_adjusted == default["salary"].p_adjusted
    assert {s.test: s.threshold for s in salary.statistics}["ks"] == 1e-30
    # a column's own entry wins over the test's
    both = drift.compare(ref, cur, thresholds={"ks": 1e-30, "salary": 0.05})
    assert both["salary"].threshold == 0.05 and both["salary"].drifted
    # a distance named in thresholds is judged by it where it is only reported
    reported = drift.compare(ref, cur, thresholds={"psi": 1e-9})
    psi = {s.test: s for s in reported["salary"].statistics}["psi"]
    assert psi.threshold == 1e-9 and psi.drifted == (psi.statistic >= 1e-9)
    assert reported["salary"].test == "ks"


def test_classifier_test_is_the_same_with_any_thread_count_and_sklearn_importances():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedKFold

    from opsloop.data.drift.multivariate import feature_frame

    rng = np.random.default_rng(5)
    n = 400
    ref = pd.DataFrame(
        {"a": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n), "b": rng.normal(size=n)}
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(0.4, 1.0, n),
            "c": rng.choice(["x", "y", "z"], n, p=[0.6, 0.2, 0.2]),
            "b": rng.normal(size=n),
        }
    )
    one = drift.classifier_two_sample_test(ref, cur, seed=2)
    every = drift.classifier_two_sample_test(ref, cur, seed=2, n_jobs=2)
    assert one == every
    # The importances are scikit-learn's permutation importance on the first fold's model.
    pooled = pd.concat([ref, cur], ignore_index=True)  # max_rows keeps every row, in order
    x = feature_frame(pooled, ["a", "c", "b"])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    train, test = next(StratifiedKFold(5, shuffle=True, random_state=2).split(x, y))
    model = HistGradientBoostingClassifier(
        max_iter=100, categorical_features="from_dtype", random_state=2
    ).fit(x.iloc[train], y[train])
    found = permutation_importance(
        model, x.iloc[test], y[test], scoring="roc_auc", n_repeats=3, random_state=2
    ).importances_mean
    shares = np.maximum(found, 0.0) / np.maximum(found, 0.0).sum()
    assert dict(one.importances) == dict(zip(["a", "c", "b"], shares.tolist(), strict=True))
    with pytest.raises(ValueError, match="n_jobs must be a positive integer or None, got 0"):
        drift.classifier_two_sample_test(ref, cur, n_jobs=0)


def test_concept_shift_is_the_same_with_any_thread_count():
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    y1, y2 = (x1[:, 0] > 0).astype(int), (x2[:, 0] + x2[:, 1] > 0).astype(int)
    frame = lambda a: pd.DataFrame(a, columns=["a", "b"])  # noqa: E731
    one = drift.concept_shift(frame(x1), y1, frame(x2), y2, seed=1)
    every = drift.concept_shift(frame(x1), y1, frame(x2), y2, seed=1, n_jobs=2)
    assert one == every and one.drifted
