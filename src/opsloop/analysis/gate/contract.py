"""Can the candidate replace the baseline where the baseline serves? Signature compatibility,
and the data contract check (:func:`data_contract_result`), which also validates the
evaluation data against the candidate's input schema.

A signature is what the registry records for a model version: ``{"inputs": <schema
dictionary>, "output": <output type>}`` (see :meth:`opsloop.registry.ModelRegistry.register`).
The candidate breaks the baseline's callers when it

* requires a column the baseline's inputs do not have (``new_required_column``), or requires
  one the baseline had as optional (``now_required``);
* narrows a column's type: accepts fewer kinds of value than the baseline did
  (``narrowed_type``), following what :func:`opsloop.data.schema.validate` accepts: a
  float column takes ints, a category takes text, numbers and bools;
* narrows a category's domain (``narrowed_domain``) or its null tolerance
  (``narrowed_nulls``);
* returns another output type (``changed_output``).

Columns the candidate no longer needs are listed (``dropped_columns``) but break nothing.

>>> base = {"inputs": {"columns": {"x": {"type": "float"}}}, "output": "int"}
>>> cand = {"inputs": {"columns": {"x": {"type": "int"}, "z": {"type": "bool"}}}, "output": "int"}
>>> [(b.kind, b.column) for b in signature_breaks(cand, base)]
[('narrowed_type', 'x'), ('new_required_column', 'z')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from opsloop.analysis.gate.checks import DataContractCheck
from opsloop.analysis.gate.result import CheckResult
from opsloop.data.schema import Schema, validate

# At most this many anomalies are kept as a check's evidence.
_MAX_ANOMALIES = 20

#: The value types each column type accepts (as :func:`opsloop.data.schema.validate` does).
ACCEPTS: dict[str, frozenset[str]] = {
    "bool": frozenset({"bool"}),
    "int": frozenset({"int"}),
    "float": frozenset({"float", "int"}),
    "datetime": frozenset({"datetime"}),
    "string": frozenset({"string"}),
    "category": frozenset({"category", "string", "int", "float", "bool"}),
}


@dataclass(frozen=True)
class SignatureBreak:
    """One way the candidate's signature breaks the baseline's callers.

    >>> SignatureBreak("narrowed_type", "x", "float -> int").to_dict()["kind"]
    'narrowed_type'
    """

    kind: str
    column: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> SignatureBreak("changed_output", None, "int -> float").to_dict()["column"] is None
        True
        """
        return asdict(self)


def input_schema(signature: Mapping[str, Any] | None) -> Schema | None:
    """The input :class:`~opsloop.data.schema.Schema` of a recorded signature, if it has one.

    >>> input_schema({"inputs": {"columns": {"x": {"type": "int"}}}, "output": None}).names
    ('x',)
    """
    if not signature or not signature.get("inputs"):
        return None
    return Schema.from_dict(signature["inputs"])


def signature_breaks(
    candidate: Mapping[str, Any], baseline: Mapping[str, Any]
) -> tuple[SignatureBreak, ...]:
    """The ways ``candidate`` breaks callers of ``baseline`` (both recorded signatures with
    inputs), columns in the candidate's order.

    >>> sig = {"inputs": {"columns": {"x": {"type": "float"}}}, "output": "float"}
    >>> signature_breaks(sig, sig)
    ()
    """
    cand, base = input_schema(candidate), input_schema(baseline)
    if cand is None or base is None:
        raise ValueError("signature_breaks needs two signatures with inputs")
    breaks: list[SignatureBreak] = []
    for column in cand.columns:
        if column.name not in base:
            if column.required:
                breaks.append(
                    SignatureBreak(
                        "new_required_column", column.name, f"{column.type}, not in the baseline"
                    )
                )
            continue
        old = base[column.name]
        if column.required and not old.required:
            breaks.append(SignatureBreak("now_required", column.name, "optional -> required"))
        if not ACCEPTS[old.type] <= ACCEPTS[column.type]:
            breaks.append(
                SignatureBreak("narrowed_type", column.name, f"{old.type} -> {column.type}")
            )
        if column.max_null_fraction < old.max_null_fraction:
            breaks.append(
                SignatureBreak(
                    "narrowed_nulls",
                    column.name,
                    f"max_null_fraction {old.max_null_fraction:g} -> {column.max_null_fraction:g}",
                )
            )
        if column.domain is not None:
            lost = (
                ["any value"]
                if old.domain is None
                else [v for v in old.domain if v not in column.domain]
            )
            if lost:
                shown = ", ".join(repr(v) for v in lost[:5])
                breaks.append(
                    SignatureBreak("narrowed_domain", column.name, f"no longer accepts {shown}")
                )
    if candidate.get("output") != baseline.get("output"):
        breaks.append(
            SignatureBreak(
                "changed_output", None, f"{baseline.get('output')} -> {candidate.get('output')}"
            )
        )
    return tuple(breaks)


