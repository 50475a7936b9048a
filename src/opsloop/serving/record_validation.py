"""Check the records of a prediction request against a model version's signature schema.

A request carries records (``[{"age": 41, "plan": "pro"}, ...]``). Before any model sees
them they become a frame with the signature's columns in the signature's order, and every
record is held to the :class:`~opsloop.data.schema.Schema` the version was registered with
(:func:`opsloop.data.schema.validate` does the work on whole columns). A broken rule raises
:class:`~opsloop.errors.InvalidArgumentError` (422 over HTTP) naming the record, the field
and the rule. What refuses a request, per record:

* a field the signature requires is absent (``missing_field``), or one it does not define is
  present (``unexpected_field``);
* a value of the wrong type (``type_mismatch``: ``"41"`` where an int is expected);
* a null where the column allows none (``max_null_fraction`` 0); where it allows some, a
  null is served, since a share of nulls is a property of many requests, not of one;
* ``±inf`` where the column does not allow it (``non_finite``); where it allows them up to
  a share (``max_non_finite_fraction``), an ``inf`` is served, as a null is
  (``non_finite_fraction_exceeded`` is the monitoring's to report);
* a number beyond the column's hard limits (its range widened by its ``range_margin``,
  :meth:`~opsloop.data.schema.ColumnSchema.hard_limits`); a straggler within the margin is
  served (``out_of_range``);
* a category outside the column's domain (``unknown_category``).

A version registered without a signature gets the frame as sent, fields in the order of
the first record; its records must still all have the same fields.

**The serving path.** :class:`RecordCheck` is compiled once per signature and checks a
request's records on a quick path first: when every column is numeric and every value of a
few records is a float within its column's rules, the rows go straight into a float matrix
(the frame built from the same records would hold the same float64 columns), with no frame
built unless the model needs one. Anything else (an int, a null, a category, a broken rule)
goes through :func:`checked_records`, which words the refusal. The answer is a
:class:`CheckedRecords`.

**Anomalies that are served.** A number outside its column's ``[min, max]`` but within the
margin is answered; :meth:`RecordCheck.anomalous` says which records hold one (the
``anomalies`` gate of a canary counts the requests with one, per variant).

>>> from opsloop.data.schema import ColumnSchema, Schema
>>> schema = Schema((ColumnSchema("age", "int", min=18, max=90),
...                  ColumnSchema("plan", "category", domain=("free", "pro"))))
>>> checked_records([{"plan": "pro", "age": 41}], schema).to_dict("records")
[{'age': 41, 'plan': 'pro'}]
>>> checked_records([{"age": "41", "plan": "pro"}], schema)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: records: record 0, field 'age': type_mismatch (expected int, found str ×1 (1 of them read as numbers); '41')
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.excerpt import excerpt
from opsloop.data.schema import Schema, validate
from opsloop.errors import InvalidArgumentError
from opsloop.serving.row_rejection import null_name

#: The most records one request may carry; larger batches belong to batch scoring.
MAX_RECORDS = 10_000
#: Up to this many records, values are first checked one by one (see ``_passes_quickly``).
QUICK_RECORDS = 64
# Anomalies that refuse a request whatever their share of its records.
_ALWAYS_REFUSED = ("type_mismatch", "non_finite", "unknown_category")
_ABSENT = object()


#: Characters of a client's field name a refusal repeats (a name of any length may be sent).
NAME_EXCERPT = 120


def _named(name: object) -> str:
    """A field name the client sent, quoted, cut when long (:func:`excerpt`)."""
    return excerpt(name, limit=NAME_EXCERPT)


def _refuse(problems: list[str]) -> InvalidArgumentError:
    shown = "; ".join(problems[:10])
    more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
    return InvalidArgumentError(f"records: {shown}{more}")


def _checked_shape(records: object) -> Sequence[Mapping[str, Any]]:
    if not isinstance(records, list | tuple) or not records:
        raise InvalidArgumentError("records: must be a non-empty list of objects")
    if len(records) > MAX_RECORDS:
        raise InvalidArgumentError(
            f"records: at most {MAX_RECORDS} records per request, got {len(records)}"
        )
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidArgumentError(
                f"records: record {position} must be an object of fields, got {excerpt(record)}"
            )
    return records


def _columns(
    records: Sequence[Mapping[str, Any]], names: Sequence[str], problems: list[str], free: bool
) -> dict[str, list]:
    """Each named field's values in record order, noting records that lack it."""
    columns = {}
    for name in names:
        values = [record.get(name, _ABSENT) for record in records]
        absent = [i for i, value in enumerate(values) if value is _ABSENT]
        if absent:
            rule = "record 0 has it" if free else "the signature requires it"
            problems.append(
                f"record {absent[0]}, field {_named(name)}: missing_field ({rule}; "
                f"{len(absent)} record(s) lack it)"
            )
        columns[name] = values
    return columns


