"""DP-SGD as a membership-inference defence: ε as accounted, by hand and by Opacus, and the
advantage before and after."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from opsloop.learn.mlp import mlp  # noqa: E402
from opsloop.learn.robustness.defensive_distillation import train_at_temperature  # noqa: E402
from opsloop.learn.robustness.private_training import (  # noqa: E402
    advantage_bound,
    dp_epsilon,
    private_training,
)

pytestmark = pytest.mark.torch

# Opacus' RDP orders (RDPAccountant.DEFAULT_ALPHAS), written out: the hand computation
# below must use the same grid to give the same minimum.
ORDERS = np.array([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), dtype=float)


def gaussian_rdp_epsilon(sigma: float, steps: int, delta: float) -> float:
    """ε of ``steps`` full-batch steps of the Gaussian mechanism (sensitivity 1, noise σ):
    RDP α·T / (2σ²) (Mironov, 2017), turned into (ε, δ) by Balle et al. (2020), Theorem 21,
    minimised over the orders."""
    rdp = steps * ORDERS / (2 * sigma**2)
    eps = rdp - (math.log(delta) + np.log(ORDERS)) / (ORDERS - 1) + np.log((ORDERS - 1) / ORDERS)
    return float(eps.min())


def exact_gaussian_epsilon(sigma: float, steps: int, delta: float) -> float:
    """The exact ε of the same mechanism: T Gaussian steps are one of noise σ/√T, whose
    δ(ε) = Φ(1/(2s) − εs) − e^ε Φ(−1/(2s) − εs) with s = σ/√T (Balle and Wang, 2018)."""
    s = sigma / math.sqrt(steps)

    def excess(eps: float) -> float:
        return norm.cdf(1 / (2 * s) - eps * s) - math.exp(eps) * norm.cdf(-1 / (2 * s) - eps * s)

    return brentq(lambda eps: excess(eps) - delta, 0.0, 500.0)


@pytest.fixture(scope="module")
def small(digits):
    """400 training rows, 400 held out, and a 64-32-10 network trained on the 400."""
    X_train, X_test, y_train, y_test = digits
    train, test = (X_train[:400], y_train[:400]), (X_test[:400], y_test[:400])
    model = train_at_temperature(mlp([64, 32, 10]), *train, temperature=1.0, epochs=40, lr=0.01)
    return model, train, test


def test_full_batch_epsilon_is_the_gaussian_mechanism_by_hand(small):
    model, train, test = small
    effect = private_training(
        model, train, test, noise_multiplier=3.0, epochs=5, batch_size=len(train[0]), lr=0.5
    )
    settings = dict(effect.settings)
    assert (settings["sample_rate"], settings["steps"]) == (1.0, 5)
    expected = gaussian_rdp_epsilon(3.0, 5, 1e-5)
    assert settings["epsilon"] == pytest.approx(expected, rel=1e-12)
    # RDP is an upper bound of the exact ε, and not a loose one here
    exact = exact_gaussian_epsilon(3.0, 5, 1e-5)
    assert exact < settings["epsilon"] < 1.25 * exact


def test_epsilon_is_opacus_accountant_for_the_sigma_rate_and_steps(small):
    from opacus.accountants import PRVAccountant, RDPAccountant

    model, train, test = small
    effect = private_training(model, train, test, noise_multiplier=1.3, epochs=2, batch_size=64)
    settings = dict(effect.settings)
    batches = math.ceil(400 / 64)
    assert (settings["sample_rate"], settings["steps"]) == (1 / batches, 2 * batches)
    accountant = RDPAccountant()
    accountant.history = [(1.3, 1 / batches, 2 * batches)]
    assert settings["epsilon"] == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)
    assert dp_epsilon(1.3, 1 / batches, 2 * batches, 1e-5) == settings["epsilon"]
    prv = PRVAccountant()
    prv.history = [(1.3, 1 / batches, 2 * batches)]
    assert dp_epsilon(1.3, 1 / batches, 2 * batches, 1e-5, "prv") == pytest.approx(
        prv.get_epsilon(1e-5), rel=1e-9
    )


def test_target_epsilon_is_spent_and_not_exceeded(small):
    model, train, test = small
    effect = private_training(
        model, train, test, noise_multiplier=None, target_epsilon=2.0, epochs=2, batch_size=64
    )
    settings = dict(effect.settings)
    assert 1.95 < settings["epsilon"] <= 2.0
    assert settings["epsilon"] == pytest.approx(
        dp_epsilon(settings["noise_multiplier"], settings["sample_rate"], settings["steps"], 1e-5)
    )


def test_advantage_falls_to_chance_under_the_bound(digits):
    X_train, X_test, y_train, y_test = digits
    train, test = (X_train[:900], y_train[:900]), (X_test[:500], y_test[:500])
    model = train_at_temperature(mlp([64, 64, 10]), *train, temperature=1.0, epochs=60, lr=0.01)
    effect = private_training(model, train, test, noise_multiplier=2.0, epochs=30)
    chance = 1.36 * math.sqrt(1 / 900 + 1 / 500)  # 95% quantile when nothing leaks
    loss_advantage = "membership advantage (loss threshold)"
    assert effect.value(loss_advantage, "before") > chance
    assert effect.value(loss_advantage) < chance
    assert effect.value("membership advantage (confidence threshold)") < chance
    settings = dict(effect.settings)
    assert effect.value(loss_advantage) <= settings["advantage_bound"]
    assert 0 < effect.cost < 0.1  # accuracy paid for it
    assert effect.value("clean accuracy") > 0.85
    assert "differentially private by the rdp accountant" in effect.note
    assert effect.metrics()["defence/differentially_private_training/clean_accuracy/after"] == (
        effect.value("clean accuracy")
    )


def test_same_seed_same_model_and_global_generator_untouched(small):
    model, train, test = small
    state = torch.random.get_rng_state()
    settings = dict(noise_multiplier=1.0, epochs=1, batch_size=100, seed=3)
    a = private_training(model, train, test, **settings)
    b = private_training(model, train, test, **settings)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert a.after == b.after
    # the model given is the "before" and is not trained further
    assert a.before == b.before
    assert not any(
        torch.equal(p, q) for p, q in zip(model.parameters(), a.model.parameters(), strict=True)
    )


def test_advantage_bound_by_hand():
    assert advantage_bound(1.0, 0.0) == pytest.approx((math.e - 1) / (math.e + 1), rel=1e-15)
    assert advantage_bound(0.0, 0.01) == pytest.approx(0.01)
    assert advantage_bound(50.0, 0.1) == 1.0


def test_bad_settings_are_refused(small):
    model, train, test = small
    with pytest.raises(ValueError, match="give noise_multiplier or target_epsilon"):
        private_training(model, train, test, target_epsilon=1.0)
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1\), got 1.5"):
        private_training(model, train, test, delta=1.5)
    with pytest.raises(ValueError, match="max_grad_norm must be finite and above 0, got 0"):
        private_training(model, train, test, max_grad_norm=0)
    with pytest.raises(ValueError, match="accountant must be one of"):
        private_training(model, train, test, accountant="gdp-ish")
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        private_training(object(), train, test)
    batch_norm = torch.nn.Sequential(
        torch.nn.Linear(64, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 10)
    )
    with pytest.raises(ValueError, match=r"model: Opacus cannot train it privately: .*BatchNorm"):
        private_training(batch_norm, train, test)


def test_the_robustness_report_shows_epsilon_and_the_effect(small):
    from opsloop.reports import robustness_report

    model, train, test = small
    effect = private_training(model, train, test, noise_multiplier=1.0, epochs=1, batch_size=100)
    report = robustness_report(model, train, test, parts=["membership"], defences=[effect])
    html = report.render_html()
    epsilon = dict(effect.settings)["epsilon"]
    assert f"epsilon {epsilon}" in html
    assert "differentially private by the rdp accountant" in html
    key = "defence/differentially_private_training/membership_advantage_loss_threshold/after"
    assert report.metrics()[key] == effect.value("membership advantage (loss threshold)")
