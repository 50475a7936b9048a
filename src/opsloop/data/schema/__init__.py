"""Data contracts: catch schema skew between training and serving data.

Infer a :class:`Schema` from training data, keep it as YAML next to the model, and validate
every batch against it; :func:`validate` returns the :class:`Anomaly` list instead of raising,
so serving data with a string where an int was trained, an unseen category, nulls where there
were none or a label leaking into serving is reported with counts and examples.

Modules: :mod:`.column` (one column's contract), :mod:`.model` (the schema, versions,
environments, YAML), :mod:`.observe` (what each value is, whatever its dtype), :mod:`.infer`,
:mod:`.validate`, :mod:`.anomaly` (the result). This follows TensorFlow Data Validation's
schema (types, presence, domains, environments); it is written here because TFDV needs
TensorFlow and Arrow batches, while opsloop works on pandas frames directly.

>>> import pandas as pd
>>> train = pd.DataFrame({"plan": ["free", "pro", "free"], "label": [0, 1, 0]})
>>> schema = infer_schema(train, environments={"training": [], "serving": ["label"]})
>>> print(validate(pd.DataFrame({"plan": ["pro", "team"]}), schema, "serving"))
1 anomaly in 2 rows (schema version 1, environment 'serving'):
  plan: unknown_category in 1 row (50.0%): 1 distinct value not in the domain; e.g. row 1: 'team'
"""

from opsloop.data.schema.anomaly import ANOMALY_KINDS, Anomaly, ValidationResult
from opsloop.data.schema.column import ColumnSchema
from opsloop.data.schema.infer import infer_schema as infer_schema_frame
from opsloop.data.schema.model import Schema
from opsloop.data.schema.validate import validate as validate_frame

__all__ = [
    "ANOMALY_KINDS",
    "Anomaly",
    "ColumnSchema",
    "Schema",
    "ValidationResult",
    "infer_schema",
    "infer_schema_frame",
    "validate",
    "validate_frame",
]


def infer_schema(df, **options) -> Schema:
    """Infer the schema that ``df`` satisfies: a pandas DataFrame
    (:func:`~opsloop.data.schema.infer.infer_schema`, here ``infer_schema_frame``, whose
    docstring lists the ``options``), or a ``dask.dataframe``, inferred partition by
    partition with the same result (:func:`opsloop.data.distributed.schema.infer_schema_dask`).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"plan": ["a", "b", "a", "c", "a", "b"]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     on_dask = infer_schema(dd.from_pandas(frame, npartitions=2))
    >>> on_dask["plan"].domain, on_dask["plan"] == infer_schema(frame)["plan"]
    (('a', 'b', 'c'), True)
    """
    from opsloop.data.distributed.frames import is_dask_frame

    if is_dask_frame(df):
        from opsloop.data.distributed.schema import infer_schema_dask

        return infer_schema_dask(df, **options)
    return infer_schema_frame(df, **options)


def validate(df, schema: Schema, environment: str | None = None) -> ValidationResult:
    """Validate ``df`` against ``schema`` in ``environment``: a pandas DataFrame
    (:func:`~opsloop.data.schema.validate.validate`, here ``validate_frame``, whose
    docstring has the rules), or a ``dask.dataframe``, validated partition by partition
    with the same anomalies (:func:`opsloop.data.distributed.schema.validate_dask`).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> schema = Schema((ColumnSchema("n", "int", min=0, max=9),))
    >>> batch = pd.DataFrame({"n": [1, 2, 30, 4]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     on_dask = validate(dd.from_pandas(batch, npartitions=2), schema)
    >>> on_dask.anomalies == validate(batch, schema).anomalies, on_dask.locate(2)
    (True, (1, 0))
    """
    from opsloop.data.distributed.frames import is_dask_frame

    if is_dask_frame(df):
        from opsloop.data.distributed.schema import validate_dask

        return validate_dask(df, schema, environment)
    return validate_frame(df, schema, environment)
