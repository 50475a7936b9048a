"""The ``retrain`` action: learn again from the data since the change, gate the new version
against the one serving, and start its canary only when the gate passes.

The steps, each one recorded:

1. **The window.** The labelled rows the variant answered from the start the policy's
   ``window`` names to the end of the window that fired (:mod:`.training_window`): by
   default the change point (the alert's ``change_point_ms``: for ``error_drift``, the
   change estimated inside the window ADWIN kept at the detector's alarm, else the first
   window of the rule's streak), else the policy's ``since`` date (``since_date``) or the
   first window of the streak (``new_only``); plus ``reference_share`` of the reference, or, with
   ``keep_correct``, the older labelled rows the new ones agree with.
   Fewer than ``min_rows`` live rows stop here. The latest ``holdout`` share of the live
   rows, by time, is kept out of training for the gate: the new version is judged on data
   it did not see, from after the change. An audit entry ``retrain_window`` (entity
   ``monitor:DEPLOYMENT``) records the range, the row counts and the data's sha256.
2. **Training.** The policy's ``train=MODULE:FUNCTION`` is imported and called with the
   training rows (a DataFrame: the inputs and the gate's label column, named as the gate's
   ``label``); it returns a fitted estimator. Naming a function in a policy is trusting it:
   it runs in the monitor's process with the monitor's rights, like any code it imports.
   Only an importable name is accepted, never code as text.
3. **Tracking and registration.** A run of ``experiment`` records the window (parameters)
   and both data sets (their sha256, schema and profile); the estimator is registered as a
   new version of the serving model with that run, its input schema, and tags naming the
   window (``window_start_ms``, ``window_end_ms``, ``window_sha256``, ``change_point_ms``):
   its lineage leads to exactly those rows.
4. **The release gate** (:func:`opsloop.registry.release_gate.run_gate`) on the held-out
   rows, against the version the primary variant serves now; its verdict is in the new
   version's audit trail. A failed gate ends here, with the gate's report in the outcome
   (the caller records it as an alert): no deploy.
5. **The canary.** The new version becomes the ``challenger`` alias and the deployment a
   ``canary``: the primary as it is, the new version as the candidate; the deployment's
   rollout (:meth:`~opsloop.serving.Deployments.set_rollout`) then ramps it through
   ``canary_steps`` while its gates hold, or rolls it back. A protected deployment without
   approvals for that definition refuses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pandas as pd

from opsloop.errors import DeniedError, InvalidArgumentError
from opsloop.monitoring.training_window import TrainingWindow, training_window, window_start
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.registry.release_gate import run_gate
from opsloop.serving.deployment_records import Variant
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.local_store import LocalTrackingStore


def load_entry_point(name: str) -> Callable:
    """The callable ``MODULE:ATTRIBUTE`` names (``ATTRIBUTE`` may be dotted).

    >>> load_entry_point("statistics:median")([3, 1, 2])
    2
    >>> load_entry_point("statistics:no_such")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: train: 'statistics:no_such' names nothing callable: module 'statistics' has no attribute 'no_such'
    """  # noqa: E501 - a doctest's expected output is one line
    module_name, _, attribute = name.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise InvalidArgumentError(f"train: {name!r} names nothing callable: {error}") from None
    if not callable(found):
        raise InvalidArgumentError(f"train: {name!r} is not callable")
    return found


def split_window(window: TrainingWindow, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training rows (the live rows before the holdout, then the reference's) and the
    held-out rows (the latest ``holdout`` share of the live rows).

    >>> frame = pd.DataFrame({"x": range(12), "y": [0, 1] * 6})
    >>> train, held = split_window(TrainingWindow(frame, 0, 1, 10, 2, "0" * 64), 0.3)
    >>> train["x"].tolist(), held["x"].tolist()
    ([0, 1, 2, 3, 4, 5, 6, 10, 11], [7, 8, 9])
    """
    live = window.frame.iloc[: window.new_rows]
    held = max(1, round(holdout * window.new_rows))
    train = pd.concat(
        [live.iloc[: window.new_rows - held], window.frame.iloc[window.new_rows :]],
        ignore_index=True,
    )
    return train, live.iloc[window.new_rows - held :].reset_index(drop=True)


def _audit(db, actor: str, action: str, deployment: str, reason: str, after: dict) -> None:
    with db.write() as connection:
        lock_audit_log(connection)
        append_audit(connection, actor, action, f"monitor:{deployment}", reason, None, after)


