"""Which older labelled rows are still correct after a concept change: the rows whose label
the new labelled data agrees with.

**Classes.** An older row is kept when its label is one of the most common labels among
its ``neighbours`` nearest new rows (by input). Where the relationship between inputs and
label did not change, the new rows around an older row carry the label it has and it
stays; where it changed, they carry the new label and it goes. Rows far from any change
keep training the model, so a change in one region does not throw away what is still
known about the others.

This is Wilson's edited nearest neighbour rule (ENN, Wilson 1972) with the older rows
edited against the newer ones only: the instance-selection way of handling concept drift
(as in Delany, Cunningham, Tsymbal and Coyle 2005, competence-based editing of a case base
whose concept drifts). It judges rows by agreement with the new data, not with a model, so
it runs where the training function may not (a server building a follower's window).

**Numbers** (a label column of floats, as a regression's labels are logged, the same
convention as the windows' task metric): the same rule with its two parts generalised.

* What the neighbours say is the **median** of their labels (the vote's counterpart for
  numbers: the mode minimises the count of disagreeing labels, the median the sum of the
  distances to them, and it is not pulled by one neighbour from the other side of a
  change).
* "Agrees" becomes **within** ``tolerance`` scaled median absolute deviations (MAD) of
  the new data's own disagreement with itself: each new row's label minus the median of
  its ``neighbours`` nearest *other* new rows is its residual; ``s = 1.4826 · MAD`` of
  those residuals estimates the label noise where nothing changed (1.4826 makes the MAD
  a standard deviation under normal noise). An older row is kept when
  ``|label - median of its neighbours' labels| <= tolerance · s``: it is no further from
  what the new data says than a new row typically is. With ``tolerance=3`` (the Hampel
  identifier's) an unchanged row under normal noise is kept with probability about 0.997,
  and a row whose label moved by more than three noise deviations goes. Equality, the
  classes' agreement, is the case ``s = 0``: noise-free new labels keep only equal ones.

A label column is numeric when its dtype is a float (``1.0``, not ``1``); whole-number
regression targets are given as floats.

Distances are the heterogeneous Euclidean-overlap metric (HEOM, Wilson and Martinez 1997):
a numeric input counts its difference over its range (over the older and the new rows); any
other input counts 0 when equal and 1 when not; a missing value counts 1. Among rows at the
same distance, the earlier new row is nearer (a stable order), so the result is the same on
every run.

>>> new = pd.DataFrame({"x": [0.0, 0.1, 0.2, 0.8, 0.9, 1.0], "y": [0, 0, 0, 1, 1, 1]})
>>> old = pd.DataFrame({"x": [0.05, 0.95, 0.15], "y": [0, 1, 1]})
>>> still_correct(old, new, "y", neighbours=3).tolist()
[True, True, False]
>>> new = new.assign(y=[1.0, 1.2, 0.8, 5.0, 5.4, 4.6])
>>> still_correct(old.assign(y=[1.1, 5.0, 3.0]), new, "y", neighbours=3).tolist()
[True, True, False]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.errors import InvalidArgumentError

#: Older rows compared at once: bounds the distance block to this many rows by the new ones.
_BLOCK_ROWS = 512


def _columns(older: pd.DataFrame, recent: pd.DataFrame, name: str) -> tuple[np.ndarray, ...]:
    """One input as (older values, recent values, numeric) with numbers over their range."""
    old = older[name] if name in older.columns else pd.Series([None] * len(older))
    new = recent[name]
    both = pd.concat([old, new], ignore_index=True)
    numeric = pd.api.types.is_numeric_dtype(both) and not pd.api.types.is_bool_dtype(both)
    if numeric:
        values = both.to_numpy(dtype=float)
        span = np.nanmax(values) - np.nanmin(values) if np.isfinite(values).any() else 0.0
        values = values / span if span > 0 else values * 0.0
    else:
        values = pd.factorize(both.astype(str).where(both.notna()))[0].astype(float)
        values[values < 0] = np.nan
    return values[: len(old)], values[len(old) :], numeric


def _nearest(
    columns: list[tuple[np.ndarray, ...]], rows: slice, side: int, k: int, *, others: bool
) -> np.ndarray:
    """The positions of the ``k`` nearest new rows to the older rows ``rows`` (with
    ``others``: to the new rows ``rows``, each one left out of its own neighbours)."""
    squared = None
    for old, new, numeric in columns:
        a, b = (new if others else old)[rows][:, None], new[None, :]
        gap = np.abs(a - b) if numeric else (a != b).astype(float)
        part = np.where(np.isnan(a) | np.isnan(b), 1.0, gap) ** 2
        squared = part if squared is None else squared + part
    if squared is None:  # no inputs: every new row is as near as any other
        squared = np.zeros((rows.stop - rows.start, side))
    if others:
        own = np.arange(rows.start, rows.start + len(squared))
        squared[np.arange(len(squared)), own] = np.inf
    return np.argsort(squared, axis=1, kind="stable")[:, :k]


def noise_scale(recent: pd.DataFrame, label: str, *, neighbours: int = 5) -> float:
    """The label noise of numeric labels ``recent[label]`` where nothing changed: 1.4826
    times the median absolute deviation of each row's label minus the median label of its
    ``neighbours`` nearest other rows (see the module docstring).

    >>> rows = pd.DataFrame({"x": [0.0, 1.0, 3.0, 6.0], "y": [1.0, 2.0, 4.0, 4.0]})
    >>> noise_scale(rows, "y", neighbours=1)  # residuals -1, 1, 2, 0: median 0.5, MAD 1
    1.4826
    """
    if len(recent) < 2:
        raise InvalidArgumentError(
            f"recent: at least 2 rows to measure the label noise, got {len(recent)}"
        )
    inputs = [c for c in recent.columns if c != label]
    columns = [_columns(recent.iloc[:0], recent, name) for name in inputs]
    return _scale(columns, recent[label].to_numpy(dtype=float), neighbours)


def _scale(columns: list[tuple[np.ndarray, ...]], labels: np.ndarray, neighbours: int) -> float:
    """:func:`noise_scale` of the new rows of ``columns`` with ``labels``."""
    k = min(neighbours, len(labels) - 1)
    residuals = np.empty(len(labels))
    for first in range(0, len(labels), _BLOCK_ROWS):
        rows = slice(first, min(first + _BLOCK_ROWS, len(labels)))
        nearest = _nearest(columns, rows, len(labels), k, others=True)
        residuals[rows] = labels[rows] - np.median(labels[nearest], axis=1)
    return float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))


def still_correct(
    older: pd.DataFrame,
    recent: pd.DataFrame,
    label: str,
    *,
    neighbours: int = 5,
    tolerance: float = 3.0,
) -> np.ndarray:
    """A mask over the rows of ``older``: whether each one is still correct by the rule of
    the module docstring, judged by the rows of ``recent`` (inputs and the column ``label``);
    ``tolerance`` is the numbers' agreement in noise deviations (classes ignore it).

    >>> still_correct(pd.DataFrame({"x": [1.0], "y": [0]}), pd.DataFrame({"y": []}), "y")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: recent: no new labelled rows to judge the older rows by
    >>> still_correct(pd.DataFrame({"y": [1.0]}), pd.DataFrame({"y": [1.0]}), "y", tolerance=-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tolerance: a number >= 0, got -1
    """
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise InvalidArgumentError(f"neighbours: a whole number >= 1, got {neighbours!r}")
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not tolerance >= 0
        or not np.isfinite(tolerance)
    ):
        raise InvalidArgumentError(f"tolerance: a number >= 0, got {tolerance!r}")
    if len(recent) == 0:
        raise InvalidArgumentError("recent: no new labelled rows to judge the older rows by")
    if len(older) == 0:
        return np.zeros(0, dtype=bool)
    inputs = [c for c in recent.columns if c != label]
    columns = [_columns(older, recent, name) for name in inputs]
    numbers = pd.api.types.is_float_dtype(recent[label])
    if numbers:
        new_values = recent[label].to_numpy(dtype=float)
        old_values = pd.to_numeric(older[label], errors="coerce").to_numpy(dtype=float)
        # One new row has no other row to measure the noise by: only equal labels agree.
        # Measured on the inputs scaled as the older rows' distances are, over both.
        scale = _scale(columns, new_values, neighbours) if len(recent) > 1 else 0.0
    else:
        codes = pd.factorize(pd.concat([older[label], recent[label]], ignore_index=True))[0]
        old_labels, new_labels = codes[: len(older)], codes[len(older) :]
    k = min(neighbours, len(recent))
    kept = np.zeros(len(older), dtype=bool)
    for first in range(0, len(older), _BLOCK_ROWS):
        rows = slice(first, min(first + _BLOCK_ROWS, len(older)))
        nearest = _nearest(columns, rows, len(recent), k, others=False)
        if numbers:
            said = np.median(new_values[nearest], axis=1)
            kept[rows] = np.abs(old_values[rows] - said) <= tolerance * scale
            continue
        for i, row_votes in enumerate(new_labels[nearest]):
            counts = np.bincount(row_votes, minlength=codes.max() + 1)
            kept[first + i] = counts[old_labels[first + i]] == counts.max()
    return kept
