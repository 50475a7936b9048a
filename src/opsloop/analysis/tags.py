"""Tag columns turned into integer group codes, the shared grouping of every slice table.

A tag is a column whose values name slices of the data: gender, device, the true class, an
integer code (occupation 1..6), or a numeric feature cut into quantile bins. Whole numbers
with at most :data:`MAX_CODES` distinct values are codes, one slice each, as Fairlearn groups
them; other numbers with more than ``bins`` distinct values are cut into ``bins`` quantile
bins, and the results that bin (:func:`~opsloop.analysis.error_analysis`,
:func:`~opsloop.analysis.fairness`, :func:`~opsloop.analysis.hlp`) list the binned tags and
their bins in ``binned``. Each tag becomes ``codes`` (one int per row, ``0..k-1``)
and ``labels`` (the ``k`` value names), so counting a slice is one ``np.bincount`` and an
intersection of two tags is ``codes_a * k_b + codes_b``. Missing values form their own slice,
``"<missing>"``, because errors often concentrate there.

>>> import pandas as pd
>>> [g.labels.tolist() for g in tag_groupings({"device": ["a", "b", None]}, 3)]
[['a', 'b', '<missing>']]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.types import infer_column_type

#: The slice label given to missing tag values.
MISSING_LABEL = "<missing>"
#: Joins the names and the values of two tags in an intersection ("gender × device").
JOIN = " × "
#: Whole numbers with at most this many distinct values are codes (a slice each), not binned.
MAX_CODES = 20


@dataclass(frozen=True)
class Grouping:
    """One tag (or intersection of two tags) as per-row codes and per-code labels.

    >>> g = Grouping("device", np.array([0, 1, 0]), np.array(["a", "b"], dtype=object))
    >>> g.counts().tolist()
    [2, 1]
    """

    tag: str
    codes: np.ndarray
    labels: np.ndarray
    #: Whether the tag's numbers were cut into quantile bins (its labels are the intervals).
    binned: bool = False

    def counts(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Rows (or summed ``weights``) per slice, in label order.

        >>> Grouping("t", np.array([1, 1]), np.array(["x", "y"])).counts(np.array([1, 0])).tolist()
        [0, 1]
        """
        if weights is None:
            return np.bincount(self.codes, minlength=len(self.labels))
        if weights.dtype.kind == "b":
            # counting the flagged rows is exact and skips the float round trip
            return np.bincount(self.codes[weights], minlength=len(self.labels))
        sums = np.bincount(self.codes, weights=weights, minlength=len(self.labels))
        return sums.astype(np.int64) if weights.dtype.kind in "iu" else sums


def as_tag_frame(tags: Any, n_rows: int, *, name: str = "tags") -> pd.DataFrame:
    """``tags`` (a DataFrame, a mapping of name to values, or one Series) as a DataFrame.

    Rows are matched by position, so a frame's index is ignored.

    >>> as_tag_frame({"g": ["a", "b"]}, 2).columns.tolist()
    ['g']
    """
    if isinstance(tags, pd.DataFrame):
        frame = tags.reset_index(drop=True)
    elif isinstance(tags, pd.Series):
        frame = tags.reset_index(drop=True).to_frame(tags.name if tags.name is not None else "tag")
    elif isinstance(tags, Mapping):
        frame = pd.DataFrame({str(k): np.asarray(v) for k, v in tags.items()})
    else:
        raise TypeError(
            f"{name} must be a DataFrame, a Series or a mapping of column name to values, "
            f"got {type(tags).__name__}"
        )
    if frame.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one column")
    if len(frame) != n_rows:
        raise ValueError(f"{name} has {len(frame)} rows but the labels have {n_rows}")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def encode_tag(values: pd.Series, bins: int) -> Grouping:
    """One tag column as a :class:`Grouping`: whole numbers with at most :data:`MAX_CODES`
    distinct values are codes, a slice each; other numbers with more than ``bins`` values are
    cut into (at most) ``bins`` quantile bins labelled by their interval.

    >>> g = encode_tag(pd.Series([0.5 * v for v in range(10)], name="age"), 2)
    >>> g.labels.tolist(), g.counts().tolist(), g.binned
    (['(-0.001, 2.25]', '(2.25, 4.5]'], [5, 5], True)
    >>> encode_tag(pd.Series([1, 2, 3, 4, 5, 6], name="occupation"), 2).labels.tolist()
    ['1', '2', '3', '4', '5', '6']
    """
    name = str(values.name)
    kind = infer_column_type(values)
    if kind == "datetime":
        raise TypeError(f"tag column {name!r} holds datetimes; cut it into periods first")
    binned = False
    if kind in ("int", "float") and values.nunique(dropna=True) > bins and not _codes(values):
        values = pd.qcut(values.astype("float64"), q=bins, duplicates="drop")
        binned = True
    if isinstance(values.dtype, pd.CategoricalDtype):
        # the codes are already there: keep the categories that occur, in category order
        raw = values.cat.codes.to_numpy().astype(np.int64)
        used = np.flatnonzero(np.bincount(raw[raw >= 0], minlength=len(values.cat.categories)))
        lookup = np.full(len(values.cat.categories) + 1, -1, dtype=np.int64)
        lookup[used] = np.arange(len(used))
        codes = lookup[raw]  # -1 (missing) reads the last entry, which stays -1
        uniques = values.cat.categories[used]
    else:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    labels = np.asarray([str(u) for u in uniques], dtype=object)
    missing = codes < 0
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = np.append(labels, MISSING_LABEL).astype(object)
    return Grouping(name, codes.astype(np.int64), labels, binned)


