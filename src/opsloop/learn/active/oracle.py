"""Who answers the label queries of an active-learning loop.

:class:`Oracle` is the interface (a human review queue implements it in the serving layer);
:class:`SimulatedOracle` answers from known labels, optionally with label noise, for experiments.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Oracle(Protocol):
    """Anything that returns the true labels of the pool rows it is asked about.

    ``indices`` are positions in the pool, ``rows`` the matching feature rows; the answer is an
    array of labels in the same order.

    A review queue that answers from a reviewer's sheet and remembers what it was asked:

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from opsloop.learn.active import active_learning
    >>> X, y = make_classification(100, random_state=0)
    >>> class ReviewQueue:
    ...     def __init__(self):
    ...         self.asked = []
    ...     def label(self, indices, rows):
    ...         self.asked.extend(indices.tolist())
    ...         return y[indices]
    >>> queue = ReviewQueue()
    >>> _ = active_learning(LogisticRegression(), X, queue, budget=30, random_state=0)
    >>> len(queue.asked), len(set(queue.asked))
    (30, 30)
    """

    def label(self, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Labels for the pool rows at ``indices``."""
        ...


class SimulatedOracle:
    """An oracle that looks the labels up in ``y_true``; ``noise`` flips that share of answers.

    A flipped answer is one of the other classes, drawn uniformly. ``n_answered_`` counts the
    labels given so far (the labelling cost).

    >>> oracle = SimulatedOracle(np.array([3, 1, 2]))
    >>> oracle.label(np.array([2, 0]), None).tolist(), oracle.n_answered_
    ([2, 3], 2)
    """

    def __init__(
        self, y_true: np.ndarray, *, noise: float = 0.0, random_state: int | None = None
    ) -> None:
        self.y_true = np.asarray(y_true)
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be within [0, 1], got {noise!r}")
        self.noise = noise
        self.classes_ = np.unique(self.y_true)
        self._rng = np.random.default_rng(random_state)
        self.n_answered_ = 0

    def label(self, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Labels of ``y_true`` at ``indices``, with a ``noise`` share replaced by wrong ones."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.y_true.size):
            raise ValueError(f"indices must lie in [0, {self.y_true.size}), got {idx.tolist()}")
        answer = self.y_true[idx].copy()
        if self.noise > 0 and self.classes_.size > 1:
            flip = self._rng.random(idx.size) < self.noise
            position = np.searchsorted(self.classes_, answer[flip])
            shift = self._rng.integers(1, self.classes_.size, size=int(flip.sum()))
            answer[flip] = self.classes_[(position + shift) % self.classes_.size]
        self.n_answered_ += int(idx.size)
        return answer
