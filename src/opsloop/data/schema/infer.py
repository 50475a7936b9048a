"""Infer a :class:`~opsloop.data.schema.Schema` from a training frame.

The inferred schema is tight enough that anything new is reported, yet loose enough that a
batch drawn like the training data passes: the logical type comes from
:func:`opsloop.data.types.infer_column_type`; ``±inf`` is allowed only in a float column
where it was seen; a category column's domain is its observed values when there are at most
``max_categories`` of them. Widen what is too tight by editing the schema
(:meth:`Schema.update_column` or the YAML).

**Ranges.** ``min`` and ``max`` are the observed finite range. A fresh value of the same
distribution lands outside the range of ``n`` training values with probability ``2/(n+1)``
whatever the distribution (exchangeability), so exact bounds would flag unchanged data. Two
allowances follow from that:

* ``range_margin`` (default ``1.0``): a value up to one range width beyond ``min`` or ``max``
  is a straggler; beyond that it is an error, reported even if it is the only one. A bound
  that is not below zero is never widened below zero (nor one not above zero above it), so a
  negative count or age is always caught.
* ``max_out_of_range_fraction`` (tolerance): stragglers are an anomaly only when more than
  ``16/(n+1)`` of the rows are outside the range, eight times the expected share, rounded up
  to four decimals and at most ``0.5``.

**Nulls.** A column without nulls in training allows none (``max_null_fraction`` 0): a null
there is new. A column with ``k`` nulls in ``n`` rows allows the one-sided upper confidence
bound of its null rate at confidence ``1 - NULL_SIGNIFICANCE`` (0.999; Clopper-Pearson: the
``1 - NULL_SIGNIFICANCE`` quantile of Beta(k + 1, n - k)), rounded *up* to four decimals, and
sets ``null_significance`` to ``NULL_SIGNIFICANCE``: a batch's share above the bound is an
anomaly only when a binomial test says it is beyond chance at that level. The training
share itself would be exceeded by about half of all batches drawn like the training data.

**Infinities.** A float column that held ``±inf`` allows them (``allow_non_finite``) up to
a share bounded as the null share is: ``max_non_finite_fraction`` is the same upper
confidence bound of the ``k`` infinite rows in ``n`` (``null_fraction_bound(k, n)``), and
``non_finite_significance`` is ``NULL_SIGNIFICANCE``, so a batch's share of ``±inf`` above
the bound beyond chance is a ``non_finite`` anomaly: one ``inf`` in training does not let a
column of ``inf`` pass. A column without ``±inf`` in training allows none.

**Identifiers.** An ``int``, ``string`` or ``category`` column whose values are all distinct,
over at least 100 rows, identifies rows: it is marked ``id_like`` and gets no range and no
domain, since every batch brings new ids.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.period_columns import period_starts
from opsloop.data.schema.column import NUMERIC_TYPES, ColumnSchema
from opsloop.data.schema.model import Schema
from opsloop.data.schema.observe import BOOL, FLOAT, INT, STR, conforms, observe, plain_value
from opsloop.data.types import MAX_CATEGORIES, infer_column_type

# Fewer rows than this say too little for "all distinct" to mean "an identifier".
_ID_MIN_ROWS = 100
# Tolerated share of rows outside the range, as a multiple of the expected 2 / (n + 1).
_TOLERANCE_FACTOR = 8
_MAX_TOLERANCE = 0.5

# The allowed null fraction is rounded up to this many decimals: readable in YAML, and never
# below the bound, so the training data itself always passes.
_NULL_FRACTION_DECIMALS = 4
#: Significance of the null-share rules of an inferred schema: the confidence bound of the
#: training share and the binomial test of a batch each err with at most this probability.
NULL_SIGNIFICANCE = 0.001


def infer_schema(
    df,
    *,
    max_categories: int = MAX_CATEGORIES,
    environments: Mapping[str, Iterable[str]] | None = None,
    created_at: dt.datetime | None = None,
    range_margin: float = 1.0,
) -> Schema:
    """Infer the schema that ``df`` satisfies (see the module docstring for each field).

    Parameters
    ----------
    df
        Training data with unique string column names and at least one row
        (``opsloop.data.schema.infer_schema`` also takes a ``dask.dataframe``:
        :mod:`opsloop.data.distributed.schema`).
    max_categories
        A category column with more distinct values than this gets no domain (any label
        is then accepted).
    environments
        Environment name -> columns absent from it, e.g. ``{"training": [], "serving":
        ["label"]}``: the label is then required when validating in ``training`` and must
        not appear in ``serving``. ``None``: no environments.
    created_at
        Time recorded in the schema; default now (UTC).
    range_margin
        How far beyond the observed range, as a fraction of its width, a value is a
        tolerated straggler rather than an error (see the module docstring).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [31, 45, None], "plan": ["a", "b", "a"]})
    >>> schema = infer_schema(df, environments={"serving": ["plan"]})
    >>> schema["age"].type, schema["age"].min, schema["age"].max, schema["age"].max_null_fraction
    ('float', 31.0, 45.0, 0.9817)
    >>> schema["age"].hard_limits(), schema["age"].max_out_of_range_fraction
    ((17.0, 59.0), 0.5)
    >>> schema["plan"].domain, schema["plan"].absent_in
    (('a', 'b'), ('serving',))
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"infer_schema expects a pandas DataFrame, got {type(df).__name__}")
    names = list(df.columns)
    absent, stamp = check_inference_arguments(
        names, len(df), max_categories, environments, created_at, range_margin
    )
    columns = tuple(
        _infer_column(
            name, df.iloc[:, position], max_categories, absent.get(name, ()), float(range_margin)
        )
        for position, name in enumerate(names)
    )
    return Schema(
        columns=columns,
        version=1,
        environments=tuple(environments or ()),
        created_at=stamp,
        source_rows=len(df),
    )


