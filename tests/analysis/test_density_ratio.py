import numpy as np
import pytest
from scipy import stats

from opsloop.analysis.density_ratio import estimate_density_ratio


def test_weights_match_the_analytic_ratio_of_two_gaussians():
    # reference N(0, 1), window N(1, 1): p_cur(x) / p_ref(x) = exp(x - 1/2), whose mean under
    # the reference is 1, so it is directly comparable with the mean-1 weights
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 1.0, (20_000, 1))
    window = rng.normal(1.0, 1.0, (20_000, 1))
    found = estimate_density_ratio(reference, window)
    truth = np.exp(reference[:, 0] - 0.5)
    relative = np.abs(found.weights / truth - 1.0)
    inner = np.abs(reference[:, 0]) < 2.0
    assert np.median(relative) < 0.02
    assert relative[inner].max() < 0.10
    # Kish's effective sample size of exp(x - 1/2) under N(0, 1): n / E[w^2] = n / e
    assert found.effective_sample_size == pytest.approx(20_000 / np.e, rel=0.10)
    # the optimal classifier of two unit Gaussians one apart has AUC Phi(1 / sqrt 2)
    assert found.domain_auc == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.01)
    assert found.shift_z > 3
    assert found.weights.mean() == pytest.approx(1.0)


def test_no_shift_gives_flat_weights_and_no_detection():
    rng = np.random.default_rng(1)
    found = estimate_density_ratio(rng.normal(size=(4000, 3)), rng.normal(size=(1000, 3)))
    assert abs(found.shift_z) < 3
    assert found.effective_sample_size > 0.97 * 4000
    assert found.share_outside_support == 0.0


def test_inputs_beyond_the_reference_are_flagged():
    # reference N(0, 1), window N(4, 1): the ratio exp(4x - 8) passes max_weight 20 above
    # x = (ln 20 + 8) / 4, which holds P(N(4, 1) > 2.749) = Phi(1.251) = 0.894 of the window
    rng = np.random.default_rng(2)
    reference = rng.normal(0.0, 1.0, (3000, 1))
    window = rng.normal(4.0, 1.0, (3000, 1))
    found = estimate_density_ratio(reference, window, max_weight=20.0)
    cut = (np.log(20.0) + 8.0) / 4.0
    assert found.share_outside_support == pytest.approx(stats.norm.sf(cut - 4.0), abs=0.03)
    assert found.share_outside_range == pytest.approx(np.mean(window[:, 0] > reference.max()))
    assert found.clipped == pytest.approx(3000 * stats.norm.sf(cut), abs=25)
    assert found.weights.max() / found.weights.min() > 1e3
    assert found.effective_sample_size < 0.1 * 3000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "folds must be an integer >= 2"),
        ({"max_weight": 1.0}, "max_weight must be a number > 1"),
    ],
)
def test_bad_settings_name_the_field(kwargs, message):
    x = np.zeros((10, 1))
    with pytest.raises(ValueError, match=message):
        estimate_density_ratio(x, x, **kwargs)


def test_column_mismatch_and_missing_values_are_refused():
    with pytest.raises(ValueError, match="current must have the reference's 2 input columns"):
        estimate_density_ratio(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="current must hold finite numbers"):
        estimate_density_ratio(np.zeros((10, 1)), np.full((10, 1), np.nan))
