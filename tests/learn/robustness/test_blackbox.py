"""Black-box random search: every success is real, within budget and eps, and in the domain."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from opsloop.data.schema import infer_schema
from opsloop.datasets import credit
from opsloop.learn.robustness import FeatureConstraints, random_search_attack

UNIT = FeatureConstraints(64, lower=0.0, upper=1.0)


@pytest.fixture(scope="module")
def digits_forest():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    forest = RandomForestClassifier(30, random_state=0, n_jobs=1).fit(X[:1000], y[:1000])
    return forest, X[1000:1150], y[1000:1150]


def distances(change, norm):
    return np.abs(change).max(axis=1) if norm == "inf" else np.linalg.norm(change, axis=1)


@pytest.mark.parametrize(("norm", "eps"), [("inf", 0.15), ("l2", 1.5)])
def test_successes_are_real_and_within_budget(digits_forest, norm, eps):
    forest, X, y = digits_forest
    result = random_search_attack(
        forest, X, y, eps=eps, norm=norm, max_queries=100, constraints=UNIT, seed=1
    )
    right = forest.predict(X) == y
    assert result.attacked == right.sum()
    fooled = result.success
    assert fooled.sum() == result.fooled > 0.5 * result.attacked
    assert not (fooled & ~right).any()  # rows already wrong are not attacked
    assert (forest.predict(result.X_adv[fooled]) != y[fooled]).all()
    np.testing.assert_array_equal(result.X_adv[~fooled], X[~fooled])
    size = distances(result.X_adv - X, norm)
    assert size.max() <= eps * (1 + 1e-12)
    assert result.median_perturbation == pytest.approx(np.median(size[fooled]))
    assert (result.X_adv >= 0).all() and (result.X_adv <= 1).all()
    assert result.queries.max() <= 100 and (result.queries[~right] == 0).all()
    assert result.median_queries == np.median(result.queries[fooled])
    assert result.success_rate == result.fooled / result.attacked


def test_more_queries_fool_more_rows_and_a_tiny_budget_fools_none(digits_forest):
    forest, X, y = digits_forest
    rates = [
        random_search_attack(forest, X, y, eps=0.1, max_queries=q, constraints=UNIT).success_rate
        for q in (20, 60, 200)
    ]
    assert rates == sorted(rates) and rates[-1] > rates[0]
    tiny = random_search_attack(forest, X, y, eps=1e-6, max_queries=30, constraints=UNIT)
    assert tiny.fooled == 0 and tiny.median_perturbation is None


def test_bisection_shrinks_the_change(digits_forest):
    forest, X, y = digits_forest
    kept = random_search_attack(
        forest, X, y, eps=1.5, norm="l2", max_queries=60, bisection_steps=0, seed=2
    )
    shrunk = random_search_attack(
        forest, X, y, eps=1.5, norm="l2", max_queries=60, bisection_steps=8, seed=2
    )
    assert kept.median_perturbation == pytest.approx(1.5)  # on the sphere
    assert shrunk.median_perturbation < kept.median_perturbation


def test_constrained_rows_stay_in_the_schema():
    frame = credit(500, seed=4)
    numeric = ["age", "salary", "house_value", "house_years", "loan_amount"]
    center, scale = frame[numeric].mean(), frame[numeric].std()
    encoded = pd.get_dummies(frame[["region"]]).astype(float)
    features = pd.concat([(frame[numeric] - center) / scale, encoded], axis=1)
    constraints = FeatureConstraints.from_schema(
        infer_schema(frame), list(features.columns), center=center, scale=scale
    )
    X, y = np.array(features), np.array(frame["default"])
    model = LogisticRegression(max_iter=1000).fit(X, y)
    result = random_search_attack(model, X, y, eps=1.0, max_queries=60, constraints=constraints)
    assert result.fooled > 0
    X_adv = result.X_adv
    for j, name in enumerate(numeric):
        if j in constraints.integer_steps:
            raw = X_adv[:, j] * scale[name] + center[name]
            np.testing.assert_allclose(raw, np.round(raw), atol=1e-6)
    block = X_adv[:, 5:]
    assert np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) == 1).all()
    assert (X_adv >= constraints.lower - 1e-12).all() and (X_adv <= constraints.upper + 1e-12).all()
    assert distances(X_adv - X, "inf").max() <= 1.0 + 1e-12


def test_bad_input_is_named(digits_forest):
    forest, X, y = digits_forest
    with pytest.raises(ValueError, match=r"max_queries must be an int of at least 2"):
        random_search_attack(forest, X, y, eps=0.1, max_queries=1)
    with pytest.raises(ValueError, match=r"eps must be finite and above 0"):
        random_search_attack(forest, X, y, eps=0)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        random_search_attack(forest, X, y, eps=0.1, fraction=0)
    with pytest.raises(ValueError, match=r"feature 0 has upper bound 1\.0"):
        random_search_attack(forest, X + 2, y, eps=0.1, constraints=UNIT)


def test_an_unknown_label_is_named(digits_forest):
    forest, X, _ = digits_forest
    with pytest.raises(ValueError, match="y holds the label 11, which the model does not know"):
        random_search_attack(forest, X[:3], [1, 2, 11], eps=0.1)
