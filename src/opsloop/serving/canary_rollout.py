"""A canary's ramp: take the next step while every gate holds, roll back when one fails.

The state (:func:`new_canary_state`) holds the step, the candidate's requests at this step,
each gate as its ``to_dict`` (a :class:`~opsloop.analysis.sequential.RateGate`, the
disagreement's :class:`~opsloop.analysis.one_sample_rate_gate.OneSampleRateGate`, the
estimate's :class:`~opsloop.analysis.sequential.MeanGate`, the
:class:`~opsloop.analysis.drift_gate.DriftGate`) and the last decision.
:func:`observe_request` reads one answered request (which arm, did the model raise, how
long it took, the candidate's share when it was routed, whether its inputs are anomalous),
:func:`observe_labels` reads labels sent as feedback, and :func:`observe_quality` the
quality gates (drift, the estimated accuracy) that :mod:`opsloop.monitoring.canary_quality`
judged on the recorded answers; each returns a :class:`Transition` when the ramp must
change the deployment:

- ``rollback`` as soon as one gate fails: all traffic back on the primary (the deployment
  becomes ``blue_green`` with the candidate on standby at 0);
- ``step`` when the candidate has answered ``min_requests`` at this step and no gate
  failed: the candidate gets the next share;
- ``complete`` when that share is 1 (``blue_green`` with the candidate at 1).

The gates keep their statistics from step to step: the rate test conditions each event on
the share its request was routed with, so it stays exact while the share moves. A step
counts the candidate's requests routed at its own share. Those routed at a share the ramp
has left are *left behind* and count toward no step (:func:`observe_request`): a share of a
step the ramp moved on from, or the candidate's weight from before the ramp's first step
(``share_before``), while the move is pending or by a worker that has not followed it yet.
The share the deployment's definition routes at now (its live weight) is never left
behind while no decision is pending: a person who sets the candidate back by hand to an
earlier step's share, or to the weight from before the ramp, has the ramp judge and count
those requests toward its current step, as any share set by hand, instead of stalling it.
While a step's decision is pending the definition still routes at the share the step
leaves, and its requests stay left behind (the step, not carried out, goes back to them).
A request routed at a share outside the ramp (a candidate weight set by hand) is judged
too: its rate gates move to a threshold valid at any share
(:meth:`~opsloop.analysis.sequential.RateGate.allow_any_share`). A label is read the same
way, at the share its request was routed at, which the request's prediction event keeps
(:func:`routed_share`), however late the label or the answer came: a candidate's labelled
request counts toward the step of its share (``step_labels``) or is left behind
(``left_share_labels``) by the rule above (:func:`observe_labels`).

:func:`apply_transition` makes the change through the control plane, an audited
:meth:`~opsloop.serving.Deployments.deploy` whose entry carries the decision as a field of
its own (:mod:`.rollout_decisions`: the action, the share, the evidence: the gate, its
statistic, threshold and samples) and whose reason says it in a sentence. The state
changes in the same transaction that reads the request, so of several workers exactly one
makes each change; the change is conditional on the definition it was computed from, so
it never overwrites a change someone made meanwhile. The state's decision says what became
of it: ``outcome`` ``pending`` when decided, ``carried_out`` in the transaction that makes
the change, ``not_carried_out`` when it was not made (:func:`not_carried_out`: a step goes
back to the share the deployment still routes by, a rollback is tried again or the ramp
``halted``, with the reason), so the state never shows a step the deployment did not take.
Nothing is decided while a decision is pending; one pending past :data:`DECISION_LEASE_MS`
is reconciled with the audit log (:func:`stale_pending`), and a cause a retry may mend is
retried at most :data:`RETRY_LIMIT` times, backing off, before the ramp halts.

>>> from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy
>>> policy = RolloutPolicy(steps=(0.1, 1.0), min_requests=2)
>>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
>>> observe_request(policy, state, candidate=True, failed=False, latency_ms=3.0,
...                 share=0.1, at_ms=1) is None
True
>>> observe_request(policy, state, candidate=True, failed=False, latency_ms=3.0,
...                 share=0.1, at_ms=2).action
'complete'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.one_sample_rate_gate import OneSampleRateGate
from opsloop.analysis.sequential import MeanGate, RateGate
from opsloop.errors import InvalidArgumentError, NotFoundError, OpsloopError
from opsloop.serving.deployment_records import Deployment, StaleRevisionError
from opsloop.serving.rollout_decisions import PENDING, decision_document, decision_outcome
from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy

logger = logging.getLogger("opsloop.serving.rollout")

#: A decision's ``outcome`` once its change was not made (``pending`` from the transaction
#: that decided it, ``carried_out`` from the change's own: :mod:`.rollout_decisions`).
NOT_CARRIED_OUT = "not_carried_out"
#: How a rollout's disagreement gate reads a candidate's request (``disagreement_outcome``
#: in its state): the fraction of its records whose answers differ. A rollout kept without
#: it reads 1 when any record differs, as it was started.
FRACTION = "fraction"
#: The most changes not carried out a ramp's state keeps (the newest).
MAX_NOT_CARRIED_OUT = 20
#: How many decisions in a row may be not carried out for a cause a retry may mend (the
#: write did not land, the control plane raised, the worker stopped before the change)
#: before the ramp halts (:func:`not_carried_out`): after the ``k``-th, the ramp reads
#: ``2 ** (k - 1) - 1`` requests before it decides again (0, 1, 3, 7), so a cause that
#: persists costs a few attempts, not one per request.
RETRY_LIMIT = 5
#: How long (ms, on the store's clock) a decision may stay ``pending`` before the next
#: request reconciles it with what the deployment has (:func:`stale_pending`): far longer
#: than a change takes, so only a decision whose worker stopped between deciding and
#: changing is taken for one never carried out.
DECISION_LEASE_MS = 60_000


@dataclass(frozen=True)
class Transition:
    """A change the ramp makes: ``action`` (``step``, ``complete`` or ``rollback``), the
    candidate's new ``share`` and the ``evidence`` behind it (JSON-ready)."""

    action: str
    share: float
    evidence: dict[str, Any]

    def reason(self, stable: str, candidate: str) -> str:
        """The audit entry's reason: one sentence, then the evidence as JSON.

        >>> Transition("step", 0.5, {"step": 2}).reason("stable", "canary")
        'rollout: canary to 50% (every gate holds) evidence={"step": 2}'
        """
        if self.action == "rollback":
            gate = self.evidence["failed_gate"]
            head = (
                f"rollout: gate {gate!r} failed "
                f"({_failure(self.evidence['gates'][gate], gate)}); "
                f"all traffic back on {stable}"
            )
        else:
            head = f"rollout: {candidate} to {self.share:.0%} (every gate holds)"
        return f"{head} evidence={json.dumps(self.evidence, sort_keys=True)}"


def _records(d: dict[str, Any]) -> str:
    """The records behind a disagreement gate's requests, in words (none for a rollout kept
    from before records were counted)."""
    if "records" not in d:
        return ""
    return (
        f" ({d['disagreeing']} of {d['records']} records differ, {d['unanswered']} "
        "requests failed and count as all differing)"
    )


