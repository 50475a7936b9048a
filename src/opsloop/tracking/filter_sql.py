"""Translate a parsed run filter and ``order_by`` clauses into SQLAlchemy SQL expressions.

Nothing is evaluated in Python: the database selects the runs. A metric condition compares a
run's latest value of that key (``latest_metrics``); a param or tag condition compares its
text. ``metrics.auc > 0.8`` holds only for runs that have ``auc``; ``NOT metrics.auc > 0.8``
therefore includes runs without it, and ``metrics.auc IS NULL`` selects exactly those.
A param or tag ordered (``<``, ``>``...) against a bare number is refused: text order is not
numeric order (``'10' < '9'``), so ``params.depth > 3`` would select the wrong runs.

>>> from opsloop.tracking.filter_parser import parse_filter
>>> from sqlalchemy.dialects import sqlite
>>> sql = filter_to_sql(parse_filter("status = 'FINISHED' and not params.m = 'rf'"))
>>> query = sa.select(tables.runs.c.run_id).where(sql).compile(dialect=sqlite.dialect())
>>> import textwrap
>>> print(textwrap.fill(" ".join(str(query).split()), 90))
SELECT runs.run_id FROM runs WHERE runs.status = ? AND NOT (EXISTS (SELECT 1 FROM params
WHERE params.run_id = runs.id AND params."key" = ? AND params.value = ?))
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.tracking.filter_parser import (
    And,
    Comparison,
    Field,
    FilterSyntaxError,
    Not,
    Or,
    _Parser,
)
from opsloop.tracking.limits import INT64_MAX, INT64_MIN

_runs = tables.runs
_parent = tables.runs.alias("parent_run")
_one = sa.select(sa.literal_column("1"))

_ATTRIBUTE_COLUMNS = {
    "run_id": _runs.c.run_id,
    "name": _runs.c.name,
    "status": _runs.c.status,
    "user": _runs.c.user_name,
    "start_time": _runs.c.start_ms,
    "end_time": _runs.c.end_ms,
    "git_commit": _runs.c.git_commit,
    "git_branch": _runs.c.git_branch,
    "git_dirty": _runs.c.git_dirty,
}
_TIME_ATTRIBUTES = ("start_time", "end_time")


def _attribute(name: str):
    if name == "parent_run_id":
        return (
            sa.select(_parent.c.run_id)
            .where(_parent.c.id == _runs.c.parent_id)
            .correlate(_runs)
            .scalar_subquery()
        )
    return _ATTRIBUTE_COLUMNS[name]


def _describe(field: Field) -> str:
    return field.name if field.kind == "attributes" else f"{field.kind}.{field.name}"


def _check_value(field: Field, operator: str, value: object) -> object:
    if operator in ("IS NULL", "IS NOT NULL"):
        return value
    values = value if isinstance(value, tuple) else (value,)
    label = _describe(field)
    for item in values:
        if field.kind == "metrics" or field.name in _TIME_ATTRIBUTES:
            if operator in ("LIKE", "ILIKE"):
                raise InvalidArgumentError(
                    f"filter: {label} is a number; LIKE and ILIKE apply to text"
                )
            if field.name in _TIME_ATTRIBUTES and isinstance(item, str):
                continue
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise InvalidArgumentError(f"filter: {label} compares with a number, got {item!r}")
            in_range = INT64_MIN <= item <= INT64_MAX
            if field.kind == "attributes" and field.name in _TIME_ATTRIBUTES and not in_range:
                # Times are 64-bit integers in the database: a larger bound would overflow.
                raise InvalidArgumentError(
                    f"filter: {label} compares with milliseconds from {INT64_MIN} to "
                    f"{INT64_MAX}, got {item!r}"
                )
        elif field.name == "git_dirty":
            if not isinstance(item, bool) or operator not in ("=", "!="):
                raise InvalidArgumentError(
                    "filter: git_dirty compares with = or != to TRUE or FALSE"
                )
        elif isinstance(item, bool):
            raise InvalidArgumentError(f"filter: {label} is text; compare it with a quoted string")
        elif operator in ("LIKE", "ILIKE") and not isinstance(item, str):
            raise InvalidArgumentError(f"filter: {operator} on {label} needs a quoted pattern")
        elif (
            field.kind in ("params", "tags")
            and operator in ("<", "<=", ">", ">=")
            and (not isinstance(item, str))
        ):
            # Params and tags are stored as text and ordered as text ('10' < '9'), so a
            # number here would select runs by an order the caller did not mean.
            raise InvalidArgumentError(
                f"filter: {label} is text and {operator} orders it as text; "
                f"compare it with a quoted string, not the number {item!r}"
            )
    return value


def _coerce(field: Field, value: object) -> object:
    if isinstance(value, tuple):
        return tuple(_coerce(field, item) for item in value)
    if field.name in _TIME_ATTRIBUTES and field.kind == "attributes" and isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except ValueError as error:
            raise InvalidArgumentError(
                f"filter: {field.name} needs milliseconds or an ISO time, got {value!r}"
            ) from error
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.value // 1_000_000
    if field.kind in ("params", "tags") and isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if field.kind == "metrics":
        return float(value)
    return value


def _compare(column, operator: str, value: object):
    match operator:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "LIKE":
            return column.like(value)
        case "ILIKE":
            return column.ilike(value)
        case "IN":
            return column.in_(value)
        case "NOT IN":
            return column.not_in(value)
        case "IS NULL":
            return column.is_(None)
        case "IS NOT NULL":
            return column.is_not(None)
    raise FilterSyntaxError(f"filter: unknown operator {operator!r}")


def _keyed(field: Field):
    """The table row holding ``field`` for the current run, as (select, value column)."""
    if field.kind == "metrics":
        latest, keys = tables.latest_metrics, tables.metric_keys
        key_id = sa.select(keys.c.id).where(keys.c.name == field.name).scalar_subquery()
        where = sa.and_(latest.c.run_id == _runs.c.id, latest.c.key_id == key_id)
        return latest, where, latest.c.value
    table = tables.params if field.kind == "params" else tables.tags
    where = sa.and_(table.c.run_id == _runs.c.id, table.c.key == field.name)
    return table, where, table.c.value


def _comparison(node: Comparison):
    field, operator = node.field, node.operator
    if field.kind == "attributes":
        value = _coerce(field, _check_value(field, operator, node.value))
        return _compare(_attribute(field.name), operator, value)
    table, where, value_column = _keyed(field)
    present = sa.exists(_one.select_from(table).where(where).correlate(_runs))
    if operator == "IS NULL":
        return ~present
    if operator == "IS NOT NULL":
        return present
    value = _coerce(field, _check_value(field, operator, node.value))
    condition = _compare(value_column, operator, value)
    if field.kind == "metrics":
        # latest_metrics is indexed by (key_id, value): the database finds the matching runs
        # with one index range scan instead of probing every run in turn.
        latest, keys = tables.latest_metrics, tables.metric_keys
        key_id = sa.select(keys.c.id).where(keys.c.name == field.name).scalar_subquery()
        return _runs.c.id.in_(
            sa.select(latest.c.run_id).where(latest.c.key_id == key_id, condition)
        )
    return sa.exists(_one.select_from(table).where(where, condition).correlate(_runs))


def filter_to_sql(tree) -> sa.ColumnElement[bool]:
    """The SQL condition on ``runs`` for a tree from :func:`~.filter_parser.parse_filter`.

    >>> from opsloop.tracking.filter_parser import parse_filter
    >>> str(filter_to_sql(parse_filter("git_dirty = false")))
    'runs.git_dirty = false'
    """
    if isinstance(tree, Comparison):
        return _comparison(tree)
    if isinstance(tree, And):
        return sa.and_(*(filter_to_sql(item) for item in tree.items))
    if isinstance(tree, Or):
        return sa.or_(*(filter_to_sql(item) for item in tree.items))
    if isinstance(tree, Not):
        return sa.not_(filter_to_sql(tree.item))
    raise TypeError(f"not a filter tree: {tree!r}")


def order_to_sql(clause: str):
    """An ``ORDER BY`` term for ``"<field> [ASC|DESC]"``; runs lacking the key sort last.

    >>> print(order_to_sql("start_time DESC"))
    runs.start_ms DESC NULLS LAST
    """
    if not isinstance(clause, str):
        raise TypeError(f"order_by items must be strings, got {clause!r}")
    parser = _Parser(clause)
    try:
        field = parser.field()
        descending = parser.keyword("DESC")
        if not descending:
            parser.keyword("ASC")
        if parser.token.kind != "end":
            raise parser.fail("ASC, DESC or the end of the order_by clause")
    except FilterSyntaxError as error:
        # The parser speaks of the filter; here the caller wrote an order_by item.
        raise FilterSyntaxError(f"order_by: {str(error).removeprefix('filter: ')}") from None
    if field.kind == "attributes":
        column = _attribute(field.name)
    else:
        _table, where, value_column = _keyed(field)
        column = sa.select(value_column).where(where).correlate(_runs).scalar_subquery()
    ordered = column.desc() if descending else column.asc()
    return ordered.nulls_last()
