"""Which field of a model version's records a deployment's model assertions read and lack.

A rule (:mod:`.assertions`) reads fields of a served record and the model's outputs
(``prediction``, ``probability``). A served record carries the serving columns of the
version's input signature (:meth:`~opsloop.data.schema.Schema.serving_columns`), so a
column kept for training alone is no field of a rule. A rule reading a field the records
lack cannot be applied to them, and every request the version answers would fail. The one
check (:func:`unknown_rule_field`) runs wherever what a deployment serves may change: when
its rules are set or a deploy brings a version (:mod:`opsloop.serving.deployment_settings`)
and when an alias one of its variants follows moves (:mod:`opsloop.registry.alias_move_check`).

>>> import pandas as pd
>>> from opsloop.analysis.assertions import parse_assertions
>>> from opsloop.data.schema import infer_schema
>>> schema = infer_schema(pd.DataFrame({"age": [20, 40], "won": [0, 1]}),
...                       environments={"serving": ["won"]})
>>> rules = parse_assertions([{"name": "minor", "when": "age < 18", "action": "flag"},
...                           {"name": "paid", "when": "won > 0", "action": "flag"}])
>>> position, rule, field = unknown_rule_field(rules, schema)
>>> position, rule.name, field
(1, 'paid', 'won')
>>> fields_there(schema)
"the fields ['age'] and the outputs ['prediction', 'probability']"
"""

from __future__ import annotations

from collections.abc import Sequence

from opsloop.analysis.assertions import Assertion
from opsloop.data.excerpt import excerpt
from opsloop.data.schema import Schema

#: The fields a rule reads besides the records' own: the model's outputs.
OUTPUT_FIELDS = ("prediction", "probability")
#: Field names :func:`fields_there` lists before it says how many more there are.
LISTED_FIELDS = 20


def unknown_rule_field(
    rules: Sequence[Assertion], schema: Schema | None
) -> tuple[int, Assertion, str] | None:
    """The first of ``rules`` reading a field a served record of ``schema`` (an input
    signature; ``None`` for none, which takes any field) cannot have: its position, the
    rule and the field; ``None`` when every rule can be applied.

    >>> from opsloop.analysis.assertions import parse_assertions
    >>> from opsloop.data.schema import ColumnSchema
    >>> rule = parse_assertions([{"name": "r", "when": "probability > x", "action": "flag"}])
    >>> unknown_rule_field(rule, Schema((ColumnSchema("x", "float"),))) is None
    True
    >>> unknown_rule_field(rule, Schema((ColumnSchema("y", "float"),)))[2]
    'x'
    >>> unknown_rule_field(rule, None) is None
    True
    """
    if schema is None:
        return None
    known = {column.name for column in schema.serving_columns()} | set(OUTPUT_FIELDS)
    for position, rule in enumerate(rules):
        unknown = [name for name in rule.fields() if name not in known]
        if unknown:
            return position, rule, unknown[0]
    return None


def fields_there(schema: Schema) -> str:
    """The fields a served record of ``schema`` has, as a refusal lists them (the first
    :data:`LISTED_FIELDS`, then how many more), and the outputs.

    >>> from opsloop.data.schema import ColumnSchema
    >>> fields_there(Schema(tuple(ColumnSchema(f"x{i:02d}", "float") for i in range(22))))[-63:]
    "'x19'] and 2 more and the outputs ['prediction', 'probability']"
    """
    names = sorted(column.name for column in schema.serving_columns())
    listed = [excerpt(name) for name in names[:LISTED_FIELDS]]
    more = f" and {len(names) - LISTED_FIELDS} more" if len(names) > LISTED_FIELDS else ""
    return f"the fields [{', '.join(listed)}]{more} and the outputs {list(OUTPUT_FIELDS)}"


__all__ = ["LISTED_FIELDS", "OUTPUT_FIELDS", "fields_there", "unknown_rule_field"]