def _failure(d: dict[str, Any], gate: str) -> str:
    """A failed gate's decision in words: its statistic against its threshold, and the
    samples behind them."""
    if d["test"] == DriftGate.test:
        return (
            f"{d['test']} look {d['look']}: feature {d['feature']!r} statistic "
            f"{d['statistic']:.4f}, adjusted p-value {d['p_value']:.3g} <= threshold "
            f"{d['fail_threshold']:.3g}; candidate {d['n_candidate']} rows, primary "
            f"{d['n_primary']} rows"
        )
    if d["test"] == MeanGate.test:
        # The estimate gate judges accuracy, worse when lower: its bounds are of the
        # primary minus the candidate. A loss (the metric gate's) is worse when higher.
        low, high = (-d["upper"], -d["lower"]) if gate == "estimate" else (d["lower"], d["upper"])
        return (
            f"{d['test']} statistic {d['statistic']:.4f} >= threshold "
            f"{d['fail_threshold']:.4f}; candidate minus primary in [{low:.4f}, "
            f"{high:.4f}]; candidate {d['n_candidate']}, primary {d['n_primary']} rows"
        )
    if d["test"] == OneSampleRateGate.test:
        return (
            f"{d['test']} statistic {d['statistic']:.4f} >= threshold "
            f"{d['fail_threshold']:.4f}; candidate {d['events_candidate']:.4g} of "
            f"{d['n_candidate']} requests{_records(d)} against an accepted rate of "
            f"{d['max_rate']:.4g} (alternative {d['detect_rate']:.4g})"
        )
    baseline = d.get("baseline")
    if baseline is not None and baseline.get("failed_by") == "baseline":
        read = baseline.get("recorded")
        where = (
            ""
            if read is None
            else f" recorded in the {read['until_ms'] - read['since_ms']} ms before it"
        )
        return (
            f"candidate against the primary's rate before the canary (at most "
            f"{baseline['upper_rate']:.4g}, {baseline['events']} of {baseline['requests']}"
            f"{where}): "
            f"statistic {baseline['statistic']:.4f} >= threshold "
            f"{baseline['fail_threshold']:.4f}, guard {baseline['guard']:.4f} < "
            f"{baseline['guard_threshold']:.4f}; candidate {d['events_candidate']} of "
            f"{d['n_candidate']}, primary {d['events_primary']} of {d['n_primary']}"
        )
    return (
        f"{d['test']} statistic {d['statistic']:.4f} >= threshold {d['fail_threshold']:.4f}; "
        f"candidate {d['events_candidate']} of {d['n_candidate']}, primary "
        f"{d['events_primary']} of {d['n_primary']}"
    )


def gate_decision(document: dict[str, Any]) -> dict[str, Any]:
    """A stored gate's decision with its evidence, whatever its kind (a rate gate's
    :class:`~opsloop.analysis.sequential.GateDecision`, a mean gate's, a drift gate's).

    >>> gate_decision(RateGate().to_dict())["verdict"]
    'continue'
    >>> gate_decision(DriftGate().to_dict())["fail_threshold"]
    0.025
    >>> gate_decision(OneSampleRateGate(max_rate=0.02).to_dict())["max_rate"]
    0.02
    """
    if document["test"] == DriftGate.test:
        return DriftGate.from_dict(document).decision()
    if document["test"] == MeanGate.test:
        return MeanGate.from_dict(document).decision().to_dict()
    if document["test"] == OneSampleRateGate.test:
        return OneSampleRateGate.from_dict(document).evidence()
    return RateGate.from_dict(document).decision().to_dict()


def new_canary_state(
    policy: RolloutPolicy,
    stable: str,
    candidate: str,
    latency_bound_ms: float | None,
    *,
    at_ms: int,
    baselines: dict[str, dict[str, Any]] | None = None,
    share_before: float | None = None,
) -> dict[str, Any]:
    """The ramp's state at its first step, every gate fresh. ``baselines`` holds, for each
    gate whose baseline is ``"recorded"``, the counts read from the store
    (:meth:`.recorded_baseline.RecordedBaseline.to_dict`: ``failures`` and ``requests``,
    and where they were read), frozen into the gate and kept in the state.
    ``share_before`` is the candidate's weight before the first step, kept as
    ``share_before``: requests still routed at it are left behind (see the module). A
    state kept without it (set before it was kept) reads none.

    >>> state = new_canary_state(RolloutPolicy(), "stable", "canary", None, at_ms=7,
    ...                          share_before=0.1)
    >>> state["status"], state["share"], state["share_before"], list(state["gates"])
    ('ramping', 0.05, 0.1, ['errors'])
    """
    baselines = dict(baselines or {})
    counts = {name: [read["failures"], read["requests"]] for name, read in baselines.items()}
    state: dict[str, Any] = {
        "kind": "canary",
        "status": "ramping",
        "stable": stable,
        "candidate": candidate,
        "step": 0,
        "share": policy.steps[0],
        "step_requests": 0,
        "steps_taken": [{"share": policy.steps[0], "at_ms": at_ms}],
        "latency_bound_ms": latency_bound_ms,
        "gates": {name: policy.gate(name, counts.get(name)).to_dict() for name in policy.gates},
        "decision": None,
    }
    if baselines:
        state["baseline_sources"] = baselines
    if share_before is not None:
        state["share_before"] = float(share_before)
    if state["gates"].get("disagreement", {}).get("test") == OneSampleRateGate.test:
        # Each request is a trial of the disagreement gate, its outcome the fraction of its
        # records that differ (a rollout kept without this key reads 1 when any differs).
        state["disagreement_outcome"] = FRACTION
        state["disagreement_records"] = {"records": 0, "disagreeing": 0, "unanswered": 0}
    return state


def _update_gate(
    state: dict[str, Any], name: str, candidate: Any, event: Any, share: Any
) -> str | None:
    if state["gates"][name]["test"] == OneSampleRateGate.test:
        # The candidate's requests alone, at whatever share they were routed.
        one = OneSampleRateGate.from_dict(state["gates"][name])
        verdict = one.update_many(candidate, event).verdict
        state["gates"][name] = one.to_dict()
        return name if verdict == "fail" else None
    gate = RateGate.from_dict(state["gates"][name])
    if gate.shares is not None and not np.isclose(share, gate.shares).any():
        # A weight set by hand mid-ramp (the weights form, a deploy): every request is
        # judged, so the gate leaves the ramp's exact threshold for one that holds at any
        # share and keeps the false-alarm budget (kept in the state from now on).
        gate.allow_any_share()
    verdict = gate.update_many(candidate, event, share).verdict
    state["gates"][name] = gate.to_dict()
    return name if verdict == "fail" else None