def check_inference_arguments(
    names: list,
    n_rows: int | None,
    max_categories: int,
    environments: Mapping[str, Iterable[str]] | None,
    created_at: dt.datetime | None,
    range_margin: float,
) -> tuple[dict[str, tuple[str, ...]], str]:
    """Check :func:`infer_schema`'s arguments for a frame with columns ``names`` and
    ``n_rows`` rows (``None``: not known yet); return each column's environments it is
    absent from and the creation time as ISO text.

    >>> check_inference_arguments(["a"], 0, 100, None, None, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: infer_schema: the frame has no rows, so there are no values to learn from
    """
    if n_rows == 0:
        raise ValueError(
            "infer_schema: the frame has no rows, so there are no values to learn from"
        )
    if (
        not isinstance(max_categories, int)
        or isinstance(max_categories, bool)
        or max_categories < 0
    ):
        raise ValueError(f"max_categories must be an integer >= 0, got {max_categories!r}")
    for position, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(
                f"column names must be strings; column {position} is {name!r} "
                f"({type(name).__name__})"
            )
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"column {duplicate!r} appears more than once in the frame")
    if isinstance(range_margin, bool) or not isinstance(range_margin, int | float):
        raise TypeError(f"range_margin must be a number, got {range_margin!r}")
    if not (np.isfinite(range_margin) and range_margin >= 0):
        raise ValueError(f"range_margin must be finite and >= 0, got {range_margin!r}")
    absent = _absent_in(environments, names)
    if created_at is None:
        created_at = dt.datetime.now(dt.UTC)
    if not isinstance(created_at, dt.datetime):
        raise TypeError(f"created_at must be a datetime, got {created_at!r}")
    return absent, created_at.isoformat(timespec="seconds")


