"""The model's probabilities and the true labels on a deployment's reference: what the
label-free estimate of a window's metrics (:mod:`opsloop.monitoring.window_estimate`) is
calibrated on.

Confidence-based performance estimation
(:class:`~opsloop.analysis.performance_estimation.PerformanceEstimator`) learns how far the
model's scores can be trusted from labelled rows the model did not train on, so the
reference keeps, beside its sample, the probability of every class per row and each row's
true class (as an index into ``classes``, the order of the probability columns, as a
scikit-learn model's ``classes_``). All rows are kept up to :data:`MAX_SCORED_ROWS`; a
larger reference keeps a seeded uniform choice of that many, so that the estimate is
calibrated on the same rows at every evaluation.

Given the reference's ``inputs``, the same rows' numeric inputs are kept beside their
scores (``features``, ``inputs``): the columns of a numeric type (booleans left out) with no
missing value. With them the calibration is reweighted by the density ratio of a window's
inputs against these (:meth:`PerformanceEstimator.estimate
<opsloop.analysis.performance_estimation.PerformanceEstimator.estimate>`); a reference kept
before inputs were, or with no such column, has none and its estimate is unweighted.

>>> scores = ReferenceScores.of([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], [0, 1, 1], [0, 1])
>>> scores.labels.tolist(), scores.classes, scores.binary
([0, 1, 1], (0, 1), True)
>>> ReferenceScores.from_state(scores.to_state()).scores.tolist() == scores.scores.tolist()
True
>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": [1.0, None, 2.0], "c": ["a", "b", "a"]})
>>> kept = ReferenceScores.of([0.2, 0.7, 0.4], [0, 1, 1], inputs=frame)
>>> kept.features, ReferenceScores.from_state(kept.to_state()).inputs.tolist()
(('x',), [[1.0], [2.0], [3.0]])
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.errors import InvalidArgumentError

#: The most reference rows whose scores are kept for calibrating the estimate.
MAX_SCORED_ROWS = 50_000
#: How many fitted calibrations a process keeps, the least recently used dropped first.
CACHED_CALIBRATIONS = 8

# Fitting the calibration takes seconds on the largest reference, and every evaluation
# needs it: it is kept per reference content (its sha256), so an evaluation of a reference
# already seen reuses it, and a new reference (new content) is fitted anew.
_fitted: OrderedDict[str, PerformanceEstimator] = OrderedDict()
_fitted_lock = threading.Lock()


def _encoded(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def class_index(values: Sequence, classes: Sequence, field: str) -> np.ndarray:
    """The position of each of ``values`` in ``classes``, naming the first that is not one.

    >>> class_index(["no", "yes", "no"], ["no", "yes"], "labels").tolist()
    [0, 1, 0]
    >>> class_index([2], [0, 1], "labels")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels: 2 is not one of the classes [0, 1]
    """
    position = {_plain(c): i for i, c in enumerate(classes)}
    found = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        index = position.get(_plain(value))
        if index is None:
            raise InvalidArgumentError(
                f"{field}: {_plain(value)!r} is not one of the classes {list(position)}"
            )
        found[i] = index
    return found


def _numeric_inputs(
    inputs: pd.DataFrame | None, rows: int
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The names and values of ``inputs``' numeric columns with no missing value (the
    density ratio needs finite numbers), or ``((), None)`` when there is none."""
    if inputs is None:
        return (), None
    if not isinstance(inputs, pd.DataFrame):
        raise InvalidArgumentError(f"inputs: a pandas DataFrame, got {type(inputs).__name__}")
    if len(inputs) != rows:
        raise InvalidArgumentError(
            f"inputs: {len(inputs)} rows for {rows} probability rows; give one per row"
        )
    names = []
    for name in inputs.columns:
        column = inputs[name]
        if not is_numeric_dtype(column) or is_bool_dtype(column):
            continue
        if np.isfinite(column.to_numpy(dtype=np.float64)).all():
            names.append(name)
    if not names:
        return (), None
    matrix = inputs[names].to_numpy(dtype=np.float64)
    return tuple(str(n) for n in names), np.ascontiguousarray(matrix)


def probability_matrix(probabilities: Any, row: str) -> np.ndarray:
    """``probabilities`` as a float matrix, one column per class (at least two), each value
    in [0, 1]; a vector is the second of two classes' probability. ``row`` names what one
    row stands for, in the error.

    >>> probability_matrix([0.25, 1.0], "input row").tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    >>> probability_matrix([[0.5, 1.5]], "input row")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: probabilities: numbers in [0, 1]
    """
    try:
        array = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"probabilities: numbers, one row per {row}") from None
    if array.ndim == 1:
        array = np.column_stack([1.0 - array, array])
    if array.ndim != 2 or array.shape[1] < 2:
        raise InvalidArgumentError(
            "probabilities: one column per class (at least two), or the second class's "
            "probability alone"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array > 1):
        raise InvalidArgumentError("probabilities: numbers in [0, 1]")
    return array