def _disagreement_flags(disagrees: Any) -> list[bool] | None:
    """``disagrees`` as a list of plain flags (``None`` stays ``None``): a single flag, or
    any one-dimensional list, tuple or numpy array of ``bool``/``numpy.bool_``.

    >>> _disagreement_flags(np.array([False, True])), _disagreement_flags(np.True_)
    ([False, True], [True])
    >>> try:
    ...     _disagreement_flags([1, 0])
    ... except InvalidArgumentError as error:
    ...     print(error)
    disagrees must be a flag or a sequence of flags (true or false), got an item 1
    """
    if disagrees is None:
        return None
    if isinstance(disagrees, (bool, np.bool_)):
        return [bool(disagrees)]
    if isinstance(disagrees, np.ndarray):
        if disagrees.ndim != 1:
            raise InvalidArgumentError(
                "disagrees must be one flag per record (one dimension), "
                f"got {disagrees.ndim} dimensions"
            )
        disagrees = disagrees.tolist()
    if isinstance(disagrees, (str, bytes, dict)) or not isinstance(disagrees, Iterable):
        raise InvalidArgumentError(
            "disagrees must be a flag or a sequence of flags (true or false), "
            f"got {type(disagrees).__name__}"
        )
    flags = list(disagrees)
    for flag in flags:
        if not isinstance(flag, (bool, np.bool_)):
            raise InvalidArgumentError(
                "disagrees must be a flag or a sequence of flags (true or false), "
                f"got an item {flag!r}"
            )
    return [bool(flag) for flag in flags]


def _disagreement(
    state: dict[str, Any],
    *,
    candidate: bool,
    failed: bool,
    disagrees: bool | Sequence[bool] | None,
) -> float | bool | None:
    """A request's outcome for the disagreement gate (see :func:`observe_request`), its
    records counted into the state's ``disagreement_records``; ``None`` when it is no trial."""
    flags = _disagreement_flags(disagrees)
    if state.get("disagreement_outcome") != FRACTION:
        # The two-sample rule, or a rollout kept from before: 1 when any record differs.
        return None if failed or flags is None else any(flags)
    if not candidate:
        return False if flags is not None and not failed else None
    counts = state["disagreement_records"]
    if failed:  # no answer to compare: as if every record differed
        counts["unanswered"] += 1
        return 1.0
    if not flags:
        return None
    differ = sum(1 for flag in flags if flag)
    counts["records"] += len(flags)
    counts["disagreeing"] += differ
    # 0 or 1 as a bool, so that the gate still counts events while no request is partial.
    return bool(differ) if differ in (0, len(flags)) else differ / len(flags)


def canary_decisions(state: dict[str, Any]) -> dict[str, Any]:
    """Each gate's decision with its evidence (:func:`gate_decision`); a baseline counted
    from the store carries where it was read (``baseline.recorded``: the variant, model
    version, window and counts, see :mod:`.recorded_baseline`).

    >>> policy = RolloutPolicy(gates={"errors": {"baseline": "recorded"}})
    >>> read = {"source": "recorded", "since_ms": 0, "until_ms": 9, "requests": 2_000,
    ...         "failures": 20}
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=9,
    ...                          baselines={"errors": read})
    >>> found = canary_decisions(state)["errors"]["baseline"]
    >>> found["events"], found["requests"], found["recorded"]["until_ms"]
    (20, 2000, 9)
    """
    sources = state.get("baseline_sources") or {}
    decisions = {}
    for name, document in state["gates"].items():
        decision = gate_decision(document)
        if name in sources and decision.get("baseline") is not None:
            decision["baseline"] = {**decision["baseline"], "recorded": sources[name]}
        if name == "disagreement" and document["test"] == OneSampleRateGate.test:
            # n_candidate counts requests; events_candidate sums their fractions of
            # disagreeing records (counts requests with any, in a rollout kept from before).
            decision["trials"] = "requests"
            if state.get("disagreement_outcome") == FRACTION:
                decision.update(state["disagreement_records"])
        decisions[name] = decision
    return decisions


def _awaits_look(policy: RolloutPolicy, state: dict[str, Any]) -> bool:
    """Whether the step waits for the quality gates to judge rows from this step, read
    once it was due."""
    if not any(name in state["gates"] for name in QUALITY_GATES):
        return False
    look = state.get("quality_look")
    return not (
        look is not None
        and look["step"] == state["step"]
        and look["step_requests"] >= policy.min_requests
    )


def quality_due(policy: RolloutPolicy, state: dict[str, Any]) -> tuple[str, ...]:
    """The quality gates to judge now: all of the ramp's while its step waits for them,
    else those whose ``every`` divides the candidate's requests (none when the ramp has
    none or ended).

    >>> policy = RolloutPolicy(steps=(0.1, 1.0), min_requests=3,
    ...                        gates={"drift": {"every": 2}, "estimate": {}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> moves = [observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                          share=0.1, at_ms=i) for i in range(2)]
    >>> quality_due(policy, state)
    ('drift',)
    >>> moves += [observe_request(policy, state, candidate=True, failed=False,
    ...                           latency_ms=1.0, share=0.1, at_ms=i) for i in range(2, 4)]
    >>> moves, state["step"], quality_due(policy, state)
    ([None, None, None, None], 0, ('drift', 'estimate'))
    >>> _ = observe_quality(policy, state, {}, at_ms=5)  # a look, read once the step was due
    >>> quality_due(policy, state)
    ('drift',)
    >>> observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                 share=0.1, at_ms=6).action
    'complete'
    """
    if state["status"] != "ramping":
        return ()
    present = tuple(name for name in QUALITY_GATES if name in state["gates"])
    if not present:
        return ()
    if state["step_requests"] >= policy.min_requests and _awaits_look(policy, state):
        return present
    requests = state.get("candidate_requests", 0)
    return tuple(name for name in present if requests % policy.quality_every(name) == 0)


def _failing_gate(state: dict[str, Any], failed_gate: str | None) -> str | None:
    """``failed_gate``, else the first gate whose verdict is ``fail`` (kept from before)."""
    return failed_gate or next(
        (name for name, d in state["gates"].items() if d["state"]["verdict"] == "fail"), None
    )


def _backing_off(state: dict[str, Any], failed_gate: str | None) -> bool:
    """Whether the next decision waits out the backoff of a change not carried out (see
    :func:`not_carried_out`): a rollback waits only for its own, never for a step's.

    >>> waiting = {"retrying": {"action": "step", "share": 0.5, "attempts": 2, "wait": 1}}
    >>> _backing_off(waiting, None), _backing_off(waiting, "errors")
    (True, False)
    """
    retrying = state.get("retrying") or {}
    if retrying.get("wait", 0) <= 0:
        return False
    return failed_gate is None or retrying.get("action") == "rollback"