def _codes(values: pd.Series) -> bool:
    numbers = values.dropna().to_numpy(dtype=np.float64)
    distinct = np.unique(numbers)
    return len(distinct) <= MAX_CODES and bool(np.array_equal(distinct, np.floor(distinct)))


def binned_tags(groupings: Sequence[Grouping]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(tag, bins)`` for each tag that was cut into quantile bins, the bins (interval
    labels) in order; what a result reports so that binning is never silent.

    >>> binned_tags([encode_tag(pd.Series([0.5 * v for v in range(10)], name="x"), 2)])
    (('x', ('(-0.001, 2.25]', '(2.25, 4.5]')),)
    """
    return tuple(
        (g.tag, tuple(str(label) for label in g.labels if label != MISSING_LABEL))
        for g in groupings
        if g.binned
    )


def intersect(a: Grouping, b: Grouping) -> Grouping:
    """The slices of ``a`` × ``b`` that hold at least one row.

    >>> a = Grouping("g", np.array([0, 0, 1]), np.array(["F", "M"], dtype=object))
    >>> b = Grouping("d", np.array([0, 1, 1]), np.array(["pc", "tv"], dtype=object))
    >>> intersect(a, b).labels.tolist()
    ['F × pc', 'F × tv', 'M × tv']
    """
    joint = a.codes * len(b.labels) + b.codes
    size = len(a.labels) * len(b.labels)
    if size <= 4 * len(joint) + 1024:
        # a counting pass and a lookup table: linear time, where np.unique would sort
        present = np.flatnonzero(np.bincount(joint, minlength=size))
        lookup = np.zeros(size, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        codes = lookup[joint]
    else:
        present, codes = np.unique(joint, return_inverse=True)
    labels = np.char.add(
        np.char.add(a.labels[present // len(b.labels)].astype(str), JOIN),
        b.labels[present % len(b.labels)].astype(str),
    ).astype(object)
    return Grouping(a.tag + JOIN + b.tag, codes.astype(np.int64), labels)


def tag_groupings(
    tags: Any,
    n_rows: int,
    *,
    bins: int = 5,
    intersections: bool | Sequence[tuple[str, str]] = False,
) -> list[Grouping]:
    """Every tag of ``tags`` and, when asked, the intersections of tag pairs.

    ``intersections`` is ``False`` (none), ``True`` (every pair) or a list of column pairs.

    >>> frame = pd.DataFrame({"g": ["F", "M"], "d": ["pc", "tv"]})
    >>> [g.tag for g in tag_groupings(frame, 2, intersections=True)]
    ['g', 'd', 'g × d']
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    frame = as_tag_frame(tags, n_rows)
    groupings = {column: encode_tag(frame[column], int(bins)) for column in frame.columns}
    if intersections is True:
        pairs = list(combinations(frame.columns, 2))
    elif intersections is False or intersections is None:
        pairs = []
    else:
        pairs = [tuple(p) for p in intersections]
        for pair in pairs:
            unknown = [c for c in pair if c not in groupings]
            if len(pair) != 2 or unknown:
                raise ValueError(f"intersections must name pairs of tag columns, got {pair!r}")
    return list(groupings.values()) + [intersect(groupings[a], groupings[b]) for a, b in pairs]