@dataclass(frozen=True)
class ReferenceScores:
    """The ``classes`` (in the order of the probability columns), the ``scores`` (rows ×
    classes) and the ``labels`` (index of each row's true class), and the same rows'
    numeric ``inputs`` (rows × ``features``; ``None`` when none are kept)."""

    classes: tuple
    scores: np.ndarray
    labels: np.ndarray
    features: tuple[str, ...] = ()
    inputs: np.ndarray | None = None

    @property
    def binary(self) -> bool:
        """Whether the model has two classes (then the estimate reads the second's
        probability, with precision, recall, F1 and the ROC AUC)."""
        return len(self.classes) == 2

    @classmethod
    def of(
        cls,
        probabilities: Any,
        labels: Sequence | np.ndarray,
        classes: Sequence | None = None,
        *,
        inputs: pd.DataFrame | None = None,
        limit: int = MAX_SCORED_ROWS,
        seed: int = 0,
    ) -> ReferenceScores:
        """Check and keep the reference's ``probabilities`` (one column per class, or the
        second class's probability alone for two classes) with its ``labels``; ``classes``
        defaults to ``0 .. k-1``. ``inputs`` (a frame, one row per row of probabilities)
        keeps the same rows' numeric inputs (see the module docstring).

        >>> ReferenceScores.of([[0.5, 0.6]], [1])
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: probabilities: each row must sum to 1 (row 0 sums to 1.1)
        """  # noqa: E501 - a doctest's expected output is one line
        array = probability_matrix(probabilities, "reference row")
        sums = array.sum(axis=1)
        wrong = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if wrong.size:
            raise InvalidArgumentError(
                f"probabilities: each row must sum to 1 (row {wrong[0]} sums to "
                f"{sums[wrong[0]]:.6g})"
            )
        classes = tuple(range(array.shape[1])) if classes is None else tuple(classes)
        classes = tuple(_plain(c) for c in classes)
        if len(classes) != array.shape[1] or len(set(classes)) != len(classes):
            raise InvalidArgumentError(
                f"classes: {array.shape[1]} distinct classes, one per probability column, "
                f"got {list(classes)}"
            )
        values = np.asarray(labels, dtype=object).reshape(-1)
        if len(values) != len(array):
            raise InvalidArgumentError(
                f"labels: {len(values)} labels for {len(array)} probability rows; give one per row"
            )
        index = class_index(values.tolist(), classes, "labels")
        features, matrix = _numeric_inputs(inputs, len(array))
        if len(array) > limit:
            kept = np.sort(np.random.default_rng(seed).choice(len(array), limit, replace=False))
            array, index = array[kept], index[kept]
            matrix = None if matrix is None else matrix[kept]
        return cls(classes, array, index, features, matrix)

    @cached_property
    def sha256(self) -> str:
        """The sha256 of the classes, the scores and the labels, bit for bit.

        >>> a = ReferenceScores.of([[0.8, 0.2], [0.3, 0.7]], [0, 1])
        >>> a.sha256 == ReferenceScores.from_state(a.to_state()).sha256
        True
        >>> a.sha256 == ReferenceScores.of([[0.8, 0.2], [0.3, 0.7]], [0, 0]).sha256
        False
        """
        digest = hashlib.sha256()
        digest.update(repr((self.classes, self.scores.shape)).encode())
        digest.update(np.ascontiguousarray(self.scores, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        if self.inputs is not None:
            digest.update(repr(self.features).encode())
            digest.update(np.ascontiguousarray(self.inputs, dtype="<f8").tobytes())
        return digest.hexdigest()

    def estimator(self) -> PerformanceEstimator:
        """A :class:`~opsloop.analysis.performance_estimation.PerformanceEstimator` (its
        defaults) fitted on these rows: fitted once per process for the same rows (by
        :attr:`sha256`) and shared, so it is read, never fitted again by the caller.

        >>> rng = np.random.default_rng(0)
        >>> p = rng.random(400)
        >>> scores = ReferenceScores.of(p, (rng.random(400) < p).astype(int))
        >>> round(scores.estimator().reference_ece_, 3)
        0.03
        >>> ReferenceScores.from_state(scores.to_state()).estimator() is scores.estimator()
        True
        """
        key = self.sha256
        with _fitted_lock:
            found = _fitted.get(key)
            if found is not None:
                _fitted.move_to_end(key)
                return found
        fitted = PerformanceEstimator().fit(
            self.labels, self.scores[:, 1] if self.binary else self.scores, inputs=self.inputs
        )
        with _fitted_lock:
            # Two threads that fitted the same rows at once keep the first fit.
            fitted = _fitted.setdefault(key, fitted)
            _fitted.move_to_end(key)
            while len(_fitted) > CACHED_CALIBRATIONS:
                _fitted.popitem(last=False)
        return fitted

    def to_state(self) -> dict:
        """A JSON-safe dict of everything, floats bit for bit (:meth:`from_state`)."""
        state = {
            "classes": list(self.classes),
            "shape": list(self.scores.shape),
            "scores": _encoded(self.scores.astype("<f8")),
            "labels": _encoded(self.labels.astype("<i8")),
        }
        if self.inputs is not None:
            state["features"] = list(self.features)
            state["inputs"] = _encoded(self.inputs.astype("<f8"))
        return state

    @classmethod
    def from_state(cls, state: dict) -> ReferenceScores:
        """Rebuild from :meth:`to_state`."""
        rows, columns = state["shape"]
        scores = np.frombuffer(base64.b64decode(state["scores"]), dtype="<f8").reshape(
            rows, columns
        )
        labels = np.frombuffer(base64.b64decode(state["labels"]), dtype="<i8")
        features, inputs = (), None
        # A reference kept before its inputs were has neither key.
        if state.get("inputs") is not None:
            features = tuple(state["features"])
            inputs = np.frombuffer(base64.b64decode(state["inputs"]), dtype="<f8").reshape(
                rows, len(features)
            )
            inputs = inputs.astype(np.float64)
        return cls(
            tuple(state["classes"]),
            scores.astype(np.float64),
            labels.astype(np.int64),
            features,
            inputs,
        )