def retrain(
    context: Any,
    deployment: str,
    variant: str,
    rule: Any,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """Run the steps of the module docstring for the alert ``evidence`` of ``rule`` in
    ``variant``'s windows; the outcome: ``status`` (``done``, ``blocked`` by the gate,
    ``refused`` by the deployment, ``failed``), a ``reason``, and what was made."""
    policy = rule.option("window")
    window = training_window(
        context.db,
        deployment,
        start_ms=window_start(policy, evidence, rule.option("since")),
        end_ms=int(evidence["start_ms"]) + int(evidence["window_ms"]),
        label=context.gate.label,
        variant=variant,
        reference_share=rule.option("reference_share"),
        seed=context.seed,
        policy=policy,
        keep_correct=policy == "keep_correct",
        neighbours=rule.option("neighbours"),
        tolerance=rule.option("tolerance"),
        window_ms=int(evidence["window_ms"]),
    )
    return retrain_on_window(context, deployment, rule, evidence, window)


def retrain_on_window(
    context: Any, deployment: str, rule: Any, evidence: dict[str, Any], window: TrainingWindow
) -> dict[str, Any]:
    """Steps 2 to 5 of the module docstring on the rows of ``window`` (step 1's audit
    entry is written here when the context has a store: a follower's server wrote it when
    the request was claimed, :mod:`.retrain_queue`)."""
    registry, gate = context.registry, context.gate
    deployments, actor = context.deployments, context.actor_argument
    current = deployments.get(deployment)
    primary = next(v for v in current.variants if v.role == "primary")
    model, serving = primary.model, current.serving[primary.name]
    outcome: dict[str, Any] = {"window": window.to_dict(), "model": model}
    if window.new_rows < rule.option("min_rows"):
        return {
            **outcome,
            "status": "failed",
            "reason": f"{window.new_rows} labelled rows since the change point; the policy "
            f"needs min_rows={rule.option('min_rows')}",
        }
    train, held = split_window(window, rule.option("holdout"))
    if context.db is not None:
        _audit(
            context.db,
            context.acting,
            "retrain_window",
            deployment,
            f"policy {rule.text!r}: retrain {model} on the data since the change point",
            {**window.to_dict(), "train_rows": len(train), "gate_rows": len(held)},
        )
    function = load_entry_point(rule.option("train"))
    tracking = context.tracking or LocalTrackingStore(registry.db, registry.artifacts)
    run_id = tracking.create_run(
        context.experiment,
        name=f"retrain {deployment}",
        tags={"deployment": deployment, "policy": rule.text},
        user=actor,
    )
    with ActiveRun(tracking, run_id) as run:
        run.log_params(
            {
                "train": rule.option("train"),
                "window_start_ms": window.start_ms,
                "window_end_ms": window.end_ms,
                "new_rows": window.new_rows,
                "reference_rows": window.reference_rows,
                "holdout": rule.option("holdout"),
            }
        )
        run.log_dataset(train, name="retrain-window")
        run.log_dataset(held, name="gate-holdout")
        estimator = function(train.copy())
    features = train.drop(columns=[gate.label])
    version = registry.register(
        model,
        estimator,
        run_id=run_id,
        input_schema=features,
        tags={
            "window_start_ms": window.start_ms,
            "window_end_ms": window.end_ms,
            "window_sha256": window.sha256,
            "change_point_ms": int(evidence["change_point_ms"]),
        },
        description=f"retrained by monitoring on {len(train):,} rows since the change point",
        actor=actor,
        reason=f"policy {rule.text!r} on deployment {deployment!r}",
    ).version
    outcome.update(version=version, run_id=run_id, baseline=serving)
    result = run_gate(
        registry,
        gate,
        f"models:/{model}/{version}",
        held,
        baseline=f"models:/{model}/{serving}",
        data_name=f"{deployment} rows after the change (held out)",
        trust=context.trust,
        trusted_types=context.trusted_types,
        actor=actor,
    )
    outcome["gate"] = result.to_dict()
    if not result.passed:
        return {**outcome, "status": "blocked", "reason": result.headline()}
    return _start_canary(context, current, model, version, rule, outcome, result.headline())


def _start_canary(context, current, model, version, rule, outcome, headline) -> dict[str, Any]:
    deployments, actor = context.deployments, context.actor_argument
    first = context.canary_steps[0]
    variants = [
        v.with_weight(1.0 - first) if v.role == "primary" else v
        for v in current.variants
        if v.role in ("primary", "shadow")
    ]
    variants.append(Variant("retrained", model, version=version, role="candidate", weight=first))
    reason = f"policy {rule.text!r}: {headline}; a canary of {model} v{version}"
    try:
        deployments.deploy(
            current.name,
            variants,
            strategy="canary",
            automation=current.automation,
            description=current.description,
            actor=actor,
            reason=reason,
        )
    except DeniedError as error:
        return {**outcome, "status": "refused", "reason": f"canary refused: {error}"}
    try:
        context.registry.set_alias(model, "challenger", version, actor=actor, reason=reason)
        outcome["challenger"] = version
    except DeniedError as error:
        # A protected challenger alias stays where it is; the canary runs by version anyway.
        outcome["challenger"] = f"not moved: {error}"
    rollout = deployments.set_rollout(
        current.name,
        steps=context.canary_steps,
        min_requests=context.canary_min_requests,
        gates=context.canary_gates,
        actor=actor,
        reason=reason,
    )
    return {
        **outcome,
        "status": "done",
        "reason": f"{headline}; canary of {model} v{version} at {rollout['state']['share']:.0%}",
        "canary_share": rollout["state"]["share"],
    }