def _absent_in(
    environments: Mapping[str, Iterable[str]] | None, names: list[str]
) -> dict[str, tuple[str, ...]]:
    if environments is None:
        return {}
    if not isinstance(environments, Mapping):
        raise TypeError(
            "environments must map an environment name to the columns absent from it, "
            f"got {type(environments).__name__}"
        )
    absent: dict[str, tuple[str, ...]] = {}
    for environment, columns in environments.items():
        if not isinstance(environment, str) or not environment:
            raise TypeError(f"environment names must be non-empty strings, got {environment!r}")
        if isinstance(columns, str) or not isinstance(columns, Iterable):
            raise TypeError(
                f"environment {environment!r}: expected a list of column names, got {columns!r}"
            )
        for column in columns:
            if column not in names:
                raise ValueError(
                    f"environment {environment!r}: column {column!r} is not in the frame"
                )
            absent[column] = (*absent.get(column, ()), environment)
    return absent


def _infer_column(
    name: str,
    series: pd.Series,
    max_categories: int,
    absent_in: tuple[str, ...],
    range_margin: float,
) -> ColumnSchema:
    # A Period column is a datetime column, as profiles and drift read it.
    column_type = infer_column_type(period_starts(series))
    seen = ColumnObservations.of(series, column_type, max_categories)
    return seen.column_schema(name, column_type, absent_in, range_margin, seen.unique)


