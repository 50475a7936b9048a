"""Ranks against a reference sample through the guide table equal numpy's binary search,
and the scores are scipy's normal quantiles of the mid-ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from opsloop.monitoring.normal_scores import ReferenceRanks


def _searched(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    below = np.searchsorted(reference, values, side="left")
    return below + np.searchsorted(reference, values, side="right")


def _references():
    rng = np.random.default_rng(0)
    yield np.sort(rng.normal(size=5000))
    yield np.sort(rng.lognormal(size=5000))
    # Seven in ten values 0: a long run of ties.
    yield np.sort(np.where(rng.random(5000) < 0.7, 0, rng.poisson(3.0, 5000)).astype(float))
    yield np.sort(rng.standard_t(1, 5000))  # Cauchy: a few values far out, most in a bucket
    yield np.array([2.0])
    yield np.array([1.0, 1.0, 1.0])
    yield np.array([0.0, 1e-300, 1.0, 1.0 + 2**-52])


@pytest.mark.parametrize("reference", list(_references()), ids=lambda r: f"n={len(r)}")
def test_ranks_and_scores_equal_the_binary_search(reference):
    rng = np.random.default_rng(1)
    values = np.r_[
        rng.normal(size=2000) * 3,
        rng.lognormal(size=2000),
        rng.integers(-1, 6, 500),
        reference,
        np.nextafter(reference, np.inf),
        np.nextafter(reference, -np.inf),
        [np.inf, -np.inf, 0.0, -0.0],
    ]
    ranks = ReferenceRanks(reference)
    expected = _searched(reference, values)
    assert ranks.rank_sums(values).tolist() == expected.tolist()
    scores = ndtri((expected + 1.0) / (2.0 * (len(reference) + 1)))
    np.testing.assert_array_equal(ranks.normal_scores(values), scores)


def test_the_reference_must_be_sorted_and_finite():
    with pytest.raises(ValueError, match="must be sorted"):
        ReferenceRanks(np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="at least one finite value"):
        ReferenceRanks(np.array([]))
    with pytest.raises(ValueError, match="at least one finite value"):
        ReferenceRanks(np.array([1.0, np.inf]))
