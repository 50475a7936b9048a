"""Informativeness scores for pool-based active learning, computed on whole probability arrays.

Every score is "higher means ask about this row first", so one selection rule (take the top
``n``) serves them all. The rules follow Settles (2009), *Active Learning Literature Survey*.
"""

from __future__ import annotations

import numpy as np


def _as_proba(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"proba must be a 2-D array (rows, classes) with at least 2 classes, got {p.shape}"
        )
    return p


def least_confidence_scores(proba: np.ndarray) -> np.ndarray:
    """One minus the probability of the predicted class: ``1 - max_c p(c | x)``.

    >>> least_confidence_scores([[0.9, 0.1], [0.6, 0.4]]).round(2).tolist()
    [0.1, 0.4]
    """
    return 1.0 - _as_proba(proba).max(axis=1)


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """One minus the gap between the two most probable classes: ``1 - (p_1 - p_2)``.

    A small gap means the classifier can hardly tell the two best classes apart.

    >>> margin_scores([[0.5, 0.3, 0.2], [0.4, 0.35, 0.25]]).round(2).tolist()
    [0.8, 0.95]
    """
    p = _as_proba(proba)
    top_two = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the predicted class distribution, with ``0 log 0 = 0``.

    >>> entropy_scores([[1.0, 0.0], [0.5, 0.5]]).round(4).tolist()
    [0.0, 0.6931]
    """
    p = _as_proba(proba)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=1) + 0.0


def vote_entropy_scores(votes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Vote entropy of a committee: entropy of the share of members voting for each class.

    ``votes`` has one row per committee member and one column per pool row (predicted labels).

    >>> votes = np.array([["a", "a"], ["a", "b"]])
    >>> vote_entropy_scores(votes, np.array(["a", "b"])).round(4).tolist()
    [0.0, 0.6931]
    """
    v = np.asarray(votes)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError(f"votes must be a 2-D array (members, rows), got shape {v.shape}")
    cls = np.asarray(classes)
    shares = (v[:, :, None] == cls[None, None, :]).mean(axis=0)
    return entropy_scores(shares) if cls.size >= 2 else np.zeros(v.shape[1])


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, ties broken by the lower index.

    >>> top_n(np.array([0.2, 0.9, 0.9, 0.1]), 2).tolist()
    [1, 2]
    """
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:n]
