"""Run a release gate on registered versions: resolve the candidate and the baseline, load
them (sha256 verified, by the trust rules of :mod:`.model_trust`), evaluate the gate
(:func:`opsloop.analysis.gate.evaluate_gate`) and record its verdict on the candidate
(:meth:`ModelRegistry.record_gate`: an audited ``gate_passed`` or ``gate_failed`` entry
with the gate file's and the data's sha256). A budget check's size, latency and memory are
measured first, on the candidate's artifact in a fresh process (:mod:`.budget_probe`).
``registry`` may be a server's (:class:`~opsloop.registry.HttpModelRegistry`): the models
come through it, are loaded and measured here, and the verdict is recorded there.

The baseline is ``models:/NAME@<the gate's baseline alias>`` (``champion`` unless the gate
says otherwise) of the candidate's model, unless another reference is given.

>>> import tempfile, numpy as np, pandas as pd
>>> from sklearn.tree import DecisionTreeClassifier
>>> from opsloop.analysis.gate import parse_gate
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> r = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> frame = pd.DataFrame({"x": np.arange(60.0) % 6, "y": (np.arange(60) % 6 > 2).astype(int)})
>>> model = DecisionTreeClassifier(random_state=0).fit(frame[["x"]], frame["y"])
>>> _ = r.register("m", model); r.set_alias("m", "champion", 1); _ = r.register("m", model)
>>> gate = parse_gate({"version": 1, "label": "y",
...                    "checks": [{"kind": "floor", "metric": "accuracy", "min": 0.9}]})
>>> run_gate(r, gate, "models:/m/2", frame).headline()
'gate gate v1: PASSED, m v2 against m v1 (m@champion) on data (60 rows, 1 checks)'
>>> r.audit("m")["action"].iloc[-1]
'gate_passed'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from opsloop.analysis.gate import (
    BudgetCheck,
    CheckResult,
    GateResult,
    GateSpec,
    PrivacyCheck,
    evaluate_gate,
    model_inputs,
)
from opsloop.registry.budget_probe import measure_serving_cost
from opsloop.registry.model_registry import UnknownModelError
from opsloop.registry.references import parse_model_reference
from opsloop.tracking.dataset_digest import dataset_sha256


def run_gate(
    registry: Any,
    gate: GateSpec,
    candidate: str,
    frame: pd.DataFrame,
    *,
    baseline: str | None = None,
    data_name: str = "data",
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    record: bool = True,
    actor: str | None = None,
    members: pd.DataFrame | None = None,
    members_name: str = "members",
) -> GateResult:
    """Gate ``candidate`` (a model reference) against ``baseline`` (default: the gate's
    baseline alias of the same model) on ``frame``; with ``record``, write the verdict to
    the candidate's audit trail.

    ``members`` are the candidate's training rows, which a privacy check attacks: the
    registry keeps only their hash, so the caller gives the rows, and they are refused unless
    their sha256 is that of the data set the check names (``members:``, ``train`` by
    default) in the candidate's lineage. A version with no run, or whose run logged no data
    set, cannot be checked: the check runs and says so.

    >>> import tempfile
    >>> from opsloop.analysis.gate import parse_gate
    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.store import ArtifactStore, Database
    >>> r = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
    >>> _ = r.register("m", b"x", flavor="onnx")
    >>> gate = parse_gate({"version": 1, "label": "y", "checks": [{"kind": "data_contract"}]})
    >>> run_gate(r, gate, "models:/m/1", pd.DataFrame({"y": [1]}))
    Traceback (most recent call last):
    ...
    opsloop.registry.model_registry.UnknownModelError: model 'm' has no alias 'champion'...
    """
    wanted = registry.resolve(candidate)
    if baseline is None:
        baseline = f"models:/{wanted.model}@{gate.baseline}"
        try:
            against = registry.resolve(baseline)
        except UnknownModelError as error:
            raise UnknownModelError(
                f"{error}: the gate's baseline is {baseline}; give another baseline "
                "reference, or set 'baseline:' in the gate file"
            ) from None
    else:
        against = registry.resolve(baseline)
    models = [
        registry.load(v.model, v.version, trust=trust, trusted_types=tuple(trusted_types))
        for v in (wanted, against)
    ]
    serving_cost = None
    budgets = [check for check in gate.checks if isinstance(check, BudgetCheck)]
    if budgets:
        inputs = model_inputs(models[0], wanted.signature, frame, gate.label, data_name, wanted.uri)
        serving_cost = measure_serving_cost(
            registry,
            wanted,
            frame[inputs],
            rows=max(check.rows for check in budgets),
            trust=trust,
            trusted_types=tuple(trusted_types),
        )
    members_source = _members_source(registry, gate, wanted, members, members_name)
    base_label = f"{against.model} v{against.version}"
    reference = parse_model_reference(baseline)
    if reference.version is None:
        base_label += f" ({reference.label})"
    result = evaluate_gate(
        gate,
        models[0],
        models[1],
        frame,
        candidate_signature=wanted.signature,
        baseline_signature=against.signature,
        candidate_name=f"{wanted.model} v{wanted.version}",
        baseline_name=base_label,
        data_name=data_name,
        data_sha256=dataset_sha256(frame),
        serving_cost=serving_cost,
        members=members,
        members_source=members_source,
    )
    if record:
        registry.record_gate(
            wanted.model,
            wanted.version,
            passed=result.passed,
            gate={
                "gate": result.gate,
                "gate_version": result.gate_version,
                "gate_sha256": result.gate_sha256,
                "baseline": {"model": against.model, "version": against.version},
                "data": result.data,
                "data_sha256": result.data_sha256,
                "n_rows": result.n_rows,
                "checks": len(result.checks),
                "failed": [check.name for check in result.failed()],
                # Each check's headline numbers, so the verdict can be read later (the
                # dashboard's version page) without rerunning the gate; evidence stays out.
                "results": [_recorded_check(check) for check in result.checks],
                **(
                    {"members_sha256": members_source["sha256"]}
                    if members_source is not None
                    else {}
                ),
            },
            actor=actor,
        )
    return result


def _recorded_check(check: CheckResult) -> dict[str, Any]:
    """What the audit entry keeps of one check: its verdict and headline numbers."""
    plain = check.to_dict()
    return {key: plain[key] for key in RECORDED_CHECK_FIELDS}


#: The fields of each check a recorded verdict keeps (``results`` of the audit entry).
RECORDED_CHECK_FIELDS = ("kind", "name", "verdict", "reason", "statistic", "p_value", "threshold")


def _members_source(
    registry: Any, gate: GateSpec, version: Any, members: pd.DataFrame | None, name: str
) -> dict[str, Any] | None:
    """Where the members came from, checked against the candidate's lineage: ``None`` when
    the gate has no privacy check or no members were given (the check then names what is
    missing)."""
    wanted = {check.members for check in gate.checks if isinstance(check, PrivacyCheck)}
    if not wanted or members is None:
        return None
    if len(wanted) > 1:
        raise ValueError(
            f"the gate's privacy checks name the members {sorted(wanted)}; one gate run is "
            "given one set of training rows: name one data set"
        )
    (logged_as,) = wanted
    digest = dataset_sha256(members)
    lineage = registry.lineage(version.model, version.version)
    logged = dict(lineage.datasets)
    source = {"data": name, "sha256": digest, "run_id": lineage.run_id, "data_set": logged_as}
    if not logged:
        why = "the version has no run" if lineage.run_id is None else "its run logged no data set"
        return {**source, "verified": False, "note": why}
    if logged_as not in logged:
        raise ValueError(
            f"{version.model} v{version.version}'s run {lineage.run_id} logged no data set "
            f"{logged_as!r} (it logged {', '.join(sorted(logged))}): set members: in the gate"
        )
    if logged[logged_as] != digest:
        raise ValueError(
            f"{name}: these rows (sha256 {digest[:12]}...) are not the data set {logged_as!r} "
            f"logged to {version.model} v{version.version}'s run {lineage.run_id} (sha256 "
            f"{logged[logged_as][:12]}...): a privacy check attacks the rows the candidate "
            "was trained on"
        )
    return {**source, "verified": True, "note": f"the data set {logged_as!r} of the run"}
