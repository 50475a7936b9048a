import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from opsloop.learn.active import (
    DiverseUncertaintySampling,
    QueryByCommittee,
    RandomSampling,
    UncertaintySampling,
    make_strategy,
)


class TableClassifier:
    """predict_proba looks the probabilities up by the row id held in column 0."""

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)

    def predict_proba(self, X):
        return self.proba[np.asarray(X)[:, 0].astype(int)]


PROBA = [
    [0.90, 0.05, 0.05],  # confident
    [0.5, 0.495, 0.005],  # margin 0.005
    [0.42, 0.40, 0.18],  # top probability 0.42
    [0.44, 0.28, 0.28],  # entropy 1.0741 (the others: 0.3944, 0.7211, 1.0395, 0.7198)
    [0.60, 0.39, 0.01],  # margin 0.21, top 0.60
]
IDS = np.arange(5)[:, None]


def select(strategy, n, **kwargs):
    rng = np.random.default_rng(0)
    return strategy.select(
        TableClassifier(PROBA), IDS, n, X_labelled=None, y_labelled=None, rng=rng, **kwargs
    ).tolist()


def test_hand_computed_entropies():
    np.testing.assert_allclose(
        entropy(np.array(PROBA), axis=1),
        [0.3944, 0.7211, 1.0395, 1.0741, 0.7198],
        atol=5e-4,
    )


def test_least_confidence_order():
    # top probabilities 0.90, 0.5, 0.42, 0.44, 0.60 -> rows 2, 3, 1
    assert select(UncertaintySampling("least_confidence"), 3) == [2, 3, 1]


def test_margin_order():
    # gaps 0.85, 0.005, 0.02, 0.16, 0.21 -> rows 1, 2, 3
    assert select(UncertaintySampling("margin"), 3) == [1, 2, 3]


def test_entropy_order():
    # entropies 0.394, 0.721, 1.040, 1.074, 0.720 -> rows 3, 2, 1
    assert select(UncertaintySampling("entropy"), 3) == [3, 2, 1]


def test_committee_sees_every_class_and_disagrees_only_between_classes():
    X = np.array([[-3.0], [-2.0], [-1.0], [-0.2], [0.2], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    qbc = QueryByCommittee(n_members=7)
    members = qbc.committee(KNeighborsClassifier(1), X, y, np.random.default_rng(0))
    assert all(m.classes_.tolist() == [0, 1] for m in members)
    pool = np.array([[-10.0], [10.0], [0.0]])
    # far from the boundary every 1-NN member agrees (vote entropy 0); only 0.0 can split them
    votes = np.stack([m.predict(pool) for m in members])
    assert (votes[:, 0] == 0).all() and (votes[:, 1] == 1).all()


def test_committee_selection_is_the_highest_vote_entropy():
    X = np.array([[-3.0], [-2.0], [-1.0], [-0.2], [0.2], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    qbc = QueryByCommittee(n_members=7)
    pool = np.array([[-10.0], [0.0], [10.0]])
    members = qbc.committee(KNeighborsClassifier(1), X, y, np.random.default_rng(3))
    votes = np.stack([m.predict(pool) for m in members])
    shares = votes[:, 1].mean()
    picked = qbc.select(
        KNeighborsClassifier(1), pool, 1, X_labelled=X, y_labelled=y, rng=np.random.default_rng(3)
    )
    if 0 < shares < 1:
        assert picked.tolist() == [1]
    else:  # every member agreed everywhere: all scores 0, the lowest index wins
        assert picked.tolist() == [0]


def test_diverse_batch_skips_near_copies():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-2, 0.5, (30, 2)), rng.normal(2, 0.5, (30, 2))]
    y = np.r_[np.zeros(30), np.ones(30)]
    model = LogisticRegression().fit(X, y)
    boundary_point = np.array([[-model.intercept_[0] / model.coef_[0, 0], 0.0]])
    # ten near-copies of the most uncertain point, then uncertain points far along the boundary
    direction = np.array([-model.coef_[0, 1], model.coef_[0, 0]])
    direction /= np.linalg.norm(direction)
    copies = boundary_point + rng.normal(0, 1e-3, (10, 2))
    normal = model.coef_[0] / np.linalg.norm(model.coef_[0])
    # a little off the boundary: less uncertain than the copies, more than anything else
    along = boundary_point + np.outer([-6.0, 6.0, 12.0], direction) + 0.05 * normal
    pool = np.r_[copies, along]
    entropy_batch = UncertaintySampling("entropy").select(
        model, pool, 4, X_labelled=X, y_labelled=y, rng=rng
    )
    assert set(entropy_batch.tolist()) <= set(range(10))  # four near-copies
    diverse = DiverseUncertaintySampling(candidates_per_pick=4).select(
        model, pool, 4, X_labelled=X, y_labelled=y, rng=np.random.default_rng(0)
    )
    assert len(set(diverse.tolist()) & set(range(10))) == 1
    assert {10, 11, 12} <= set(diverse.tolist())


def test_random_is_distinct_and_reproducible():
    a = RandomSampling().select(
        None, np.zeros((50, 1)), 20, X_labelled=None, y_labelled=None, rng=np.random.default_rng(5)
    )
    b = RandomSampling().select(
        None, np.zeros((50, 1)), 20, X_labelled=None, y_labelled=None, rng=np.random.default_rng(5)
    )
    assert a.tolist() == b.tolist()
    assert np.unique(a).size == 20


def test_make_strategy_names_and_errors():
    assert [make_strategy(n).name for n in ["least_confidence", "qbc", "diverse", "random"]] == [
        "least_confidence",
        "qbc",
        "diverse",
        "random",
    ]
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("smart")
    with pytest.raises(TypeError, match="select method"):
        make_strategy(42)
    with pytest.raises(ValueError, match="measure must be one of"):
        UncertaintySampling("confusion")
    with pytest.raises(ValueError, match="n_members must be at least 2"):
        QueryByCommittee(1)
