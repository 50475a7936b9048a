"""The reference's labelled errors weighted to stand for a window's inputs: what
:mod:`.shift_explained` tests a window's error against.

The reference keeps, in its sample, the model's predictions and the true labels
(``set_reference(..., predictions=, labels=)``); each row's error is the window's kind of
error (:func:`~opsloop.monitoring.window_metrics.task_errors`: 0/1 misclassification, or
absolute error). The density ratio ``p_window(x) / p_reference(x)`` at the reference's rows
is :func:`~opsloop.analysis.density_ratio.estimate_density_ratio` (a cross-fitted logistic
regression telling the window's sample from the reference's, the estimator the label-free
estimate reweights its calibration with, on its default settings) on the inputs of both
samples, encoded the same way for both:

* a number (the drift tests' ``numeric`` and ``discrete`` columns) as itself; a missing or
  non-finite value as the reference's median, with a column saying it was missing when any
  row on either side lacks one;
* a category (``categorical`` and ``bool``) as one indicator per value of the reference's
  :data:`MAX_LEVELS` most frequent (compared as text), and one for any other value or a
  missing one, when a row on either side has one;
* dates and free text are left out.

The weights assume what any reweighting assumes: the reference's rows cover the window's
inputs (rows far outside them are clipped at the estimator's ``max_weight``, and the ratio is
log-linear in the encoded inputs); and the reference's errors are the model's on rows it did
not train on, made by the model version whose window is judged (errors on its own training
rows are too low, and the test then leans to a new relationship; when the reference's
predictions are another version's, :mod:`.reference_predictions` makes them again with the
window's version and gives them here as ``predictions``).

When no reweighting can be made, :func:`reweighted_reference` says why (``note``): a
reference without predictions or labels, one whose values give no absolute error for a
regression's window, a window whose sample expired, no input both sides can encode, fewer
rows than the ratio's cross-fitting folds, or inputs the ratio's estimator refuses.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.training_reference import build_reference
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=400)
>>> ref = build_reference(pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 400)}),
...                       predictions=(x > 0).astype(int), labels=np.ones(400, dtype=int))
>>> window = pd.DataFrame({"x": rng.normal(1, 1, 300), "c": ["a"] * 300})
>>> found = reweighted_reference(ref, window, "accuracy")
>>> found.columns, found.note
(('x', 'c=b', 'c=a'), None)
>>> round(float(found.errors.mean()), 2), round(float(found.errors @ found.weights / 400), 2)
(0.53, 0.15)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.density_ratio import estimate_density_ratio
from opsloop.data.training_reference import LABEL_COLUMN, PREDICTION_COLUMN, Reference

#: The most values of one categorical input that get an indicator of their own.
MAX_LEVELS = 20
#: The cross-fitting folds of the density ratio, and so the fewest rows on each side.
FOLDS = 5


@dataclass(frozen=True)
class ReweightedReference:
    """The reference rows' ``errors`` and the density ``weights`` at them (mean 1), the
    encoded ``columns`` the ratio was learnt on and its summary (``density_ratio``:
    :meth:`~opsloop.analysis.density_ratio.DensityRatio.to_dict`); or, when no reweighting
    was made, ``errors`` and ``weights`` ``None`` and the ``note`` saying why."""

    errors: np.ndarray | None
    weights: np.ndarray | None
    columns: tuple[str, ...] = ()
    density_ratio: dict[str, Any] | None = None
    note: str | None = None
    #: Whose predictions the errors are of (``{"model", "version", "predicted_again"}``:
    #: kept with the reference, or made again by the window's version), when known.
    predictions: dict[str, Any] | None = None


def _missing(values: np.ndarray) -> np.ndarray:
    return ~np.isfinite(values)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _texts(column: pd.Series) -> pd.Series:
    return column.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))


def encoded_inputs(
    reference: Reference, reference_rows: pd.DataFrame, window_rows: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Both samples' inputs encoded alike for the density ratio (see the module docstring):
    the reference's matrix, the window's and the encoded columns' names.

    >>> import pandas as pd
    >>> from opsloop.data.training_reference import build_reference
    >>> ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    >>> r, w, names = encoded_inputs(ref, ref.sample.frame(),
    ...                              pd.DataFrame({"x": [None, 5.0], "c": ["z", "a"]}))
    >>> names, w.tolist()
    (('x', 'x missing', 'c=a', 'c=b', 'c other'), [[2.0, 1.0, 0.0, 0.0, 1.0], [5.0, 0.0, 1.0, 0.0, 0.0]])
    """  # noqa: E501 - a doctest's expected output is one line
    summary = reference.drift_profile
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    names: list[str] = []

    def add(name: str, ref: np.ndarray, win: np.ndarray) -> None:
        names.append(name)
        left.append(ref.astype(np.float64))
        right.append(win.astype(np.float64))

    for name in reference.features:
        if name not in window_rows.columns or name not in reference_rows.columns:
            continue
        kind = summary[name].kind if name in summary else None
        if kind in ("numeric", "discrete"):
            ref, win = _numbers(reference_rows[name]), _numbers(window_rows[name])
            known = ref[~_missing(ref)]
            if known.size == 0:
                continue
            fill = float(np.median(known))
            ref_gap, win_gap = _missing(ref), _missing(win)
            add(name, np.where(ref_gap, fill, ref), np.where(win_gap, fill, win))
            if ref_gap.any() or win_gap.any():
                add(f"{name} missing", ref_gap, win_gap)
        elif kind in ("categorical", "bool"):
            ref_text, win_text = _texts(reference_rows[name]), _texts(window_rows[name])
            counts = ref_text.value_counts(dropna=True)
            # The most frequent first, ties by their text: the same columns on every call.
            levels = sorted(counts.index, key=lambda v: (-counts[v], v))[:MAX_LEVELS]
            if not levels:
                continue
            for level in levels:
                ref_level = (ref_text == level).to_numpy()
                add(f"{name}={level}", ref_level, (win_text == level).to_numpy())
            ref_other = ~ref_text.isin(levels).to_numpy()
            win_other = ~win_text.isin(levels).to_numpy()
            if ref_other.any() or win_other.any():
                add(f"{name} other", ref_other, win_other)
    if not names:
        return np.empty((len(reference_rows), 0)), np.empty((len(window_rows), 0)), ()
    return np.column_stack(left), np.column_stack(right), tuple(names)