def _decide(
    policy: RolloutPolicy, state: dict[str, Any], failed_gate: str | None, at_ms: int
) -> Transition | None:
    if decision_outcome(state.get("decision")) == PENDING:
        # Never on top of a decision whose change is not made yet: a step decided from it
        # would skip the step the deployment has not taken (see stale_pending). A gate
        # that failed meanwhile keeps its verdict, so its rollback is decided after.
        return None
    # A gate that failed before keeps its verdict: when its rollback was not carried out
    # and is to be tried again (see not_carried_out), the next request decides it anew.
    failed_gate = _failing_gate(state, failed_gate)
    if _backing_off(state, failed_gate):
        return None  # backing off after a change not carried out (see not_carried_out)
    if failed_gate is not None:
        if (state.get("retrying") or {}).get("action") != "rollback":
            # The rollback supersedes a step only waiting to be tried again: that step's
            # retries end, and the rollback's own are counted from its first.
            state.pop("retrying", None)
        evidence = {
            "failed_gate": failed_gate,
            "step": state["step"],
            "share": state["share"],
            "gates": canary_decisions(state),
            "at_ms": at_ms,
        }
        state.update(
            status="rolled_back",
            decision={"action": "rollback", **evidence, "outcome": PENDING},
        )
        return Transition("rollback", 0.0, evidence)
    if state["step_requests"] < policy.min_requests or _awaits_look(policy, state):
        return None
    evidence = {
        "step": state["step"] + 1,
        "candidate_requests_at_previous_step": state["step_requests"],
        "gates": canary_decisions(state),
        "at_ms": at_ms,
    }
    if "metric" in state["gates"]:
        # The candidate's labelled requests the metric gate read at the step's own share.
        evidence["candidate_labels_at_previous_step"] = state.get("step_labels", 0)
        state["step_labels"] = 0
        state["left_share_labels"] = 0
        state["leaving_share_labels"] = 0
    state["step"] += 1
    state["share"] = policy.steps[state["step"]]
    state["step_requests"] = 0
    state["left_share_requests"] = 0
    state["leaving_share_requests"] = 0
    state["steps_taken"].append({"share": state["share"], "at_ms": at_ms})
    action = "complete" if state["share"] >= 1.0 else "step"
    if action == "complete":
        state["status"] = "completed"
    state["decision"] = {"action": action, "share": state["share"], **evidence, "outcome": PENDING}
    return Transition(action, state["share"], evidence)


def observe_request(
    policy: RolloutPolicy,
    state: dict[str, Any],
    *,
    candidate: bool,
    failed: bool,
    latency_ms: float,
    share: float,
    at_ms: int,
    disagrees: bool | Sequence[bool] | None = None,
    anomalous: bool | None = None,
    flagged: bool | None = None,
    live_share: float | None = None,
) -> Transition | None:
    """Read one answered request into ``state`` (changed in place); the change the ramp
    makes now, if any. ``share`` is the candidate's share the request was routed with:
    every gate reads the request at that share, and a candidate's request counts toward
    the step of that share. One routed at a share the ramp has left (a step's it moved on
    from, or the weight from before its first step) counts toward no step now, while the
    move's decision is pending (the deploy not made yet) or when the request came from a
    worker that still routes by a definition before it (``left_share_requests``; a step
    not carried out goes back to that share, see :func:`not_carried_out`, and keeps
    them), so a step is decided on ``min_requests`` requests routed at its own share. A
    share the ramp never took (a weight set by hand) counts toward the current step, and
    so does ``live_share``, the candidate's weight in the deployment's definition now
    (``None`` when unknown), while no decision is pending: a weight set back by hand to a
    share the ramp has left is judged, not left behind (see the module).
    ``disagrees`` says, for each of the request's records, whether the candidate's answer
    to it differs from the primary's (a single flag is a request of one record; ``False``
    for the primary's own requests, ``None`` when unknown): the request is one trial of the
    ``disagreement`` gate, its outcome the fraction of its records that differ, so a
    request of 100 records that differ on 1 reads 0.01 (:mod:`~opsloop.analysis.
    one_sample_rate_gate` for why the test stays valid however a request's records depend
    on each other); a candidate request that failed reads 1, as if every record differed
    (the gate's evidence counts it in ``unanswered``; a rollout kept from before reads 1
    when any record differs and skips failed requests);
    ``anomalous`` whether the answering version's schema flags one of its records
    (``None`` when unknown); ``flagged`` whether the deployment's input detector flags one
    (``None`` when it was not scored).

    Three candidate errors at a 10% share reach :math:`3 \\log 2.5 = 2.749`, past the
    gate's exact threshold for that share (2.662):

    >>> policy = RolloutPolicy(steps=(0.1, 1.0), gates={"errors": {"detect_ratio": 3.0}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> moves = [observe_request(policy, state, candidate=True, failed=True, latency_ms=1.0,
    ...                          share=0.1, at_ms=i) for i in range(4)]
    >>> [m and m.action for m in moves], state["status"]
    ([None, None, 'rollback', None], 'rolled_back')
    """
    if state["status"] != "ramping":
        return None
    failed_gate = None
    if "errors" in state["gates"]:
        failed_gate = _update_gate(state, "errors", [candidate], [failed], share)
    bound = state.get("latency_bound_ms")
    if "latency" in state["gates"] and not failed and bound is not None:
        failed_gate = failed_gate or _update_gate(
            state, "latency", [candidate], [latency_ms > bound], share
        )
    if "disagreement" in state["gates"]:
        outcome = _disagreement(state, candidate=candidate, failed=failed, disagrees=disagrees)
        if outcome is not None:
            failed_gate = failed_gate or _update_gate(
                state, "disagreement", [candidate], [outcome], share
            )
    if "anomalies" in state["gates"] and anomalous is not None:
        failed_gate = failed_gate or _update_gate(
            state, "anomalies", [candidate], [anomalous], share
        )
    if "input_detector" in state["gates"] and flagged is not None:
        failed_gate = failed_gate or _update_gate(
            state, "input_detector", [candidate], [flagged], share
        )
    if candidate:
        _count(state, share, live_share, "requests")
        state["candidate_requests"] = state.get("candidate_requests", 0) + 1
    if _backing_off(state, _failing_gate(state, failed_gate)):
        state["retrying"]["wait"] -= 1  # one request further in the backoff
        return None
    return _decide(policy, state, failed_gate, at_ms)


def _routed_at_left_share(
    state: dict[str, Any], share: float, live_share: float | None = None
) -> bool:
    """Whether a candidate request routed at ``share`` was routed at a share the ramp has
    left (see :func:`observe_request`): a step's it moved on from, or the candidate's
    weight before its first step (``share_before``), unless it is ``live_share``, the
    share the deployment routes at now, and no decision is pending. Such a request counts
    toward no step the ramp is at now; a share the ramp never took (a weight set by hand)
    counts toward the current step.

    >>> state = {"share": 0.5, "steps_taken": [{"share": 0.1}, {"share": 0.5}],
    ...          "share_before": 0.2, "decision": {"outcome": "carried_out"}}
    >>> [_routed_at_left_share(state, s) for s in (0.1, 0.2, 0.5, 0.3)]
    [True, True, False, False]
    >>> [_routed_at_left_share(state, s, live_share=0.1) for s in (0.1, 0.2)]
    [False, True]
    >>> state["decision"]["outcome"] = "pending"  # the definition still routes at 10%
    >>> _routed_at_left_share(state, 0.1, live_share=0.1)
    True
    """
    pending = decision_outcome(state.get("decision")) == PENDING
    if live_share is not None and not pending and np.isclose(share, live_share):
        return False
    return left_share(state, share)


def left_share(state: dict[str, Any], share: float) -> bool:
    """Whether ``share`` is one the ramp has left (a step's it moved on from, or the
    candidate's weight before its first step) and not its current one: only a request
    routed at such a share can count apart from the current step, so only for it does
    the deployment's live share matter (:func:`observe_labels`'s ``live_share``).

    >>> state = {"share": 0.5, "steps_taken": [{"share": 0.1}, {"share": 0.5}]}
    >>> [left_share(state, s) for s in (0.5, 0.1, 0.3)]
    [False, True, False]
    """
    if np.isclose(share, state["share"]):
        return False
    left = [taken["share"] for taken in state["steps_taken"][:-1]]
    if state.get("share_before") is not None:
        left.append(state["share_before"])
    return any(np.isclose(share, s) for s in left)


