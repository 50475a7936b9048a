"""Query strategies: given a fitted classifier and the unlabelled pool, which rows to label next.

Built here instead of taken from modAL, which does not run on scikit-learn 1.8 and later; each
rule is a few lines over the scores of :mod:`opsloop.learn.active.scores`.

=======================  ============================================================
name                     rule
=======================  ============================================================
``least_confidence``     lowest probability of the predicted class
``margin``               smallest gap between the two most probable classes
``entropy``              highest entropy of the predicted distribution
``qbc``                  highest vote entropy of a bootstrap committee
``diverse``              most uncertain row of each k-means cluster of uncertain rows
``random``               uniform draw (the baseline)
=======================  ============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from sklearn.base import clone
from sklearn.cluster import KMeans

from opsloop.learn.active.scores import (
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    top_n,
    vote_entropy_scores,
)

UNCERTAINTY_MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confidence": least_confidence_scores,
    "margin": margin_scores,
    "entropy": entropy_scores,
}


class QueryStrategy(Protocol):
    """Chooses ``n`` pool rows to label; ``estimator`` is already fitted on the labelled rows."""

    name: str

    def select(
        self,
        estimator: Any,
        X_pool: np.ndarray,
        n: int,
        *,
        X_labelled: np.ndarray,
        y_labelled: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Positions in ``X_pool`` of the rows to label, most informative first."""
        ...


def _measure(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name not in UNCERTAINTY_MEASURES:
        raise ValueError(f"measure must be one of {sorted(UNCERTAINTY_MEASURES)}, got {name!r}")
    return UNCERTAINTY_MEASURES[name]


class UncertaintySampling:
    """Ask about the rows the classifier is least sure of (``measure`` names the score).

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> pool = np.array([[-3.0], [0.1], [3.0]])
    >>> UncertaintySampling("margin").select(
    ...     model, pool, 1, X_labelled=X, y_labelled=None, rng=None).tolist()
    [1]
    """

    def __init__(self, measure: str = "entropy") -> None:
        self.measure = measure
        self.name = measure
        self._score = _measure(measure)

    def select(self, estimator, X_pool, n, *, X_labelled, y_labelled, rng) -> np.ndarray:
        """The ``n`` rows with the highest uncertainty score."""
        return top_n(self._score(estimator.predict_proba(X_pool)), n)


class QueryByCommittee:
    """Vote entropy of ``n_members`` clones fitted on bootstrap samples of the labelled rows.

    Each bootstrap resamples within every class, so every member sees every class and a
    classifier that needs two classes can always be fitted.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> pool = np.array([[-5.0], [5.0]])
    >>> QueryByCommittee(3).select(LogisticRegression(), pool, 1, X_labelled=X, y_labelled=y,
    ...                            rng=np.random.default_rng(0)).tolist()
    [0]
    """

    name = "qbc"

    def __init__(self, n_members: int = 5) -> None:
        if n_members < 2:
            raise ValueError(f"n_members must be at least 2, got {n_members!r}")
        self.n_members = n_members

    def committee(self, estimator, X_labelled, y_labelled, rng) -> list[Any]:
        """``n_members`` fitted clones of ``estimator``, one per stratified bootstrap sample."""
        y = np.asarray(y_labelled)
        groups = [np.flatnonzero(y == c) for c in np.unique(y)]
        members = []
        for _ in range(self.n_members):
            sample = np.concatenate([rng.choice(g, size=g.size) for g in groups])
            members.append(clone(estimator).fit(X_labelled[sample], y[sample]))
        return members

    def select(self, estimator, X_pool, n, *, X_labelled, y_labelled, rng) -> np.ndarray:
        """The ``n`` rows the committee disagrees on most."""
        members = self.committee(estimator, X_labelled, y_labelled, rng)
        votes = np.stack([m.predict(X_pool) for m in members])
        return top_n(vote_entropy_scores(votes, np.unique(y_labelled)), n)


class DiverseUncertaintySampling:
    """A batch of uncertain rows that are not near-copies of each other.

    The ``n * candidates_per_pick`` most uncertain rows are clustered into ``n`` groups with
    k-means, and the most uncertain row of each group is taken (Zhdanov, 2019, "Diverse
    mini-batch active learning").

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> pool = np.array([[0.0, 5.0], [0.0, 5.01], [0.0, 5.02], [0.3, -5.0], [4.0, 0.0]])
    >>> DiverseUncertaintySampling(candidates_per_pick=2).select(
    ...     model, pool, 2, X_labelled=X, y_labelled=None, rng=np.random.default_rng(0)).tolist()
    [0, 3]
    """

    name = "diverse"

    def __init__(self, measure: str = "entropy", candidates_per_pick: int = 5) -> None:
        if candidates_per_pick < 1:
            raise ValueError(f"candidates_per_pick must be at least 1, got {candidates_per_pick!r}")
        self.measure = measure
        self.candidates_per_pick = candidates_per_pick
        self._score = _measure(measure)

    def select(self, estimator, X_pool, n, *, X_labelled, y_labelled, rng) -> np.ndarray:
        """The most uncertain row of each of ``n`` clusters of uncertain candidates."""
        scores = self._score(estimator.predict_proba(X_pool))
        candidates = top_n(scores, n * self.candidates_per_pick)
        if candidates.size <= n:
            return candidates
        seed = int(rng.integers(2**31 - 1))
        clusters = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(
            np.asarray(X_pool, dtype=float)[candidates]
        )
        # candidates are sorted by falling score, so a cluster's first member is its best row
        _, first = np.unique(clusters, return_index=True)
        return candidates[np.sort(first)]


class RandomSampling:
    """Uniform draw without replacement: the baseline every strategy must beat.

    >>> RandomSampling().select(None, np.zeros((5, 1)), 5, X_labelled=None, y_labelled=None,
    ...                         rng=np.random.default_rng(0)).size
    5
    """

    name = "random"

    def select(self, estimator, X_pool, n, *, X_labelled, y_labelled, rng) -> np.ndarray:
        """``n`` distinct rows drawn uniformly."""
        return rng.choice(len(X_pool), size=n, replace=False)


STRATEGY_NAMES = ("least_confidence", "margin", "entropy", "qbc", "diverse", "random")


def make_strategy(strategy: str | QueryStrategy) -> QueryStrategy:
    """A strategy from its name (see :data:`STRATEGY_NAMES`), or the strategy object itself.

    >>> make_strategy("margin").name
    'margin'
    """
    if not isinstance(strategy, str):
        if not callable(getattr(strategy, "select", None)):
            raise TypeError(f"strategy must be a name or have a select method, got {strategy!r}")
        return strategy
    if strategy in UNCERTAINTY_MEASURES:
        return UncertaintySampling(strategy)
    factories = {"qbc": QueryByCommittee, "diverse": DiverseUncertaintySampling}
    factories["random"] = RandomSampling
    if strategy not in factories:
        raise ValueError(f"strategy must be one of {list(STRATEGY_NAMES)}, got {strategy!r}")
    return factories[strategy]()
