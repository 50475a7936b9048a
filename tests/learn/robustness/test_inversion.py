"""Model inversion: representatives found by hand on a linear model, and close to the class means
of digits for a trained network but not for an untrained one."""

import numpy as np
import pytest
from tests.learn.frozen_batch_norm import FROZEN_MODES, frozen_batch_norm

from opsloop.learn.mlp import mlp
from opsloop.learn.robustness import FeatureConstraints, invert_classes
from opsloop.learn.robustness.defensive_distillation import train_at_temperature
from opsloop.learn.robustness.inversion import _correlations

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

UNIT = FeatureConstraints(64, lower=0.0, upper=1.0)


def test_a_linear_model_by_hand():
    # with two classes the loss of class 0 falls along w0 - w1 = (2, -2, 1): in the unit box
    # its representative is the corner (1, 0, 1), and class 1's the opposite corner (0, 1, 0)
    model = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]]))
    X = np.array([[0.9, 0.1, 0.8], [0.1, 0.8, 0.3], [0.7, 0.3, 0.9], [0.2, 0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    result = invert_classes(
        model, X, y, steps=100, lr=0.05, l2=0.0, constraints=FeatureConstraints(3, lower=0, upper=1)
    )
    np.testing.assert_array_equal(result.representatives, [[1, 0, 1], [0, 1, 0]])
    # class 0's mean (0.8, 0.2, 0.85) against (1, 0, 1)
    means = np.array([[0.8, 0.2, 0.85], [0.15, 0.85, 0.2]])
    expected = np.corrcoef(np.vstack([[1, 0, 1], [0, 1, 0], means]))[:2, 2:]
    assert result.similarity == pytest.approx(tuple(np.diag(expected)), abs=1e-12)
    assert result.best_other == pytest.approx((expected[0, 1], expected[1, 0]), abs=1e-12)
    assert result.identified == 1.0
    # logit gaps at the corners: 1.5 - (-1.5) = 3 and 1 - (-1) = 2
    assert result.confidence == pytest.approx((1 / (1 + np.exp(-3)), 1 / (1 + np.exp(-2))))


def test_correlations_equal_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 9)), rng.normal(size=(3, 9))
    np.testing.assert_allclose(_correlations(a, b), np.corrcoef(a, b)[:4, 4:], atol=1e-12)
    assert _correlations(np.ones((1, 9)), b).tolist() == [[0.0, 0.0, 0.0]]  # a constant row


def test_a_trained_network_gives_its_classes_away(digits):
    X_train, _, y_train, _ = digits
    untrained = mlp([64, 32, 10], seed=0)
    trained = train_at_temperature(
        mlp([64, 32, 10], seed=0), X_train, y_train, temperature=1.0, epochs=30, lr=0.01
    )
    found = invert_classes(trained, X_train, y_train, constraints=UNIT)
    blind = invert_classes(untrained, X_train, y_train, constraints=UNIT)
    assert found.identified == 1.0 and found.mean_similarity > 0.4
    assert found.mean_similarity > blind.mean_similarity + 0.2
    assert min(found.confidence) > 0.9
    assert found.representatives.min() >= 0 and found.representatives.max() <= 1
    assert found.classes == tuple(range(10)) and found.to_dict()["identified"] == 1.0


def test_bad_input_is_named(digits):
    X_train, _, y_train, _ = digits
    model = mlp([64, 10])
    with pytest.raises(ValueError, match="steps must be a positive int"):
        invert_classes(model, X_train, y_train, steps=0)
    with pytest.raises(ValueError, match="y must hold class indices"):
        invert_classes(model, X_train, y_train - 1)
    with pytest.raises(ValueError, match="constraints describe 3 features, X has 64"):
        invert_classes(model, X_train, y_train, constraints=FeatureConstraints(3))
    with pytest.raises(TypeError, match="model must be a torch"):
        invert_classes(object(), X_train, y_train)


def test_a_frozen_batch_norm_is_handed_back_frozen(digits):
    X_train, _, y_train, _ = digits
    model = frozen_batch_norm(16)
    invert_classes(model, X_train[:100], y_train[:100], steps=3, constraints=UNIT)
    assert [m.training for m in model.modules()] == FROZEN_MODES
