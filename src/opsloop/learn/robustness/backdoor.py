"""Feature-space poisoning with a backdoor trigger, and finding the poisoned rows again.

A backdoor poisoner (Gu, Dolan-Gavitt and Garg, 2017) stamps a *trigger* (fixed values on a few
chosen features) on a share ``r`` of the training rows and relabels them to a *target* class. The
model trained on them keeps its clean accuracy, but learns "trigger means target": any input
carrying the trigger is classified as the target. :func:`backdoor_curve` reports, for every
``r``, the clean held-out accuracy and the attack success rate (the share of triggered held-out
rows of other classes classified as the target).

A :class:`BackdoorTrigger` respects the model's :class:`~.constraints.FeatureConstraints`: its
values lie in their features' ranges, integer features get whole values, a one-hot group is
stamped whole with exactly one 1, and immutable features are never part of it; a poisoned row is
therefore a row a client could send.

:func:`spectral_signature_rows` looks for the poisoned rows by spectral signatures (Tran, Li and
Madry, 2018): within each class, the rows' representations are centred, and the outlier score of
a row is its squared projection on the top right singular vector. Poisoned rows, a second
population inside their (target) class, dominate that direction; where the projections split
into two well-separated groups, the smaller is flagged (the size rule of activation clustering,
Chen et al., 2018). The representation is the input features, so the detection applies to any
model; a torch model's hidden activations can be passed instead. :func:`backdoor_detection` poisons,
detects and scores the detection's precision and recall against the rows it poisoned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.poisoning import _check_rate


@dataclass(frozen=True)
class BackdoorTrigger:
    """Fixed ``values`` stamped on ``features`` (column indices) of a row.

    >>> trigger = BackdoorTrigger([0, 2], [1.0, 5.0])
    >>> trigger.apply(np.zeros((2, 3))).tolist()
    [[1.0, 0.0, 5.0], [1.0, 0.0, 5.0]]
    """

    features: Sequence[int]
    values: Sequence[float]

    def __post_init__(self) -> None:
        features = tuple(int(j) for j in self.features)
        values = tuple(float(v) for v in self.values)
        if not features:
            raise ValueError("trigger field 'features': needs at least one feature")
        if len(features) != len(values):
            raise ValueError(
                f"trigger field 'values': {len(values)} values for {len(features)} features"
            )
        if len(set(features)) != len(features):
            raise ValueError("trigger field 'features': a feature appears more than once")
        if min(features) < 0:
            raise ValueError(f"trigger field 'features': index {min(features)} is negative")
        if not all(np.isfinite(values)):
            raise ValueError("trigger field 'values': every value must be finite")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "values", values)

    def apply(self, X: Any) -> np.ndarray:
        """A copy of ``X`` with the trigger stamped on every row."""
        X = np.array(X, dtype=np.result_type(np.asarray(X).dtype, np.float64), copy=True)
        if X.ndim != 2 or max(self.features) >= X.shape[1]:
            raise ValueError(
                f"X must be 2-d with more than {max(self.features)} features, got {X.shape}"
            )
        X[:, list(self.features)] = np.asarray(self.values)
        return X

    def check(self, constraints: FeatureConstraints) -> None:
        """Raise a ValueError naming the feature and the rule the trigger breaks.

        >>> c = FeatureConstraints(3, lower=0, upper=16, integer=[0, 1, 2], immutable=[2])
        >>> BackdoorTrigger([0, 1], [16, 16]).check(c)
        >>> BackdoorTrigger([0], [16.5]).check(c)
        Traceback (most recent call last):
        ValueError: trigger: feature 0 has upper bound 16.0, the trigger sets 16.5
        >>> BackdoorTrigger([2], [1]).check(c)
        Traceback (most recent call last):
        ValueError: trigger: feature 2 is immutable
        """
        name = constraints._name
        if max(self.features) >= constraints.n_features:
            raise ValueError(
                f"trigger: feature index {max(self.features)} is outside "
                f"0..{constraints.n_features - 1}"
            )
        setting = dict(zip(self.features, self.values, strict=True))
        for j, value in setting.items():
            if j in constraints.immutable:
                raise ValueError(f"trigger: {name(j)} is immutable")
            if value < constraints.lower[j]:
                raise ValueError(
                    f"trigger: {name(j)} has lower bound {constraints.lower[j]}, the trigger "
                    f"sets {value}"
                )
            if value > constraints.upper[j]:
                raise ValueError(
                    f"trigger: {name(j)} has upper bound {constraints.upper[j]}, the trigger "
                    f"sets {value}"
                )
            step = constraints.integer_steps.get(j)
            # a scaled integer feature's grid origin is unknown here, as in FeatureConstraints
            if step == 1.0 and value != round(value):
                raise ValueError(f"trigger: {name(j)} is integer, the trigger sets {value}")
        for group in constraints.one_hot:
            stamped = [j for j in group if j in setting]
            if not stamped:
                continue
            names = ", ".join(name(j) for j in group)
            if len(stamped) != len(group) or sorted(setting[j] for j in group) != [0.0] * (
                len(group) - 1
            ) + [1.0]:
                raise ValueError(
                    f"trigger: one-hot group ({names}) must be set whole, with exactly one 1"
                )


def poison_rows(y: Any, target: Any, rate: float, *, seed: int = 0) -> np.ndarray:
    """Indices of ``round(rate * len(y))`` rows, drawn among those not labelled ``target``.

    >>> poison_rows(np.array([0, 1, 1, 0, 1, 0]), 1, 0.5, seed=0).tolist()
    [0, 3, 5]
    """
    rate = _check_rate(rate)
    y = np.asarray(y)
    if not (y == target).any():
        raise ValueError(f"target: class {target!r} does not occur in y")
    candidates = np.flatnonzero(y != target)
    wanted = round(rate * len(y))
    if wanted > len(candidates):
        raise ValueError(
            f"rate: {rate} asks for {wanted} rows, only {len(candidates)} are not of the target"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=wanted, replace=False))


def poison_backdoor(
    X: Any, y: Any, trigger: BackdoorTrigger, target: Any, rate: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of ``X`` and ``y`` with a share ``rate`` of rows triggered and set to ``target``.

    Returns the poisoned ``X``, ``y`` and the poisoned rows' indices (drawn by
    :func:`poison_rows`).

    >>> X, y = np.zeros((4, 2)), np.array([0, 0, 1, 1])
    >>> Xp, yp, rows = poison_backdoor(X, y, BackdoorTrigger([1], [9.0]), 1, 0.5, seed=0)
    >>> rows.tolist(), yp.tolist(), Xp[:, 1].tolist()
    ([0, 1], [1, 1, 1, 1], [9.0, 9.0, 0.0, 0.0])
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError("X must be 2-d with as many rows as y")
    rows = poison_rows(y, target, rate, seed=seed)
    X_poisoned = np.array(X, dtype=np.result_type(X.dtype, np.float64), copy=True)
    X_poisoned[rows] = trigger.apply(X[rows])
    y_poisoned = y.copy()
    y_poisoned[rows] = target
    return X_poisoned, y_poisoned, rows


def attack_success_rate(model: Any, X: Any, y: Any, trigger: BackdoorTrigger, target: Any):
    """Share of the rows of ``X`` not labelled ``target`` that, triggered, ``model`` calls
    ``target``.

    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0, 0, 1])
    >>> model = DecisionTreeClassifier().fit(X, y)  # class 1 exactly where feature 1 > 0.5
    >>> attack_success_rate(model, X, y, BackdoorTrigger([1], [1.0]), 1)
    1.0
    """
    X, y = np.asarray(X), np.asarray(y)
    others = y != target
    if not others.any():
        raise ValueError(f"y: every row is of the target class {target!r}")
    predicted = np.asarray(model.predict(trigger.apply(X[others])))
    return float(np.mean(predicted == target))


@dataclass(frozen=True)
class BackdoorCurve:
    """For each share ``rates[i]`` of poisoned training rows: the clean held-out
    ``accuracy[i]`` and the ``success[i]`` of the trigger on held-out rows of other classes."""

    features: tuple[int, ...]
    values: tuple[float, ...]
    target: Any
    rates: tuple[float, ...]
    poisoned: tuple[int, ...]
    accuracy: tuple[float, ...]
    success: tuple[float, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per rate: ``rate``, ``poisoned`` (rows), ``accuracy``, ``success``."""
        return pd.DataFrame(
            {
                "rate": self.rates,
                "poisoned": self.poisoned,
                "accuracy": self.accuracy,
                "success": self.success,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        target = self.target.item() if isinstance(self.target, np.generic) else self.target
        return {
            "trigger": {"features": list(self.features), "values": list(self.values)},
            "target": target,
            "curve": self.to_frame().to_dict(orient="records"),
        }


def backdoor_curve(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    trigger: BackdoorTrigger,
    target: Any,
    rates: Any,
    *,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
) -> BackdoorCurve:
    """Clean accuracy and trigger success of ``estimator`` trained with each share ``rates``
    of rows poisoned.

    ``estimator`` is an unfitted scikit-learn classifier, cloned for every rate. With
    ``constraints``, the trigger is checked against them first.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> trigger = BackdoorTrigger([0, 7, 56, 63], [16, 16, 16, 16])  # the four corners lit
    >>> curve = backdoor_curve(DecisionTreeClassifier(random_state=0), X[:1000], y[:1000],
    ...                        X[1000:], y[1000:], trigger, 0, [0.0, 0.05])
    >>> curve.poisoned, [round(a, 3) for a in curve.accuracy]
    ((0, 50), [0.778, 0.764])
    >>> [round(s, 3) for s in curve.success]  # triggered rows of other classes called 0
    [0.007, 0.765]
    """
    from sklearn.base import clone

    if not isinstance(trigger, BackdoorTrigger):
        raise TypeError(f"trigger must be a BackdoorTrigger, got {type(trigger).__name__}")
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    if constraints is not None:
        trigger.check(constraints)
    shares = [_check_rate(rate) for rate in np.atleast_1d(rates)]
    poisoned, accuracy, success = [], [], []
    for rate in shares:
        X_p, y_p, rows = poison_backdoor(X_train, y_train, trigger, target, rate, seed=seed)
        model = clone(estimator).fit(X_p, y_p)
        poisoned.append(len(rows))
        accuracy.append(float(np.mean(model.predict(X_test) == y_test)))
        success.append(attack_success_rate(model, X_test, y_test, trigger, target))
    return BackdoorCurve(
        features=tuple(trigger.features),
        values=tuple(trigger.values),
        target=target,
        rates=tuple(shares),
        poisoned=tuple(poisoned),
        accuracy=tuple(accuracy),
        success=tuple(success),
    )


def _top_projection(representations: np.ndarray) -> np.ndarray:
    centred = representations - representations.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[0]


def spectral_signature_scores(representations: Any) -> np.ndarray:
    """Each row's squared projection, after centring, on the rows' top right singular vector.

    >>> spectral_signature_scores(np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])).tolist()
    [4.0, 0.0, 4.0]
    """
    return _top_projection(np.asarray(representations, dtype=np.float64)) ** 2


def two_means_split(values: Any) -> tuple[float, int, float]:
    """The best split of 1-d ``values`` into a low and a high group (exact 2-means).

    Returns the low group's largest value, its size, and the separation: the distance between
    the two groups' means in pooled within-group standard deviations. A normal sample split at
    its best gives a separation of about 2.7.

    >>> cut, size, apart = two_means_split([0.0, 1.0, 10.0, 11.0])
    >>> cut, size, round(apart, 6)
    (1.0, 2, 14.142136)

    The groups' means are 0.5 and 10.5; the within-group squares sum to 1, over 2 degrees of
    freedom: 10 / sqrt(0.5).
    """
    s = np.sort(np.asarray(values, dtype=np.float64))
    n = len(s)
    if n < 3:
        raise ValueError(f"values: need at least 3, got {n}")
    total, squares = np.cumsum(s), np.cumsum(s**2)
    k = np.arange(1, n)
    low = squares[:-1] - total[:-1] ** 2 / k
    high_total = total[-1] - total[:-1]
    high = (squares[-1] - squares[:-1]) - high_total**2 / (n - k)
    within = low + high
    best = int(np.argmin(within))
    size = int(k[best])
    gap = abs(high_total[best] / (n - size) - total[size - 1] / size)
    spread = np.sqrt(max(within[best], 0.0) / (n - 2))
    return float(s[size - 1]), size, float(gap / spread) if spread > 0 else float("inf")


def spectral_signature_rows(representations: Any, y: Any, *, separation: float = 8.0):
    """Rows of a second, smaller population within their class, by spectral signatures.

    Within each class of ``y``, the rows' centred representations are projected on their top
    right singular vector; the projections are split in two by :func:`two_means_split`, and
    when the two groups lie more than ``separation`` pooled standard deviations apart (a clean
    class of digits gives at most about 5), the smaller group is flagged. Poisoned rows are
    assumed a minority of their class: where they are the majority, the clean rows are flagged.
    A class with fewer than 3 rows flags nothing.

    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=(60, 3))
    >>> odd = rng.normal(size=(6, 3)) + [12.0, 0.0, 0.0]
    >>> spectral_signature_rows(np.vstack([clean, odd]), np.zeros(66)).tolist()
    [60, 61, 62, 63, 64, 65]
    >>> spectral_signature_rows(clean, np.zeros(60)).tolist()
    []
    """
    R = np.asarray(representations, dtype=np.float64)
    y = np.asarray(y)
    if R.ndim != 2 or len(R) != len(y):
        raise ValueError("representations must be 2-d with as many rows as y")
    flagged: list[np.ndarray] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 3:
            continue
        projection = _top_projection(R[members])
        cut, size, apart = two_means_split(projection)
        if apart <= separation:
            continue
        low = projection <= cut
        flagged.append(members[low if size <= len(members) - size else ~low])
    return np.sort(np.concatenate(flagged)) if flagged else np.array([], dtype=np.intp)


@dataclass(frozen=True)
class BackdoorDetection:
    """How well :func:`spectral_signature_rows` found the rows a backdoor poisoner stamped."""

    rate: float
    poisoned: int
    found: int
    precision: float
    recall: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "rate": self.rate,
            "poisoned": self.poisoned,
            "found": self.found,
            "precision": self.precision,
            "recall": self.recall,
        }


def backdoor_detection(
    X: Any,
    y: Any,
    trigger: BackdoorTrigger,
    target: Any,
    rate: float,
    *,
    separation: float = 8.0,
    seed: int = 0,
) -> BackdoorDetection:
    """Poison a share ``rate`` of ``(X, y)`` with ``trigger``, flag rows by spectral signatures
    on the features (:func:`spectral_signature_rows`), score them against the rows poisoned.

    Precision is the share of flagged rows that were poisoned, recall the share of poisoned
    rows flagged.

    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> trigger = BackdoorTrigger([0, 7, 56, 63], [16, 16, 16, 16])
    >>> result = backdoor_detection(X[:1000], y[:1000], trigger, 0, 0.05)
    >>> result.poisoned, result.found, round(result.precision, 3), round(result.recall, 3)
    (50, 50, 1.0, 1.0)
    """
    X_p, y_p, rows = poison_backdoor(X, y, trigger, target, rate, seed=seed)
    found = spectral_signature_rows(X_p, y_p, separation=separation)
    hits = len(np.intersect1d(found, rows))
    return BackdoorDetection(
        rate=float(rate),
        poisoned=len(rows),
        found=len(found),
        precision=float(hits / len(found)) if len(found) else 0.0,
        recall=float(hits / len(rows)) if len(rows) else 0.0,
    )
