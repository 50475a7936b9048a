from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from opsloop.analysis.sliceline import score, sliceline


def brute_force(X, errors, k, max_level, alpha, min_support):
    """Every slice of up to ``max_level`` predicates, scored directly with pandas."""
    n, mean = len(X), errors.mean()
    found = []
    e = pd.Series(errors)
    for level in range(1, max_level + 1):
        for columns in combinations(X.columns, level):
            stats = e.groupby([X[c] for c in columns], observed=True).agg(["size", "sum"])
            for key, (size, total) in stats.iterrows():
                if size < min_support or total <= 0:
                    continue
                sc = alpha * ((total / size) / mean - 1) - (1 - alpha) * (n / size - 1)
                if sc > 0:
                    key = key if isinstance(key, tuple) else (key,)
                    found.append(
                        (sc, int(size), total, tuple(zip(columns, map(str, key), strict=True)))
                    )
    found.sort(key=lambda f: (-f[0], -f[1]))
    return found[:k]


@pytest.mark.parametrize(
    ("alpha", "min_support", "max_level"), [(0.95, 20, 3), (0.85, 40, 2), (0.99, 10, 4)]
)
def test_equals_brute_force(alpha, min_support, max_level):
    rng = np.random.default_rng(3)
    n = 3000
    X = pd.DataFrame({c: rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2]) for c in "pqrs"})
    rate = (
        0.1 + 0.5 * ((X["p"] == "a") & (X["q"] == "b")) + 0.3 * ((X["r"] == "c") & (X["s"] == "c"))
    )
    errors = (rng.random(n) < rate).astype(float)
    result = sliceline(X, errors, k=10, alpha=alpha, min_support=min_support, max_level=max_level)
    expected = brute_force(X, errors, 10, max_level, alpha, min_support)
    got = [(s.score, s.size, s.error_sum) for s in result.slices]
    np.testing.assert_allclose(
        np.array(got), np.array([e[:3] for e in expected]), rtol=0, atol=1e-12
    )
    # predicates name the same slices where scores are not tied
    scores = [e[0] for e in expected]
    for s, e in zip(result.slices, expected, strict=True):
        if scores.count(e[0]) == 1:
            assert set(s.predicates) == set(e[3])
    assert len(result.slices) >= 3
    # the planted slice (or a refinement of it) leads
    assert {("p", "a"), ("q", "b")} <= set(result.slices[0].predicates)


def test_numeric_columns_are_binned_and_score_is_the_formula():
    X = pd.DataFrame({"age": np.arange(200), "g": ["x", "y"] * 100})
    errors = (X["age"] >= 160).to_numpy(float)
    result = sliceline(X, errors, k=1, min_support=10, alpha=0.9)
    top = result.slices[0]
    assert top.rule == "age = (159.2, 199.0]"
    assert (top.size, top.error_sum, top.error_rate) == (40, 40.0, 1.0)
    assert top.score == pytest.approx(
        float(score(np.array([40]), np.array([40.0]), 0.2, 0.9, 200)[0])
    )
    assert top.score == pytest.approx(0.9 * (1 / 0.2 - 1) - 0.1 * (200 / 40 - 1))


def test_no_errors_finds_nothing():
    result = sliceline(pd.DataFrame({"g": ["a", "b"] * 20}), np.zeros(40))
    assert result.slices == () and result.to_frame().empty


def test_bad_input():
    X = pd.DataFrame({"g": ["a", "b"]})
    with pytest.raises(ValueError, match="errors must be one value per row of X"):
        sliceline(X, [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        sliceline(X, [1.0, -1.0])
    with pytest.raises(ValueError, match="alpha must lie in"):
        sliceline(X, [1.0, 0.0], alpha=0)
    with pytest.raises(ValueError, match="min_support must be an integer >= 1"):
        sliceline(X, [1.0, 0.0], min_support=0)
    with pytest.raises(TypeError, match="X must be a pandas DataFrame"):
        sliceline([[1]], [1.0])
