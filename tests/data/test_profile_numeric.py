"""NumericSummary: counts, extremes, quantiles and histograms against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from opsloop.data.profile.numeric import DEFAULT_QUANTILES, NumericSummary

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def true_rank_interval(x: np.ndarray, value: float) -> tuple[float, float]:
    """Share of values strictly below and at-or-below ``value``."""
    return float(np.mean(x < value)), float(np.mean(x <= value))


def assert_quantiles_within_bound(summary: NumericSummary, x: np.ndarray, margin: float) -> None:
    # KLL guarantee (99% per query): the returned value's true rank is within eps of q.
    eps = summary.quantile_rank_error
    for q in (0.0, *DEFAULT_QUANTILES, 1.0):
        below, at_or_below = true_rank_interval(x, summary.quantile(q))
        assert below - margin * eps <= q <= at_or_below + margin * eps, (q, below, at_or_below)


def test_statistics_on_hand_made_data():
    x = np.array([3.0, -1.0, 0.0, 0.0, 10.0, np.inf, -np.inf, np.inf, 2.5])
    s = NumericSummary.of_values(x)
    finite = x[np.isfinite(x)]
    assert (s.count, s.n_zero, s.n_pos_inf, s.n_neg_inf) == (6, 2, 2, 1)
    assert (s.minimum, s.maximum, s.sum) == (-1.0, 10.0, 14.5)
    assert s.mean == pytest.approx(np.mean(finite), rel=1e-15)
    assert s.variance() == pytest.approx(np.var(finite, ddof=1), rel=1e-9)
    assert s.std() == pytest.approx(np.std(finite, ddof=1), rel=1e-9)
    assert s.skewness == pytest.approx(stats.skew(finite), rel=1e-9)
    assert s.kurtosis == pytest.approx(stats.kurtosis(finite), rel=1e-9)


def test_integers_keep_exact_extremes_and_sum():
    x = np.array([2**62, 2**62, 2**62, -5], dtype=np.int64)
    s = NumericSummary.of_values(x)
    assert s.integer and s.minimum == -5 and s.maximum == 2**62
    assert isinstance(s.minimum, int)
    assert s.to_dict()["sum"] == 3 * 2**62 - 5  # np.sum would overflow


def test_exact_mode_quantiles_equal_numpy_inverted_cdf():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 30, size=150).astype(float)
    s = NumericSummary.of_values(x)
    assert s.quantile_rank_error == 0.0
    ranks = [0.0, 0.01, 0.1, 0.25, 0.5, 0.77, 0.99, 1.0]
    assert s.quantiles(ranks) == np.quantile(x, ranks, method="inverted_cdf").tolist()


def test_estimation_mode_quantiles_within_bound():
    rng = np.random.default_rng(1)
    x = rng.standard_t(df=3, size=50_000)
    s = NumericSummary.of_values(x)
    assert 0.0 < s.quantile_rank_error < 0.02
    assert_quantiles_within_bound(s, x, margin=2.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.integers(0, 300),
)
def test_merged_sketch_quantiles_within_bound_of_numpy(values, cut):
    # k=8 compacts after a few dozen values, so the bound itself is exercised.
    x = np.array(values)
    cut = min(cut, x.size)
    a = NumericSummary.of_values(x[:cut], quantile_k=8)
    b = NumericSummary.of_values(x[cut:], quantile_k=8)
    merged = a.merge(b)
    assert merged.count == x.size
    assert (merged.minimum, merged.maximum) == (x.min(), x.max())
    if merged.quantile_rank_error == 0.0:
        ranks = [0.0, 0.1, 0.5, 0.9, 1.0]
        assert merged.quantiles(ranks) == np.quantile(x, ranks, method="inverted_cdf").tolist()
    else:
        assert_quantiles_within_bound(merged, x, margin=2.0)


def test_histogram_equals_numpy_while_exact():
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=180), 1)
    s = NumericSummary.of_values(x)
    for bins in (1, 4, 10):
        counts, edges = np.histogram(x, bins=bins)
        h = s.histogram(bins=bins)
        assert h.edges == tuple(edges.tolist())
        assert h.counts == tuple(counts.tolist())
        assert h.rank_error == 0.0
    edges = [-1.0, -0.5, 0.0, 0.0, 0.3, 5.0]
    assert s.histogram(edges=edges).counts == tuple(np.histogram(x, bins=edges)[0].tolist())


def test_histogram_of_constant_column_matches_numpy():
    x = np.full(7, 3.0)
    counts, edges = np.histogram(x, bins=5)
    h = NumericSummary.of_values(x).histogram(bins=5)
    assert h.edges == tuple(edges.tolist()) and h.counts == tuple(counts.tolist())


def test_histogram_within_bound_in_estimation_mode():
    rng = np.random.default_rng(4)
    x = rng.exponential(size=40_000)
    s = NumericSummary.of_values(x)
    h = s.histogram(bins=8)
    true_counts, _ = np.histogram(x, bins=np.array(h.edges))
    assert sum(h.counts) == x.size
    assert h.rank_error > 0
    assert np.all(np.abs(np.array(h.counts) - true_counts) <= 2 * h.rank_error * x.size)
    frame = h.to_frame()
    assert frame["count"].tolist() == list(h.counts)
    assert frame["left"].iloc[0] == x.min()


def test_empty_and_all_infinite_summaries():
    for x in (np.array([]), np.array([np.inf, -np.inf])):
        s = NumericSummary.of_values(x)
        d = s.to_dict()
        assert d["count"] == 0 and d["mean"] is None and d["min"] is None
        assert d["quantiles"]["0.5"] is None and d["histogram"]["counts"] == []
        assert s.histogram(edges=[0.0, 1.0]).counts == (0,)
        json.dumps(d)


def test_merge_with_float_turns_integers_into_floats():
    merged = NumericSummary.of_values(np.array([1, 5])).merge(
        NumericSummary.of_values(np.array([2.5]))
    )
    assert not merged.integer
    assert (merged.minimum, merged.maximum) == (1.0, 5.0)
    assert isinstance(merged.minimum, float)
    assert merged.to_dict()["sum"] == 8.5


def test_merge_leaves_inputs_unchanged():
    a = NumericSummary.of_values(np.arange(100.0))
    b = NumericSummary.of_values(np.arange(100.0, 200.0))
    a.merge(b)
    assert a.sketch.n == 100 and b.sketch.n == 100


def test_to_dict_is_json_safe_and_state_round_trips():
    s = NumericSummary.of_values(np.array([1e300, -1e300, 2e300, 0.5]))
    d = s.to_dict()
    assert d["variance"] is None and d["std"] is None  # overflowed, not a number
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    again = NumericSummary.from_state(json.loads(json.dumps(s.to_state())))
    assert again.to_dict() == d


def test_bad_arguments_raise():
    s = NumericSummary.of_values(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="quantile rank q must lie in"):
        s.quantile(1.5)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        s.histogram(bins=0)
    with pytest.raises(ValueError, match="non-decreasing"):
        s.histogram(edges=[2.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        s.histogram(edges=[0.0, np.inf])
    with pytest.raises(ValueError, match="NaN"):
        NumericSummary.of_values(np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="numeric"):
        NumericSummary.of_values(np.array(["a"]))


def test_histogram_of_few_distinct_values_is_exact_beyond_the_sketch():
    # breast_cancer's 70% training split (398 rows): more rows than the sketch keeps
    # exactly, fewer distinct values than MAX_EXACT_VALUES in every column.
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from opsloop.data.profile import profile

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    train, _ = train_test_split(X.assign(target=y), test_size=0.3, random_state=0)
    assert len(train) == 398
    columns = profile(train).to_dict()["columns"]
    for name in train.columns:
        summary = columns[name]["numeric"]
        hist = summary["histogram"]
        counts, edges = np.histogram(train[name].to_numpy(), bins=10)
        assert hist["edges"] == edges.tolist(), name
        assert hist["counts"] == counts.tolist(), name
        assert hist["rank_error"] == 0.0
    target = columns["target"]["numeric"]
    # The binary column's first and last bins are its zeros and its ones.
    assert target["histogram"]["counts"][0] == target["n_zero"] == int((train.target == 0).sum())
    assert target["histogram"]["counts"][-1] == target["sum"] == int(train.target.sum())


def test_exact_histograms_merge_exactly_and_give_way_to_the_sketch():
    from opsloop.data.profile.numeric import MAX_EXACT_VALUES

    rng = np.random.default_rng(5)
    chunks = [rng.integers(0, 600, size=5_000).astype(np.float64) for _ in range(3)]
    merged = NumericSummary.of_values(chunks[0])
    for chunk in chunks[1:]:
        merged = merged.merge(NumericSummary.of_values(chunk))
    merged = NumericSummary.from_state(json.loads(json.dumps(merged.to_state())))
    x = np.concatenate(chunks)
    edges = [0.0, 7.5, 100.0, 250.0, 599.0]
    assert merged.histogram(edges=edges).counts == tuple(np.histogram(x, bins=edges)[0].tolist())
    assert merged.histogram().counts == tuple(np.histogram(x, bins=10)[0].tolist())
    assert merged.histogram().rank_error == 0.0
    # One more chunk of other values takes the column past MAX_EXACT_VALUES: the sketch then
    # answers, within its stated bound.
    wide = merged.merge(NumericSummary.of_values(rng.normal(1000.0, size=MAX_EXACT_VALUES)))
    assert wide.exact is None and wide.histogram().rank_error > 0
    many = NumericSummary.of_values(rng.normal(size=10_000))
    assert many.exact is None
    with pytest.raises(ValueError, match="exact:"):
        state = merged.to_state()
        NumericSummary.from_state({**state, "exact": [state["exact"][0], state["exact"][0]]})