def _count(state: dict[str, Any], share: float, live_share: float | None, kind: str) -> None:
    """Count a candidate's request (``kind`` ``requests``) or labelled request
    (``labels``) routed at ``share``: toward the current step (``step_*``), or as left
    behind (``left_share_*``, :func:`_routed_at_left_share`); of those, the ones routed at
    the share a pending step leaves, which the deployment still routes by, also in
    ``leaving_share_*``: a step not carried out goes back to that share and takes back
    these alone, not those routed at a share the ramp left before.

    >>> state = {"share": 0.5, "step_labels": 0,
    ...          "steps_taken": [{"share": 0.05}, {"share": 0.25}, {"share": 0.5}],
    ...          "decision": {"action": "step", "outcome": "pending"}}
    >>> for share in (0.5, 0.25, 0.05, 0.05):
    ...     _count(state, share, None, "labels")
    >>> state["step_labels"], state["left_share_labels"], state["leaving_share_labels"]
    (1, 3, 1)
    """
    if not _routed_at_left_share(state, share, live_share):
        state[f"step_{kind}"] = state.get(f"step_{kind}", 0) + 1
        return
    state[f"left_share_{kind}"] = state.get(f"left_share_{kind}", 0) + 1
    decision = state.get("decision") or {}
    if (
        decision_outcome(decision) == PENDING
        and decision.get("action") in ("step", "complete")
        and len(state["steps_taken"]) >= 2
        and np.isclose(share, state["steps_taken"][-2]["share"])
    ):
        state[f"leaving_share_{kind}"] = state.get(f"leaving_share_{kind}", 0) + 1


def observe_quiet_primary(state: dict[str, Any], count: int, share: float) -> None:
    """Read ``count`` primary requests on which no gate's event happened (no error, not
    slower than the bound, no disagreement), as :func:`observe_request` one by one would:
    they move no statistic, only the primary's counts (an input anomaly is none either).

    >>> from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy
    >>> state = new_canary_state(RolloutPolicy(), "stable", "canary", None, at_ms=0)
    >>> observe_quiet_primary(state, 3, 0.05)
    >>> state["gates"]["errors"]["state"]["n_primary"]
    3
    """
    if state["status"] != "ramping" or count <= 0:
        return
    quiet = [False] * count
    for name in ("errors", "latency", "disagreement", "anomalies", "input_detector"):
        if name not in state["gates"]:
            continue
        if name == "latency" and state.get("latency_bound_ms") is None:
            continue
        _update_gate(state, name, quiet, quiet, share)


def routed_share(definition: Deployment) -> float | None:
    """The candidate's share a request that ``definition``'s split routes is routed at, as
    the ramp reads it: the candidate's weight in a ``canary`` definition, strictly between
    0 and 1; ``None`` otherwise (another strategy, a candidate answering all or nothing),
    where no gate reads the request. The serving runtime reads it once per definition, for
    the request counts (:mod:`.rollout_observer`) and for the request's prediction event,
    whose ``routed_share`` places its label (:func:`observe_labels`).

    >>> from opsloop.serving.deployment_records import Variant
    >>> def split(strategy, share):
    ...     return Deployment("api", strategy, "full_automation",
    ...                       (Variant("stable", "m", version=1, weight=1 - share),
    ...                        Variant("canary", "m", version=2, role="candidate",
    ...                                weight=share)), None, 0, "ana", {})
    >>> routed_share(split("canary", 0.25)), routed_share(split("canary", 1.0))
    (0.25, None)
    >>> routed_share(split("ab", 0.5)) is None
    True
    """
    if definition.strategy != "canary":
        return None
    share = next((v.weight for v in definition.variants if v.role == "candidate"), None)
    if share is None or not 0.0 < share < 1.0:
        return None
    return float(share)


def share_at(state: dict[str, Any], at_ms: int) -> float:
    """The candidate's share of the ramp's step when a request answered at ``at_ms`` was
    answered: where the request's event does not say the share it was routed at (one
    recorded before events kept it), the best the ramp's own history tells
    (:func:`observe_labels`). A request routed just before a step and answered after it
    reads the new step's share.

    >>> share_at({"steps_taken": [{"share": 0.05, "at_ms": 0}, {"share": 0.25, "at_ms": 9}]}, 9)
    0.25
    """
    share = state["steps_taken"][0]["share"]
    for taken in state["steps_taken"]:
        if taken["at_ms"] <= at_ms:
            share = taken["share"]
    return share


def observe_labels(
    policy: RolloutPolicy,
    state: dict[str, Any],
    *,
    candidate: bool,
    wrong: list[bool] | None = None,
    losses: list[float] | None = None,
    answered_ms: int,
    at_ms: int,
    routed_share: float | None = None,
    live_share: float | None = None,
    routed: bool | None = None,
) -> Transition | None:
    """Read the labels of one answered request into the ``metric`` gate; the change the
    ramp makes now, if any. A classifier's gate reads ``wrong`` (``wrong[i]``: record
    ``i``'s answer differs from its label); a regression's (``loss`` ``absolute`` or
    ``squared``) reads ``losses``, each record's loss.

    ``routed_share`` is the candidate's share the request was routed at, as its prediction
    event keeps it (:func:`routed_share`): the labels are read at that share, as
    :func:`observe_request` reads the request, so the rate test stays exact while several
    workers follow a step at different moments. A candidate's labelled request counts
    toward the step of that share by :func:`observe_request`'s rule (``live_share`` as
    there): ``step_labels`` counts those the current step's gate read at its own share,
    ``left_share_labels`` those routed at a share the ramp has left (a step's it moved on
    from, the weight before its first step), which a step not carried out takes back; the
    gate reads both. ``routed`` says whether the split routed the request, as its event
    keeps it: the labels of a request it did not route (one that named its variant, as a
    probe of the candidate does) are not read, as the request gates never read the
    request. An event without a share (recorded before events kept it, logged from
    Python, or routed by a definition that was no canary split) is read at
    :func:`share_at` its answer's time, as before: a request routed just before a step and
    answered after it is then read at the new step's share. Labels are read while the
    last step's or a rollback's decision is pending too (:func:`reads_labels`).

    >>> policy = RolloutPolicy(gates={"metric": {}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> _ = observe_labels(policy, state, candidate=True, wrong=[True], answered_ms=1, at_ms=2)
    >>> state["gates"]["metric"]["state"]["events_candidate"]
    1
    >>> policy = RolloutPolicy(gates={"metric": {"loss": "absolute", "effect": 1.0}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> _ = observe_labels(policy, state, candidate=False, losses=[0.5, 1.5], answered_ms=1,
    ...                    at_ms=2)
    >>> state["gates"]["metric"]["state"]["mean"]
    [0.0, 1.0]

    A wrong candidate answer routed at 10% and answered once the ramp stepped to 50% is read
    at 10% (it adds :math:`\\log 2.5 = 0.9163`, not :math:`\\log 1.5` as at 50%), and
    counts toward no step now:

    >>> policy = RolloutPolicy(steps=(0.1, 0.5, 1.0), min_requests=1, gates={"metric": {}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                 share=0.1, at_ms=5).action
    'step'
    >>> _ = observe_labels(policy, state, candidate=True, wrong=[True], answered_ms=6,
    ...                    at_ms=7, routed_share=0.1)
    >>> state["step_labels"], state["left_share_labels"]
    (0, 1)
    >>> round(state["gates"]["metric"]["state"]["log_likelihood_ratio"], 4)
    0.9163

    The label of a request that named the candidate moves nothing:

    >>> _ = observe_labels(policy, state, candidate=True, wrong=[True], answered_ms=8,
    ...                    at_ms=9, routed=False)
    >>> state["gates"]["metric"]["state"]["n_candidate"], state["left_share_labels"]
    (1, 1)
    """
    if not reads_labels(state) or "metric" not in state["gates"]:
        return None
    if routed is False:
        return None  # its variant named by the request: no gate reads the request either
    if routed_share is None:
        # Unknown (kept before the share was recorded, or logged from Python), or routed by
        # a definition that was no canary split: read at the step decided when it was
        # answered. A worker sends ``routed`` only when false (an older control plane
        # refuses the field), so true and unknown must read alike.
        share = share_at(state, answered_ms)
    else:
        share = float(routed_share)
    document = state["gates"]["metric"]
    if document["test"] == MeanGate.test:
        if not losses:
            return None
        if candidate:
            _count_label(state, share, live_share)
        gate = MeanGate.from_dict(document)
        verdict = gate.update_many([candidate] * len(losses), losses).verdict
        state["gates"]["metric"] = gate.to_dict()
        failed_gate = "metric" if verdict == "fail" else None
        if failed_gate is None:
            return None
        return _decide(policy, state, failed_gate, at_ms)
    if not wrong:
        return None
    if not 0.0 < share < 1.0:
        return None
    if candidate:
        _count_label(state, share, live_share)
    failed_gate = _update_gate(state, "metric", [candidate] * len(wrong), wrong, share)
    if failed_gate is None:
        return None  # labels never take a step: requests do
    return _decide(policy, state, failed_gate, at_ms)


