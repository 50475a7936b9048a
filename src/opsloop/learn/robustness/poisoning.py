"""Data poisoning by label flipping, and finding the flipped rows again.

:func:`label_flip_curve` flips the labels of a share ``r`` of the training rows (each to a
random other class), trains the model on them, and reports its accuracy on clean held-out rows
for every ``r``: how much damage a poisoner who controls a share of the labels does.

:func:`find_label_issues` looks for the flipped rows with confident learning (Northcutt, Jiang
and Chuang, 2021): out-of-fold predicted probabilities :math:`\\hat p_{ik}` give, per class
:math:`k`, a threshold :math:`t_k` (the mean :math:`\\hat p_{ik}` over rows labelled :math:`k`);
a row labelled :math:`\\tilde y` is confidently of class
:math:`k^* = \\arg\\max_{k:\\, \\hat p_{ik} \\ge t_k} \\hat p_{ik}`, and is an issue when
:math:`k^* \\ne \\tilde y` (the off-diagonal of the confident joint). :func:`label_flip_detection`
poisons, detects and scores the detection's precision and recall against the rows it flipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def _check_rate(rate: Any) -> float:
    rate = float(rate)
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    return rate


def flip_labels(y: Any, rate: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``y`` with ``round(rate * len(y))`` labels changed to another class, and where.

    Each chosen row gets one of the other classes seen in ``y``, uniformly.

    >>> y = np.array([0, 1, 2, 0, 1, 2])
    >>> poisoned, flipped = flip_labels(y, 0.5, seed=0)
    >>> flipped.tolist(), np.flatnonzero(poisoned != y).tolist()
    ([3, 4, 5], [3, 4, 5])
    """
    rate = _check_rate(rate)
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("y must hold at least two classes to flip between")
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(y), size=round(rate * len(y)), replace=False))
    current = np.searchsorted(classes, y[flipped])
    # an offset of 1..k-1 classes away never lands on the row's own class
    offset = rng.integers(1, len(classes), size=len(flipped))
    poisoned = y.copy()
    poisoned[flipped] = classes[(current + offset) % len(classes)]
    return poisoned, flipped


@dataclass(frozen=True)
class PoisoningCurve:
    """Clean held-out ``accuracy[i]`` of the model trained with a share ``rates[i]`` flipped."""

    rates: tuple[float, ...]
    flipped: tuple[int, ...]
    accuracy: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per rate: ``rate``, ``flipped`` (rows), ``accuracy``."""
        return pd.DataFrame(
            {"rate": self.rates, "flipped": self.flipped, "accuracy": self.accuracy}
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {"curve": self.to_frame().to_dict(orient="records")}


def label_flip_curve(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    rates: Any,
    *,
    seed: int = 0,
) -> PoisoningCurve:
    """Clean test accuracy of ``estimator`` trained with each share ``rates`` of labels flipped.

    ``estimator`` is an unfitted scikit-learn classifier, cloned for every rate.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> curve = label_flip_curve(KNeighborsClassifier(10), X[:1000], y[:1000],
    ...                          X[1000:], y[1000:], [0.0, 0.6])
    >>> curve.flipped, curve.accuracy[0] > curve.accuracy[1]
    ((0, 600), True)
    """
    from sklearn.base import clone

    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    shares = [_check_rate(rate) for rate in np.atleast_1d(rates)]
    flipped, accuracy = [], []
    for rate in shares:
        poisoned, rows = flip_labels(y_train, rate, seed=seed)
        model = clone(estimator).fit(X_train, poisoned)
        flipped.append(len(rows))
        accuracy.append(float(np.mean(model.predict(X_test) == y_test)))
    return PoisoningCurve(rates=tuple(shares), flipped=tuple(flipped), accuracy=tuple(accuracy))


def confident_label_issues(probabilities: Any, labels: Any) -> np.ndarray:
    """Rows whose confidently predicted class (confident learning) is not their label.

    ``probabilities`` are out-of-fold predicted probabilities, one column per class
    ``0..k-1``; ``labels`` the given labels as column indices.

    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1], [0.2, 0.8]])
    >>> confident_label_issues(p, np.array([0, 0, 1, 1, 1])).tolist()
    [3]

    The thresholds are 0.85 for class 0 (mean of 0.9 and 0.8) and 0.533 for class 1 (mean of
    0.7, 0.1 and 0.8). Row 3, labelled 1, reaches the threshold of class 0 only: an issue. Row 1
    reaches neither threshold, so it is not judged.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.intp)
    k = probabilities.shape[1]
    thresholds = np.array(
        [probabilities[labels == j, j].mean() if (labels == j).any() else np.inf for j in range(k)]
    )
    confident = probabilities >= thresholds
    masked = np.where(confident, probabilities, -np.inf)
    best = masked.argmax(axis=1)
    has_confident = confident.any(axis=1)
    return np.flatnonzero(has_confident & (best != labels))