def checked_records(records: object, schema: Schema | None) -> pd.DataFrame:
    """The records as a frame in the signature's column order, or an
    :class:`~opsloop.errors.InvalidArgumentError` naming the record, field and rule.

    >>> checked_records([{"x": 1.5}, {"x": 2.0}], None)["x"].tolist()
    [1.5, 2.0]
    >>> checked_records([{"x": 1.5}, {"y": 2.0}], None)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: records: record 1, field 'x': missing_field (...); record 1, field 'y': unexpected_field (...)
    """  # noqa: E501
    records = _checked_shape(records)
    problems: list[str] = []
    if schema is None:
        names = [str(name) for name in records[0]]
    else:
        environment = "serving" if "serving" in schema.environments else None
        names = [column.name for column in schema.expected_columns(environment)]
    columns = _columns(records, names, problems, schema is None)
    frame = pd.DataFrame(columns, columns=names)
    expected = set(names)
    seen: dict[str, int] = {}
    for position, record in enumerate(records):
        for key in record:
            if key not in expected and key not in seen:
                seen[key] = position
    for key, position in seen.items():
        rule = "the signature does not define it" if schema is not None else "record 0 lacks it"
        problems.append(f"record {position}, field {_named(key)}: unexpected_field ({rule})")
    if problems:
        raise _refuse(problems)
    if schema is not None and not (
        len(records) <= QUICK_RECORDS and _passes_quickly(columns, schema, environment)
    ):
        problems += _broken_rules(frame, schema, environment)
        reported = {problem.split("'")[1] for problem in problems}
        problems += _too_large_for_floats(frame, schema, environment, reported)
        if problems:
            raise _refuse(problems)
    return frame


class CheckedRecords:
    """A request's records after the check: the column ``names`` in the signature's order,
    and either a float ``matrix`` (one row per record, the quick path) or the ``frame``.

    >>> checked = CheckedRecords(("x", "y"), matrix=np.array([[1.0, 2.0]]))
    >>> len(checked), checked.frame.to_dict("records")
    (1, [{'x': 1.0, 'y': 2.0}])
    """

    def __init__(
        self,
        names: tuple[str, ...],
        *,
        matrix: np.ndarray | None = None,
        frame: pd.DataFrame | None = None,
    ) -> None:
        if (matrix is None) == (frame is None):
            raise ValueError("give either the matrix or the frame")
        self.names = names
        self.matrix = matrix
        if frame is not None:
            self.__dict__["frame"] = frame

    def __len__(self) -> int:
        return len(self.matrix) if self.matrix is not None else len(self.frame)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The records as a frame with the signature's columns (built once, when asked)."""
        return pd.DataFrame(self.matrix, columns=list(self.names), copy=False)