def reads_labels(state: dict[str, Any]) -> bool:
    """Whether the ramp's task-metric gate reads a label now: while it is ramping, and
    while the last step's or a rollback's decision is pending (its status says
    ``completed`` or ``rolled_back`` before the change is made). Such a decision may not
    be carried out (:func:`not_carried_out`) and then be decided again: the labels read
    meanwhile are in the gate's statistics and in the counts the step takes back, so
    none is lost to the retry, and none is read twice. Nothing is decided on top of the
    pending decision (:func:`_decide`). Once the change is made, or the ramp halted, the
    gates read nothing more.

    >>> policy = RolloutPolicy(steps=(0.1, 1.0), min_requests=1, gates={"metric": {}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                 share=0.1, at_ms=1).action
    'complete'
    >>> state["status"], reads_labels(state)
    ('completed', True)
    >>> state["decision"]["outcome"] = "carried_out"
    >>> reads_labels(state)
    False
    """
    if state["status"] == "ramping":
        return True
    return (
        state["status"] in ("completed", "rolled_back")
        and decision_outcome(state.get("decision")) == PENDING
    )


def _count_label(state: dict[str, Any], share: float, live_share: float | None) -> None:
    """Count a candidate's labelled request routed at ``share`` toward the current step, or
    as left behind (:func:`_count`, as :func:`observe_request` counts it)."""
    _count(state, share, live_share, "labels")


def observe_quality(
    policy: RolloutPolicy,
    state: dict[str, Any],
    gates: dict[str, dict[str, Any]],
    at_ms: int,
    *,
    seen: tuple[int, int] | None = None,
) -> Transition | None:
    """Keep the quality gates' new states ``gates`` (gate name -> its ``to_dict``, as
    :mod:`opsloop.monitoring.canary_quality` judged them on the rows each arm answered)
    in ``state``; a rollback when one failed. A gate that already decided keeps its
    decision, so a judgement made on an older state changes nothing. ``seen`` is the
    step and its candidate requests in the state the judgement read (default: now): a
    step waits for a judgement read once it was due.

    >>> policy = RolloutPolicy(gates={"drift": {}})
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> failed = DriftGate().to_dict()
    >>> failed["state"]["verdict"] = "fail"
    >>> observe_quality(policy, state, {"drift": failed}, at_ms=5).action
    'rollback'
    """
    if state["status"] != "ramping":
        return None
    step, step_requests = seen if seen is not None else (state["step"], state["step_requests"])
    if step == state["step"]:
        state["quality_look"] = {"step": step, "step_requests": step_requests, "at_ms": at_ms}
    failed_gate = None
    for name, document in gates.items():
        kept = state["gates"].get(name)
        if kept is None or kept["state"]["verdict"] != "continue":
            continue
        state["gates"][name] = document
        if document["state"]["verdict"] == "fail" and failed_gate is None:
            failed_gate = name
    if failed_gate is None:
        return None
    return _decide(policy, state, failed_gate, at_ms)


@dataclass(frozen=True)
class Outcome:
    """What became of a :class:`Transition` (:func:`apply_transition`): the new
    ``definition`` when it was carried out; else ``why`` not, and whether it may be tried
    again at once (``retry``: the write did not land, the deployment kept changing) or was
    refused by what the deployment is now (a change someone made that the ramp must not
    overwrite, the control plane's rules).

    >>> busy = Outcome(None, "OperationalError: database is locked", retry=True)
    >>> busy.definition is None, busy.retry
    (True, True)
    """

    definition: Deployment | None
    why: str | None = None
    retry: bool = False


