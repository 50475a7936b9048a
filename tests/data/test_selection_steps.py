"""Each selection step's statistics against the reference implementations, and its rules."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats.contingency import association
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.feature_selection import (
    SelectKBest,
    SelectPercentile,
    chi2,
    f_classif,
    f_regression,
    mutual_info_classif,
)
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from opsloop.data.selection import (
    CategoricalRedundancy,
    ModelImportance,
    NearZeroVariance,
    NullFraction,
    NumericRedundancy,
    Relevance,
)
from opsloop.data.selection.association import (
    correlation_ratio,
    cramers_v,
    pairwise_contingency,
)
from opsloop.data.selection.columns import prepare_columns
from opsloop.data.selection.correlation import (
    correlation_ratio_from_moments,
    pairwise_moments,
    pearson_matrix,
)
from opsloop.data.selection.importance import permutation_scores
from opsloop.data.selection.redundancy import keep_order, resolve_pairs
from opsloop.data.selection.relevance import indicators, k_best_mask, percentile_mask
from opsloop.data.selection.target import prepare_target
from opsloop.datasets import credit

TOL = 1e-9


def run(step, frame, y=None, seed=0):
    columns = prepare_columns(frame)
    target = None if y is None else prepare_target(y, len(frame))
    return step.run(columns, list(columns.names), target, seed)


# --- null fraction --------------------------------------------------------------------------


def test_null_fraction_equals_pandas_and_drops_above_threshold():
    frame = credit(500, seed=1, missing=0.3)
    frame["mostly"] = np.where(np.arange(500) < 450, np.nan, 1.0)
    frame["exactly"] = np.where(np.arange(500) < 400, np.nan, 1.0)  # 0.8: not above
    result = run(NullFraction(0.8), frame)
    expected = frame.isna().mean()
    for name, value in result.measured["null_fraction"].items():
        assert value == pytest.approx(expected[name], abs=TOL)
    assert [(d.column, d.value, d.threshold) for d in result.drops] == [("mostly", 0.9, 0.8)]


# --- near-zero variance ---------------------------------------------------------------------


def _pandas_top_two(series):
    counts = series.value_counts()
    top = counts.iloc[0] / counts.sum()
    ratio = counts.iloc[0] / counts.iloc[1] if len(counts) > 1 else np.inf
    return top, ratio


def test_near_zero_variance_equals_value_counts_numeric_and_categorical():
    rng = np.random.default_rng(3)
    n = 2000
    zeros = np.zeros(n)
    zeros[:40] = rng.normal(size=40)  # 98% zeros, then 40 distinct values: ratio 1960
    flag = (rng.random(n) < 0.06).astype(float)  # 94/6: ratio about 16 (kept)
    frame = pd.DataFrame(
        {
            "zeros": zeros,
            "flag": flag,
            "constant": np.full(n, 2.5),
            "normal": rng.normal(size=n),
            "category": pd.Categorical(np.where(rng.random(n) < 0.97, "a", "b")),
            "with_nulls": np.where(rng.random(n) < 0.5, np.nan, np.where(zeros != 0, 1.0, 0.0)),
            "empty": np.full(n, np.nan),
        }
    )
    result = run(NearZeroVariance(), frame)
    dropped = {d.column: d for d in result.drops}
    assert set(dropped) == {"zeros", "constant", "category", "with_nulls", "empty"}
    for name in ("zeros", "category", "with_nulls", "flag"):
        top, ratio = _pandas_top_two(frame[name])
        assert result.measured["top_share"][name] == pytest.approx(top, abs=TOL)
        if name in dropped:
            assert dropped[name].value == pytest.approx(top, abs=TOL)
            assert ratio > 19
    assert dropped["constant"].value == 1.0
    assert dropped["empty"].value is None and dropped["empty"].reason == "no non-missing values"
    # No value covers half of a continuous column: its share is not needed and not reported.
    assert result.measured["top_share"]["normal"] is None


def test_near_zero_variance_below_half_uses_exact_counts():
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    result = run(NearZeroVariance(top_share=0.15, ratio=1.0), frame)
    assert result.measured["top_share"]["x"] == pytest.approx(0.2)
    assert result.drops == ()  # the top two values tie: ratio 1 is not above 1


def test_near_zero_variance_ratio_rule():
    frame = pd.DataFrame({"x": [0.0] * 92 + [1.0] * 8})
    assert run(NearZeroVariance(top_share=0.9, ratio=11), frame).drops[0].column == "x"
    assert run(NearZeroVariance(top_share=0.9, ratio=12), frame).drops == ()


# --- Pearson --------------------------------------------------------------------------------


def _numeric_frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "a": base * 1e4 + 5e6,
            "b": base * 3 - 7 + rng.normal(scale=0.05, size=n),
            "c": rng.normal(size=n),
            "d": rng.exponential(size=n) * 100,
            "constant": np.full(n, 4.0),
            "sparse": np.where(rng.random(n) < 0.9, np.nan, rng.normal(size=n)),
            "ints": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
        }
    )
    for name in ("a", "c", "d"):
        frame.loc[rng.random(n) < 0.2, name] = np.nan
    return frame


def test_pearson_matrix_equals_pandas_pairwise_corr():
    frame = _numeric_frame()
    columns = prepare_columns(frame)
    r = pearson_matrix([columns.values[c] for c in frame.columns], chunk_rows=700)
    expected = frame.astype(float).corr().to_numpy()
    assert np.array_equal(np.isnan(r), np.isnan(expected))
    assert np.nanmax(np.abs(r - expected)) < TOL


def test_pearson_matrix_equals_scipy_on_complete_pairs():
    frame = _numeric_frame(seed=5)
    values = [frame[c].to_numpy(dtype=float) for c in ("a", "b", "c", "sparse")]
    r = pearson_matrix(values)
    for i in range(4):
        for j in range(i + 1, 4):
            both = ~np.isnan(values[i]) & ~np.isnan(values[j])
            expected = stats.pearsonr(values[i][both], values[j][both]).statistic
            assert r[i, j] == pytest.approx(expected, abs=TOL)


def test_correlation_ratio_from_moments_equals_f_classif():
    frame = _numeric_frame(seed=2)
    y = np.random.default_rng(9).integers(0, 3, len(frame))
    values = [frame[c].to_numpy(dtype=float) for c in ("a", "c", "d", "constant")]
    eta = correlation_ratio_from_moments(pairwise_moments(values, y, 3, chunk_rows=512))
    for j in range(3):
        present = ~np.isnan(values[j])
        f = f_classif(values[j][present, None], y[present])[0][0]
        k, n = 3, present.sum()
        expected = np.sqrt(f * (k - 1) / (f * (k - 1) + n - k))
        assert eta[j] == pytest.approx(expected, abs=TOL)
    assert np.isnan(eta[3])


def test_numeric_redundancy_keeps_the_column_more_related_to_the_target():
    rng = np.random.default_rng(4)
    n = 4000
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=0.5, size=n) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "blurred": signal + rng.normal(scale=0.2, size=n),  # r with signal about 0.98
            "signal": signal,
            "other": rng.normal(size=n),
        }
    )
    result = run(NumericRedundancy(0.95), frame, y)
    (drop,) = result.drops
    assert (drop.column, drop.redundant_with) == ("blurred", "signal")
    assert drop.value == pytest.approx(frame["blurred"].corr(frame["signal"]), abs=TOL)
    assert "relates more to the target" in drop.reason


def test_numeric_redundancy_regression_target_uses_abs_r():
    rng = np.random.default_rng(8)
    n = 3000
    signal = rng.normal(size=n)
    y = 2.0 * signal + rng.normal(size=n)
    frame = pd.DataFrame({"copy": signal + rng.normal(scale=0.15, size=n), "signal": signal})
    (drop,) = run(NumericRedundancy(), frame, y).drops
    assert drop.column == "copy"


def test_numeric_redundancy_without_target_keeps_the_better_populated():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    frame = pd.DataFrame({"holes": np.where(rng.random(1000) < 0.1, np.nan, x), "full": -x})
    (drop,) = run(NumericRedundancy(), frame).drops
    assert (drop.column, drop.redundant_with) == ("holes", "full")
    assert drop.value == pytest.approx(-1.0, abs=TOL)
    assert "more values" in drop.reason


def test_resolve_pairs_lets_only_survivors_drop():
    # a~b and b~c but not a~c: a drops b, and b (dropped) cannot drop c.
    s = np.array([[1.0, 0.97, 0.5], [0.97, 1.0, 0.97], [0.5, 0.97, 1.0]])
    assert resolve_pairs(s, 0.95, np.array([0, 1, 2])) == [(1, 0)]
    assert resolve_pairs(s, 0.95, np.array([1, 0, 2])) == [(0, 1), (2, 1)]
    order = keep_order(["a", "b"], np.array([np.nan, 0.1]), np.array([10, 10]))
    assert order.tolist() == [1, 0]


# --- categorical association ----------------------------------------------------------------


def test_cramers_v_equals_scipy_association_pairwise_complete():
    frame = credit(3000, seed=2, missing=0.1)
    names = ["education", "region", "device", "car_make", "gender"]
    columns = prepare_columns(frame[names])
    counts, offsets = pairwise_contingency(
        [columns.codes[c] for c in names], [columns.levels[c] for c in names], chunk_rows=256
    )
    for i, a in enumerate(names):
        for j, b in enumerate(names[i + 1 :], start=i + 1):
            table = pd.crosstab(frame[a], frame[b])  # drops rows with a missing value
            block = counts[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
            assert np.array_equal(
                block,
                table.reindex(
                    index=frame[a].cat.categories, columns=frame[b].cat.categories, fill_value=0
                ).to_numpy(),
            )
            table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
            expected = association(table, method="cramer")
            got = cramers_v(
                columns.codes[a], columns.levels[a], columns.codes[b], columns.levels[b]
            )
            assert got == pytest.approx(expected, abs=TOL)


def test_correlation_ratio_equals_one_way_anova_share():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 4, 500)
    numbers = codes * 0.5 + rng.normal(size=500)
    present = codes >= 0
    groups = [numbers[present & (codes == k)] for k in range(4)]
    f = stats.f_oneway(*groups).statistic
    n = present.sum()
    expected = np.sqrt(f * 3 / (f * 3 + n - 4))
    assert correlation_ratio(codes, 4, numbers) == pytest.approx(expected, abs=TOL)


def test_categorical_redundancy_drops_the_relabelled_copy():
    frame = credit(3000, seed=3)
    y = frame.pop("default")
    copy = frame["education"].cat.rename_categories(lambda s: s.upper())
    frame.insert(0, "education_copy", copy)  # first in the frame, equal association
    frame.loc[:99, "education_copy"] = np.nan  # less populated: loses the tie
    result = run(CategoricalRedundancy(0.9), frame, y)
    (drop,) = result.drops
    assert (drop.column, drop.redundant_with, drop.statistic) == (
        "education_copy",
        "education",
        "cramers_v",
    )
    assert drop.value == pytest.approx(1.0, abs=TOL)


# --- relevance ------------------------------------------------------------------------------


def _relevance_frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) + (i % 3 == 0) * y * 0.3 for i in range(9)})
    frame.loc[rng.random(n) < 0.1, "x1"] = np.nan
    return frame, y


def test_relevance_scores_and_selection_equal_sklearn():
    frame, y = _relevance_frame()
    filled = frame.fillna(frame.mean())
    expected_scores = f_classif(filled.to_numpy(), y)[0]
    for step, selector in [
        (Relevance(k=4), SelectKBest(f_classif, k=4)),
        (Relevance(percentile=30), SelectPercentile(f_classif, percentile=30)),
    ]:
        result = run(step, frame, y)
        scores = np.array([result.measured["relevance"][c] for c in frame.columns])
        assert np.max(np.abs(scores - expected_scores)) < TOL
        kept = set(frame.columns) - {d.column for d in result.drops}
        support = selector.fit(filled.to_numpy(), y).get_support()
        assert kept == set(frame.columns[support])


def test_relevance_chi2_and_mutual_information_equal_sklearn():
    frame, y = _relevance_frame(seed=1)
    positive = frame.abs()
    result = run(Relevance(score_func="chi2", k="all"), positive, y)
    expected = chi2(positive.fillna(positive.mean()).to_numpy(), y)[0]
    got = np.array([result.measured["relevance"][c] for c in frame.columns])
    assert np.max(np.abs(got - expected)) < TOL
    result = run(Relevance(score_func="mutual_info_classif", k=3), frame, y, seed=5)
    expected = mutual_info_classif(
        frame.fillna(frame.mean()).to_numpy(), y, discrete_features=False, random_state=5
    )
    got = np.array([result.measured["relevance"][c] for c in frame.columns])
    assert np.max(np.abs(got - expected)) < TOL
    with pytest.raises(ValueError, match=r"chi2 needs non-negative values; columns \['x0'"):
        run(Relevance(score_func="chi2"), frame, y)


def test_relevance_categorical_score_is_its_best_level():
    frame = credit(2000, seed=4)
    y = frame.pop("default").to_numpy()
    result = run(Relevance(k="all"), frame[["education", "region"]], y)
    for name in ("education", "region"):
        levels = prepare_columns(frame[[name]])
        matrix = indicators(levels.codes[name], levels.levels[name])
        assert result.measured["relevance"][name] == pytest.approx(
            np.nanmax(f_classif(matrix, y)[0]), abs=TOL
        )


def test_relevance_regression_and_task_mismatch():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = frame["a"] * 2 + rng.normal(size=300)
    result = run(Relevance(k=1), frame, y)
    assert [d.column for d in result.drops] == ["b"]
    assert result.measured["relevance"]["a"] == pytest.approx(
        f_regression(frame.to_numpy(), y)[0][0], abs=TOL
    )
    with pytest.raises(ValueError, match="f_classif is for classification but the target is "):
        run(Relevance(score_func="f_classif"), frame, y)


def test_selector_masks_match_sklearn_with_ties_and_nans():
    scores = np.array([1.0, 3.0, 3.0, np.nan, 2.0, 3.0, 0.5])
    for k in (0, 1, 2, 3, 7):
        expected = SelectKBest(lambda X, y: scores, k=k).fit(np.zeros((2, 7)), [0, 1])
        assert k_best_mask(scores, k).tolist() == expected.get_support().tolist()
    for percentile in (0, 10, 30, 50, 100):
        selector = SelectPercentile(lambda X, y: scores, percentile=percentile)
        expected = selector.fit(np.zeros((2, 7)), [0, 1]).get_support()
        assert percentile_mask(scores, percentile).tolist() == expected.tolist()


# --- model importance -----------------------------------------------------------------------


def test_permutation_scores_equal_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    for model, target in [
        (HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y), y),
        (RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X[:, 1]), X[:, 1]),
    ]:
        expected = permutation_importance(model, X, target, n_repeats=3, random_state=11)
        got = permutation_scores(model, X, target, n_repeats=3, random_state=11)
        assert np.array_equal(got, expected.importances)
        # Stacked in batches of a few columns, the same numbers.
        small = permutation_scores(model, X, target, n_repeats=3, random_state=11, max_cells=5000)
        assert np.array_equal(small, expected.importances)
    classifier = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    expected = permutation_importance(
        classifier, X, y, n_repeats=3, random_state=11, scoring="neg_brier_score"
    )
    got = permutation_scores(classifier, X, y, n_repeats=3, random_state=11, scoring="brier")
    assert np.max(np.abs(got - expected.importances)) < 1e-12
    # A group shuffled together: the columns move with one row order.
    together = permutation_scores(
        classifier, X, y, n_repeats=3, random_state=11, groups=[np.array([0, 2])]
    )
    X_both = X.copy()
    order = np.random.RandomState(
        np.random.RandomState(11).randint(np.iinfo(np.int32).max + 1)
    ).permutation(800)
    X_both[:, [0, 2]] = X[order][:, [0, 2]]
    first = classifier.score(X, y) - classifier.score(X_both, y)
    assert together[0, 0] == pytest.approx(first, abs=1e-12)


def test_model_importance_keeps_the_informative_columns():
    frame = credit(4000, seed=5, noise=0.0)
    y = frame.pop("default")
    frame = frame[["salary", "commission", "education", "loan_amount", "age", "gender"]]
    result = run(ModelImportance(threshold=0.005), frame, y)
    kept = set(frame.columns) - {d.column for d in result.drops}
    assert kept == {"salary", "commission", "education", "loan_amount"}
    for drop in result.drops:
        assert drop.statistic == "permutation_importance"
        assert drop.value == result.measured["importance"][drop.column]


def test_model_importance_top_k_with_model_importances():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(4)})
    y = (frame["x0"] * 3 + frame["x1"] > 0).astype(int)
    step = ModelImportance(estimator=LogisticRegression(), method="model", k=2, threshold=None)
    result = run(step, frame, y)
    kept = set(frame.columns) - {d.column for d in result.drops}
    assert kept == {"x0", "x1"}
    # The step's folds: five stratified, shuffled by the first draw of the funnel's seed.
    seed = np.random.RandomState(0).randint(2**31 - 1, size=1)[0]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(frame, y)
    X = frame.to_numpy()
    coef = np.mean(
        [np.abs(LogisticRegression().fit(X[train], y[train]).coef_[0]) for train, _ in folds],
        axis=0,
    )
    got = [result.measured["importance"][c] for c in frame.columns]
    assert np.max(np.abs(np.array(got) - coef)) < TOL


# --- parameter checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (NullFraction(1.5), r"null_fraction: threshold must be a number in \[0, 1\], got 1.5"),
        (NullFraction("high"), "null_fraction: threshold must be a number, got 'high'"),
        (NearZeroVariance(ratio=0.5), r"near_zero_variance: ratio must be a number in \[1, inf"),
        (NumericRedundancy(-0.1), "numeric_redundancy: threshold must be a number in"),
        (CategoricalRedundancy(max_levels=1), "max_levels must be an integer >= 2, got 1"),
        (Relevance(k=3, percentile=10), "give k or percentile, not both"),
        (Relevance(score_func="anova"), "score_func must be one of auto, chi2"),
        (Relevance(k=-1), "relevance: k must be an integer >= 0, got -1"),
        (ModelImportance(method="shap"), "method must be one of"),
        (ModelImportance(cv=1), "model_importance: cv must be an integer >= 2, got 1"),
        (ModelImportance(k=None, threshold=None), "give k, threshold or both"),
        (ModelImportance(estimator="forest"), "estimator must be a scikit-learn classifier"),
    ],
)
def test_bad_parameters_name_the_step_and_the_rule(step, message):
    with pytest.raises((ValueError, TypeError), match=message):
        step.check()
