"""Which older labelled rows are still correct after a concept change: the rows whose label
the new labelled data agrees with.

The rule: an older row is kept when its label is one of the most common labels among its
``neighbours`` nearest new rows (by input). Where the relationship between inputs and label
did not change, the new rows around an older row carry the label it has and it stays;
where it changed, they carry the new label and it goes. Rows far from any change keep
training the model, so a change in one region does not throw away what is still known
about the others.

This is Wilson's edited nearest neighbour rule (ENN, Wilson 1972) with the older rows
edited against the newer ones only: the instance-selection way of handling concept drift
(as in Delany, Cunningham, Tsymbal and Coyle 2005, competence-based editing of a case base
whose concept drifts). It judges rows by agreement with the new data, not with a model, so
it runs where the training function may not (a server building a follower's window), and
it is meant for class labels: a label agrees only when it is equal.

Distances are the heterogeneous Euclidean-overlap metric (HEOM, Wilson and Martinez 1997):
a numeric input counts its difference over its range (over the older and the new rows); any
other input counts 0 when equal and 1 when not; a missing value counts 1. Among rows at the
same distance, the earlier new row is nearer (a stable order), so the result is the same on
every run.

>>> new = pd.DataFrame({"x": [0.0, 0.1, 0.2, 0.8, 0.9, 1.0], "y": [0, 0, 0, 1, 1, 1]})
>>> old = pd.DataFrame({"x": [0.05, 0.95, 0.15], "y": [0, 1, 1]})
>>> still_correct(old, new, "y", neighbours=3).tolist()
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


def still_correct(
    older: pd.DataFrame, recent: pd.DataFrame, label: str, *, neighbours: int = 5
) -> np.ndarray:
    """A mask over the rows of ``older``: whether each one is still correct by the rule of
    the module docstring, judged by the rows of ``recent`` (inputs and the column ``label``).

    >>> still_correct(pd.DataFrame({"x": [1.0], "y": [0]}), pd.DataFrame({"y": []}), "y")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: recent: no new labelled rows to judge the older rows by
    """
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise InvalidArgumentError(f"neighbours: a whole number >= 1, got {neighbours!r}")
    if len(recent) == 0:
        raise InvalidArgumentError("recent: no new labelled rows to judge the older rows by")
    if len(older) == 0:
        return np.zeros(0, dtype=bool)
    inputs = [c for c in recent.columns if c != label]
    columns = [_columns(older, recent, name) for name in inputs]
    codes = pd.factorize(pd.concat([older[label], recent[label]], ignore_index=True))[0]
    old_labels, new_labels = codes[: len(older)], codes[len(older) :]
    k = min(neighbours, len(recent))
    kept = np.zeros(len(older), dtype=bool)
    for first in range(0, len(older), _BLOCK_ROWS):
        rows = slice(first, first + _BLOCK_ROWS)
        squared = np.zeros((len(older.iloc[rows]), len(recent)))
        for old, new, numeric in columns:
            a, b = old[rows][:, None], new[None, :]
            if numeric:
                gap = np.abs(a - b)
            else:
                gap = (a != b).astype(float)
            squared += np.where(np.isnan(a) | np.isnan(b), 1.0, gap) ** 2
        nearest = np.argsort(squared, axis=1, kind="stable")[:, :k]
        votes = new_labels[nearest]
        for i, row_votes in enumerate(votes):
            counts = np.bincount(row_votes, minlength=codes.max() + 1)
            kept[first + i] = counts[old_labels[first + i]] == counts.max()
    return kept
