"""Deployments in the store: define, change and retire them, with history and lineage.

Every change writes the deployment's rows and its entry in the registry's hash-chained
audit log (entity ``deployment:NAME``, the whole definition before and after, and the
version each variant served then) in one transaction, so the log answers "what did this
endpoint serve at time T?" even for variants that follow an alias: the alias's own moves
are in the same log. :meth:`Deployments.lineage` answers "which data and code produced the
model now serving?" in one SQL statement: deployment -> variants -> (alias ->) model
version -> artifact hash -> run -> git commit, packages and data set hashes.

This module keeps the definition; answering requests by it (routing, shadow copies, canary
steps and rollback) belongs to the serving runtime.

>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> db = Database("sqlite://")
>>> registry = ModelRegistry(db, ArtifactStore(tmp_path))
>>> for _ in range(2):
...     _ = registry.register("credit", b"onnx bytes", flavor="onnx")
>>> registry.set_alias("credit", "champion", 1)
>>> deployments = Deployments(db)
>>> _ = deployments.deploy(
...     "credit-api",
...     [Variant("stable", "credit", alias="champion", weight=0.9),
...      Variant("canary", "credit", version=2, role="candidate", weight=0.1)],
...     strategy="canary")
>>> [(v.variant, v.lineage.version) for v in deployments.lineage("credit-api")]
[('stable', 1), ('canary', 2)]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError
from opsloop.registry.audit import (
    alias_version_at,
    append_audit,
    audit_entries,
    lock_audit_log,
    newest_audit_id,
)
from opsloop.registry.gate_requirement import checked_gate_requirement
from opsloop.registry.lineage import lineage_from_rows, lineage_select
from opsloop.registry.model_registry import UnknownModelError
from opsloop.registry.protection_approvals import (
    gate_flags,
    record_protection_approval,
    use_protection_approvals,
)
from opsloop.registry.separate_approvers import counted_approvers
from opsloop.registry.users import acting_user
from opsloop.serving.ab_report import ABReport, ab_report
from opsloop.serving.deployment_approvals import (
    alias_gate_guard,
    alias_guard,
    cancel_approvals,
    check_required_approvals,
    definition_digest,
    deployment_gate_guard,
    gate_covers,
    record_approval,
    required_approvals,
    required_gate,
    retired_variants,
    set_protection,
    use_approvals,
    use_up_approvals,
)
from opsloop.serving.deployment_approvals import required_approvals as required_approvals_of
from opsloop.serving.deployment_records import (
    Deployment,
    StaleRevisionError,
    Variant,
    VariantLineage,
    check_definition,
)
from opsloop.serving.deployment_settings import (
    DeploymentSettings,
    MicroBatching,
    OutputRestriction,
    check_new_variant_rules,
    check_rule_fields,
    checked_batching,
    checked_outputs,
    checked_settings,
    retire_settings,
    settings_in,
    store_settings,
)
from opsloop.serving.event_documents import checked_events
from opsloop.serving.input_detector_settings import (
    InputDetectorSetting,
    check_new_variants,
    read_input_detector,
    retire_input_detector,
    serving_signatures,
    set_input_detector,
)
from opsloop.serving.lapsed_approvals import LapsedApprovals, read_lapsed_approvals
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.retired_names import history_name, hold_name, retires
from opsloop.serving.review_queue import retire_review_items
from opsloop.serving.rollout_control import rollout_document, set_rollout
from opsloop.serving.rollout_decisions import check_decision
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_policy import DEFAULT_STEPS, RolloutPolicy
from opsloop.serving.rollout_state import retire_rollout
from opsloop.serving.shadow_agreement import ShadowAgreement, shadow_agreement
from opsloop.serving.traffic_series import TrafficSeries, traffic_series
from opsloop.store import tables
from opsloop.store.database import Database, open_database
from opsloop.store.monitor_state import lock_monitor
from opsloop.store.page_bounds import page_bounds
from opsloop.tracking.capture import current_user
from opsloop.tracking.limits import checked_int, checked_key, checked_text

_deployments, _variants = tables.deployments, tables.deployment_variants
_models, _versions, _aliases = tables.registered_models, tables.model_versions, tables.aliases

#: Columns of :meth:`Deployments.list`'s frame.
LIST_COLUMNS = (
    "name",
    "strategy",
    "automation",
    "variants",
    "required_approvals",
    "updated_ms",
    "updated_by",
)


class UnknownDeploymentError(NotFoundError, ValueError):
    """No deployment has that name (or had it at that time)."""


def _entity(name: str) -> str:
    return f"deployment:{name}"


class Deployments:
    """The deployments of a store (``db``: default the configured store).

    ``actor`` is who makes changes (default: the OS user); once users are registered, an
    actor needs the editor role to deploy or retire.

    >>> Deployments(Database("sqlite://")).list().columns.tolist()[:3]
    ['name', 'strategy', 'automation']

    The examples of the methods start from ``db``, an empty in-memory store, and
    ``registry``, the model registry on it.
    """

    def __init__(self, db: Database | None = None, *, actor: str | None = None) -> None:
        self.db = db if db is not None else open_database()
        self.actor = actor or current_user()

    def __repr__(self) -> str:
        return f"Deployments({self.db!r}, actor={self.actor!r})"

    # -- changes --------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str = "single",
        automation: str = "full_automation",
        description: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Create the deployment ``name`` or replace its definition; return it as stored.

        Every variant's model, version or alias must exist. The rules of
        :func:`~opsloop.serving.deployment_records.check_definition` apply; a broken one
        raises a ValueError naming it, and nothing is changed. With an input detector set
        (:meth:`set_input_detector`), every version the change brings must give it its
        features (:func:`~.input_detector_settings.check_new_variants`). With
        ``expected_revision`` the change is made only if the definition is still the one
        of that :attr:`~.deployment_records.Deployment.revision` (0: only if the deployment
        does not exist), else a :class:`~opsloop.errors.ConflictError` names the change
        made since (:func:`check_revision`).

        **On a protected deployment** (:meth:`protect`) the definition needs approvals of it
        (:meth:`approve`) by enough distinct approvers other than the actor who deploys it:
        the actor's own approval is recorded but never counts
        (:mod:`~opsloop.registry.separate_approvers`). The ``deploy`` entry's ``approved_by``
        names the approvers that counted; its actor is who deployed.

        **A definition identical to the current one** (the same serving fields and
        description) changes nothing: the deploy succeeds at once with the deployment as
        it is, needing no approvals and writing no audit entry, since there is no change to
        record or to guard (a blue/green :meth:`switch` and a ramp's step always change it).
        One that changes only the description serves as before: it is recorded but needs
        no approvals (they approve the serving fields, and :meth:`approve` refuses those in
        place). Either way pending approvals of the definition are used up.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> first = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> first.serving
        {'stable': 1}
        >>> Deployments(db).protect("api", 2)
        >>> again = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> again.revision == first.revision, again.updated_ms == first.updated_ms
        (True, True)
        >>> Deployments(db).deploy("api", [Variant("stable", "credit", version=5)])
        Traceback (most recent call last):
        opsloop.registry.model_registry.UnknownModelError: variant 'stable': ...no version 5
        """
        return self._deploy(
            name,
            variants,
            strategy=strategy,
            automation=automation,
            description=description,
            actor=actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def _deploy(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str,
        automation: str,
        description: str | None,
        actor: str | None,
        reason: str | None,
        expected_revision: int | None,
        decision: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """:meth:`deploy`; with ``decision``, the change a canary's ramp decided, which its
        audit entry carries once :func:`~.rollout_decisions.check_decision` accepted it
        (only :func:`~.canary_rollout.apply_transition` passes one)."""
        checked_key("deployment", name)
        if "/" in name:
            # A name is a URL segment: "api/history" would read as the history of "api".
            raise InvalidArgumentError(f"deployment {name!r}: a name may not contain '/'")
        if description is not None:
            checked_text("description", description)
        variants = tuple(variants)
        check_definition(strategy, automation, variants)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "editor")
            before = self._current(connection, name)
            check_revision(connection, name, before, expected_revision)
            if decision is not None:
                check_decision(connection, name, decision)
            elif _unchanged(before, strategy, automation, description, variants):
                # Applying what is in place changes nothing, so it needs no approvals
                # and writes no entry (a ramp's decision is always recorded); approvals
                # of it given before approve() refused them are used up, or they would
                # let a later change back to it through unapproved.
                use_up_approvals(
                    connection, name, definition_digest(strategy, automation, variants)
                )
                return before
            return self._define(
                connection,
                who,
                name,
                before,
                strategy,
                automation,
                description,
                variants,
                reason,
                decision=decision,
            )

    def switch(
        self,
        name: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Switch the blue/green deployment ``name``: the variant on standby takes all the
        traffic and the one that had it goes on standby, in one audited change (editor
        role); the deployment as stored. Switching again switches back.

        The change is a ``deploy`` of the swapped definition, checked as a deploy is: a
        protected deployment needs approvals of exactly the swapped definition, a required
        release gate must have been passed by the version that takes the traffic, and an
        input detector must be able to score it. Its audit entry's ``after`` says
        ``switched`` (``{"from": ..., "to": ...}``, the variants' names) and, without a
        ``reason``, the reason says which way it switched. A rollback undoes it as it
        undoes any deploy. ``expected_revision`` makes it conditional as in :meth:`deploy`.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = registry.register("credit", b"y", flavor="onnx")
        >>> deployments = Deployments(db)
        >>> _ = deployments.deploy("api", [
        ...     Variant("blue", "credit", version=1, weight=1.0),
        ...     Variant("green", "credit", version=2, role="candidate", weight=0.0)],
        ...     strategy="blue_green")
        >>> [(v.name, v.weight) for v in deployments.switch("api").variants]
        [('blue', 0.0), ('green', 1.0)]
        >>> deployments.history("api")["reason"].iloc[-1]
        'switch blue/green: blue -> green'
        >>> [(v.name, v.weight) for v in deployments.switch("api").variants]
        [('blue', 1.0), ('green', 0.0)]
        >>> _ = deployments.deploy("one", [Variant("stable", "credit", version=1)])
        >>> deployments.switch("one")
        Traceback (most recent call last):
        opsloop.errors.ConflictError: strategy: deployment 'one' is 'single'; only a ...
        """
        if reason is not None:
            checked_text("reason", reason)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "editor")
            before = self._current(connection, name)
            if before is None:
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            check_revision(connection, name, before, expected_revision)
            if before.strategy != "blue_green":
                raise ConflictError(
                    f"strategy: deployment {name!r} is {before.strategy!r}; only a "
                    "'blue_green' deployment switches"
                )
            live = [v for v in before.variants if v.role != "shadow"]
            # check_definition keeps a blue/green deployment at exactly one live variant
            # with weight 1 and one at 0.
            old = next(v.name for v in live if v.weight == 1.0)
            new = next(v.name for v in live if v.name != old)
            swapped = {old: 0.0, new: 1.0}
            variants = tuple(
                v.with_weight(swapped[v.name]) if v.name in swapped else v for v in before.variants
            )
            return self._define(
                connection,
                who,
                name,
                before,
                before.strategy,
                before.automation,
                before.description,
                variants,
                reason or f"switch blue/green: {old} -> {new}",
                {"switched": {"from": old, "to": new}},
            )

    def _define(
        self,
        connection: Connection,
        who: str,
        name: str,
        before: Deployment | None,
        strategy: str,
        automation: str,
        description: str | None,
        variants: tuple[Variant, ...],
        reason: str | None,
        noted: Mapping[str, object] | None = None,
        *,
        decision: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Store ``variants`` as ``name``'s definition under the deploy rules, with its
        ``deploy`` audit entry (``noted`` added to its ``after``; carrying a rollout's
        ``decision``, already checked), in ``connection``."""
        targets = [_resolve(connection, variant) for variant in variants]
        # Created again after a retire, it is a change away from what was retired as far
        # as the protected aliases it followed go: a retire lifts none of their guards.
        followed = retired_variants(connection, name) if before is None else before.variants
        numbers = [t[2] for t in targets]
        check_new_variants(connection, name, variants, numbers, before)
        check_new_variant_rules(connection, name, variants, numbers, before)
        alias_gate_guard(connection, name, followed, variants, numbers)
        gate = deployment_gate_guard(connection, name, before, variants, numbers)
        guard = alias_guard(connection, followed, variants, recreated=before is None)
        digest = definition_digest(strategy, automation, variants)
        if before is not None and digest == definition_digest(
            before.strategy, before.automation, before.variants
        ):
            # Only the description changes: nothing served does, and approvals approve
            # the serving fields (approve() refuses those in place), so none is needed;
            # any pending are used up as a re-deploy's are.
            use_up_approvals(connection, name, digest)
            approvers: tuple[str, ...] = ()
        else:
            approvers = use_approvals(connection, name, digest, who, guard)
        at = self.db.clock()
        after = _store_definition(
            connection, name, strategy, automation, description, variants, targets, who, at
        )
        append_audit(
            connection,
            who,
            "deploy",
            _entity(name),
            reason,
            None if before is None else _audited(before),
            {
                **_audited(after),
                "approved_by": list(approvers),
                **_passed_gate(gate),
                **(noted or {}),
            },
            at_ms=at,  # the definition's time is its entry's: at(name, T) agrees
            decision=decision,
        )
        return replace(after, revision=definition_revision(connection, name))

    def retire(self, name: str, *, actor: str | None = None, reason: str | None = None) -> None:
        """Remove the deployment ``name`` (its history stays in the audit log), with its
        rollout (an audited ``set_rollout`` entry whose ``before`` is where it stood, see
        :func:`~.rollout_state.retire_rollout`), its runtime settings (an audited
        ``configure`` entry, see :func:`~.deployment_settings.retire_settings`) and its
        input detector (an audited ``set_input_detector`` entry, see
        :func:`~.input_detector_settings.retire_input_detector`): a deployment created
        under the same name later starts without them.

        What was recorded under the name is kept as history under ``NAME/retired-N`` (N
        counts the name's retires), a name no deployment can take: the prediction events,
        labels, monitoring windows, evaluations, alerts, reference and monitor state
        (:mod:`opsloop.monitoring.retired_monitoring`, which also cancels the monitor's
        pending actions and retrain requests) and the review items (those still open or
        claimed are cancelled, :func:`~.review_queue.retire_review_items`). A deployment
        created later under the same name starts with no traffic, windows, alerts or
        queue; what reaches the store after the retire from the retired deployment (an
        event or a review item of a request it answered, a batch's later rows, a label
        for one of its answers) follows its history (:mod:`.retired_names`). A second
        audit entry, action ``retire`` of entity ``monitor:NAME``, names the history
        (``after``: ``{"history": "NAME/retired-N", ...}``) and counts what was cancelled.

        Approvals not yet used by a change are used up (``approvals_cancelled`` in that
        entry): they approved a change of the retired deployment, and its approvers never
        saw the one created later under the name. The name's protection
        (:meth:`protect`) stays: it guards the name, so a protected endpoint retired and
        created again is as protected as before, its release gate judged against the
        version the retired deployment's primary served
        (:func:`~.deployment_approvals.retired_baselines`); lowering the protection is
        :meth:`protect`'s, with its approvals. Retiring a protected deployment (approvals
        or a release gate) is an admin's decision. A protected alias the retired deployment
        followed guards the name as before: a deployment created again that serves its
        model otherwise needs the alias's approvals
        (:func:`~.deployment_approvals.retired_variants`).

        >>> deployments = Deployments(db)
        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = deployments.deploy("api", [Variant("stable", "credit", version=1)])
        >>> deployments.retire("api"); deployments.list().empty
        True
        >>> deployments.retire("nothing")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'nothing'
        """
        # The monitoring keeps its state by the deployment's name and acts through this
        # module, so its retire is imported only here (the monitor's lock and the history's
        # name are the store's and this package's: see tests/test_layers.py).
        from opsloop.monitoring.retired_monitoring import retire_monitoring

        with self.db.write() as connection:
            # The monitor's lock before the audit log's, the order the monitoring takes them.
            lock_monitor(connection, name)
            lock_audit_log(connection)
            # Events of this deployment written from now on see its retire (they hold the
            # name shared while they choose where they go): see .retired_names.
            hold_name(connection, name, shared=False)
            # Taking a protected endpoint down is an admin's decision, whatever protects it:
            # a gate too, since a deployment created again could otherwise start from no
            # baseline (it starts from the retired one's, see deployment_gate_guard).
            protected = required_approvals(connection, name) > 0 or (
                required_gate(connection, name) is not False
            )
            role = "admin" if protected else "editor"
            who = acting_user(connection, actor or self.actor, role)
            before = self._current(connection, name)
            if before is None:
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            deployment_id = connection.execute(
                sa.select(_deployments.c.id).where(_deployments.c.name == name)
            ).scalar_one()
            connection.execute(_variants.delete().where(_variants.c.deployment_id == deployment_id))
            connection.execute(_deployments.delete().where(_deployments.c.id == deployment_id))
            # A deployment re-created under this name must not inherit the rollout, the
            # settings, the detector, the monitoring or the review queue.
            at = self.db.clock()
            retire_rollout(connection, name, who, reason, at)
            retire_settings(connection, name, who, reason, at)
            retire_input_detector(connection, name, who, reason, at)
            history = history_name(name, retires(connection, name) + 1)
            cancelled = retire_monitoring(connection, name, history, who, reason)
            cancelled["review_items_cancelled"] = retire_review_items(connection, name, history)
            cancelled["approvals_cancelled"] = cancel_approvals(connection, name)
            append_audit(
                connection, who, "retire", _entity(name), reason, _audited(before), None, at_ms=at
            )
            # Where the monitoring's history went and what was called off, on the monitor's
            # entity: the deployment's entries keep ``after`` null for a retire.
            append_audit(
                connection,
                who,
                "retire",
                f"monitor:{name}",
                reason,
                None,
                {"history": history, **cancelled},
                at_ms=at,
            )

    def rollback(
        self,
        name: str,
        *,
        away_from: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Undo the last change of deployment ``name``'s definition: restore the definition
        it replaced, or, with ``away_from``, the newest earlier definition in which that
        variant answers no request (absent, a shadow or weight 0). Editor role; the
        deployment as stored.

        **On a protected deployment** a rollback needs no new approvals when approvals
        already covered the restored definition: it was deployed with at least as many
        approvers as the deployment (and any protected alias the change stops following,
        :func:`~.deployment_approvals.alias_guard`) requires now, not counting an approval
        by the actor who applied it then (four eyes, see
        :mod:`~opsloop.registry.separate_approvers`; for a rollback that reused approvals,
        the actor of the entry it restored). Who rolls back may be one of its approvers:
        restoring what one person approved and another applied gives nobody new power, and
        a failing canary goes back even when the user who set its ramp approved the
        definition it restores. Its approvers approved it
        to serve, and going back to it when its successor misbehaves (a canary's failing
        gate, :mod:`.canary_rollout`) is the change they already allowed. A definition they
        did not cover (deployed before the protection, or with fewer approvers) needs
        approvals of it, used up, as a deploy does; and so does every other change.

        **On a deployment that requires a release gate** a rollback needs no new verdicts
        when the restored definition passed that gate when it was deployed (its entry's
        ``passed_gate``; a definition that passed a named gate passed "any gate" too): its
        versions beat what they replaced then and served since, and going back to them is the
        escape a failing canary needs at once, not after a new gate run. A definition deployed
        before the gate was required, or under another gate, is held to the gate as a deploy
        is (:func:`~.deployment_approvals.deployment_gate_guard`, against what the primary
        serves now).

        A rollback is not refused for the deployment's input detector: a version it
        restores from before the detector was set may give it no features, and the data
        plane counts such requests unscored (:mod:`.input_screening`).

        The change is one audit entry, action ``rollback``: its ``after`` holds the
        definition with ``restores`` (the id of the entry that deployed it),
        ``approved_by``, ``approvals_reused`` (true when the earlier approvals covered
        it) and, where a gate was passed, ``passed_gate``. A rollback is never undone by
        another (the definition it left returns only through a deploy), so two rollbacks
        cannot swap definitions back and forth. ``expected_revision`` makes it conditional
        as in :meth:`deploy`.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = registry.register("credit", b"y", flavor="onnx")
        >>> deployments = Deployments(db)
        >>> _ = deployments.deploy("api", [Variant("stable", "credit", version=1)])
        >>> _ = deployments.deploy("api", [Variant("stable", "credit", version=2)])
        >>> deployments.rollback("api", reason="v2 misbehaves").serving
        {'stable': 1}
        >>> deployments.history("api")["action"].tolist()
        ['deploy', 'deploy', 'rollback']
        >>> deployments.rollback("api")
        Traceback (most recent call last):
        opsloop.errors.ConflictError: deployment 'api': its definition is a rollback already; ...
        """
        return self._rollback(
            name,
            away_from=away_from,
            actor=actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def _rollback(
        self,
        name: str,
        *,
        away_from: str | None,
        actor: str | None,
        reason: str | None,
        expected_revision: int | None,
        decision: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """:meth:`rollback`; with ``decision``, the rollback a canary's ramp decided (see
        :meth:`_deploy`)."""
        if reason is not None:
            checked_text("reason", reason)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "editor")
            before = self._current(connection, name)
            if before is None:
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            check_revision(connection, name, before, expected_revision)
            if decision is not None:
                check_decision(connection, name, decision)
            restores, document, restored_by = _restorable(connection, name, away_from)
            variants = tuple(Variant.from_dict(v) for v in document["variants"])
            strategy, automation = document["strategy"], document["automation"]
            targets = [_resolve(connection, variant) for variant in variants]
            gate = document.get("passed_gate", False)
            if not gate_covers(gate, required_gate(connection, name)):
                numbers = [t[2] for t in targets]
                gate = deployment_gate_guard(connection, name, before, variants, numbers)
            guard = alias_guard(connection, before.variants, variants)
            required = max(required_approvals(connection, name), guard[0])
            # Four eyes: the approvals that covered the definition count again, except
            # one by the person who applied it then (an entry from before the rule may
            # list them). Who rolls back is not left out: restoring what one person
            # approved and another applied gives nobody a power they lacked, and a
            # failing canary must go back when whoever set its ramp approved the champion.
            covered = counted_approvers(document.get("approved_by") or (), restored_by)
            reused = bool(required) and len(covered) >= required
            if reused:
                approvers = covered
            else:
                digest = definition_digest(strategy, automation, variants)
                approvers = use_approvals(connection, name, digest, who, guard)
            at = self.db.clock()
            after = _store_definition(
                connection,
                name,
                strategy,
                automation,
                document.get("description"),
                variants,
                targets,
                who,
                at,
            )
            append_audit(
                connection,
                who,
                "rollback",
                _entity(name),
                reason,
                _audited(before),
                {
                    **_audited(after),
                    "approved_by": list(approvers),
                    "approvals_reused": reused,
                    "restores": restores,
                    **_passed_gate(gate),
                },
                at_ms=at,
                decision=decision,
            )
            return replace(after, revision=definition_revision(connection, name))

    def protect(
        self,
        name: str,
        required_approvals: int,
        *,
        require_gate: bool | str = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Require ``required_approvals`` approvals by distinct approvers before deployment
        ``name`` changes (admin role; the name need not be deployed yet), and with
        ``require_gate`` a passed release gate (``True``: any gate, or a gate's name or file
        sha256) of each version a new definition puts traffic on, against the version its
        primary serves now (see :mod:`.deployment_approvals`). No approvals and no gate
        remove the protection. Retiring a protected deployment (approvals or a gate) needs
        the admin role, and one created again under the name is judged against the retired
        one's baseline.

        **Lowering or removing a protection is itself protected**: it needs approvals of
        exactly that change (:meth:`approve_protection`; from the protection in force, so
        they lapse when it changes) by as many distinct
        approvers other than the admin as the protection requires now, and at least one
        (:mod:`opsloop.registry.protection_approvals`); the ``protect`` entry's
        ``approved_by`` names them. Setting or tightening one needs none.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> Deployments(db).protect("api", 2)
        >>> Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        Traceback (most recent call last):
        opsloop.registry.users.PermissionDenied: deployment 'api' is protected: ...has 0
        >>> Deployments(db).protect("api", 0, require_gate="credit")
        >>> Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        Traceback (most recent call last):
        opsloop.registry.users.PermissionDenied: deployment 'api' is protected: variant 'stable'
        would serve version 1 of model 'credit', which needs a passed release gate 'credit'; ...
        """
        checked_key("deployment", name)
        require_gate = checked_gate_requirement(require_gate)
        # Before the approvals are counted: a bad count is the client's mistake, not a
        # lowering that lacks approvals.
        check_required_approvals(required_approvals)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "admin")
            current = (required_approvals_of(connection, name), required_gate(connection, name))
            approved = use_protection_approvals(
                connection,
                _entity(name),
                f"deployment {name!r}",
                current,
                (required_approvals, require_gate),
                who,
                "to approve: opsloop deployments approve-protection "
                f"{name} {required_approvals}{gate_flags(require_gate)}",
            )
            before, before_gate = set_protection(connection, name, required_approvals, require_gate)
            append_audit(
                connection,
                who,
                "protect",
                _entity(name),
                reason,
                {"required_approvals": before, "require_gate": before_gate},
                {
                    "required_approvals": required_approvals,
                    "require_gate": require_gate,
                    **approved,
                },
            )

    def approve_protection(
        self,
        name: str,
        required_approvals: int,
        *,
        require_gate: bool | str = False,
        actor: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Approve lowering or removing the protection of deployment ``name`` to
        ``required_approvals`` and ``require_gate`` (approver role); return how many distinct
        approvers approved that change so far. An admin applies it with :meth:`protect`,
        which counts the approvals of exactly that protection by people other than the
        admin (:mod:`opsloop.registry.protection_approvals`); a change that does not lower
        the protection needs none, and approving it is refused
        (:class:`~opsloop.errors.ConflictError`).

        >>> from opsloop.registry.users import add_user
        >>> for user, role in (("root", "admin"), ("ana", "approver")):
        ...     _ = add_user(db, user, role)
        >>> Deployments(db, actor="root").protect("api", 1)
        >>> Deployments(db, actor="root").protect("api", 0)
        Traceback (most recent call last):
        opsloop.registry.users.PermissionDenied: deployment 'api' is protected by 1
        approval(s): lowering it to no protection needs 1 approval(s) ...
        >>> Deployments(db, actor="ana").approve_protection("api", 0, comment="sunset")
        1
        >>> Deployments(db, actor="root").protect("api", 0)
        >>> Deployments(db).history("api")["after"].iloc[-1]["approved_by"]
        ['ana']
        >>> Deployments(db, actor="ana").approve_protection("web", 0)
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        checked_key("deployment", name)
        require_gate = checked_gate_requirement(require_gate)
        check_required_approvals(required_approvals)
        if comment is not None:
            checked_text("comment", comment)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "approver")
            current = (required_approvals_of(connection, name), required_gate(connection, name))
            if current == (0, False) and self._current(connection, name) is None:
                # Neither deployed nor protected: the name is unknown, not unprotected.
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            count = record_protection_approval(
                connection,
                _entity(name),
                f"deployment {name!r}",
                current,
                (required_approvals, require_gate),
                who,
                comment,
            )
            append_audit(
                connection,
                who,
                "approve_protection",
                _entity(name),
                comment,
                None,
                {"required_approvals": required_approvals, "require_gate": require_gate},
            )
        return count

    def approve(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str = "single",
        automation: str = "full_automation",
        actor: str | None = None,
        comment: str | None = None,
        expected_revision: int | None = None,
    ) -> int:
        """Approve deploying exactly this definition as ``name`` (approver role); return how
        many distinct approvers approved it so far. The definition must be valid and serve
        registered models. ``expected_revision`` (see :meth:`deploy`) approves it only as a
        change of that definition: one made from what a person saw, not from what replaced it.

        An approval by the user who then deploys the definition is kept but does not count
        toward that change (:mod:`~opsloop.registry.separate_approvers`): the count returned
        is of every approver so far. The definition in place already (its serving fields)
        has nothing to approve: a :class:`~opsloop.errors.ConflictError` says so.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> Deployments(db, actor="x").approve("api", [Variant("stable", "credit", version=1)])
        Traceback (most recent call last):
        opsloop.registry.users.PermissionDenied: 'x' is not a registered user: approvals ...
        """
        checked_key("deployment", name)
        if comment is not None:
            checked_text("comment", comment)
        variants = tuple(variants)
        check_definition(strategy, automation, variants)
        digest = definition_digest(strategy, automation, variants)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = acting_user(connection, actor or self.actor, "approver")
            if expected_revision is not None:
                check_revision(connection, name, self._current(connection, name), expected_revision)
            current = self._current(connection, name)
            if current is not None and digest == definition_digest(
                current.strategy, current.automation, current.variants
            ):
                # Approving what serves already approves no change, and left pending it
                # would let a later change back to it through unapproved.
                raise ConflictError(
                    f"deployment {name!r} serves this definition already: nothing to approve"
                )
            targets = [_resolve(connection, variant) for variant in variants]
            count = record_approval(connection, name, digest, who, comment)
            serving = {v.name: number for v, (_, _, number) in zip(variants, targets, strict=True)}
            append_audit(
                connection,
                who,
                "approve",
                _entity(name),
                comment,
                None,
                {
                    "digest": digest,
                    "strategy": strategy,
                    "automation": automation,
                    "variants": [v.to_dict() for v in variants],
                    "serving": serving,
                },
            )
        return count

    def set_rollout(
        self,
        name: str,
        *,
        steps: Sequence[float] = DEFAULT_STEPS,
        min_requests: int = 100,
        gates: Mapping[str, Mapping[str, object]] | None = None,
        bandit: str = "bernoulli_thompson",
        bandit_params: dict[str, float] | None = None,
        seed: int | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict:
        """Let deployment ``name``'s traffic move on its own (editor role): a ``canary``
        ramps through ``steps`` while its ``gates`` hold and rolls back when one fails; a
        ``bandit`` routes by the ``bandit`` policy learning from rewards (see
        :mod:`~opsloop.serving.rollout_policy` for every setting). The state starts afresh;
        a canary's candidate moves to the first step at once, in the same change: when the
        control plane refuses that move (approvals of the first step's definition missing
        on a protected deployment), nothing is set and its error says why, naming
        ``steps.0`` (:mod:`~opsloop.serving.rollout_control`). Returns :meth:`rollout`.

        >>> for _ in range(2):
        ...     _ = registry.register("credit", b"x", flavor="onnx")
        >>> deployments = Deployments(db)
        >>> _ = deployments.deploy("api", [Variant("stable", "credit", version=1, weight=0.9),
        ...     Variant("canary", "credit", version=2, role="candidate", weight=0.1)],
        ...     strategy="canary")
        >>> rollout = deployments.set_rollout("api", steps=[0.05, 0.5, 1.0], min_requests=50)
        >>> rollout["state"]["share"], deployments.get("api").variants[1].weight
        (0.05, 0.05)
        >>> deployments.set_rollout("api", steps=[0.5, 0.05, 1.0])
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: steps: must increase, got [0.5, 0.05, 1.0]
        """
        checked_key("deployment", name)
        if reason is not None:
            checked_text("reason", reason)
        policy = RolloutPolicy(
            steps=tuple(steps),
            min_requests=min_requests,
            gates={"errors": {}} if gates is None else gates,
            bandit=bandit,
            bandit_params=bandit_params or {},
            seed=seed,
        )
        return set_rollout(self, name, policy, actor=actor or self.actor, reason=reason)

    def rollout(self, name: str) -> dict:
        """Deployment ``name``'s rollout: its policy; its state (a canary's step and
        share, each gate's statistic, samples and threshold, the last decision with its
        evidence; a bandit's per-arm sums); a canary's gate ``decisions`` and a bandit's
        traffic ``shares`` now. 404 when none was set.

        >>> Deployments(db).rollout("api")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: deployment 'api' has no rollout
        """
        checked_key("deployment", name)
        return rollout_document(self.db, name)

    # -- what a data plane on another host writes and reads -------------------------------

    def observe_rollout(
        self,
        name: str,
        *,
        quiet: Sequence[Mapping[str, Any]] = (),
        request: Mapping[str, Any] | None = None,
    ) -> None:
        """Read a data plane's answers into ``name``'s ramping canary (see
        :meth:`~.rollout_observer.RolloutObserver.record`): ``quiet`` as ``{"share",
        "requests"}`` pairs, ``request`` as ``{"candidate", "failed", "latency_ms",
        "share", "disagrees", "anomalous", "flagged"}`` (the last two may be left out). Nothing
        happens without a canary rollout.

        >>> Deployments(db).observe_rollout("api", quiet=[{"share": 0.1, "requests": 3}])
        """
        checked_key("deployment", name)
        counts = [(float(q["share"]), int(q["requests"])) for q in quiet]
        RolloutObserver(self.db, self).record(
            name, counts, None if request is None else dict(request)
        )

    def revision(self) -> int:
        """The newest audit entry's id (0 for an empty log): every change of a deployment,
        its settings or rollout, an alias, a user or a token appends an entry in its own
        transaction, so a data plane that reads the same number has seen every change.

        >>> before = Deployments(db).revision()
        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> Deployments(db).revision() > before
        True
        """
        return newest_audit_id(self.db)

    def record_events(self, events: Sequence[PredictionEvent | Mapping[str, Any]]) -> int:
        """Keep ``events`` (prediction events, or their documents) in one transaction; how
        many were kept. Each is held first to the wire's type, as a data plane's batch is
        over HTTP (:func:`~.event_documents.checked_events`): a field out of its range
        refuses the call, naming the event, the field and the rule, and nothing of it is
        kept.

        >>> from opsloop.serving.prediction_events import read_prediction_events
        >>> Deployments(db).record_events([{"deployment": "api", "variant": "a",
        ...     "role": "primary", "model": "m", "version": 1, "request_id": "r1",
        ...     "inputs": [{"x": 1}], "output": {"predictions": [0]}, "latency_ms": 0.5,
        ...     "at_ms": 1000}])
        1
        >>> read_prediction_events(db, "api")["request_id"].tolist()
        ['r1']
        """
        kept = checked_events(events)
        # Feedback that waited for these answers is read as feedback joined at once is.
        rollouts = RolloutObserver(self.db, self)
        StoreEventSink(
            self.db,
            read_joined=rollouts.read_joined,
            read_joined_labels=rollouts.read_joined_labels,
        ).write(kept)
        return len(kept)

    def feedback(
        self,
        name: str,
        request_id: str,
        *,
        label: Any = None,
        reward: float | None = None,
        actor: str | None = None,
    ) -> str:
        """Keep the ``label`` and/or ``reward`` of the answer ``request_id`` of deployment
        ``name`` (see :func:`~.prediction_feedback.record_feedback`) and pass it to its
        rollout: a label to a ramping canary's metric gate, a reward to its bandit. The
        answer may be one a deployment of the name gave before it was retired, whether or
        not the name was taken again: the feedback is kept with that deployment's history
        and a reward is checked against its bandit (:mod:`.answering_deployment`). An answer
        not in the store yet (a worker's batch of events on its way) is waited for: the
        feedback is joined and read when its event is written
        (:mod:`opsloop.store.waiting_feedback` says the bounds). Whether it was
        ``joined`` to its recorded answer or is ``waiting`` for it, as the data plane says.

        >>> Deployments(db).feedback("web", "r1", label=1)
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        checked_key("deployment", name)
        with self.db.read() as connection:
            if self._current(connection, name) is None and not retires(connection, name):
                raise UnknownDeploymentError(f"no deployment named {name!r}")
        return RolloutObserver(self.db, self).record_feedback(
            name, request_id, label=label, reward=reward, actor=actor or self.actor
        )

    # -- reads ----------------------------------------------------------------------------

    def _current(self, connection: Connection, name: str) -> Deployment | None:
        head = (
            connection.execute(sa.select(_deployments).where(_deployments.c.name == name))
            .mappings()
            .first()
        )
        if head is None:
            return None
        serving = sa.func.coalesce(_variants.c.version_id, _aliases.c.version_id)
        rows = connection.execute(
            sa.select(
                _variants.c.name,
                _variants.c.role,
                _variants.c.weight,
                _variants.c.alias,
                _variants.c.shadow_sample,
                _models.c.name.label("model"),
                _versions.c.version,
            )
            .select_from(
                _variants.join(_models, _models.c.id == _variants.c.model_id)
                .outerjoin(
                    _aliases,
                    sa.and_(
                        _aliases.c.model_id == _variants.c.model_id,
                        _aliases.c.name == _variants.c.alias,
                    ),
                )
                .outerjoin(_versions, _versions.c.id == serving)
            )
            .where(_variants.c.deployment_id == head["id"])
            .order_by(_variants.c.position)
        ).all()
        variants = tuple(
            Variant(
                row.name,
                row.model,
                version=None if row.alias is not None else row.version,
                alias=row.alias,
                role=row.role,
                weight=row.weight,
                # NULL: a shadow stored before it could be sampled answers every copy.
                shadow_sample=1.0 if row.shadow_sample is None else row.shadow_sample,
            )
            for row in rows
        )
        return Deployment(
            name=name,
            strategy=head["strategy"],
            automation=head["automation"],
            variants=variants,
            description=head["description"],
            updated_ms=head["updated_ms"],
            updated_by=head["updated_by"],
            serving={row.name: row.version for row in rows},
            required_approvals=required_approvals(connection, name),
            required_gate=required_gate(connection, name),
            generation=retires(connection, name),
            revision=definition_revision(connection, name),
        )

    def get(self, name: str) -> Deployment:
        """The deployment as defined now, with the version each variant serves.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = registry.register("credit", b"y", flavor="onnx")
        >>> registry.set_alias("credit", "champion", 2)
        >>> variants = [Variant("stable", "credit", alias="champion")]
        >>> _ = Deployments(db).deploy("api", variants)
        >>> Deployments(db).get("api").serving
        {'stable': 2}
        >>> Deployments(db).get("web")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        with self.db.read() as connection:
            found = self._current(connection, name)
        if found is None:
            raise UnknownDeploymentError(f"no deployment named {name!r}")
        return found

    def settings(self, name: str) -> DeploymentSettings:
        """The runtime settings of deployment ``name``: its confidence threshold and model
        assertion rules (see :mod:`.deployment_settings`).

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> Deployments(db).settings("api").revision
        0
        >>> Deployments(db).settings("web")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        with self.db.read() as connection:
            if self._current(connection, name) is None:
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            return settings_in(connection, name)

    def configure(
        self,
        name: str,
        *,
        confidence_threshold: float | None = None,
        assertions: Sequence[Mapping[str, object]] = (),
        batching: MicroBatching | Mapping[str, Any] | None = None,
        outputs: Mapping[str, OutputRestriction | Mapping[str, Any]] | None = None,
        routing_key_field: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> DeploymentSettings:
        """Replace the runtime settings of deployment ``name`` as one audited change (see
        :mod:`.deployment_settings`): an editor may configure, a protected deployment needs
        an admin. ``batching`` (``{"max_batch_size", "max_wait_ms"}``) turns on
        micro-batching of its requests; ``outputs`` (variant name -> ``{"decimals",
        "top_k", "label_only"}``) restricts what a variant's answers say;
        ``routing_key_field`` names the records' field whose value routes a request that
        brings no routing key (sticky A/B assignment per user). A canary's rate gates
        assume each request reaches the candidate independently; with sticky routing that
        holds only while users' event rates are alike (see
        :class:`~opsloop.analysis.sequential.RateGate`).

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> unsure = {"name": "unsure", "when": "0.45 <= probability <= 0.55",
        ...           "action": "review"}
        >>> Deployments(db).configure("api", assertions=[unsure]).revision
        1
        >>> Deployments(db).history("api")["action"].tolist()
        ['deploy', 'configure']
        >>> Deployments(db).configure("api", outputs={"stable": {"top_k": 1}}).outputs
        {'stable': OutputRestriction(decimals=None, top_k=1, label_only=False)}
        >>> Deployments(db).configure("api", routing_key_field="user_id").routing_key_field
        'user_id'
        >>> Deployments(db).configure("api", routing_key_field="")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: routing_key_field key '': length must be 1 to 250
        >>> Deployments(db).configure("web")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        threshold, rules_json = checked_settings(confidence_threshold, assertions)
        batched = checked_batching(batching)
        if routing_key_field is not None:
            checked_key("routing_key_field", routing_key_field)
        with self.db.write() as connection:
            lock_audit_log(connection)
            role = "admin" if required_approvals(connection, name) else "editor"
            who = acting_user(connection, actor or self.actor, role)
            current = self._current(connection, name)
            if current is None:
                raise UnknownDeploymentError(f"no deployment named {name!r}")
            restricted = checked_outputs(outputs, [v.name for v in current.variants])
            # A rule on a field the served versions' records lack would make every request
            # a 503; it is refused here, where the signatures are known.
            check_rule_fields(rules_json, serving_signatures(connection, current))
            return store_settings(
                connection,
                name,
                threshold,
                rules_json,
                actor=who,
                at_ms=self.db.clock(),
                reason=reason,
                batching=batched,
                outputs=restricted,
                routing_key_field=routing_key_field,
            )

    def input_detector(self, name: str) -> InputDetectorSetting:
        """Deployment ``name``'s input anomaly detector and the action on a flagged request
        (see :mod:`.input_detector_settings`).

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> setting = Deployments(db).input_detector("api")
        >>> setting.detector, setting.action, setting.revision
        (None, 'flag', 0)
        """
        return read_input_detector(self, name)

    def set_input_detector(
        self,
        name: str,
        detector: Any = None,
        *,
        action: str = "flag",
        actor: str | None = None,
        reason: str | None = None,
    ) -> InputDetectorSetting:
        """Replace deployment ``name``'s input anomaly detector (a
        :class:`~opsloop.learn.robustness.portable_detector.PortableInputDetector` or its
        dictionary; ``None`` removes it) and ``action`` (``flag`` or ``review``) as one
        audited change; its features must be numeric columns of every variant's signature
        (see :mod:`.input_detector_settings`).

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> Deployments(db).set_input_detector("api", None, action="review").revision
        1
        >>> Deployments(db).history("api")["action"].tolist()
        ['deploy', 'set_input_detector']
        >>> Deployments(db).set_input_detector("api", None, action="refuse")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: action: must be one of flag, review, got 'refuse'
        """
        if reason is not None:
            checked_text("reason", reason)
        return set_input_detector(
            self, name, detector, action=action, actor=actor or self.actor, reason=reason
        )

    def list(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        model: str | None = None,
        version: int | None = None,
    ) -> pd.DataFrame:
        """One row per deployment, by name: the ``limit`` deployments (default: all) after
        the first ``offset``; with ``model`` or ``version``, only those with a variant
        serving that model now, or that version (of that model, if given; fixed or through
        an alias);
        ``variants`` reads ``name=MODEL/VERSION`` or ``name=MODEL@ALIAS`` with the role and
        weight, in order.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> Deployments(db).list()[["name", "strategy", "variants"]].values.tolist()
        [['api', 'single', 'stable=credit/1 (primary, 1)']]
        >>> _ = Deployments(db).deploy("web", [Variant("stable", "credit", version=1)])
        >>> Deployments(db).list(limit=1, offset=1)["name"].tolist()
        ['web']
        >>> _ = registry.register("credit", b"y", flavor="onnx")
        >>> _ = Deployments(db).deploy("web", [Variant("stable", "credit", version=2)])
        >>> Deployments(db).list(model="credit", version=2)["name"].tolist()
        ['web']
        >>> registry.set_alias("credit", "prod", 1)
        >>> _ = Deployments(db).deploy("app", [Variant("stable", "credit", alias="prod")])
        >>> Deployments(db).list(model="credit", version=1)["name"].tolist()
        ['api', 'app']
        """
        limit, offset = page_bounds(limit, offset)
        protected = tables.protected_deployments
        heads_query = sa.select(_deployments, protected.c.required_approvals).select_from(
            _deployments.outerjoin(protected, protected.c.name == _deployments.c.name)
        )
        if model is not None or version is not None:
            heads_query = heads_query.where(_deployments.c.id.in_(_serving(model, version)))
        with self.db.read() as connection:
            heads = (
                connection.execute(
                    heads_query.order_by(_deployments.c.name).limit(limit).offset(offset)
                )
                .mappings()
                .all()
            )
            rows = connection.execute(
                sa.select(
                    _variants.c.deployment_id,
                    _variants.c.name,
                    _variants.c.role,
                    _variants.c.weight,
                    _variants.c.alias,
                    _variants.c.shadow_sample,
                    _models.c.name.label("model"),
                    _versions.c.version,
                )
                .select_from(
                    _variants.join(_models, _models.c.id == _variants.c.model_id).outerjoin(
                        _versions, _versions.c.id == _variants.c.version_id
                    )
                )
                .where(_variants.c.deployment_id.in_([head["id"] for head in heads]))
                .order_by(_variants.c.deployment_id, _variants.c.position)
            ).all()
        described: dict[int, list[str]] = {}
        for row in rows:
            ref = f"{row.model}@{row.alias}" if row.alias else f"{row.model}/{row.version}"
            sampled = row.shadow_sample is not None and row.shadow_sample < 1
            described.setdefault(row.deployment_id, []).append(
                f"{row.name}={ref} ({row.role}, {row.weight:g}"
                + (f", sample {row.shadow_sample:g})" if sampled else ")")
            )
        return pd.DataFrame(
            [
                {
                    "name": head["name"],
                    "strategy": head["strategy"],
                    "automation": head["automation"],
                    "variants": "; ".join(described.get(head["id"], [])),
                    "required_approvals": head["required_approvals"] or 0,
                    "updated_ms": head["updated_ms"],
                    "updated_by": head["updated_by"],
                }
                for head in heads
            ],
            columns=list(LIST_COLUMNS),
        )

    def lineage(self, name: str, variant: str | None = None) -> tuple[VariantLineage, ...]:
        """For each variant (or the one named): the lineage of the version it serves now.

        Deployment -> variant -> (alias ->) version -> artifact -> run -> commit, packages
        and data set hashes, in one SQL statement.

        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> [(v.variant, v.lineage.model, v.lineage.version)
        ...  for v in Deployments(db).lineage("api")]
        [('stable', 'credit', 1)]
        >>> Deployments(db).lineage("web")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'web'
        """
        serving = sa.func.coalesce(_variants.c.version_id, _aliases.c.version_id)
        start = (
            _deployments.join(_variants, _variants.c.deployment_id == _deployments.c.id)
            .outerjoin(
                _aliases,
                sa.and_(
                    _aliases.c.model_id == _variants.c.model_id,
                    _aliases.c.name == _variants.c.alias,
                ),
            )
            .join(_versions, _versions.c.id == serving)
        )
        where = [_deployments.c.name == name]
        if variant is not None:
            where.append(_variants.c.name == variant)
        query = (
            lineage_select(
                start,
                *where,
                columns=(
                    _variants.c.name.label("variant"),
                    _variants.c.role.label("variant_role"),
                    _variants.c.weight.label("variant_weight"),
                    _variants.c.alias.label("variant_alias"),
                    _variants.c.position.label("variant_position"),
                ),
            )
            .order_by(None)
            .order_by(_variants.c.position, tables.run_inputs.c.name)
        )
        with self.db.read() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            self.get(name)  # raises when the deployment does not exist
            raise UnknownDeploymentError(f"deployment {name!r} has no variant {variant!r}")
        grouped: dict[str, list] = {}
        for row in rows:
            grouped.setdefault(row["variant"], []).append(row)
        return tuple(
            VariantLineage(
                deployment=name,
                variant=key,
                role=group[0]["variant_role"],
                weight=group[0]["variant_weight"],
                lineage=lineage_from_rows(group, group[0]["variant_alias"]),
            )
            for key, group in grouped.items()
        )

    def at(self, name: str, at_ms: int) -> Deployment | None:
        """The deployment as it was at ``at_ms`` (``None`` if it did not exist then), with
        the version each variant served then: its fixed version, or where its alias
        pointed at that time.

        >>> from opsloop.store.database import now_ms
        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
        >>> Deployments(db).at("api", 0), Deployments(db).at("api", now_ms()).serving
        (None, {'stable': 1})
        """
        log = tables.audit_log
        with self.db.read() as connection:
            row = connection.execute(
                sa.select(log.c.id, log.c.after_json)
                .where(
                    log.c.entity == _entity(name),
                    log.c.action.in_(DEFINING_ACTIONS),
                    log.c.at_ms <= checked_int("at_ms", at_ms),
                )
                .order_by(log.c.id.desc())
                .limit(1)
            ).first()
            if row is None or row.after_json is None:
                return None
            document = json.loads(row.after_json)
            document["generation"] = connection.execute(
                sa.select(sa.func.count()).where(
                    log.c.entity == f"monitor:{name}", log.c.action == "retire", log.c.id < row.id
                )
            ).scalar_one()
            variants = tuple(Variant.from_dict(v) for v in document["variants"])
            serving = {
                v.name: v.version
                if v.alias is None
                else alias_version_at(connection, v.model, v.alias, at_ms)
                for v in variants
            }
        return Deployment.from_dict(
            {**document, "name": name, "serving": serving, "revision": row.id}
        )

    def traffic(
        self,
        name: str,
        *,
        since_ms: int,
        until_ms: int | None = None,
        buckets: int = 60,
    ) -> TrafficSeries:
        """The deployment's answers per variant from ``since_ms`` to ``until_ms`` (default:
        now) in ``buckets`` equal buckets: requests per second, latency p50 and p99, errors
        (see :mod:`~opsloop.serving.traffic_series`; a retired deployment's under its history
        name, ``NAME/retired-N``, see :meth:`retire`).

        >>> Deployments(db).traffic("api", since_ms=0, until_ms=60_000).variants
        []
        """
        until = self.db.clock() if until_ms is None else until_ms
        return traffic_series(self.db, name, since_ms=since_ms, until_ms=until, buckets=buckets)

    def ab_report(
        self,
        name: str,
        *,
        outcome: str | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
    ) -> ABReport:
        """Each live arm of the deployment against its primary: requests, outcomes and
        their mean, the difference with its ``1 - alpha`` interval, the p-value and the
        sample size per arm for ``power`` (see :mod:`~opsloop.serving.ab_report`).

        >>> Deployments(db).ab_report("api")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'api'
        """
        checked_key("deployment", name)
        return ab_report(self.db, self.get(name), outcome=outcome, alpha=alpha, power=power)

    def shadow_agreement(
        self, name: str, *, since_ms: int, until_ms: int | None = None
    ) -> ShadowAgreement:
        """Per shadow variant over the primary's answers from ``since_ms`` to ``until_ms``
        (default: now): copies sent, answered, failed and unanswered, those its
        ``shadow_sample`` (as defined now) left out, and agreement with the primary on the
        answered copies (see :mod:`~opsloop.serving.shadow_agreement`).

        >>> Deployments(db).shadow_agreement("api", since_ms=0, until_ms=60_000).variants
        []
        """
        checked_key("deployment", name)
        until = self.db.clock() if until_ms is None else until_ms
        with self.db.read() as connection:
            current = self._current(connection, name)
        # A shadow that answered nothing in the window still shows, with its copies unanswered.
        shadows = {
            v.name: v.shadow_sample
            for v in (current.variants if current else ())
            if v.role == "shadow"
        }
        return shadow_agreement(
            self.db,
            name,
            since_ms=since_ms,
            until_ms=until,
            shadows=tuple(shadows),
            samples=shadows,
        )

    def history(
        self,
        name: str,
        *,
        last: int | None = None,
        before: int | None = None,
        action: str | None = None,
    ) -> pd.DataFrame:
        """Every change of the deployment, oldest first (the audit log's entries); with
        ``action``, the changes of that action only (``deploy``, ``approve``...); with
        ``before``, those whose entry id is lower; with ``last``, the newest ``last`` of
        those (a page of a long history).

        >>> deployments = Deployments(db)
        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> _ = deployments.deploy("api", [Variant("stable", "credit", version=1)])
        >>> deployments.retire("api", reason="replaced by api-v2")
        >>> deployments.history("api")[["action", "reason"]].values.tolist()
        [['deploy', None], ['retire', 'replaced by api-v2']]
        >>> deployments.history("api", last=1)["action"].tolist()
        ['retire']
        >>> deployments.history("api", action="deploy")["action"].tolist()
        ['deploy']
        """
        return audit_entries(self.db, entity=_entity(name), last=last, before=before, action=action)

    def lapsed_approvals(self, name: str) -> LapsedApprovals:
        """The pending approvals of deployment ``name`` whose approvers can no longer
        approve (disabled, or demoted below the approver role since,
        :mod:`opsloop.registry.approver_standing`), by kind
        (:class:`~.lapsed_approvals.LapsedApprovals`): ``definitions`` maps the approvers of
        pending approvals of a definition not deployed yet to why; ``protection`` lists the
        pending approvals of lowering its protection, each with why and the protection it
        approves. Empty when every pending approval counts, or none is pending.

        >>> from opsloop.registry.users import add_user, set_user_disabled
        >>> for user, role in (("root", "admin"), ("ana", "approver"), ("bo", "approver")):
        ...     _ = add_user(db, user, role)
        >>> _ = registry.register("credit", b"x", flavor="onnx")
        >>> Deployments(db, actor="root").protect("api", 1)
        >>> Deployments(db, actor="ana").approve("api", [Variant("stable", "credit", version=1)])
        1
        >>> Deployments(db, actor="bo").approve_protection("api", 0)
        1
        >>> for user in ("ana", "bo"):
        ...     set_user_disabled(db, user, actor="root")
        >>> lapsed = Deployments(db).lapsed_approvals("api")
        >>> lapsed.definitions
        {'ana': 'user ana is disabled'}
        >>> [(a.approver, a.why, a.required_approvals) for a in lapsed.protection]
        [('bo', 'user bo is disabled', 0)]
        """
        checked_key("deployment", name)
        with self.db.read() as connection:
            return read_lapsed_approvals(connection, name)


def _serving(model: str | None, version: int | None) -> sa.Select:
    """The ids of the deployments with a variant serving now ``model`` (any model if
    ``None``), in ``version`` (any if ``None``), fixed or through an alias."""
    serving = sa.func.coalesce(_variants.c.version_id, _aliases.c.version_id)
    query = (
        sa.select(_variants.c.deployment_id)
        .join(_models, _models.c.id == _variants.c.model_id)
        .outerjoin(
            _aliases,
            sa.and_(
                _aliases.c.model_id == _variants.c.model_id,
                _aliases.c.name == _variants.c.alias,
            ),
        )
    )
    if model is not None:
        query = query.where(_models.c.name == model)
    if version is not None:
        query = query.join(_versions, _versions.c.id == serving).where(
            _versions.c.version == version
        )
    return query


def _resolve(connection: Connection, variant: Variant) -> tuple[int, int, int]:
    """The model id, version id and version number a variant serves now (checked to exist)."""
    where = f"variant {variant.name!r}"
    model_id = connection.execute(
        sa.select(_models.c.id).where(_models.c.name == variant.model)
    ).scalar()
    if model_id is None:
        raise UnknownModelError(f"{where}: no registered model {variant.model!r}")
    if variant.alias is not None:
        found = connection.execute(
            sa.select(_versions.c.id, _versions.c.version)
            .join(_aliases, _aliases.c.version_id == _versions.c.id)
            .where(_aliases.c.model_id == model_id, _aliases.c.name == variant.alias)
        ).first()
        missing = f"alias {variant.alias!r}"
    else:
        found = connection.execute(
            sa.select(_versions.c.id, _versions.c.version).where(
                _versions.c.model_id == model_id, _versions.c.version == variant.version
            )
        ).first()
        missing = f"version {variant.version}"
    if found is None:
        raise UnknownModelError(f"{where}: model {variant.model!r} has no {missing}")
    return model_id, found.id, found.version


#: The audit actions that set or end a deployment's definition.
DEFINING_ACTIONS = ("deploy", "rollback", "retire")


def definition_revision(connection: Connection, name: str) -> int:
    """The id of the newest audit entry that set deployment ``name``'s definition (a
    ``deploy`` or ``rollback``; 0: none).

    >>> with Database("sqlite://").read() as c:
    ...     definition_revision(c, "api")
    0
    """
    log = tables.audit_log
    newest = connection.execute(
        sa.select(sa.func.max(log.c.id)).where(
            log.c.entity == _entity(name), log.c.action.in_(("deploy", "rollback"))
        )
    ).scalar()
    return int(newest or 0)


def check_revision(
    connection: Connection, name: str, current: Deployment | None, expected: int | None
) -> None:
    """Refuse (409) a change of deployment ``name`` made from the definition of revision
    ``expected`` when ``current`` (as read in the change's locked transaction) has another:
    the message names the change made since, by whom and when. ``None`` checks nothing;
    0 expects no deployment.

    >>> with Database("sqlite://").read() as c:
    ...     check_revision(c, "api", None, 0)
    ...     check_revision(c, "api", None, 7)
    Traceback (most recent call last):
    opsloop.serving.deployment_records.StaleRevisionError: expected_revision: deployment 'api' ...
    """
    if expected is None:
        return
    expected = checked_int("expected_revision", expected, 0)
    now = 0 if current is None else current.revision
    if now == expected:
        return
    if current is None:
        raise StaleRevisionError(
            f"expected_revision: deployment {name!r} was read at revision {expected} and "
            "no longer exists; read it again before changing it"
        )
    log = tables.audit_log
    row = connection.execute(
        sa.select(log.c.action, log.c.actor, log.c.at_ms, log.c.reason).where(log.c.id == now)
    ).first()
    made = (
        ""
        if row is None
        else (
            f": {row.action} by {row.actor} at "
            f"{pd.Timestamp(row.at_ms, unit='ms'):%Y-%m-%d %H:%M:%S} UTC"
            + ("" if not row.reason else f" ({row.reason[:200]})")
        )
    )
    raise StaleRevisionError(
        f"expected_revision: deployment {name!r} changed since revision {expected}; it is "
        f"at revision {now}{made}; read it again before changing it"
    )


def _unchanged(
    current: Deployment | None,
    strategy: str,
    automation: str,
    description: str | None,
    variants: Sequence[Variant],
) -> bool:
    """Whether a deploy of this definition leaves ``current`` as it is: the same serving
    fields (the approvals' digest) and description.

    >>> now = Deployment("api", "single", "full_automation", (Variant("s", "m", version=1),),
    ...     None, 0, "ana", {"s": 1})
    >>> _unchanged(now, "single", "full_automation", None, [Variant("s", "m", version=1, weight=1)])
    True
    >>> _unchanged(now, "single", "full_automation", "v1", [Variant("s", "m", version=1)])
    False
    >>> _unchanged(None, "single", "full_automation", None, [Variant("s", "m", version=1)])
    False
    """
    return (
        current is not None
        and current.description == description
        and definition_digest(current.strategy, current.automation, current.variants)
        == definition_digest(strategy, automation, variants)
    )


def _answers_nothing(document: dict, variant: str) -> bool:
    return not any(
        v["name"] == variant and v["role"] != "shadow" and float(v["weight"]) > 0
        for v in document["variants"]
    )


def _restorable(connection: Connection, name: str, away_from: str | None) -> tuple[int, dict, str]:
    """The id, ``after`` and actor of the audit entry whose definition a rollback of
    ``name`` restores (see :meth:`Deployments.rollback`), or a
    :class:`~opsloop.errors.ConflictError` saying why there is none."""
    log = tables.audit_log
    rows = connection.execute(
        sa.select(log.c.id, log.c.action, log.c.after_json, log.c.actor)
        .where(log.c.entity == _entity(name), log.c.action.in_(DEFINING_ACTIONS))
        .order_by(log.c.id.desc())
    )
    current = next(rows)
    if current.action == "rollback":
        raise ConflictError(
            f"deployment {name!r}: its definition is a rollback already; what it replaced "
            "comes back only through a deploy"
        )
    for row in rows:
        if row.action == "retire":
            break
        document = json.loads(row.after_json)
        if away_from is None or _answers_nothing(document, away_from):
            return row.id, document, _applied_by(connection, row.actor, document)
    wanted = "" if away_from is None else f" in which variant {away_from!r} answers nothing"
    raise ConflictError(
        f"deployment {name!r}: no earlier definition{wanted} to roll back to since it was "
        "(re)created"
    )


def _applied_by(connection: Connection, actor: str, document: dict) -> str:
    """Who applied the definition an entry (by ``actor``, ``after`` ``document``) records,
    as far as its approvals go: a rollback that reused approvals carries those of the
    entry it restored, so the applier they exclude is that entry's (followed along
    ``restores``); any other entry's is its actor."""
    log = tables.audit_log
    seen: set[int] = set()
    while document.get("approvals_reused") and isinstance(document.get("restores"), int):
        restores = int(document["restores"])
        if restores in seen:
            break
        seen.add(restores)
        row = connection.execute(
            sa.select(log.c.actor, log.c.after_json).where(log.c.id == restores)
        ).first()
        if row is None:
            break
        actor, document = row.actor, json.loads(row.after_json)
    return actor


def _store_definition(
    connection: Connection,
    name: str,
    strategy: str,
    automation: str,
    description: str | None,
    variants: tuple[Variant, ...],
    targets: list,
    who: str,
    at: int,
) -> Deployment:
    """Write deployment ``name``'s definition in the caller's transaction (``targets``: each
    variant's resolved model, version and number); the deployment as stored."""
    existing = connection.execute(
        sa.select(_deployments.c.id).where(_deployments.c.name == name)
    ).scalar()
    fields = {
        "strategy": strategy,
        "automation": automation,
        "description": description,
        "updated_ms": at,
        "updated_by": who,
    }
    if existing is None:
        existing = connection.execute(
            _deployments.insert().values(name=name, created_ms=at, **fields)
        ).inserted_primary_key[0]
    else:
        connection.execute(
            _deployments.update().where(_deployments.c.id == existing).values(**fields)
        )
        connection.execute(_variants.delete().where(_variants.c.deployment_id == existing))
    connection.execute(
        _variants.insert(),
        [
            {
                "deployment_id": existing,
                "name": variant.name,
                "position": position,
                "role": variant.role,
                "weight": float(variant.weight),
                "model_id": model_id,
                "version_id": version_id if variant.alias is None else None,
                "alias": variant.alias,
                "shadow_sample": float(variant.shadow_sample),
            }
            for position, (variant, (model_id, version_id, _)) in enumerate(
                zip(variants, targets, strict=True)
            )
        ],
    )
    after = Deployment(
        name=name,
        strategy=strategy,
        automation=automation,
        variants=variants,
        description=description,
        updated_ms=at,
        updated_by=who,
        serving={v.name: number for v, (_, _, number) in zip(variants, targets, strict=True)},
        required_approvals=required_approvals(connection, name),
        required_gate=required_gate(connection, name),
        generation=retires(connection, name),
    )
    return after


def _passed_gate(gate: bool | str) -> dict[str, object]:
    """The audit entry's record of the release gate a definition's versions passed (none
    when no gate was required), which a later rollback to it reads."""
    return {} if gate is False else {"passed_gate": gate}


def _audited(deployment: Deployment) -> dict[str, object]:
    """What the audit log keeps of a definition: all of it but the name (in the entity)."""
    document = deployment.to_dict()
    # The generation follows from the log itself (the retires before the entry), and the
    # revision is the id of the entry that set the definition.
    del document["name"], document["generation"], document["revision"]
    return document
