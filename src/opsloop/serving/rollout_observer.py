"""What the serving runtime tells the rollouts: each routed answer, each feedback.

:class:`RolloutObserver` feeds a ramping canary's gates with every request the policy
routed (which arm, did the model raise, its latency, the candidate's share) and with the
labels sent as feedback, and a bandit with the rewards. Each update is one write
transaction on the rollout's row (:mod:`.rollout_state`), so workers sharing a store
count every request once. When the ramp must change the deployment (a step, the last
step, a rollback) the worker whose update decided it makes the audited deploy
(:func:`~.canary_rollout.apply_transition`); when that change is not made, the state is
told so in a write transaction of its own (:func:`~.canary_rollout.not_carried_out`: the
step goes back, a rollback is tried again or the ramp halts, with the reason).

Nothing is decided on top of a decision still pending, and a worker that stops between
the decision and the change (killed, restarted) leaves it pending: the first request read
once it is :data:`~.canary_rollout.DECISION_LEASE_MS` old reconciles it with what the
deployment has, in that request's transaction. An audit entry since the rollout was set
carrying it means it was made (``carried_out``); none means it was not (``not_carried_out``,
retried: a step goes back and is decided again, a rollback is decided and made again by that
very request). While a rollback or the last step is pending the request gates, which
decided, read nothing more; the definition's requests are still read, so that one
reconciles it. The task-metric gate still reads the labels that arrive then
(:func:`~.canary_rollout.reads_labels`), so a decision that is not carried out and is
decided again loses none of them.

A deployment without a ramping canary costs one dictionary lookup per request: whether it
has one is read once per definition (a ``set_rollout`` is an audited change, so the runtime
reads the definition again after it). A primary request on which no gate's event happened
(no error, not slow, no disagreement) moves no statistic, only the primary's counts, so
such requests are counted here and written in batches (:data:`QUIET_BATCH`), before the
next request that carries information, and by :meth:`RolloutObserver.flush` (the runtime's
``close``): no decision waits on them, and the store sees one write per candidate request
or event instead of one per request. Counts are kept per rollout (its start, the time of
its first step): those of a rollout that was replaced, or whose deployment was retired
and re-created under the same name, are dropped rather than written into the new one.

With an ``anomalies`` gate, each answered request is also judged against the answering
version's schema (:meth:`~.record_validation.RecordCheck.anomalous`): a request with a
record the schema flags is that gate's event, on either arm.

The quality gates (``drift``, ``estimate``) are judged by monitoring on the rows each arm
answered (:mod:`opsloop.monitoring.canary_quality`, imported where it is used: monitoring
acts on deployments through this package). Reading those rows and testing them takes
longer than a request may wait, so the judgement runs beside the request path, one at a
time per deployment: a candidate request asks for a gate's judgement every ``every``
candidate requests (the gate's parameter, default
:data:`~.rollout_policy.QUALITY_EVERY`) and for all of them while its step is due. A step
waits for a judgement made once the step was due (:func:`~.canary_rollout.quality_due`);
its outcome is kept in one write transaction, and a failing quality gate rolls back
instead of the step.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from opsloop.learn.bandits import POLICIES as BANDIT_POLICIES
from opsloop.learn.bandits import policy_from_dict
from opsloop.serving.answering_deployment import answering_deployment
from opsloop.serving.bandit_routing import record_reward
from opsloop.serving.canary_rollout import (
    DECISION_LEASE_MS,
    Outcome,
    apply_transition,
    left_share,
    not_carried_out,
    observe_labels,
    observe_quality,
    observe_quiet_primary,
    observe_request,
    quality_due,
    routed_share,
    stale_pending,
)
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.prediction_feedback import WAITING, record_feedback
from opsloop.serving.rollout_decisions import (
    CARRIED_OUT,
    PENDING,
    decision_document,
    decision_entry,
    decision_outcome,
)
from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy
from opsloop.serving.rollout_state import locked_rollout, read_rollout, write_rollout
from opsloop.store import tables
from opsloop.store.audit_origin import acting_in_process
from opsloop.store.database import Database
from opsloop.store.waiting_feedback import JoinedFeedback

logger = logging.getLogger("opsloop.serving.rollout")

#: Primary requests without an event counted in memory before they are written.
QUIET_BATCH = 256

# What reading a label decided: the transition (or None), the rollout's state and its
# setter; None when the label was not read.
_Decided = tuple[Any, dict, str] | None
# What reading a label that does not fit its answer gives (apart from no transition).
_NOT_READ = object()


def _answered(connection: sa.Connection, deployment: str, request_id: str) -> Any:
    """The primary answer ``request_id`` of ``deployment`` as its label is read (variant,
    output, time and routing), ``None`` when it is not recorded."""
    events = tables.prediction_events
    return (
        connection.execute(
            sa.select(
                events.c.variant,
                events.c.output_json,
                events.c.at_ms,
                events.c.routed_share,
                events.c.routed,
            )
            .where(
                events.c.request_id == request_id,
                events.c.deployment == deployment,
                events.c.role == "primary",
            )
            .limit(1)
        )
        .mappings()
        .first()
    )


def _started(document: dict | None) -> int | None:
    """The start (its first step's time) of the canary rollout ``document``, which tells a
    rollout from the one set before it; ``None`` for no canary rollout.

    >>> _started({"state": {"kind": "canary", "steps_taken": [{"share": 0.1, "at_ms": 7}]}})
    7
    >>> _started(None) is None
    True
    """
    if document is None or document["state"].get("kind") != "canary":
        return None
    return document["state"]["steps_taken"][0]["at_ms"]


def _reconcile(
    connection: sa.Connection, name: str, policy: RolloutPolicy, state: dict, at_ms: int
) -> None:
    """Settle a decision ``state`` holds as pending past its lease
    (:func:`~.canary_rollout.stale_pending`) by what the deployment has: carried out when
    an audit entry since the rollout was set carries it, else not carried out, to be
    retried (a lost rollback is decided and made again by this very request)."""
    stale = stale_pending(state, at_ms)
    if stale is None:
        return
    document = decision_document(stale, state["stable"], state["candidate"])
    made = decision_entry(connection, name, document)
    if made is not None:
        state["decision"]["outcome"] = CARRIED_OUT
        state.pop("retrying", None)
        return
    age = at_ms - stale.evidence["at_ms"]
    why = (
        f"still pending {age} ms after it was decided, past the {DECISION_LEASE_MS} ms lease, "
        "and no audit entry carries it: the worker that decided it stopped before the change"
    )
    logger.warning(
        "deployment %s: the rollout's %s is not carried out: %s", name, stale.action, why
    )
    not_carried_out(policy, state, stale, Outcome(None, why, retry=True), at_ms)


def _live_share(connection: sa.Connection, name: str, candidate: str) -> float | None:
    """The weight of variant ``candidate`` in deployment ``name``'s definition now, read in
    the caller's transaction (``None`` when it is not a canary or has no such variant): the
    share a request routed at is never left behind while no decision is pending (see
    :mod:`.canary_rollout`), whatever share the worker that routed it follows.

    >>> from opsloop.serving.deployments import Deployments, Variant
    >>> for content in (b"stable", b"canary"):
    ...     _ = registry.register("m", content, flavor="onnx")
    >>> _ = Deployments(db).deploy(
    ...     "api", [Variant("stable", "m", version=1, weight=0.8),
    ...             Variant("canary", "m", version=2, role="candidate", weight=0.2)],
    ...     strategy="canary")
    >>> with db.read() as connection:
    ...     _live_share(connection, "api", "canary"), _live_share(connection, "web", "canary")
    (0.2, None)
    """
    heads, variants = tables.deployments, tables.deployment_variants
    row = connection.execute(
        sa.select(heads.c.strategy, variants.c.weight)
        .join(variants, variants.c.deployment_id == heads.c.id)
        .where(heads.c.name == name, variants.c.name == candidate)
    ).first()
    if row is None or row.strategy != "canary":
        return None
    return float(row.weight)


# The deployments whose quality gates are being judged in this process (store, name): one
# judgement at a time each, whichever observer asked.
_judging: set[tuple[int, str]] = set()
_judging_lock = threading.Lock()


def _wrong(output: dict | None, label: Any) -> list[bool]:
    predictions = (output or {}).get("predictions") or []
    labels = label if isinstance(label, list) else [label]
    if len(labels) != len(predictions):
        return []
    return [p != y for p, y in zip(predictions, labels, strict=True)]


def _losses(output: dict | None, label: Any, loss: str) -> list[float]:
    """Each record's absolute or squared error; empty when the label does not match the
    answers or a value is not a finite number."""
    predictions = (output or {}).get("predictions") or []
    labels = label if isinstance(label, list) else [label]
    if len(labels) != len(predictions):
        return []
    values = []
    for p, y in zip(predictions, labels, strict=True):
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in (p, y)
        )
        if not numbers:
            return []
        values.append(abs(p - y) if loss == "absolute" else (p - y) ** 2)
    return values


class RolloutObserver:
    """Feeds the rollouts of ``db``'s deployments; changes are made through
    ``deployments`` (a :class:`~opsloop.serving.Deployments`).

    >>> from opsloop.serving.deployments import Deployments
    >>> db = Database("sqlite://")
    >>> RolloutObserver(db, Deployments(db)).feedback("api", "r1", label=1, reward=None)
    """

    def __init__(self, db: Database, deployments) -> None:
        self.db = db
        self.deployments = deployments
        self._ramping: dict[str, tuple[Deployment, dict | None, float | None, int | None]] = {}
        # Quiet primary requests by deployment, rollout start and candidate share.
        self._pending: dict[tuple[str, int | None, float], int] = {}
        self._pending_lock = threading.Lock()
        self._judges: list[threading.Thread] = []

    def _rollout(self, name: str) -> dict | None:
        return read_rollout(self.db, name)

    def _ramping_gates(
        self, definition: Deployment
    ) -> tuple[dict | None, float | None, int | None]:
        known = self._ramping.get(definition.name)
        if known is None or known[0] is not definition:
            document = self._rollout(definition.name)
            state = {} if document is None else document["state"]
            # A decision whose change is still pending may not be made (the ramp then goes
            # on, see not_carried_out): this definition's requests are still read into the
            # rollout, where they reconcile a decision pending past its lease (record) and
            # feed the gates again once the ramp is ramping.
            pending = decision_outcome(state.get("decision")) == PENDING
            ramping = (
                definition.strategy == "canary"
                and state.get("kind") == "canary"
                and (state.get("status") == "ramping" or pending)
            )
            gates = document["policy"]["gates"] if ramping else None
            bound = document["state"].get("latency_bound_ms") if ramping else None
            known = (definition, gates, bound, _started(document) if ramping else None)
            self._ramping[definition.name] = known
        return known[1], known[2], known[3]

    def observe(
        self,
        served: Any,
        variant: str,
        *,
        failed: bool,
        latency_ms: float,
        answer: tuple[Any, Any] | None = None,
        flagged: bool | None = None,
    ) -> None:
        """Read one answer the routing policy sent to ``variant`` of ``served`` (a
        :class:`~opsloop.serving.serving_runtime.ServedDeployment`); ``answer`` is the
        checked frame and the variant's answer, when it answered; ``flagged`` whether the
        deployment's input detector flagged it (``None`` when it was not scored).

        With a ``disagreement`` gate, the primary answers the candidate's frames too (on
        the request path, for the candidate's share of the traffic only): each candidate
        request is one trial of that gate, its outcome the fraction of its records whose
        predictions differ (all of them when the candidate answered another number of
        predictions, or failed); the primary agrees with itself.
        """
        definition = served.definition
        if definition.strategy != "canary":
            return
        gates, bound, started = self._ramping_gates(definition)
        if gates is None:
            return
        roles = {v.name: v for v in definition.variants}
        candidate = roles[variant].role == "candidate"
        # The share the runtime keeps on the request's event too, which places its label
        # (read once per definition; a caller's own served object may not hold it).
        share = getattr(served, "routed_share", None)
        if share is None:
            share = routed_share(definition)
        if share is None:
            return
        disagrees: bool | list[bool] | None = None
        if "disagreement" in gates and answer is not None:
            disagrees = self._disagrees(served, *answer) if candidate else False
        anomalous = None
        if "anomalies" in gates and answer is not None:
            anomalous = self._anomalous(served, variant, answer[0])
        slow = "latency" in gates and bound is not None and latency_ms > bound
        flagged = flagged if "input_detector" in gates else None
        event = candidate or failed or slow or anomalous or flagged
        name = definition.name
        with self._pending_lock:
            if not event:
                key = (name, started, share)
                self._pending[key] = self._pending.get(key, 0) + 1
                if self._pending[key] < QUIET_BATCH:
                    return
            # Counts of an earlier rollout of this name are dropped, not written into this one.
            mine = [k for k in self._pending if k[0] == name]
            pending = [(k[2], self._pending.pop(k)) for k in mine if k[1] == started]
            for key in mine:
                self._pending.pop(key, None)
        request = None
        if event:  # else the quiet batch's last
            request = {
                "candidate": candidate,
                "failed": failed,
                "latency_ms": latency_ms,
                "share": share,
                "disagrees": disagrees,
                "anomalous": anomalous,
                **({} if flagged is None else {"flagged": flagged}),
            }
        self.record(name, pending, request, judge=any(g in gates for g in QUALITY_GATES))

    def record(
        self,
        name: str,
        quiet: list[tuple[float, int]],
        request: dict[str, Any] | None,
        *,
        judge: bool = True,
    ) -> None:
        """Read into ``name``'s canary, in one write transaction, the ``quiet`` primary
        requests (per candidate share, their count) and the answered ``request`` (its
        ``candidate``, ``failed``, ``latency_ms``, ``share``, ``disagrees`` and
        ``anomalous``, see :func:`~.canary_rollout.observe_request`), and make the change
        the ramp decides. A candidate's request may then ask for the quality gates'
        judgement (see the module; ``judge=False`` when the caller knows the policy has
        none).

        >>> from opsloop.serving.deployments import Deployments
        >>> db = Database("sqlite://")
        >>> RolloutObserver(db, Deployments(db)).record("api", [(0.1, 3)], None)
        """
        transition, due = None, ()
        with self.db.write() as connection:
            found = locked_rollout(connection, name)
            if found is None or found[1].get("kind") != "canary":
                return
            policy, state, set_by = found
            _reconcile(connection, name, policy, state, self.db.clock())
            for pending_share, count in quiet:
                observe_quiet_primary(state, count, pending_share)
            if request is not None:
                live = None
                if request["candidate"]:
                    live = _live_share(connection, name, state["candidate"])
                transition = observe_request(
                    policy, state, at_ms=self.db.clock(), live_share=live, **request
                )
                if judge and request["candidate"]:
                    due = quality_due(policy, state)
            write_rollout(connection, name, policy, state, set_by, self.db.clock())
        if transition is not None:
            self._apply(name, transition, state, set_by)
        if due:
            self._start_judging(name, due)

    def _start_judging(self, name: str, due: tuple[str, ...]) -> None:
        key = (id(self.db), name)
        with _judging_lock:
            if key in _judging:
                return
            _judging.add(key)
        judge = threading.Thread(
            target=self._judge,
            args=(name, key, due),
            name=f"canary-quality-{name}",
            daemon=True,
        )
        self._judges = [t for t in self._judges if t.is_alive()] + [judge]
        judge.start()

    def _judge(self, name: str, key: tuple[int, str], due: tuple[str, ...]) -> None:
        """Judge ``name``'s quality gates ``due`` (and all, when the rollout read now
        waits for them) on the store's answers and keep the outcome."""
        try:
            document = read_rollout(self.db, name)
            if document is None or document["state"].get("status") != "ramping":
                return
            policy = RolloutPolicy.from_dict(document["policy"])
            seen = document["state"]
            # Monitoring acts on deployments through serving; imported here, not at import.
            from opsloop.monitoring.canary_quality import judge_quality

            gates = set(due) | set(quality_due(policy, seen))
            judged = judge_quality(self.db, name, policy, seen, gates=gates)
            with self.db.write() as connection:
                found = locked_rollout(connection, name)
                if found is None or found[1].get("kind") != "canary":
                    return
                policy, state, set_by = found
                transition = observe_quality(
                    policy,
                    state,
                    judged,
                    self.db.clock(),
                    seen=(seen["step"], seen["step_requests"]),
                )
                write_rollout(connection, name, policy, state, set_by, self.db.clock())
            if transition is not None:
                self._apply(name, transition, state, set_by)
        except Exception:  # the answers have left; the next look tries again
            logger.exception("deployment %s: judging the canary's quality gates failed", name)
        finally:
            with _judging_lock:
                _judging.discard(key)

    @staticmethod
    def _anomalous(served: Any, variant: str, checked: Any) -> bool | None:
        loaded = served.loaded.get(variant)
        if loaded is None or not hasattr(checked, "matrix"):
            return None
        return bool(loaded.check.anomalous(checked).any())

    @staticmethod
    def _disagrees(served: Any, frame: Any, answer: Any) -> list[bool] | None:
        """For each record of ``frame``, whether the candidate's ``answer`` to it differs
        from the primary's (every record when it answered another number of predictions
        than the primary); ``None`` when the primary gave none to compare."""
        primary = next(v.name for v in served.definition.variants if v.role == "primary")
        loaded = served.loaded.get(primary)
        if loaded is None:
            return None
        try:
            reference = loaded.predict(frame)
        except Exception:  # the primary's own failure is no disagreement of the candidate
            logger.warning(
                "deployment %s: the primary failed on a canary's frame", served.definition.name
            )
            return None
        primary, candidate = list(reference.predictions), list(answer.predictions)
        if len(primary) != len(candidate):
            # No record-by-record comparison to make: a candidate answering the wrong number
            # of predictions disagrees on every record of the request.
            logger.warning(
                "deployment %s: the candidate answered %d predictions for %d records",
                served.definition.name,
                len(candidate),
                len(primary),
            )
            return [True] * max(len(primary), 1)
        return [bool(p != c) for p, c in zip(primary, candidate, strict=True)]

    def flush(self) -> None:
        """Write the primary requests still counted here (see the module), and wait for
        the quality judgements this observer started."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        starts: dict[str, int | None] = {}
        for (name, started, share), count in pending.items():
            if name not in starts:
                starts[name] = _started(self._rollout(name))
            if starts[name] == started:  # else its rollout is gone: nothing to count into
                self.record(name, [(share, count)], None)
        for judge in list(self._judges):
            judge.join()

    def _apply(self, name: str, transition, state: dict, set_by: str) -> None:
        try:
            # The controller decides the change, not the request whose answer tipped it.
            with acting_in_process():
                outcome = apply_transition(self.deployments, name, transition, state, set_by)
        except Exception as error:  # the answer has left; its request must not fail for this
            logger.exception("deployment %s: the rollout's %s failed", name, transition.action)
            outcome = Outcome(None, f"{type(error).__name__}: {error}", retry=True)
        if outcome.definition is None:
            try:
                self._not_carried_out(name, transition, outcome)
            except Exception:  # the store is busy or failing: the request must not fail
                # The state still holds the decision as pending; the rollout's gates keep
                # reading this definition's requests (see _ramping_gates).
                logger.exception(
                    "deployment %s: could not record that the rollout's %s was not carried out",
                    name,
                    transition.action,
                )

    def _not_carried_out(self, name: str, transition, outcome: Outcome) -> None:
        """Make the rollout's state say that ``transition`` was not carried out, and what
        follows (:func:`~.canary_rollout.not_carried_out`), in one write transaction."""
        with self.db.write() as connection:
            found = locked_rollout(connection, name)
            if found is None or found[1].get("kind") != "canary":
                return  # retired with its deployment, or replaced
            policy, state, set_by = found
            if not_carried_out(policy, state, transition, outcome, self.db.clock()):
                write_rollout(connection, name, policy, state, set_by, self.db.clock())

    def record_feedback(
        self, deployment: str, request_id: str, *, label: Any, reward: Any, actor: str
    ) -> str:
        """Keep the feedback on answer ``request_id`` (:func:`~.prediction_feedback.
        record_feedback`, after checking that the bandit of the deployment that gave the
        answer can learn the reward) and read it (:meth:`feedback`); whether it was
        ``joined`` or is ``waiting`` for its answer. The answer may be a
        retired deployment's of the name, re-created or not: the feedback is kept with its
        history (:mod:`.answering_deployment`).

        >>> from opsloop.serving.deployments import Deployments
        >>> db = Database("sqlite://")
        >>> RolloutObserver(db, Deployments(db)).record_feedback(
        ...     "api", "r1", label=1, reward=None, actor="ana")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: no deployment named 'api'
        """
        self.check_reward(deployment, reward, request_id)
        decided: list[_Decided] = []
        kept = record_feedback(
            self.db,
            deployment,
            request_id,
            label=label,
            reward=reward,
            actor=actor,
            # Read in the transaction that keeps the label: it is kept and counted by the
            # gate together, or neither is (a process that stops in between loses nothing).
            read_label=lambda connection, name, answer, given: decided.append(
                self.read_label(connection, name, answer, given)
            ),
        )
        if kept == WAITING:
            return kept  # read by the writer of the answer's event, which joins it
        self._carry_out(deployment, decided)
        if reward is not None:
            self.feedback(deployment, request_id, label=None, reward=reward)
        return kept

    def read_joined_labels(
        self, connection: sa.Connection, joined: Iterable[JoinedFeedback]
    ) -> Callable[[], None]:
        """Read the labels of feedback that waited for its answer into the rollouts, in
        the transaction of the event writer that joined it
        (:func:`~opsloop.store.waiting_feedback.join_waiting`), so that a label is never
        kept without its gate reading it; what to do once that transaction committed (make
        the changes the gates decided). A deployment's rollout is locked once for all its
        labels, as late as can be (its answers are read first), and written once: the gate
        reads them one after the other as it would one at a time. A label whose read fails
        is logged and left unread; a deployment whose rollout fails to be read or written
        reads none of them (in a savepoint): the write of the events never fails for it.

        >>> from opsloop.serving.deployments import Deployments
        >>> db = Database("sqlite://")
        >>> with db.write() as connection:
        ...     then = RolloutObserver(db, Deployments(db)).read_joined_labels(connection, [])
        >>> then()
        """
        labels: dict[str, list[JoinedFeedback]] = {}
        for item in joined:
            if item.label is not None:
                labels.setdefault(item.deployment, []).append(item)
        decided: dict[str, list[_Decided]] = {}
        for name, items in labels.items():
            try:
                with connection.begin_nested():
                    decided[name] = self._read_labels(connection, name, items)
            except Exception:
                logger.exception(
                    "deployment %s: reading the %s labels that waited for their answers failed",
                    name,
                    len(items),
                )

        def then() -> None:
            for name, found in decided.items():
                self._carry_out(name, found)

        return then

    def _read_labels(
        self, connection: sa.Connection, deployment: str, items: list[JoinedFeedback]
    ) -> list[_Decided]:
        """Read ``items``' labels into ``deployment``'s canary gate: their answers first,
        then its rollout locked, read in memory label by label, and written once."""
        answered = [(item, _answered(connection, deployment, item.request_id)) for item in items]
        answered = [(item, row) for item, row in answered if row is not None]
        if not answered:
            return []
        found = locked_rollout(connection, deployment)
        if found is None or found[1].get("kind") != "canary":
            return []
        policy, state, set_by = found
        decided: list[_Decided] = []
        read, kept = False, json.dumps(state)
        for item, row in answered:
            try:
                transition = self._observe(
                    connection, deployment, item.request_id, item.label, row, policy, state
                )
            except Exception:
                # Undone: the state as the last label read left it.
                state = json.loads(kept)
                logger.exception(
                    "deployment %s: reading the label that waited for answer %s failed",
                    deployment,
                    item.request_id,
                )
                continue
            if transition is _NOT_READ:
                continue
            read, kept = True, json.dumps(state)
            if transition is not None:
                # With the state as it stood when it was decided, as when its label is
                # read alone.
                decided.append((transition, json.loads(kept), set_by))
        if read:
            write_rollout(connection, deployment, policy, state, set_by, self.db.clock())
        return decided

    def read_joined(self, joined: Iterable[JoinedFeedback]) -> None:
        """Read feedback that waited for its answer and was joined when the answer's event
        was written (:func:`~opsloop.store.waiting_feedback.join_waiting`), as
        :meth:`feedback` reads feedback joined at once; a failure is logged, never raised
        (the events it came with are written). A writer that read the labels in its own
        transaction (:meth:`read_joined_labels`) passes the rewards only.

        >>> from opsloop.serving.deployments import Deployments
        >>> db = Database("sqlite://")
        >>> RolloutObserver(db, Deployments(db)).read_joined([])
        """
        for item in joined:
            try:
                self.feedback(
                    item.deployment, item.request_id, label=item.label, reward=item.reward
                )
            except Exception:
                logger.exception(
                    "deployment %s: reading the feedback that waited for answer %s failed",
                    item.deployment,
                    item.request_id,
                )

    def check_reward(self, deployment: str, reward: Any, request_id: str) -> None:
        """Refuse a reward the bandit that gave answer ``request_id`` cannot learn (a 0.5
        for 0/1 rewards) before anything is kept, by letting a copy of its policy learn it:
        the bandit of the deployment standing under the name ``deployment``, or of the
        retired one of the name whose answer it is (:mod:`.answering_deployment`). 404 when
        no deployment of the name stands or was retired.

        >>> from opsloop.serving.deployments import Deployments
        >>> RolloutObserver(db := Database("sqlite://"), Deployments(db)).check_reward(
        ...     "api", 0.5, "r1")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: no deployment named 'api'
        """
        with self.db.read() as connection:
            answering = answering_deployment(connection, deployment, request_id)
        if reward is None:
            return
        if answering.bandit is not None:
            copy = policy_from_dict(answering.bandit)
        elif answering.strategy == "bandit":
            policy = RolloutPolicy()
            copy = BANDIT_POLICIES[policy.bandit](["a", "b"], **policy.bandit_params)
        else:
            return
        copy.update(copy.arms[0], reward)

    def feedback(self, deployment: str, request_id: str, *, label: Any, reward: Any) -> None:
        """Read the feedback on answer ``request_id``: a label into a ramping canary's
        ``metric`` gate (at the share its event says the request was routed at, see
        :func:`~.canary_rollout.observe_labels`), a reward into a bandit."""
        with self.db.read() as connection:
            answered = _answered(connection, deployment, request_id)
        if answered is None:
            return
        if reward is not None:
            definition = self.deployments.get(deployment)
            arms = [v.name for v in definition.variants if v.role != "shadow"]
            bandit = definition.strategy == "bandit"
            record_reward(
                self.db, deployment, answered["variant"], reward, arms=arms if bandit else None
            )
        if label is None:
            return
        with self.db.write() as connection:
            decided = self.read_label(connection, deployment, request_id, label)
        self._carry_out(deployment, [decided])

    def _carry_out(self, deployment: str, decided: Iterable[_Decided]) -> None:
        """Make the changes the gates decided while reading labels (:meth:`read_label`),
        once the transaction that read them committed."""
        for found in decided:
            if found is not None and found[0] is not None:
                self._apply(deployment, *found)

    def read_label(
        self, connection: sa.Connection, deployment: str, request_id: str, label: Any
    ) -> _Decided:
        """Read the ``label`` of the primary answer ``request_id`` into ``deployment``'s
        ramping canary's ``metric`` gate in the caller's write transaction (at the share
        its event says the request was routed at, see
        :func:`~.canary_rollout.observe_labels`); the transition the gate decided, with
        the state and setter to make it with once the transaction committed (``None``
        when nothing was read).

        >>> from opsloop.serving.deployments import Deployments
        >>> db = Database("sqlite://")
        >>> with db.write() as connection:
        ...     RolloutObserver(db, Deployments(db)).read_label(connection, "api", "r1", 1)
        """
        answered = _answered(connection, deployment, request_id)
        if answered is None:
            return None
        found = locked_rollout(connection, deployment)
        if found is None or found[1].get("kind") != "canary":
            return None
        policy, state, set_by = found
        transition = self._observe(
            connection, deployment, request_id, label, answered, policy, state
        )
        if transition is _NOT_READ:
            return None
        write_rollout(connection, deployment, policy, state, set_by, self.db.clock())
        return transition, state, set_by

    def _observe(
        self,
        connection: sa.Connection,
        deployment: str,
        request_id: str,
        label: Any,
        answered: Any,
        policy: RolloutPolicy,
        state: dict,
    ) -> Any:
        """Read ``label`` of the answer ``answered`` into the canary ``state`` (changed in
        place; the caller holds the rollout); the transition the gate decided, or
        ``_NOT_READ`` when the label does not fit the answer."""
        output = None if answered["output_json"] is None else json.loads(answered["output_json"])
        loss = policy.gates.get("metric", {}).get("loss", "error_rate")
        if loss == "error_rate":
            wrong, losses = _wrong(output, label), None
        else:
            wrong, losses = None, _losses(output, label, loss)
        if not (wrong or losses):
            if "metric" in state["gates"]:
                logger.warning(
                    "deployment %s: label of %s does not match its %s answers (in count, "
                    "or as a number where a loss is judged); not read",
                    deployment,
                    request_id,
                    len((output or {}).get("predictions") or []),
                )
            return _NOT_READ
        candidate = answered["variant"] == state["candidate"]
        routed_at = answered["routed_share"]
        live = None
        if candidate and routed_at is not None and left_share(state, routed_at):
            # Read in the transaction that holds the rollout, only where the answer
            # could change where the label counts: a share the ramp has left, which a
            # weight set back by hand may route at again.
            live = _live_share(connection, deployment, state["candidate"])
        return observe_labels(
            policy,
            state,
            candidate=candidate,
            wrong=wrong,
            losses=losses,
            answered_ms=answered["at_ms"],
            at_ms=self.db.clock(),
            routed_share=routed_at,
            live_share=live,
            routed=answered["routed"],
        )
