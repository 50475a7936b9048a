"""``infer_schema`` and ``validate`` on a Dask frame, partition by partition.

Both read each partition where it lives and merge what the rules need, so the result equals
the pandas path's on the whole frame:

* **types** first, when a column's dtype does not decide it (text and ``object`` columns):
  each partition's :class:`~opsloop.data.types.TypeEvidence` (kinds of values, distinct
  strings up to :data:`~opsloop.data.types.MAX_CATEGORIES`), merged;
* **inference**: each partition's
  :class:`~opsloop.data.schema.infer.ColumnObservations` (nulls, extremes, domain values),
  merged; a column whose every partition has distinct values and no null is an identifier
  only if no value repeats across partitions, which Dask then counts (``nunique``);
* **validation**: each partition's :class:`~opsloop.data.schema.findings.ColumnFindings`
  (counts and first examples of every rule), merged in partition order, then the rules that
  judge the whole batch (null share, out-of-range tolerance) applied once. Example positions
  are positions in the whole frame; ``result.locate(position)`` gives ``(partition, row)``.

>>> import dask, pandas as pd, dask.dataframe as dd
>>> train = dd.from_pandas(pd.DataFrame({"age": [31, 45, 52, 38]}), npartitions=2)
>>> batch = dd.from_pandas(pd.DataFrame({"age": [40, 41, 160, 39]}), npartitions=2)
>>> with dask.config.set(scheduler="synchronous"):
...     result = validate_dask(batch, infer_schema_dask(train))
>>> [(a.kind, a.count, a.examples) for a in result], result.locate(2)
([('out_of_range', 1, ((2, 160),))], (1, 0))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd

from opsloop.data.distributed.frames import map_partitions_checked
from opsloop.data.schema.anomaly import ValidationResult
from opsloop.data.schema.findings import ColumnFindings
from opsloop.data.schema.infer import ColumnObservations, check_inference_arguments
from opsloop.data.schema.model import Schema
from opsloop.data.schema.validate import assemble_result
from opsloop.data.types import MAX_CATEGORIES, ColumnType, TypeEvidence, infer_column_type


def column_types(ddf) -> dict[str, ColumnType]:
    """The logical type of every column of ``ddf``, as
    :func:`~opsloop.data.types.infer_column_type` gives it for the whole column.

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"n": [1, 2, 3, 4], "c": ["a", "b", "a", "b"]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     column_types(dd.from_pandas(frame, npartitions=2))
    {'n': 'int', 'c': 'category'}
    """
    meta = ddf._meta
    types: dict[str, ColumnType] = {}
    by_values = []
    for name in ddf.columns:
        evidence = TypeEvidence.of(meta[name])
        if evidence.fixed is not None:
            types[name] = evidence.fixed
        else:
            by_values.append(name)
    if by_values:
        parts = map_partitions_checked(ddf, _type_evidence, by_values, columns=by_values)
        for name in by_values:
            merged = parts[0][name]
            for part in parts[1:]:
                merged = merged.merge(part[name])
            types[name] = merged.column_type()
    return {name: types[name] for name in ddf.columns}


def _type_evidence(partition: pd.DataFrame, names: list[str]) -> dict[str, TypeEvidence]:
    return {name: TypeEvidence.of(partition[name]) for name in names}


def infer_schema_dask(
    ddf,
    *,
    max_categories: int = MAX_CATEGORIES,
    environments: Mapping[str, Iterable[str]] | None = None,
    created_at: dt.datetime | None = None,
    range_margin: float = 1.0,
) -> Schema:
    """:func:`~opsloop.data.schema.infer_schema` of every row of the Dask frame ``ddf``
    (same arguments, same result as on the whole frame in memory).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"plan": ["a", "b", "a", None]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     column = infer_schema_dask(ddf)["plan"]
    >>> column.type, column.domain, column.max_null_fraction
    ('category', ('a', 'b'), 0.936)
    """
    names = list(ddf.columns)
    check_inference_arguments(names, None, max_categories, environments, created_at, range_margin)
    types = column_types(ddf)
    parts = map_partitions_checked(ddf, _observe_partition, types, max_categories)
    n_rows = sum(rows for rows, _ in parts)
    absent, stamp = check_inference_arguments(
        names, n_rows, max_categories, environments, created_at, range_margin
    )
    columns = []
    for name in names:
        observed = [seen[name] for _, seen in parts if seen[name] is not None]
        merged = observed[0]
        for part in observed[1:]:
            merged = merged.merge(part)
        all_distinct = merged.unique and _no_repeats_across(ddf, name, observed, n_rows)
        columns.append(
            merged.column_schema(
                name, types[name], absent.get(name, ()), float(range_margin), all_distinct
            )
        )
    return Schema(
        columns=tuple(columns),
        version=1,
        environments=tuple(environments or ()),
        created_at=stamp,
        source_rows=n_rows,
    )


def _observe_partition(
    partition: pd.DataFrame, types: dict[str, ColumnType], max_categories: int
) -> tuple[int, dict[str, ColumnObservations | None]]:
    # An empty partition says nothing (its observations would mark every column unique).
    if len(partition) == 0:
        return 0, dict.fromkeys(types)
    return len(partition), {
        name: ColumnObservations.of(partition[name], column_type, max_categories)
        for name, column_type in types.items()
    }


def _no_repeats_across(ddf, name: str, observed: list, n_rows: int) -> bool:
    """Whether no value of column ``name`` repeats across partitions (each partition is
    known to repeat none)."""
    if len(observed) == 1:
        return True
    from opsloop.data.schema.infer import _ID_MIN_ROWS

    if n_rows < _ID_MIN_ROWS:
        return True  # too few rows to be an identifier: the answer does not matter
    return int(ddf[name].nunique().compute()) == n_rows


def validate_dask(ddf, schema: Schema, environment: str | None = None) -> ValidationResult:
    """:func:`~opsloop.data.schema.validate` of every row of the Dask frame ``ddf``: the
    same anomalies as on the whole frame in memory, example positions counted over the
    whole frame (``result.locate`` gives the partition and row), and
    ``result.partition_rows`` the rows of each partition.

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> schema = Schema((ColumnSchema("x", "float"),))
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0, None, None]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     print(validate_dask(ddf, schema))
    1 anomaly in 4 rows (schema version 1):
      x: null_fraction_exceeded in 2 rows (50.0%): 50% of the rows are null, above max_null_fraction 0%; e.g. row 2: None, row 3: None
    """  # noqa: E501
    if not isinstance(schema, Schema):
        raise TypeError(f"validate expects a Schema, got {type(schema).__name__}")
    labels = list(ddf.columns)
    present = {str(label) for label in labels}
    checked = [c for c in schema.expected_columns(environment) if c.name in present]
    # A duplicated label is checked at its first position, as in the pandas path.
    positions = {}
    for position, label in enumerate(labels):
        positions.setdefault(str(label), position)
    parts = map_partitions_checked(ddf, _findings_of_partition, checked, positions)
    sizes = tuple(rows for rows, _ in parts)
    findings: dict[str, ColumnFindings] = {}
    for _, found in parts:
        for name, part in found.items():
            findings[name] = findings[name].merge(part) if name in findings else part
    result = assemble_result(labels, sum(sizes), schema, environment, findings)
    return ValidationResult(
        result.anomalies, result.n_rows, result.schema_version, environment, sizes
    )


def _findings_of_partition(
    partition: pd.DataFrame, checked: list, positions: dict[str, int]
) -> tuple[int, dict[str, ColumnFindings]]:
    return len(partition), {
        column.name: ColumnFindings.of(partition.iloc[:, positions[column.name]], column)
        for column in checked
    }


__all__ = ["column_types", "infer_column_type", "infer_schema_dask", "validate_dask"]
