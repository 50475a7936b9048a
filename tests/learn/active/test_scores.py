import numpy as np
import pytest
from scipy.stats import entropy

from opsloop.learn.active.scores import (
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    top_n,
    vote_entropy_scores,
)

# three rows built so that each score prefers a different one (values worked out by hand)
PROBA = np.array(
    [
        [0.5, 0.495, 0.005],  # smallest margin: 0.005
        [0.42, 0.40, 0.18],  # lowest top probability: 0.42
        [0.44, 0.28, 0.28],  # most spread out: highest entropy
    ]
)


def test_least_confidence_is_one_minus_top_probability():
    np.testing.assert_allclose(least_confidence_scores(PROBA), [0.5, 0.58, 0.56], atol=1e-12)


def test_margin_is_one_minus_gap_of_the_two_best_classes():
    np.testing.assert_allclose(margin_scores(PROBA), [0.995, 0.98, 0.84], atol=1e-12)


def test_entropy_equals_scipy():
    np.testing.assert_allclose(entropy_scores(PROBA), entropy(PROBA, axis=1), atol=1e-12)


def test_entropy_of_certain_row_is_zero():
    assert entropy_scores(np.array([[1.0, 0.0, 0.0]])).tolist() == [0.0]


def test_each_score_prefers_its_own_row():
    assert top_n(least_confidence_scores(PROBA), 1).tolist() == [1]
    assert top_n(margin_scores(PROBA), 1).tolist() == [0]
    assert top_n(entropy_scores(PROBA), 1).tolist() == [2]


def test_vote_entropy_by_hand():
    votes = np.array([[0, 0, 1, 2], [0, 1, 1, 1], [0, 1, 1, 0], [0, 1, 1, 2]])
    # columns: 4/0/0 votes, 1/3/0, 0/4/0, 1/1/2 (shares over 4 members)
    expected = [0.0, entropy([0.25, 0.75]), 0.0, entropy([0.25, 0.25, 0.5])]
    np.testing.assert_allclose(vote_entropy_scores(votes, np.array([0, 1, 2])), expected)


def test_top_n_breaks_ties_by_lower_index():
    assert top_n(np.array([1.0, 3.0, 3.0, 3.0]), 2).tolist() == [1, 2]


def test_bad_proba_shape_names_the_rule():
    with pytest.raises(ValueError, match="proba must be a 2-D array"):
        entropy_scores(np.array([0.5, 0.5]))
