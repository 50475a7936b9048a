import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from opsloop.analysis.calibration_error import expected_calibration_error


@pytest.mark.parametrize("bins", [1, 5, 10, 15])
def test_bins_are_scikit_learns_and_the_error_their_weighted_gap(bins):
    rng = np.random.default_rng(bins)
    p = rng.beta(2, 3, 3000)
    p[:40] = 0.5  # on a bin edge for even bin counts: scikit-learn puts it in the lower bin
    y = (rng.random(3000) < p**1.3).astype(int)
    result = expected_calibration_error(y, p, bins=bins)
    share, mean = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    np.testing.assert_allclose(result.share_positive, share, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.mean_probability, mean, rtol=0, atol=1e-12)
    assert sum(result.counts) == 3000
    weights = np.array(result.counts) / 3000
    assert result.ece == pytest.approx(float(np.sum(weights * np.abs(share - mean))), abs=1e-12)
    assert result.max_gap == pytest.approx(float(np.max(np.abs(share - mean))), abs=1e-12)


def test_by_hand():
    # bins [0, 0.25], (0.25, 0.5], (0.5, 0.75], (0.75, 1]: rows 0.2 | 0.3, 0.5 | - | 0.8, 1.0
    result = expected_calibration_error([0, 1, 0, 1, 0], [0.2, 0.3, 0.5, 0.8, 1.0], bins=4)
    assert result.counts == (1, 2, 2)
    assert result.mean_probability == pytest.approx((0.2, 0.4, 0.9), abs=1e-15)
    assert result.share_positive == (0.0, 0.5, 0.5)
    assert result.ece == pytest.approx((0.2 + 2 * 0.1 + 2 * 0.4) / 5, abs=1e-15)
    assert result.max_gap == pytest.approx(0.4, abs=1e-15)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"y_prob must hold probabilities in \[0, 1\]"):
        expected_calibration_error([0, 1], [0.2, 1.2])
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        expected_calibration_error([0, 1], [0.2, 0.8], bins=0)