def reweighted_reference(
    reference: Reference,
    window_rows: pd.DataFrame | None,
    task: str,
    *,
    predictions: Sequence | None = None,
) -> ReweightedReference:
    """The reference's errors for ``task`` (``"accuracy"`` or ``"mae"``, the window's) and
    their density weights towards the window's sample ``window_rows`` (see the module
    docstring), or why there are none (``note``). ``predictions`` (one per row of the
    reference's sample, in its order) stand in for those the reference keeps: another model
    version's, made again on the sample's inputs.

    >>> import pandas as pd
    >>> from opsloop.data.training_reference import build_reference
    >>> ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> reweighted_reference(ref, pd.DataFrame({"x": [1.0]}), "accuracy").note[:52]
    'the reference keeps no predictions and labels beside'
    """
    given = predictions is not None
    if not ((reference.has_predictions or given) and reference.has_labels):
        return ReweightedReference(None, None, note=(
            "the reference keeps no predictions and labels beside its inputs: set it with "
            "predictions= and labels= to weigh its errors by the window's inputs"
        ))  # fmt: skip
    if window_rows is None or window_rows.empty:
        return ReweightedReference(None, None, note="the window's sample expired or is empty")
    rows = reference.sample.frame()
    if given:
        if len(predictions) != len(rows):
            raise ValueError(
                f"predictions: one per row of the reference's sample ({len(rows)}), got "
                f"{len(predictions)}"
            )
        made = np.empty(len(rows), dtype=object)
        made[:] = list(predictions)
        rows = rows.assign(**{PREDICTION_COLUMN: made})
    labelled = rows[PREDICTION_COLUMN].notna() & rows[LABEL_COLUMN].notna()
    rows = rows[labelled.to_numpy()].reset_index(drop=True)
    if len(rows) < FOLDS or len(window_rows) < FOLDS:
        return ReweightedReference(None, None, note=(
            f"the density ratio needs at least {FOLDS} rows on each side: the reference has "
            f"{len(rows)} labelled, the window's sample {len(window_rows)}"
        ))  # fmt: skip
    errors = _errors(rows[PREDICTION_COLUMN].tolist(), rows[LABEL_COLUMN].tolist(), task)
    if errors is None:
        return ReweightedReference(None, None, note=(
            f"the reference's predictions and labels are not numbers: no {task} errors"
        ))  # fmt: skip
    left, right, columns = encoded_inputs(reference, rows, window_rows)
    if not columns:
        return ReweightedReference(None, None, note=(
            "no input of the reference is in the window's sample as a number or a category"
        ))  # fmt: skip
    try:
        ratio = estimate_density_ratio(left, right, folds=FOLDS)
    except ValueError as error:  # inputs the estimator refuses: the window is still judged
        return ReweightedReference(None, None, note=f"no density ratio: {error}")
    summary = {k: v if isinstance(v, int) else _finite(v) for k, v in ratio.to_dict().items()}
    return ReweightedReference(errors, ratio.weights, columns, summary)


def _class(value: Any) -> Any:
    """A sample's value as a class: numpy scalars as Python's, a whole float as an integer
    (a sample may keep integer labels as floats)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _errors(predictions: list, labels: list, task: str) -> np.ndarray | None:
    """Each reference row's error for ``task``, as the window's are counted
    (:func:`~opsloop.monitoring.window_metrics.task_errors`): 0/1 misclassification for
    ``"accuracy"``, absolute error otherwise; ``None`` when the values are not numbers for
    an absolute error."""
    if task == "accuracy":
        wrong = [_class(p) != _class(y) for p, y in zip(predictions, labels, strict=True)]
        return np.asarray(wrong, dtype=np.float64)
    try:
        found = np.abs(
            np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
        )
    except (TypeError, ValueError):
        return None
    return found if np.isfinite(found).all() else None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