@dataclass(frozen=True)
class LabelIssues:
    """Rows found to carry a wrong label, ranked with the least self-confident first.

    ``self_confidence[i]`` is the out-of-fold probability of row ``i``'s own label.
    """

    rows: np.ndarray
    self_confidence: np.ndarray = field(repr=False)
    out_of_fold: np.ndarray = field(repr=False)

    def mask(self, n: int) -> np.ndarray:
        """A boolean mask of length ``n``, true on the rows found."""
        found = np.zeros(n, dtype=bool)
        found[self.rows] = True
        return found


def find_label_issues(estimator: Any, X: Any, y: Any, *, cv: int = 5, seed: int = 0) -> LabelIssues:
    """Rows of ``(X, y)`` whose label disagrees with confident out-of-fold predictions.

    The probabilities come from ``cross_val_predict(estimator, X, y, method="predict_proba")``
    over ``cv`` stratified, shuffled folds, so no row is judged by a model that saw it.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> poisoned, flipped = flip_labels(y[:600], 0.1, seed=0)
    >>> issues = find_label_issues(KNeighborsClassifier(10), X[:600], poisoned)
    >>> found = set(issues.rows.tolist())
    >>> len(found & set(flipped.tolist())) / len(flipped) > 0.8  # recall
    True
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X, y = np.asarray(X), np.asarray(y)
    _, labels = np.unique(y, return_inverse=True)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(estimator, X, labels, cv=folds, method="predict_proba")
    rows = confident_label_issues(probabilities, labels)
    self_confidence = probabilities[np.arange(len(labels)), labels]
    rows = rows[np.argsort(self_confidence[rows], kind="stable")]
    return LabelIssues(rows=rows, self_confidence=self_confidence, out_of_fold=probabilities)


@dataclass(frozen=True)
class DetectionResult:
    """How well :func:`find_label_issues` found the rows a poisoner flipped."""

    rate: float
    flipped: int
    found: int
    precision: float
    recall: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "rate": self.rate,
            "flipped": self.flipped,
            "found": self.found,
            "precision": self.precision,
            "recall": self.recall,
        }


def label_flip_detection(
    estimator: Any, X: Any, y: Any, rate: float, *, cv: int = 5, seed: int = 0
) -> DetectionResult:
    """Flip a share ``rate`` of ``y``, look for label issues, score them against the truth.

    Precision is the share of rows found that were flipped, recall the share of flipped rows
    found.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> result = label_flip_detection(KNeighborsClassifier(10), X[:600], y[:600], 0.1)
    >>> result.flipped, result.found, round(result.precision, 3), round(result.recall, 3)
    (60, 51, 0.98, 0.833)
    """
    poisoned, flipped = flip_labels(y, rate, seed=seed)
    issues = find_label_issues(estimator, X, poisoned, cv=cv, seed=seed)
    found = issues.mask(len(poisoned))
    truth = np.zeros(len(poisoned), dtype=bool)
    truth[flipped] = True
    hits = int((found & truth).sum())
    return DetectionResult(
        rate=float(rate),
        flipped=int(truth.sum()),
        found=int(found.sum()),
        precision=float(hits / found.sum()) if found.any() else 0.0,
        recall=float(hits / truth.sum()) if truth.any() else 0.0,
    )
