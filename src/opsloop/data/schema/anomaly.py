"""Schema violations found in one batch, and the result that collects them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from opsloop.data.excerpt import excerpt

#: Every kind of anomaly :func:`~opsloop.data.schema.validate` reports, in report order.
ANOMALY_KINDS: tuple[str, ...] = (
    "empty_frame",
    "duplicate_column",
    "missing_column",
    "unexpected_column",
    "type_mismatch",
    "null_fraction_exceeded",
    "non_finite",
    "non_finite_fraction_exceeded",
    "out_of_range",
    "unknown_category",
)


@dataclass(frozen=True)
class Anomaly:
    """One way a batch breaks the schema.

    ``column`` is ``None`` for a frame-level anomaly (``empty_frame``). ``count`` rows are
    affected, ``fraction`` of the batch; a column-level anomaly (missing, unexpected or
    duplicated column) counts every row. ``examples`` holds up to five
    ``(row position, value)`` pairs, positions being 0-based ``iloc`` positions (not index
    labels) and values plain Python (timestamps as ISO text, nulls as ``None``).

    >>> a = Anomaly("age", "out_of_range", 1, 0.5, ((1, 130),), "above max 120")
    >>> str(a)
    'age: out_of_range in 1 row (50.0%): above max 120; e.g. row 1: 130'
    """

    column: str | None
    kind: str
    count: int
    fraction: float
    examples: tuple[tuple[int, Any], ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ValueError(f"anomaly kind {self.kind!r} is not one of {', '.join(ANOMALY_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (``±inf`` and ``NaN`` examples become text).

        >>> Anomaly("x", "non_finite", 1, 1.0, ((0, float("inf")),)).to_dict()["examples"]
        [[0, 'inf']]
        """
        return {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "fraction": self.fraction,
            "examples": [[position, _json_value(value)] for position, value in self.examples],
            "detail": self.detail,
        }

    def __str__(self) -> str:
        rows = "row" if self.count == 1 else "rows"
        text = f"{self.column or '(frame)'}: {self.kind} in {self.count} {rows}"
        text += f" ({self.fraction:.1%})"
        if self.detail:
            text += f": {self.detail}"
        if self.examples:
            shown = ", ".join(f"row {p}: {excerpt(v)}" for p, v in self.examples)
            text += f"; e.g. {shown}"
        return text


@dataclass(frozen=True)
class ValidationResult:
    """All anomalies of one batch, with what it was checked against.

    Iterating yields the anomalies and ``len`` counts them; use :attr:`ok` for "no
    anomalies" (truthiness follows ``len``, so an empty result is falsy).

    >>> result = ValidationResult((Anomaly("x", "missing_column", 3, 1.0),), 3, 2)
    >>> result.ok, len(result)
    (False, 1)
    >>> print(result)
    1 anomaly in 3 rows (schema version 2):
      x: missing_column in 3 rows (100.0%)
    """

    anomalies: tuple[Anomaly, ...]
    n_rows: int
    schema_version: int
    environment: str | None = None
    #: Rows of each partition, in order, when a partitioned (Dask) frame was validated:
    #: example positions are then positions in the whole frame, and :meth:`locate` gives
    #: the partition and the row within it.
    partition_rows: tuple[int, ...] | None = None

    def locate(self, position: int) -> tuple[int, int]:
        """The ``(partition, row)`` of row ``position`` of the batch (partition 0 and the
        position itself when the batch was one pandas frame).

        >>> ValidationResult((), 10, 1, partition_rows=(4, 0, 6)).locate(5)
        (2, 1)
        >>> ValidationResult((), 10, 1).locate(11)
        Traceback (most recent call last):
        ...
        IndexError: row 11 is not in the batch of 10 rows
        """
        if not 0 <= position < self.n_rows:
            raise IndexError(f"row {position} is not in the batch of {self.n_rows} rows")
        if self.partition_rows is None:
            return 0, position
        start = 0
        for partition, rows in enumerate(self.partition_rows):
            if position < start + rows:
                return partition, position - start
            start += rows
        raise IndexError(f"row {position} is not in the batch of {self.n_rows} rows")

    @property
    def ok(self) -> bool:
        """Whether the batch satisfies the schema.

        >>> ValidationResult((), 10, 1).ok
        True
        """
        return not self.anomalies

    def __len__(self) -> int:
        return len(self.anomalies)

    def __iter__(self) -> Iterator[Anomaly]:
        return iter(self.anomalies)

    def select(self, column: str | None = None, kind: str | None = None) -> tuple[Anomaly, ...]:
        """Anomalies of ``column`` and/or ``kind`` (``None`` matches any).

        >>> result = ValidationResult((Anomaly("x", "missing_column", 3, 1.0),), 3, 1)
        >>> len(result.select(kind="out_of_range"))
        0
        """
        if kind is not None and kind not in ANOMALY_KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(ANOMALY_KINDS)}")
        return tuple(
            a
            for a in self.anomalies
            if (column is None or a.column == column) and (kind is None or a.kind == kind)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary.

        >>> ValidationResult((), 10, 1, "serving").to_dict()
        {'ok': True, 'n_rows': 10, 'schema_version': 1, 'environment': 'serving', 'anomalies': []}
        """
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "schema_version": self.schema_version,
            "environment": self.environment,
            "anomalies": [a.to_dict() for a in self.anomalies],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per anomaly: column, kind, count, fraction, examples, detail.

        >>> ValidationResult((Anomaly("x", "missing_column", 3, 1.0),), 3, 1).to_frame()
          column            kind  count  fraction examples detail
        0      x  missing_column      3       1.0       []
        """
        columns = ["column", "kind", "count", "fraction", "examples", "detail"]
        rows = [a.to_dict() for a in self.anomalies]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"count": "int64", "fraction": "float64"})

    def __str__(self) -> str:
        where = f"schema version {self.schema_version}"
        if self.environment is not None:
            where += f", environment {self.environment!r}"
        rows = "row" if self.n_rows == 1 else "rows"
        if self.ok:
            return f"no anomalies in {self.n_rows} {rows} ({where})"
        noun = "anomaly" if len(self) == 1 else "anomalies"
        lines = [f"{len(self)} {noun} in {self.n_rows} {rows} ({where}):"]
        lines += [f"  {a}" for a in self.anomalies]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self.ok:
            return f"<p>{self}</p>"
        return self.to_frame()._repr_html_()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