def dropped_columns(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> tuple[str, ...]:
    """Columns of the baseline's inputs the candidate no longer has (harmless).

    >>> base = {"inputs": {"columns": {"x": {"type": "int"}, "y": {"type": "int"}}}}
    >>> dropped_columns({"inputs": {"columns": {"x": {"type": "int"}}}}, base)
    ('y',)
    """
    cand, base = input_schema(candidate), input_schema(baseline)
    if cand is None or base is None:
        return ()
    return tuple(name for name in base.names if name not in cand)


def data_contract_result(
    check: DataContractCheck,
    frame: pd.DataFrame,
    candidate_signature: Mapping[str, Any] | None,
    baseline_signature: Mapping[str, Any] | None,
) -> CheckResult:
    """The data contract check: the signature's breaks (:func:`signature_breaks`) and the
    evaluation data's anomalies against the candidate's input schema, ``check.ignore``
    kinds aside.

    >>> import pandas as pd
    >>> sig = {"inputs": {"columns": {"x": {"type": "int"}}}, "output": None}
    >>> r = data_contract_result(DataContractCheck(), pd.DataFrame({"x": [1.5]}), sig, sig)
    >>> r.passed, r.reason
    (False, 'x: type_mismatch in 1 rows')
    """
    problems: list[str] = []
    evidence: dict[str, Any] = {}
    cand_schema = input_schema(candidate_signature)
    if check.signature:
        if cand_schema is None or input_schema(baseline_signature) is None:
            which = "candidate" if cand_schema is None else "baseline"
            problems.append(f"the {which} has no recorded input signature to compare")
        else:
            breaks = signature_breaks(candidate_signature, baseline_signature)
            evidence["signature_breaks"] = [b.to_dict() for b in breaks]
            evidence["dropped_columns"] = list(
                dropped_columns(candidate_signature, baseline_signature)
            )
            problems += [
                f"{b.kind} of {b.column} ({b.detail})" if b.column else f"{b.kind} ({b.detail})"
                for b in breaks
            ]
    if check.schema:
        if cand_schema is None:
            problems.append("the candidate has no recorded input schema to validate the data")
        else:
            shown = [c for c in frame.columns if str(c) in cand_schema.names]
            anomalies = validate(frame[shown], cand_schema)
            kept = [a for a in anomalies if a.kind not in check.ignore]
            evidence["anomalies"] = [a.to_dict() for a in kept[:_MAX_ANOMALIES]]
            evidence["ignored_anomalies"] = sum(1 for a in anomalies if a.kind in check.ignore)
            problems += [f"{a.column}: {a.kind} in {a.count} rows" for a in kept]
    reason = "; ".join(problems[:5]) if problems else check.describe()
    if len(problems) > 5:
        reason += f"; and {len(problems) - 5} more"
    return CheckResult(
        kind="data_contract",
        name="data contract",
        passed=not problems,
        reason=reason,
        statistic=float(len(problems)),
        threshold=0.0,
        evidence=evidence,
    )