class RecordCheck:
    """The check of one signature's records, compiled once (see the module on the serving
    path); calling it checks a request's records and answers :class:`CheckedRecords`.

    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> check = RecordCheck(Schema((ColumnSchema("x", "float", min=0.0, max=1.0),
    ...                             ColumnSchema("n", "int", min=0, max=9))))
    >>> check([{"n": 3.0, "x": 0.5}]).matrix.tolist()
    [[0.5, 3.0]]
    >>> check([{"n": 3, "x": 0.5}]).frame.dtypes.astype(str).tolist()
    ['float64', 'int64']
    >>> check([{"n": 3.5, "x": 0.5}])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: records: record 0, field 'n': type_mismatch (...)
    """

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self.names: tuple[str, ...] | None = None
        # Per column: (whole numbers only, low, high, nulls allowed, ±inf allowed).
        self._rules: tuple[tuple[bool, float | None, float | None, bool, bool], ...] = ()
        self._quick = False
        # Per numeric column with a range: its position, name, min and max (None: open).
        self._ranges: tuple[tuple[int, str, float, float], ...] = ()
        if schema is None:
            return
        environment = "serving" if "serving" in schema.environments else None
        columns = schema.expected_columns(environment)
        self.names = tuple(column.name for column in columns)
        self._ranges = tuple(
            (
                position,
                column.name,
                -math.inf if column.min is None else float(column.min),
                math.inf if column.max is None else float(column.max),
            )
            for position, column in enumerate(columns)
            if column.type in ("int", "float")
            and not column.id_like
            and (column.min is not None or column.max is not None)
        )
        self._quick = bool(columns) and all(c.type in ("int", "float") for c in columns)
        if self._quick:
            self._rules = tuple(
                (
                    column.type == "int",
                    *((None, None) if column.id_like else column.hard_limits()),
                    column.max_null_fraction > 0,
                    column.type == "float" and column.allow_non_finite,
                )
                for column in columns
            )

    def __call__(self, records: object) -> CheckedRecords:
        matrix = self._quick_matrix(records) if self._quick else None
        if matrix is not None:
            assert self.names is not None
            return CheckedRecords(self.names, matrix=matrix)
        frame = checked_records(records, self.schema)
        return CheckedRecords(tuple(str(name) for name in frame.columns), frame=frame)

    def anomalous(self, checked: CheckedRecords) -> np.ndarray:
        """Per record of ``checked`` (records this check passed), whether one of its
        numbers lies outside its column's ``[min, max]``: within the margin it was served,
        and the schema's :func:`~opsloop.data.schema.validate` counts it ``out_of_range``.

        >>> from opsloop.data.schema import ColumnSchema, Schema
        >>> check = RecordCheck(Schema((ColumnSchema("x", "float", min=0.0, max=1.0,
        ...                                          range_margin=1.0),)))
        >>> check.anomalous(check([{"x": 0.5}, {"x": 1.5}, {"x": 0.0}])).tolist()
        [False, True, False]
        >>> check.anomalous(check([{"x": 1}, {"x": 1.5}])).tolist()  # an int: the frame's path
        [False, True]
        """
        found = np.zeros(len(checked), dtype=bool)
        if not self._ranges:
            return found
        if checked.matrix is not None:
            positions = [r[0] for r in self._ranges]
            values = checked.matrix[:, positions]
            low = np.array([r[2] for r in self._ranges])
            high = np.array([r[3] for r in self._ranges])
            with np.errstate(invalid="ignore"):
                return ((values < low) | (values > high)).any(axis=1)
        frame = checked.frame
        for _, name, low, high in self._ranges:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                found |= (values < low) | (values > high)
        return found

    def _quick_matrix(self, records: object) -> np.ndarray | None:
        """The records' float matrix, or ``None`` when they are not all plain floats that
        obey their columns (then :func:`checked_records` judges them)."""
        if type(records) is not list or not 0 < len(records) <= QUICK_RECORDS:
            return None
        names, rules, rows = self.names, self._rules, []
        assert names is not None
        width = len(names)
        for record in records:
            if type(record) is not dict or len(record) != width:
                return None
            try:
                row = [record[name] for name in names]
            except KeyError:
                return None
            for value, (whole, low, high, nullable, non_finite) in zip(row, rules, strict=True):
                if type(value) is not float:
                    return None
                if value != value:  # NaN, a null
                    if not nullable:
                        return None
                    continue
                if value in _INFINITIES:
                    if not non_finite:
                        return None
                    continue
                if whole and value != math.floor(value):
                    return None
                if (low is not None and value < low) or (high is not None and value > high):
                    return None
            rows.append(row)
        # Column-major, as a frame's values come out: a model's arithmetic (BLAS) may round
        # differently on the other layout, and the answers must not move by an ulp.
        return np.asfortranarray(np.array(rows, dtype=np.float64))


_INFINITIES = (math.inf, -math.inf)


def _too_large_for_floats(
    frame: pd.DataFrame, schema: Schema, environment: str | None, reported: set[str]
) -> list[str]:
    """Integers past a float's range in numeric columns (a schema without a range would
    otherwise pass them to the model, which cannot convert them)."""
    problems = []
    for column in schema.expected_columns(environment):
        series = frame[column.name]
        if column.type not in ("int", "float") or series.dtype != object:
            continue
        if column.name in reported:
            continue
        numbers = np.fromiter((_number(v) for v in series.to_numpy()), float, len(series))
        huge = np.flatnonzero(np.isinf(numbers) & series.map(lambda v: isinstance(v, int)))
        if len(huge):
            problems.append(
                f"record {int(huge[0])}, field {column.name!r}: out_of_range (a number past "
                "the range of a 64-bit float)"
            )
    return problems


