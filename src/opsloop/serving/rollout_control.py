"""Setting and reading a deployment's rollout: the control plane's side of ramps and bandits.

:func:`set_rollout` keeps a :class:`~.rollout_policy.RolloutPolicy` for a ``canary`` or
``bandit`` deployment with a fresh state, as one audited change (action ``set_rollout``,
entity ``deployment:NAME``), so the serving workers follow it. A canary's candidate is
moved to the first step's share by an audited deploy carrying the decision, as every later
step's (:mod:`.rollout_decisions`), in the same write transaction: a ramp's state never
shows a step its deployment did not take. A later step the control plane refuses is
recorded as ``not_carried_out`` and the ramp goes back to the step whose share the
deployment still routes by (:func:`~.canary_rollout.not_carried_out`); the first step has
no earlier step of the ramp to go back to, and a person is waiting for the answer, so a
refused first step (approvals missing, a release gate not passed) refuses the whole
``set_rollout`` with the reason, and nothing changes: no rollout, no entry, the previous
rollout if any as it was. :func:`rollout_document` reads the
policy and state back, with a bandit's current traffic shares.
:class:`~opsloop.serving.Deployments` offers both as ``set_rollout`` and ``rollout``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError, NotFoundError, OpsloopError
from opsloop.learn.bandits import POLICIES as BANDIT_POLICIES
from opsloop.learn.bandits import policy_from_dict
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.registry.users import acting_user
from opsloop.serving.canary_rollout import (
    Transition,
    canary_decisions,
    new_canary_state,
    transition_variants,
)
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.recorded_baseline import recorded_baseline
from opsloop.serving.rollout_decisions import check_decision, decision_document
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.rollout_state import locked_rollout, read_rollout, write_rollout
from opsloop.store import tables
from opsloop.store.database import Database

#: Recorded answers of the primary needed to take its p99 latency as the latency bound.
MIN_LATENCY_SAMPLES = 100


def _primary_p99(connection, deployment: str, variant: str) -> float:
    events = tables.prediction_events
    latencies = (
        connection.execute(
            sa.select(events.c.latency_ms).where(
                events.c.deployment == deployment,
                events.c.variant == variant,
                events.c.role == "primary",
                events.c.error.is_(None),
            )
        )
        .scalars()
        .all()
    )
    if len(latencies) < MIN_LATENCY_SAMPLES:
        raise InvalidArgumentError(
            f"gates.latency.bound_ms: give a bound, or let the primary {variant!r} answer "
            f"{MIN_LATENCY_SAMPLES} requests first (it has {len(latencies)}) so that its p99 "
            "can be the bound"
        )
    return float(np.quantile(np.asarray(latencies), 0.99))


def _initial_state(
    connection, definition: Deployment, policy: RolloutPolicy, at_ms: int
) -> dict[str, Any]:
    live = [v for v in definition.variants if v.role != "shadow"]
    if definition.strategy == "bandit":
        arms = [v.name for v in live]
        bandit = BANDIT_POLICIES[policy.bandit](arms, **policy.bandit_params)
        return {"kind": "bandit", "policy": bandit.to_dict()}
    if definition.strategy != "canary":
        raise InvalidArgumentError(
            f"strategy: deployment {definition.name!r} is {definition.strategy!r}; a rollout "
            "needs a 'canary' or 'bandit' deployment"
        )
    if len(policy.steps) < 2:
        raise InvalidArgumentError("steps: a canary's ramp needs a share below 1 first")
    stable = next(v.name for v in live if v.role == "primary")
    candidate = next(v.name for v in live if v.role != "primary")
    bound = None
    if "latency" in policy.gates:
        bound = policy.gates["latency"].get("bound_ms")
        if bound is None:
            bound = _primary_p99(connection, definition.name, stable)
    baselines = {}
    for gate in policy.gates:
        setting = policy.recorded_baseline(gate)
        if setting is None:
            continue
        primary = next(v for v in live if v.name == stable)
        version = definition.serving.get(stable)
        if version is None:
            raise InvalidArgumentError(
                f"gates.{gate}.baseline: the primary {stable!r} serves no version to count"
            )
        read = recorded_baseline(
            connection,
            definition.name,
            stable,
            primary.model,
            version,
            until_ms=at_ms,
            window_ms=setting.window_ms,
            min_requests=setting.min_requests,
            slower_than_ms=policy.gates[gate].get("bound_ms") if gate == "latency" else None,
        )
        baselines[gate] = read.to_dict()
    # Requests a worker still routes at this weight, once the first step moved it, are
    # left behind (see canary_rollout).
    before = next(v.weight for v in live if v.name == candidate)
    try:
        return new_canary_state(
            policy,
            stable,
            candidate,
            bound,
            at_ms=at_ms,
            baselines=baselines,
            share_before=before,
        )
    except InvalidArgumentError as error:
        if not baselines:
            raise
        # The counts read may leave no rate to detect (a primary that fails often): name
        # the gates whose own counts do, not every gate with a recorded baseline.
        refused = [gate for gate, read in baselines.items() if _refuses(policy, gate, read)]
        fields = ", ".join(f"gates.{gate}.baseline" for gate in refused or baselines)
        raise InvalidArgumentError(f"{fields}: {error}") from None


def _refuses(policy: RolloutPolicy, gate: str, read: dict[str, Any]) -> bool:
    """Whether ``gate``'s recorded counts ``read`` alone leave it no gate to build."""
    try:
        policy.gate(gate, [read["failures"], read["requests"]])
    except InvalidArgumentError:
        return True
    return False


