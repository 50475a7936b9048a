"""The contract for one column: logical type, presence, numeric range, categorical domain.

Every field is checked when a :class:`ColumnSchema` is built, so a column read from a
hand-edited YAML file and one built in code obey the same rules, and a broken one is reported
with its column and field names.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, get_args

import numpy as np

from opsloop.data.excerpt import excerpt
from opsloop.data.types import ColumnType

COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
NUMERIC_TYPES = ("int", "float")


@dataclass(frozen=True)
class ColumnSchema:
    """What one column must look like.

    Parameters
    ----------
    name
        Column name.
    type
        Logical type (see :mod:`opsloop.data.types`): ``bool``, ``int``, ``float``,
        ``datetime``, ``category`` or ``string``.
    required
        Whether the column must be present (in the environments it is not absent from).
    max_null_fraction
        Largest share of null rows allowed, in [0, 1]; ``0.0`` means no nulls at all.
        Inferred as an upper confidence bound of the training share (see
        ``null_significance``).
    min, max
        Inclusive range of finite values, for ``int`` and ``float`` columns only; ``None``
        leaves that side open. Inferred as the training data's observed range.
    range_margin
        How far beyond ``min`` and ``max`` a value may stray, as a fraction of
        ``max - min``, and still count as a straggler rather than an error (a bound that
        is not below zero is never moved below zero, nor one not above zero above it).
        ``0.0``: every value outside the range is an error.
    max_out_of_range_fraction
        Tolerance: the share of rows that may lie outside ``[min, max]`` (but within the
        margin) before ``out_of_range`` is an anomaly. A value beyond the margin is an
        anomaly whatever the share. ``0.0``: no tolerance.
    domain
        The values a ``category`` column may take (strings, numbers or bools); ``None``
        means any label.
    allow_non_finite
        Whether ``±inf`` is allowed in a ``float`` column.
    max_non_finite_fraction
        With ``allow_non_finite``: the largest share of ``±inf`` rows allowed, judged as
        the null share is (see ``non_finite_significance``); ``None``: any share. Dropped
        (with its significance) when ``allow_non_finite`` is false. Inferred,
        where the training data held ``±inf``, as the upper confidence bound of its share,
        the same rule as ``max_null_fraction``'s, so a column that turns all ``inf`` is an
        anomaly.
    non_finite_significance
        How a batch's ``±inf`` share is judged against ``max_non_finite_fraction``, as
        ``null_significance`` judges the null share: ``0.0``, any share above it is an
        anomaly; above zero, only a share above it beyond chance (one-sided binomial test).
    absent_in
        Names of the environments this column does not belong to (e.g. a label in
        ``serving``); see :class:`~opsloop.data.schema.Schema`.
    id_like
        The column identifies rows (inferred when every value is distinct): its values are
        neither range-checked nor held to a domain, since every new batch brings new ids.
    null_significance
        How a batch's null share is judged against ``max_null_fraction``. ``0.0``: any share
        above it is an anomaly. Above zero: only a share above it beyond chance, where a
        one-sided binomial test of the batch's null count against ``max_null_fraction``
        gives a p-value below ``null_significance`` (a batch of 20 rows with 2 nulls is no
        evidence against 5%; 200 nulls in 2,000 rows is). With ``max_null_fraction`` 0, any
        null is an anomaly either way.

    >>> ColumnSchema("age", "int", min=0, max=120).to_dict()
    {'type': 'int', 'required': True, 'max_null_fraction': 0.0, 'min': 0, 'max': 120}
    >>> ColumnSchema("age", "int", min=5, max=1)
    Traceback (most recent call last):
    ValueError: column 'age', field 'min': 5 is greater than max 1
    """

    name: str
    type: ColumnType
    required: bool = True
    max_null_fraction: float = 0.0
    min: int | float | None = None
    max: int | float | None = None
    range_margin: float = 0.0
    max_out_of_range_fraction: float = 0.0
    domain: tuple[str | int | float | bool, ...] | None = None
    allow_non_finite: bool = False
    absent_in: tuple[str, ...] = ()
    id_like: bool = False
    null_significance: float = 0.0
    max_non_finite_fraction: float | None = None
    non_finite_significance: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"column name must be a non-empty string, got {excerpt(self.name)}")
        if self.type not in COLUMN_TYPES:
            raise ValueError(
                self._where("type")
                + f"{excerpt(self.type)} is not one of {', '.join(COLUMN_TYPES)}"
            )
        self._check_bool("required")
        self._check_bool("allow_non_finite")
        self._check_bool("id_like")
        self._set("max_null_fraction", self._fraction("max_null_fraction"))
        self._set("null_significance", self._fraction("null_significance"))
        self._set("max_out_of_range_fraction", self._fraction("max_out_of_range_fraction"))
        self._set("range_margin", self._margin())
        self._set("min", self._bound("min"))
        self._set("max", self._bound("max"))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(self._where("min") + f"{self.min} is greater than max {self.max}")
        if self.allow_non_finite and self.type != "float":
            raise ValueError(
                self._where("allow_non_finite") + f"only float columns hold ±inf, not {self.type}"
            )
        self._set("non_finite_significance", self._fraction("non_finite_significance"))
        if self.max_non_finite_fraction is not None and not self.allow_non_finite:
            # No ±inf allowed at all: a bound on their share says nothing more. Dropped, so
            # update_column(name, allow_non_finite=False) on an inferred schema just works.
            self._set("max_non_finite_fraction", None)
            self._set("non_finite_significance", 0.0)
        if self.max_non_finite_fraction is not None:
            self._set("max_non_finite_fraction", self._fraction("max_non_finite_fraction"))
        self._set("domain", self._domain())
        self._set("absent_in", self._names("absent_in"))

    def to_dict(self) -> dict[str, Any]:
        """The column's YAML block: fields that do not apply to its type are left out.

        >>> ColumnSchema("size", "category", domain=("S", "M")).to_dict()["domain"]
        ['S', 'M']
        """
        out: dict[str, Any] = {
            "type": self.type,
            "required": self.required,
            "max_null_fraction": self.max_null_fraction,
        }
        if self.null_significance:
            out["null_significance"] = self.null_significance
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.range_margin:
            out["range_margin"] = self.range_margin
        if self.max_out_of_range_fraction:
            out["max_out_of_range_fraction"] = self.max_out_of_range_fraction
        if self.type == "float":
            out["allow_non_finite"] = self.allow_non_finite
        if self.max_non_finite_fraction is not None:
            out["max_non_finite_fraction"] = self.max_non_finite_fraction
        if self.non_finite_significance:
            out["non_finite_significance"] = self.non_finite_significance
        if self.domain is not None:
            out["domain"] = list(self.domain)
        if self.absent_in:
            out["absent_in"] = list(self.absent_in)
        if self.id_like:
            out["id_like"] = True
        return out

    def hard_limits(self) -> tuple[float | None, float | None]:
        """The bounds beyond which a value is an anomaly whatever the tolerance.

        ``min`` and ``max`` moved outward by ``range_margin`` times the range, neither
        crossing zero when the range does not reach past it.

        >>> ColumnSchema("age", "int", min=20, max=60, range_margin=0.5).hard_limits()
        (0.0, 80.0)
        >>> ColumnSchema("x", "float", max=1.0).hard_limits()
        (None, 1.0)
        """
        low, high = self.min, self.max
        if low is None or high is None or not self.range_margin:
            return (
                None if low is None else float(low),
                None if high is None else float(high),
            )
        spread = self.range_margin * (float(high) - float(low))
        hard_low, hard_high = float(low) - spread, float(high) + spread
        if low >= 0:
            hard_low = max(hard_low, 0.0)
        if high <= 0:
            hard_high = min(hard_high, 0.0)
        return hard_low, hard_high

    @classmethod
    def from_dict(cls, name: str, block: Any) -> ColumnSchema:
        """Build a column from its YAML block, rejecting unknown or missing keys.

        >>> ColumnSchema.from_dict("x", {"type": "float", "max": 1.5}).max
        1.5
        >>> ColumnSchema.from_dict("x", {"type": "float", "maximum": 1.5})
        Traceback (most recent call last):
        ValueError: column 'x': unknown field 'maximum'; allowed: type, required, ...
        """
        if not isinstance(name, str):
            raise TypeError(
                f"column names must be strings, got {excerpt(name)} ({type(name).__name__})"
            )
        if not isinstance(block, dict):
            raise TypeError(
                f"column {excerpt(name)}: expected a mapping of fields, got {type(block).__name__}"
            )
        allowed = [f.name for f in fields(cls) if f.name != "name"]
        unknown = [key for key in block if key not in allowed]
        if unknown:
            raise ValueError(
                f"column {excerpt(name)}: unknown field {excerpt(unknown[0])}; "
                f"allowed: {', '.join(allowed)}"
            )
        if "type" not in block:
            raise ValueError(f"column {excerpt(name)}: field 'type' is missing")
        return cls(name=name, **block)

    def _where(self, field: str) -> str:
        return f"column {excerpt(self.name)}, field {excerpt(field)}: "

    def _set(self, field: str, value: Any) -> None:
        # Normalising (lists to tuples, numpy scalars to Python) on a frozen instance.
        object.__setattr__(self, field, value)

    def _check_bool(self, field: str) -> None:
        value = getattr(self, field)
        if not isinstance(value, bool | np.bool_):
            raise TypeError(self._where(field) + f"expected true or false, got {excerpt(value)}")
        self._set(field, bool(value))

    def _fraction(self, field: str) -> float:
        value = getattr(self, field)
        if not _is_number(value):
            raise TypeError(self._where(field) + f"expected a number, got {excerpt(value)}")
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(self._where(field) + f"{value} is outside [0, 1]")
        return value

    def _margin(self) -> float:
        value = self.range_margin
        if not _is_number(value):
            raise TypeError(
                self._where("range_margin") + f"expected a number, got {excerpt(value)}"
            )
        value = float(value)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(self._where("range_margin") + f"must be finite and >= 0, got {value}")
        if value and self.type not in NUMERIC_TYPES:
            raise ValueError(
                self._where("range_margin") + f"applies to int and float columns, not {self.type}"
            )
        return value

    def _bound(self, field: str) -> int | float | None:
        value = getattr(self, field)
        if value is None:
            return None
        if self.type not in NUMERIC_TYPES:
            raise ValueError(
                self._where(field) + f"a range applies to int and float columns, not {self.type}"
            )
        if not _is_number(value):
            raise TypeError(self._where(field) + f"expected a number, got {excerpt(value)}")
        value = value.item() if isinstance(value, np.generic) else value
        if not math.isfinite(value):
            raise ValueError(self._where(field) + f"must be finite, got {value}")
        return value

    def _domain(self) -> tuple[str | int | float | bool, ...] | None:
        values = self.domain
        if values is None:
            return None
        if self.type != "category":
            raise ValueError(
                self._where("domain") + f"applies to category columns, not {self.type}"
            )
        if isinstance(values, str) or not isinstance(values, list | tuple):
            raise TypeError(
                self._where("domain") + f"expected a list of values, got {excerpt(values)}"
            )
        plain = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
        for value in plain:
            if not isinstance(value, str | int | float):  # bool is an int, so bools pass too
                raise TypeError(
                    self._where("domain")
                    + f"values must be strings, numbers or bools, got {excerpt(value)}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(self._where("domain") + f"values must be finite, got {value}")
        seen: set[tuple[type, str | int | float]] = set()
        for value in plain:
            key = (type(value), value)  # keeps True, 1 and 1.0 apart
            if key in seen:
                raise ValueError(self._where("domain") + f"{excerpt(value)} is listed twice")
            seen.add(key)
        return plain

    def _names(self, field: str) -> tuple[str, ...]:
        values = getattr(self, field)
        if isinstance(values, str) or not isinstance(values, list | tuple):
            raise TypeError(self._where(field) + f"expected a list of names, got {excerpt(values)}")
        for value in values:
            if not isinstance(value, str) or not value:
                raise TypeError(self._where(field) + f"names must be strings, got {excerpt(value)}")
        return tuple(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