def _passes_quickly(columns: Mapping[str, list], schema: Schema, environment: str | None) -> bool:
    """Whether every value obeys its column's rules, judged value by value in Python: for a
    few records this is many times faster than the frame-wide checks. It only ever says
    yes where those checks find nothing; on "no" they run and word the refusal."""
    for column in schema.expected_columns(environment):
        kind, limits = column.type, None
        if kind == "datetime":
            return False  # its parsing rules are the frame-wide checks' alone
        if kind in ("int", "float") and not column.id_like:
            limits = column.hard_limits()
        domain = None
        if kind == "category" and column.domain is not None and not column.id_like:
            domain = column.domain
        for value in columns[column.name]:
            if value is None or (type(value) is float and value != value):
                if column.max_null_fraction == 0:
                    return False
                continue
            if not _conforms(value, kind, column.allow_non_finite):
                return False
            if kind in ("int", "float"):
                number = _number(value)
                if math.isinf(number) and type(value) is int:
                    return False  # past a float's range
            if limits is not None:
                low, high = limits
                finite = math.isfinite(number)
                if finite and (
                    (low is not None and number < low) or (high is not None and number > high)
                ):
                    return False
            if domain is not None and not any(
                type(allowed) is type(value) and allowed == value for allowed in domain
            ):
                return False
    return True


def _conforms(value: object, kind: str, allow_non_finite: bool) -> bool:
    """Whether a plain JSON value is of the column's logical type (as the frame-wide
    checks judge it: a whole float is an int, a bool is not a number)."""
    value_type = type(value)
    if kind == "bool":
        return value_type is bool
    if kind == "string":
        return value_type is str
    if kind == "category":
        return value_type in (str, int, float, bool)
    if kind == "int":
        return value_type is int or (
            value_type is float and math.isfinite(value) and value == math.floor(value)
        )
    if kind == "float":
        return value_type is int or (
            value_type is float and (allow_non_finite or math.isfinite(value))
        )
    return False


def _broken_rules(frame: pd.DataFrame, schema: Schema, environment: str | None) -> list[str]:
    problems = []
    for anomaly in validate(frame, schema, environment):
        if anomaly.kind in _ALWAYS_REFUSED:
            position, value = anomaly.examples[0]
            problems.append(
                f"record {position}, field {anomaly.column!r}: {anomaly.kind} "
                f"({anomaly.detail}; {excerpt(value)})"
            )
        elif (
            anomaly.kind == "null_fraction_exceeded"
            and schema[anomaly.column].max_null_fraction == 0
        ):
            position = anomaly.examples[0][0]
            # The record's own value: the anomaly's example is a null whatever was sent.
            sent = frame[anomaly.column].iat[position]
            problems.append(
                f"record {position}, field {anomaly.column!r}: null_fraction_exceeded (the "
                f"signature allows no nulls in this field; found {null_name(sent)})"
            )
        elif anomaly.kind == "out_of_range":
            problems += _beyond_limits(frame[anomaly.column], schema[anomaly.column])
    return problems


def _number(value: object) -> float:
    """A value as a float for range checks: NaN when not a number, ±inf past float's range
    (JSON integers have no bound; ``float(10**400)`` raises)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return float("nan")
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _beyond_limits(series: pd.Series, column) -> list[str]:
    low, high = column.hard_limits()
    numbers = np.fromiter((_number(v) for v in series.to_numpy()), float, len(series))
    beyond = np.zeros(len(numbers), dtype=bool)
    if low is not None:
        beyond |= numbers < low
    if high is not None:
        beyond |= numbers > high
    rows = np.flatnonzero(beyond)
    if not len(rows):
        return []
    position = int(rows[0])
    value = series.iloc[position]
    value = value.item() if isinstance(value, np.generic) else value
    return [
        f"record {position}, field {column.name!r}: out_of_range ({excerpt(value)}"
        f" is outside [{low:g}, {high:g}], the range {column.min}..{column.max} widened by its "
        f"margin; {len(rows)} record(s))"
    ]