def set_rollout(
    deployments,
    name: str,
    policy: RolloutPolicy,
    *,
    actor: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Keep ``policy`` for deployment ``name`` (editor role), starting its state afresh; a
    canary's candidate moves to the first step in the same transaction, or, when the
    control plane refuses that move, nothing changes and its error says why (see the
    module). Returns :func:`rollout_document`.

    ``deployments`` is the :class:`~opsloop.serving.Deployments` acting.
    """
    db: Database = deployments.db
    with db.write() as connection:
        lock_audit_log(connection)
        who = acting_user(connection, actor, "editor")
        definition = deployments._current(connection, name)
        if definition is None:
            raise NotFoundError(f"no deployment named {name!r}")
        at = db.clock()
        state = _initial_state(connection, definition, policy, at)
        before = locked_rollout(connection, name)
        write_rollout(connection, name, policy, state, who, at)
        append_audit(
            connection,
            who,
            "set_rollout",
            f"deployment:{name}",
            reason,
            None if before is None else {"policy": before[0].to_dict()},
            {"policy": policy.to_dict()},
            at_ms=at,
        )
        if state["kind"] == "canary":
            _take_first_step(deployments, connection, definition, state, who)
    return rollout_document(db, name)


def _take_first_step(
    deployments, connection, definition: Deployment, state: dict[str, Any], who: str
) -> None:
    """Move the canary's candidate to the share of the ramp's first step (``state``, just
    written) in the caller's transaction, by the deploy a ramp's step makes (its entry
    carries the decision); nothing when it has that share already. A refusal is raised
    naming ``steps.0`` and the control plane's reason, so the caller's transaction, the
    rollout's setting with it, is rolled back."""
    stable, candidate = state["stable"], state["candidate"]
    weight = next(v.weight for v in definition.variants if v.name == candidate)
    if weight == state["share"]:
        return
    first = Transition("step", state["share"], {"step": 0})
    decision = decision_document(first, stable, candidate)
    variants, strategy = transition_variants(definition, first, stable, candidate)
    try:
        check_decision(connection, definition.name, decision)
        deployments._define(
            connection,
            who,
            definition.name,
            definition,
            strategy,
            definition.automation,
            definition.description,
            variants,
            first.reason(stable, candidate),
            decision=decision,
        )
    except OpsloopError as error:
        raise type(error)(
            f"steps.0: the rollout is not set, since moving {candidate!r} to its first "
            f"share ({state['share']:.0%}, from {weight:.0%}) was refused: {error}"
        ) from error


def rollout_document(db: Database, name: str) -> dict[str, Any]:
    """Deployment ``name``'s rollout: its policy, state (a canary's step and every gate's
    statistic, samples and threshold; the last decision with its evidence) and, for a
    bandit, the traffic ``shares`` now. 404 when it has none.

    >>> rollout_document(Database("sqlite://"), "api")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: deployment 'api' has no rollout
    """
    document = read_rollout(db, name)
    if document is None:
        raise NotFoundError(f"deployment {name!r} has no rollout")
    state = document["state"]
    if state.get("kind") == "bandit":
        policy = policy_from_dict(state["policy"])
        document["shares"] = policy.shares(np.random.default_rng(0))
    elif state.get("kind") == "canary":
        document["decisions"] = canary_decisions(state)
    return document
