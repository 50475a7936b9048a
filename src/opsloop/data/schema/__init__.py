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
from opsloop.data.schema.infer import infer_schema
from opsloop.data.schema.model import Schema
from opsloop.data.schema.validate import validate

__all__ = [
    "ANOMALY_KINDS",
    "Anomaly",
    "ColumnSchema",
    "Schema",
    "ValidationResult",
    "infer_schema",
    "validate",
]