def not_carried_out(
    policy: RolloutPolicy,
    state: dict[str, Any],
    transition: Transition,
    outcome: Outcome,
    at_ms: int,
) -> bool:
    """Make ``state`` say that ``transition``, which it decided, was not carried out (the
    change's write failed or was refused, see :func:`apply_transition`); ``False``, and
    nothing changed, when ``state`` no longer holds that decision as pending.

    The decision stays in ``state["decision"]`` with ``outcome`` ``not_carried_out`` and
    ``not_carried_out`` saying when, why and what follows (``then``), and is appended to
    ``state["not_carried_out"]`` (the newest :data:`MAX_NOT_CARRIED_OUT`):

    - a step (or the last step) goes back: the step, share and ``steps_taken`` are those the
      deployment still routes by, and the ramp is ``ramping``. ``then`` is ``retry`` when the
      write did not land: the step keeps its requests, so the next candidate request decides
      it again; ``wait`` when it was refused: the step's requests start again from 0, so the
      step is decided again only after ``min_requests`` more candidate requests, judged as
      they are routed now, and a change someone made meanwhile is not overwritten at once;
    - a rollback: ``retry`` puts the ramp back to ``ramping`` with its failed gate, so the
      next request decides the rollback again; ``halt`` (refused: the candidate answers
      nothing now, is another model, the stable variant is gone, the control plane refused
      it) ends the ramp as ``halted``, neither rolled back nor ramping: a person decides.

    A ``retry`` is bounded: ``state["retrying"]`` counts the decisions of one change (its
    ``action`` and target ``share``) not carried out in a row for such a cause (the first
    and last cause, the requests still to wait), the next decision waits
    ``2 ** (k - 1) - 1`` requests after the ``k``-th, and the :data:`RETRY_LIMIT`-th halts
    the ramp (``then`` ``halt``, the note keeps ``attempts`` and the ``first`` cause; a step
    goes back first). A change carried out ends the count, and another change starts its
    own: a gate that fails while a step waits out its backoff decides its rollback at the
    next request, with the whole budget.

    >>> policy = RolloutPolicy(steps=(0.1, 0.5, 1.0), min_requests=1)
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> step = observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                        share=0.1, at_ms=5)
    >>> state["share"], state["decision"]["outcome"]
    (0.5, 'pending')
    >>> not_carried_out(policy, state, step, Outcome(None, "eda changed it"), at_ms=6)
    True
    >>> state["status"], state["step"], state["share"], state["step_requests"]
    ('ramping', 0, 0.1, 0)
    >>> state["decision"]["outcome"], state["decision"]["not_carried_out"]["then"]
    ('not_carried_out', 'wait')
    >>> not_carried_out(policy, state, step, Outcome(None, "again"), at_ms=7)
    False
    """
    decision = state.get("decision")
    held = (
        decision is not None
        and decision_outcome(decision) == PENDING
        and decision.get("action") == transition.action
        and decision.get("at_ms") == transition.evidence.get("at_ms")
    )
    if not held:
        return False
    cause = {"at_ms": at_ms, "why": outcome.why}
    halt = False
    if outcome.retry:
        change = {"action": transition.action, "share": transition.share}
        retrying = state.get("retrying") or {}
        if {k: retrying.get(k) for k in change} != change:
            # The budget is each change's own: another action, or another target share,
            # starts its count from its first failure.
            retrying = {**change, "attempts": 0, "first": cause}
        attempts = retrying["attempts"] + 1
        halt = attempts >= RETRY_LIMIT
        state["retrying"] = {
            **retrying,
            "attempts": attempts,
            "last": cause,
            "wait": 0 if halt else 2 ** (attempts - 1) - 1,
        }
    else:
        state.pop("retrying", None)  # refused: the retries of a cause that passed end
    if transition.action == "rollback":
        then = "retry" if outcome.retry and not halt else "halt"
        state["status"] = "ramping" if then == "retry" else "halted"
    else:
        then = "halt" if halt else "retry" if outcome.retry else "wait"
        # The candidate's requests since the decision, routed at the share that stayed
        # (observe_request kept them apart from the step decided) or by hand; those routed
        # at a share the ramp left before stay left behind.
        # A state saved before the leaving share was counted apart took all of them back.
        leaving = state.pop("leaving_share_requests", state.get("left_share_requests", 0))
        counted = state["step_requests"] + leaving
        _take_back(state, "left_share_requests", leaving)
        state["step"] -= 1
        state["steps_taken"].pop()
        state["share"] = state["steps_taken"][-1]["share"]
        state["status"] = "halted" if halt else "ramping"
        previous = transition.evidence["candidate_requests_at_previous_step"]
        state["step_requests"] = previous + counted if outcome.retry else 0
        if "candidate_labels_at_previous_step" in transition.evidence:
            leaving = state.pop("leaving_share_labels", state.get("left_share_labels", 0))
            labels = state.get("step_labels", 0) + leaving
            _take_back(state, "left_share_labels", leaving)
            before = transition.evidence["candidate_labels_at_previous_step"]
            state["step_labels"] = before + labels if outcome.retry else 0
        if not outcome.retry:
            # A look at the quality gates read before the refusal is no look at this step's
            # new requests.
            state.pop("quality_look", None)
    note: dict[str, Any] = {**cause, "then": then}
    if halt:
        # What a person reads: how often it was tried, the first cause and the last.
        note.update(attempts=state["retrying"]["attempts"], first=state["retrying"]["first"])
    decision.update(outcome=NOT_CARRIED_OUT, not_carried_out=note)
    kept = state.get("not_carried_out", [])
    summary = {
        "action": transition.action,
        "share": transition.share,
        "decided_ms": decision["at_ms"],
    }
    state["not_carried_out"] = [*kept, {**summary, **note}][-MAX_NOT_CARRIED_OUT:]
    # All of them, where the list keeps the newest (the metrics count them).
    counts = state.setdefault("not_carried_out_count", {})
    counts[transition.action] = counts.get(transition.action, 0) + 1
    return True


def _take_back(state: dict[str, Any], key: str, count: int) -> None:
    """Take ``count`` off counter ``key`` of ``state``, leaving it out when none is left."""
    left = state.pop(key, 0) - count
    if left:
        state[key] = left


def stale_pending(state: dict[str, Any], at_ms: int) -> Transition | None:
    """The decision ``state`` holds as ``pending`` (a missing ``outcome`` counts as
    pending, as :func:`~.rollout_decisions.check_decision` counts it) when it was decided
    :data:`DECISION_LEASE_MS` or more before ``at_ms``, as the :class:`Transition` that was
    to carry it out; else ``None``.

    A change is made, and its decision marked ``carried_out``, in one transaction right
    after the decision (:func:`apply_transition`), so a decision still pending past the
    lease is one whose worker stopped in between (killed, restarted): the caller reads the
    audit log for an entry carrying it (:func:`~.rollout_decisions.decision_entry`) and marks
    it ``carried_out``, or else :func:`not_carried_out` with ``retry``, so the ramp decides
    it again (a lost rollback is made by the next request) instead of waiting forever.

    >>> policy = RolloutPolicy(steps=(0.1, 0.5, 1.0), min_requests=1)
    >>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
    >>> step = observe_request(policy, state, candidate=True, failed=False, latency_ms=1.0,
    ...                        share=0.1, at_ms=5)
    >>> stale_pending(state, 5 + DECISION_LEASE_MS - 1) is None
    True
    >>> stale_pending(state, 5 + DECISION_LEASE_MS) == step
    True
    """
    decision = state.get("decision")
    if decision is None or decision_outcome(decision) != PENDING:
        return None
    if at_ms - decision.get("at_ms", at_ms) < DECISION_LEASE_MS:
        return None
    kept = {k: v for k, v in decision.items() if k not in ("outcome", "not_carried_out")}
    action = kept.pop("action")
    if action == "rollback":  # its evidence keeps the share it failed at
        return Transition(action, 0.0, kept)
    return Transition(action, kept.pop("share"), kept)