@dataclass(frozen=True)
class ColumnObservations:
    """What inferring one column's schema needs of its rows, given its logical type;
    chunks of a column merge (:meth:`merge`), so a partitioned frame is inferred from the
    merged observations of its partitions.

    ``low``/``high`` are the extremes of the conforming finite numbers, ``non_finite``
    whether a conforming ``±inf`` was seen, ``domain`` the distinct conforming values per
    value kind (``None`` once there are more than ``max_categories``), and ``unique``
    whether the rows had no null and no repeated value. Merged, ``unique`` only says that
    each chunk had none: whether chunks share a value the caller checks.

    >>> import pandas as pd
    >>> a = ColumnObservations.of(pd.Series(["b", "a"]), "category", 10)
    >>> b = ColumnObservations.of(pd.Series(["c", None]), "category", 10)
    >>> m = a.merge(b)
    >>> m.n_rows, m.nulls, m.column_schema("x", "category", (), 1.0, False).domain
    (4, 1, ('a', 'b', 'c'))
    """

    n_rows: int
    nulls: int
    max_categories: int
    low: int | float | None = None
    high: int | float | None = None
    non_finite: bool = False
    domain: dict | None = None
    unique: bool = False
    infinite: int = 0

    @classmethod
    def of(cls, series: pd.Series, column_type: str, max_categories: int) -> ColumnObservations:
        """Observe ``series`` as a column of logical type ``column_type`` (a Period
        column as the instants its periods start)."""
        series = period_starts(series)
        seen = observe(series)
        conforming = conforms(seen, column_type)
        low = high = None
        non_finite, infinite = False, 0
        if column_type in NUMERIC_TYPES and seen.numbers is not None:
            finite = conforming & seen.finite
            if finite.any():
                values = seen.numbers[finite]
                low, high = values.min().item(), values.max().item()
            if column_type == "float":
                infinite = int((conforming & (seen.kind == FLOAT) & ~seen.finite).sum())
                non_finite = infinite > 0
        domain = None
        if column_type == "category":
            domain = _domain_values(series, seen.kind, conforming, max_categories)
        nulls = int(seen.null.sum())
        unique = (
            column_type in ("int", "string", "category") and nulls == 0 and bool(series.is_unique)
        )
        return cls(
            len(series), nulls, max_categories, low, high, non_finite, domain, unique, infinite
        )

    def merge(self, other: ColumnObservations) -> ColumnObservations:
        """The observations of both chunks' rows."""
        domain = None
        if self.domain is not None and other.domain is not None:
            domain = {k: self.domain.get(k, set()) | other.domain.get(k, set()) for k in _KINDS}
            if sum(len(v) for v in domain.values()) > self.max_categories:
                domain = None
        return ColumnObservations(
            self.n_rows + other.n_rows,
            self.nulls + other.nulls,
            self.max_categories,
            _pick(min, self.low, other.low),
            _pick(max, self.high, other.high),
            self.non_finite or other.non_finite,
            domain,
            self.unique and other.unique,
            self.infinite + other.infinite,
        )

    def column_schema(
        self,
        name: str,
        column_type: str,
        absent_in: tuple[str, ...],
        range_margin: float,
        all_distinct: bool,
    ) -> ColumnSchema:
        """The inferred :class:`ColumnSchema` (``all_distinct``: no value repeats anywhere
        in the column, which makes an identifier of it; see the module docstring)."""
        scale = 10**_NULL_FRACTION_DECIMALS
        max_null_fraction = null_fraction_bound(self.nulls, self.n_rows)
        id_like = all_distinct and self.n_rows >= _ID_MIN_ROWS and self.nulls == 0
        id_like = id_like and column_type in ("int", "string", "category")
        low = high = None
        tolerance = 0.0
        if column_type in NUMERIC_TYPES and not id_like and self.low is not None:
            cast = int if column_type == "int" else float
            low, high = cast(self.low), cast(self.high)
            n = self.n_rows
            tolerance = min(-(-2 * _TOLERANCE_FACTOR * scale // (n + 1)) / scale, _MAX_TOLERANCE)
        # A column that held ±inf allows them up to the upper confidence bound of their
        # share, the rule of the null share (see the module docstring).
        allow_non_finite = column_type == "float" and self.non_finite
        domain = None
        if column_type == "category" and not id_like and self.domain is not None:
            domain = tuple(value for kind in _KINDS for value in sorted(self.domain.get(kind, ())))
        return ColumnSchema(
            name=name,
            type=column_type,
            required=True,
            max_null_fraction=max_null_fraction,
            min=low,
            max=high,
            range_margin=range_margin if low is not None else 0.0,
            max_out_of_range_fraction=tolerance,
            domain=domain,
            allow_non_finite=allow_non_finite,
            absent_in=absent_in,
            id_like=id_like,
            null_significance=NULL_SIGNIFICANCE if max_null_fraction else 0.0,
            max_non_finite_fraction=(
                null_fraction_bound(self.infinite, self.n_rows) if allow_non_finite else None
            ),
            non_finite_significance=NULL_SIGNIFICANCE if allow_non_finite else 0.0,
        )


# Value kinds of a domain, in the order the domain lists them.
_KINDS = (STR, INT, FLOAT, BOOL)


def _pick(choose, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


def null_fraction_bound(nulls: int, rows: int) -> float:
    """The null share an inferred schema allows after ``nulls`` of ``rows`` training rows.

    0 when there were none; otherwise the one-sided Clopper-Pearson upper bound at
    confidence ``1 - NULL_SIGNIFICANCE``, rounded up to four decimals.

    >>> null_fraction_bound(0, 5_000), null_fraction_bound(250, 5_000)
    (0.0, 0.0603)
    >>> null_fraction_bound(1, 4), null_fraction_bound(3, 3)
    (0.936, 1.0)
    """
    if nulls == 0:
        return 0.0
    if nulls >= rows:
        return 1.0
    from scipy.special import betaincinv

    bound = float(betaincinv(nulls + 1, rows - nulls, 1.0 - NULL_SIGNIFICANCE))
    scale = 10**_NULL_FRACTION_DECIMALS
    return min(math.ceil(bound * scale) / scale, 1.0)


def _domain_values(
    series: pd.Series, kind: np.ndarray, conforming: np.ndarray, max_categories: int
) -> dict[int, set] | None:
    domain: dict[int, set] = {}
    total = 0
    # One kind at a time: pandas hashes True, 1 and 1.0 as the same value.
    for value_kind in _KINDS:
        rows = np.flatnonzero(conforming & (kind == value_kind))
        if len(rows) == 0:
            continue
        values = series.iloc[rows].unique()
        total += len(values)
        if total > max_categories:
            return None
        domain[value_kind] = {plain_value(v) for v in values}
    return domain
