"""Learning curves against scikit-learn, the power law against hand-made curves, and the
representativeness check against the drift comparison it wraps."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import learning_curve as sklearn_learning_curve

from opsloop.analysis import fit_power_law, learning_curve, represents_population
from opsloop.data.drift import compare


@pytest.mark.parametrize(("plateau", "scale", "rate"), [(0.95, 3.0, 0.6), (0.7, 0.5, 0.3)])
def test_power_law_recovers_known_parameters(plateau, scale, rate):
    sizes = np.array([50, 100, 200, 400, 800, 1600])
    fit = fit_power_law(sizes, plateau - scale * sizes**-rate)
    assert (fit.plateau, fit.scale, fit.rate) == pytest.approx((plateau, scale, rate), rel=1e-6)
    # Doubling 1,600 to 3,200 gains scale * (1600^-rate - 3200^-rate), by hand.
    expected = scale * (1600.0**-rate - 3200.0**-rate)
    assert fit.predict([3200])[0] - fit.predict([1600])[0] == pytest.approx(expected, rel=1e-6)


def test_curve_equals_scikit_learn_and_extrapolates():
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=2000)
    sizes_in = np.array([0.1, 0.25, 0.5, 0.75, 1.0])
    curve = learning_curve(model, X, y, train_sizes=sizes_in, cv=3, random_state=1)
    sizes, train, valid = sklearn_learning_curve(
        model, X, y, train_sizes=sizes_in, cv=3, shuffle=True, random_state=1
    )
    np.testing.assert_array_equal(curve.sizes, sizes)
    np.testing.assert_allclose(curve.valid_mean, valid.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(curve.train_mean, train.mean(axis=1), rtol=1e-12)
    # More data still helps on digits, less than the last step did, and never past 1.
    last_step = curve.valid_mean[-1] - curve.valid_mean[-2]
    assert 0 < curve.gain_if_doubled < max(last_step, 0.05)
    assert curve.fit.plateau <= 1.0 + 1e-9
    assert list(curve.to_frame().columns)[:2] == ["train_size", "train_mean"]


def test_represents_population_is_the_drift_comparison():
    rng = np.random.default_rng(4)
    population = pd.DataFrame(
        {"age": rng.normal(40, 10, 6000), "device": rng.choice(["web", "app"], 6000)}
    )
    sample, rest = population.iloc[:1500], population.iloc[1500:]
    fair = represents_population(sample, rest)
    assert fair.to_dict() == compare(rest, sample).to_dict()
    assert not fair.drifted
    young = population[population["age"] < 45].iloc[:1500]
    assert represents_population(young, rest)["age"].drifted


def test_too_few_sizes_is_a_clear_error():
    with pytest.raises(ValueError, match="3 or more distinct sizes"):
        fit_power_law([100, 100, 200], [0.5, 0.5, 0.6])