def transition_variants(
    definition: Deployment, transition: Transition, stable: str, candidate: str
):
    """The variants and strategy that carry out ``transition`` on ``definition``.

    >>> from opsloop.serving.deployment_records import Variant
    >>> d = Deployment("api", "canary", "full_automation",
    ...                (Variant("stable", "m", version=1, weight=0.9),
    ...                 Variant("canary", "m", version=2, role="candidate", weight=0.1)),
    ...                None, 0, "ana", {"stable": 1, "canary": 2})
    >>> variants, strategy = transition_variants(d, Transition("rollback", 0.0, {}),
    ...                                          "stable", "canary")
    >>> strategy, [v.weight for v in variants]
    ('blue_green', [1.0, 0.0])
    """
    share = transition.share
    weights = {stable: 1.0 - share, candidate: share}
    variants = tuple(
        v.with_weight(weights[v.name]) if v.name in weights else v for v in definition.variants
    )
    return variants, "canary" if 0.0 < share < 1.0 else "blue_green"


#: How many times :func:`apply_transition` reads the deployment again after a change
#: made by someone else landed between its read and its write.
APPLY_ATTEMPTS = 3


def _routing(definition: Deployment) -> tuple:
    """What a ramp decides on: the strategy and the live variants (their models, roles
    and weights). A change elsewhere (the description, the automation level, a shadow)
    leaves the ramp's decision as valid as before."""
    live = tuple(
        (v.name, v.model, v.version, v.alias, v.role, v.weight)
        for v in definition.variants
        if v.role != "shadow"
    )
    return definition.strategy, live


def _still_failing(
    definition: Deployment, first_read: Deployment, stable: str, candidate: str
) -> str | None:
    """``None`` when a rollback decided on ``first_read`` still has to be carried out on
    ``definition`` (someone changed the routing between): the same candidate model still
    answers a share and the stable variant is there to take it back; otherwise why not.

    >>> from opsloop.serving.deployment_records import Variant
    >>> def canary(share, version=2):
    ...     return Deployment("api", "canary", "full_automation",
    ...                       (Variant("stable", "m", version=1, weight=1 - share),
    ...                        Variant("canary", "m", version=version, role="candidate",
    ...                                weight=share)), None, 0, "ana", {})
    >>> _still_failing(canary(0.3), canary(0.1), "stable", "canary") is None
    True
    >>> _still_failing(canary(0.0), canary(0.1), "stable", "canary")
    'the candidate answers nothing now'
    >>> _still_failing(canary(0.3, version=3), canary(0.1), "stable", "canary")
    'the candidate is another model now, which no gate judged'
    """
    now = {v.name: v for v in definition.variants if v.role != "shadow"}
    before = {v.name: v for v in first_read.variants if v.role != "shadow"}
    if candidate not in now or now[candidate].weight <= 0.0:
        return "the candidate answers nothing now"
    was = before.get(candidate)
    if was is None or (now[candidate].model, now[candidate].version, now[candidate].alias) != (
        was.model,
        was.version,
        was.alias,
    ):
        return "the candidate is another model now, which no gate judged"
    if stable not in now:
        return "the stable variant is gone"
    return None


def apply_transition(
    deployments, name: str, transition: Transition, state: dict, actor: str
) -> Outcome:
    """Carry out ``transition`` through the control plane: an audited deploy (by ``actor``,
    who set the rollout) whose entry carries the decision (its ``decision`` field, see
    :mod:`.rollout_decisions`) and whose reason says it in a sentence, with the evidence.
    The same transaction marks the decision ``carried_out`` in the rollout's state. Returns
    the :class:`Outcome`: the new definition, or why the change was not made (see below;
    the caller records that in the state with :func:`not_carried_out`). On a protected
    deployment a rollback restores the newest earlier definition in which the candidate
    answers nothing, under the approvals that covered it
    (:meth:`~opsloop.serving.Deployments.rollback`); steps still need approvals.

    The change is conditional on the definition it was computed from (its
    ``expected_revision``), so a change someone made meanwhile is never overwritten. When
    one landed between the read and the write, the definition is read again and judged:
    if the change left what the ramp decides on as it was (the strategy and the live
    variants, their models, roles and weights), the decision is carried out on the new
    definition, keeping that change. A rollback is carried out on the new definition too
    while the same failing candidate still answers a share (its gate has stopped judging
    it, so leaving it would leave it unwatched). Otherwise the decision is refused, and a
    warning says why. A change the control plane refuses (approvals missing, no definition
    to go back to) is refused too; a deployment that kept changing for
    :data:`APPLY_ATTEMPTS` reads is to be retried. A retired deployment gets no change
    either (its rollout is gone with it).

    Takes a :class:`~opsloop.serving.Deployments` (on a store: the control plane's side)
    as ``deployments``.
    """
    stable, candidate = state["stable"], state["candidate"]

    def refused(why: str, *, retry: bool = False) -> Outcome:
        logger.warning(
            "deployment %s: the rollout's %s is not carried out: %s", name, transition.action, why
        )
        return Outcome(None, why, retry=retry)

    decision = decision_document(transition, stable, candidate)
    reason = transition.reason(stable, candidate)
    log = logger.warning if transition.action == "rollback" else logger.info
    log("deployment %s: %s", name, reason)
    first_read = None
    for _ in range(APPLY_ATTEMPTS):
        try:
            definition = deployments.get(name)
        except NotFoundError:
            return refused("the deployment was retired")
        if first_read is None:
            first_read = definition
        elif _routing(definition) != _routing(first_read):
            still = _still_failing(definition, first_read, stable, candidate)
            if transition.action != "rollback" or still is not None:
                why = (
                    f"{definition.updated_by} changed its strategy or live variants meanwhile "
                    f"(revision {definition.revision}); "
                    + ("that change stands" if transition.action != "rollback" else still)
                )
                return refused(why)
            # The failing candidate still answers: its gate has stopped judging it, so
            # the rollback goes ahead on the new definition (other changes kept).
        try:
            return Outcome(
                _carry_out(deployments, name, definition, transition, decision, reason, actor)
            )
        except StaleRevisionError as error:
            logger.info("deployment %s: read it again for the rollout's change: %s", name, error)
        except OpsloopError as error:
            # The control plane's rules refuse it (approvals missing, no definition to go
            # back to): trying again at once would be refused again.
            return refused(f"the control plane refused it: {error}")
    return refused(f"the deployment kept changing ({APPLY_ATTEMPTS} reads)", retry=True)


def _carry_out(
    deployments,
    name: str,
    definition: Deployment,
    transition: Transition,
    decision: dict[str, Any],
    reason: str,
    actor: str,
) -> Deployment:
    """The change of :func:`apply_transition` on ``definition``, conditional on its
    revision. The deployments' own methods with a decision: the public operations take
    none (see :mod:`.rollout_decisions`)."""
    stable, candidate = decision["stable"], decision["candidate"]
    if transition.action == "rollback" and definition.required_approvals:
        # A protected deployment changes only with approvals of the new definition, which
        # a ramp cannot wait for; it goes back to the newest definition its approvers
        # covered in which the candidate answers nothing (see Deployments.rollback).
        return deployments._rollback(
            name,
            away_from=candidate,
            actor=actor,
            reason=reason,
            expected_revision=definition.revision,
            decision=decision,
        )
    variants, strategy = transition_variants(definition, transition, stable, candidate)
    return deployments._deploy(
        name,
        variants,
        strategy=strategy,
        automation=definition.automation,
        description=definition.description,
        actor=actor,
        reason=reason,
        expected_revision=definition.revision,
        decision=decision,
    )
