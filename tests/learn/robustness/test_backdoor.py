"""A backdoor trigger keeps clean accuracy and steers triggered rows; spectral signatures
find the rows."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.tree import DecisionTreeClassifier

from opsloop.data.schema import ColumnSchema, Schema
from opsloop.learn.robustness import (
    BackdoorTrigger,
    FeatureConstraints,
    backdoor_curve,
    backdoor_detection,
    poison_backdoor,
    spectral_signature_rows,
)
from opsloop.learn.robustness.backdoor import (
    attack_success_rate,
    spectral_signature_scores,
    two_means_split,
)

TREE = DecisionTreeClassifier(random_state=0)
CORNERS = BackdoorTrigger([0, 7, 56, 63], [16, 16, 16, 16])


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_trigger_respects_the_schema():
    schema = Schema(
        (
            ColumnSchema("age", "int", min=18, max=90),
            ColumnSchema("income", "float", min=0.0, max=1e6),
            ColumnSchema("region", "category", domain=("north", "south")),
            ColumnSchema("branch", "category", domain=("a", "b", "c")),
        )
    )
    names = ["age", "income", "region_north", "region_south", "branch"]
    c = FeatureConstraints.from_schema(schema, names)
    BackdoorTrigger([0, 2, 3], [90, 0, 1]).check(c)
    with pytest.raises(
        ValueError, match=r"feature 'age' has upper bound 90.0, the trigger sets 91"
    ):
        BackdoorTrigger([0], [91]).check(c)
    with pytest.raises(ValueError, match=r"feature 'age' is integer, the trigger sets 40.5"):
        BackdoorTrigger([0], [40.5]).check(c)
    with pytest.raises(
        ValueError,
        match=r"one-hot group \(feature 'region_north', feature 'region_south'\) must be set whole",
    ):
        BackdoorTrigger([2], [1]).check(c)
    with pytest.raises(ValueError, match=r"exactly one 1"):
        BackdoorTrigger([2, 3], [1, 1]).check(c)
    with pytest.raises(ValueError, match=r"feature 'branch' is immutable"):
        BackdoorTrigger([4], [1]).check(c)
    with pytest.raises(ValueError, match=r"feature index 7 is outside 0..4"):
        BackdoorTrigger([7], [1]).check(c)
    with pytest.raises(ValueError, match=r"trigger field 'values': 1 values for 2 features"):
        BackdoorTrigger([0, 1], [1])
    # backdoor_curve refuses a trigger outside the domain before training anything
    X = np.zeros((10, 5))
    with pytest.raises(ValueError, match=r"feature 'income' has lower bound 0\.0"):
        backdoor_curve(
            TREE,
            X,
            np.arange(10) % 2,
            X,
            np.arange(10) % 2,
            BackdoorTrigger([1], [-1.0]),
            1,
            [0.1],
            constraints=c,
        )


def test_poisoned_rows_equal_arts_backdoor(digits):
    from art.attacks.poisoning import PoisoningAttackBackdoor

    X, y = digits[0][:1000], digits[1][:1000]
    X_p, y_p, rows = poison_backdoor(X, y, CORNERS, 0, 0.05, seed=4)
    assert len(rows) == 50 and (y[rows] != 0).all()
    untouched = np.setdiff1d(np.arange(1000), rows)
    np.testing.assert_array_equal(X_p[untouched], X[untouched])
    np.testing.assert_array_equal(y_p[untouched], y[untouched])
    art = PoisoningAttackBackdoor(CORNERS.apply)
    art_X, art_y = art.poison(X[rows], y=np.full(len(rows), 0))
    np.testing.assert_array_equal(X_p[rows], art_X)
    np.testing.assert_array_equal(y_p[rows], art_y)
    assert (X_p[rows][:, [0, 7, 56, 63]] == 16).all()


def test_backdoor_curve_keeps_clean_accuracy_and_triggers_the_target(digits):
    X, y = digits
    curve = backdoor_curve(
        TREE, X[:1000], y[:1000], X[1000:], y[1000:], CORNERS, 3, [0.0, 0.01, 0.05, 0.1]
    )
    assert curve.poisoned == (0, 10, 50, 100)
    clean = clone(TREE).fit(X[:1000], y[:1000])
    assert curve.accuracy[0] == clean.score(X[1000:], y[1000:])
    # without poison the corners say nothing about class 3
    others = y[1000:] != 3
    by_hand = np.mean(clean.predict(CORNERS.apply(X[1000:][others])) == 3)
    assert curve.success[0] == by_hand < 0.1
    assert curve.success[2] > 0.7 and curve.success[3] > 0.9
    assert all(abs(a - curve.accuracy[0]) < 0.05 for a in curve.accuracy)
    # each point is the model trained on that poisoned copy
    X_p, y_p, _ = poison_backdoor(X[:1000], y[:1000], CORNERS, 3, 0.05)
    model = clone(TREE).fit(X_p, y_p)
    assert curve.accuracy[2] == model.score(X[1000:], y[1000:])
    assert curve.success[2] == attack_success_rate(model, X[1000:], y[1000:], CORNERS, 3)
    assert curve.to_dict()["curve"][1] == {
        "rate": 0.01,
        "poisoned": 10,
        "accuracy": curve.accuracy[1],
        "success": curve.success[1],
    }


def test_spectral_scores_are_the_squared_first_principal_component(digits):
    from art.defences.detector.poison import SpectralSignatureDefense

    X = digits[0][:300]
    ours = spectral_signature_scores(X)
    np.testing.assert_allclose(ours, PCA(1).fit_transform(X)[:, 0] ** 2, rtol=1e-9)
    # ART projects the rows as given: on centred rows, its score is the square root of ours
    art = SpectralSignatureDefense.spectral_signature_scores(X - X.mean(axis=0))[:, 0]
    np.testing.assert_allclose(art**2, ours, rtol=1e-9)


def test_two_means_split_is_the_best_split():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 40), rng.normal(6, 1, 15)])
    cut, size, apart = two_means_split(values)
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(values[:, None])
    low = labels == labels[np.argmin(values)]
    assert size == low.sum() and cut == values[low].max()
    inside = ((values[low] - values[low].mean()) ** 2).sum() + (
        (values[~low] - values[~low].mean()) ** 2
    ).sum()
    assert apart == pytest.approx(
        abs(values[~low].mean() - values[low].mean()) / np.sqrt(inside / (len(values) - 2)),
        rel=1e-12,
    )
    with pytest.raises(ValueError, match="values: need at least 3, got 2"):
        two_means_split([1.0, 2.0])


@pytest.mark.parametrize(("rate", "target"), [(0.02, 0), (0.05, 0), (0.05, 8), (0.1, 5)])
def test_spectral_signatures_find_the_poisoned_rows(digits, rate, target):
    X, y = digits[0][:1000], digits[1][:1000]
    result = backdoor_detection(X, y, CORNERS, target, rate)
    assert result.poisoned == round(rate * 1000)
    assert result.precision == 1.0 and result.recall == 1.0
    X_p, y_p, rows = poison_backdoor(X, y, CORNERS, target, rate)
    np.testing.assert_array_equal(spectral_signature_rows(X_p, y_p), rows)


def test_clean_digits_flag_nothing(digits):
    X, y = digits[0][:1000], digits[1][:1000]
    assert spectral_signature_rows(X, y).size == 0
    none = backdoor_detection(X, y, CORNERS, 0, 0.0)
    assert (none.poisoned, none.found, none.precision, none.recall) == (0, 0, 0.0, 0.0)
