"""Labels that arrive while a canary's last step or rollback is decided but not yet made are
read by the task-metric gate, and a decision that is then not carried out and decided
again keeps them: every routed label is read once, before, during or after the pending
decision. Two serving workers on one store (SQLite and PostgreSQL): one decides and is
slow to make the change, which then finds the deployment changing under it (a retry);
the other answers, takes the labels and decides again. The gate's statistics are derived
by hand: a fresh gate of the policy reading the same (arm, wrong, share) events."""

from __future__ import annotations

from tests.clock import FakeClock
from tests.serving.canary_scenarios import KeepsChanging, metric_gate_after, routing_keys
from tests.serving.served_models import Constant, OneUnlessNegative, deploy_canary, routed_to_canary

from opsloop.serving import ServingRuntime
from opsloop.serving.canary_rollout import APPLY_ATTEMPTS
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_policy import RolloutPolicy

RECORD = {"x": 1.0}
STEPS = [0.05, 0.25, 1.0]


class Slow(RolloutObserver):
    """A worker between the transaction that decides a change and the change itself:
    the change waits in ``deferred`` until the test makes it."""

    def __init__(self, db, deployments) -> None:
        super().__init__(db, deployments)
        self.deferred: list[tuple] = []

    def _apply(self, *args) -> None:
        self.deferred.append(args)

    def make_change(self) -> None:
        RolloutObserver._apply(self, *self.deferred.pop(0))


def _workers(registry):
    """The slow worker (its observer), and a worker that follows every change."""
    slow = Slow(registry.db, KeepsChanging(registry.db, times=APPLY_ATTEMPTS))
    deciding = ServingRuntime(registry.db, registry.artifacts, trust=True, rollouts=slow)
    other = ServingRuntime(registry.db, registry.artifacts, trust=True)
    return slow, deciding, other


def _feedback(runtimes, answer, label) -> None:
    """The label of ``answer``, sent to the last of ``runtimes`` once every one of them
    wrote its events (a label reaches any worker)."""
    for runtime in runtimes:
        assert runtime.recorder.flush(5.0)
    runtimes[-1].feedback("api", answer.request_id, label=label, actor="ana")


def test_labels_during_a_pending_completion_are_read_and_kept_by_its_retry(registry):
    clock = registry.db.clock = FakeClock()
    # The canary answers 1, the stable variant 0; every label is 0: the canary is wrong.
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    gates = {"metric": {}}
    deployments.set_rollout("api", steps=STEPS, min_requests=2, gates=gates)
    policy = RolloutPolicy(steps=STEPS, min_requests=2, gates=gates)
    at_5 = routing_keys(lambda k: routed_to_canary(k, 0.05), 2)
    at_25 = routing_keys(lambda k: routed_to_canary(k, 0.25) and not routed_to_canary(k, 0.05), 3)
    primary = routing_keys(lambda k: not routed_to_canary(k, 0.25), 2)
    slow, deciding, other = _workers(registry)
    both = (deciding, other)
    try:
        first = [other.predict("api", [RECORD], routing_key=k) for k in at_5]
        assert [a.variant for a in first] == ["canary", "canary"]
        assert [v.weight for v in deployments.get("api").variants] == [0.75, 0.25]
        # Before any decision is pending: a label of 5%, a share the ramp has left.
        _feedback(both, first[0], 0)
        k1 = other.predict("api", [RECORD], routing_key=at_25[0])
        s1 = other.predict("api", [RECORD], routing_key=primary[0])
        s2 = other.predict("api", [RECORD], routing_key=primary[1])
        _feedback(both, k1, 0)
        state = deployments.rollout("api")["state"]
        assert (state["step"], state["step_requests"], state["step_labels"]) == (1, 1, 1)
        # The slow worker's candidate request decides the completion; the change waits.
        assert deciding.served("api").routed_share == 0.25
        k2 = deciding.predict("api", [RECORD], routing_key=at_25[1])
        assert k2.variant == "canary" and len(slow.deferred) == 1
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["decision"]["action"]) == ("completed", "complete")
        assert state["decision"]["outcome"] == "pending"
        assert state["decision"]["candidate_labels_at_previous_step"] == 1
        # During the pending decision: the candidate's label, routed at the 25% the
        # completion leaves, and a stable answer's.
        _feedback(both, k2, 0)
        _feedback(both[::-1], s1, 0)
        state = deployments.rollout("api")["state"]
        reads = [(True, True, 0.05), (True, True, 0.25), (True, True, 0.25), (False, False, 0.25)]
        assert state["gates"]["metric"] == metric_gate_after(policy, reads)
        metric = state["gates"]["metric"]["state"]
        assert (metric["n_candidate"], metric["events_candidate"], metric["n_primary"]) == (3, 3, 1)
        assert (state["left_share_labels"], state["leaving_share_labels"]) == (1, 1)
        # The change finds the deployment changing: not carried out, to be retried. The
        # 25% step takes back its label read meanwhile: 1 before, 1 during.
        slow.make_change()
        assert [v.weight for v in deployments.get("api").variants] == [0.75, 0.25]
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["step"], state["share"]) == ("ramping", 1, 0.25)
        assert state["decision"]["not_carried_out"]["then"] == "retry"
        assert (state["step_requests"], state["step_labels"]) == (2, 2)
        assert "left_share_labels" not in state and "leaving_share_labels" not in state
        # After it, before it is decided again: read as any label of the ramping step.
        _feedback(both, s2, 0)
        reads.append((False, False, 0.25))
        assert deployments.rollout("api")["state"]["gates"]["metric"] == metric_gate_after(
            policy, reads
        )
        clock.advance()
        k3 = other.predict("api", [RECORD], routing_key=at_25[2])
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["decision"]["outcome"]) == ("completed", "carried_out")
        assert state["decision"]["candidate_requests_at_previous_step"] == 3
        assert state["decision"]["candidate_labels_at_previous_step"] == 2
        assert [v.weight for v in deployments.get("api").variants] == [0.0, 1.0]
        # Once the change is made the ramp is over: its gate reads nothing more.
        _feedback(both, k3, 0)
        final = deployments.rollout("api")["state"]
        assert final["gates"]["metric"] == metric_gate_after(policy, reads)
        assert final["gates"]["metric"]["state"]["verdict"] == "continue"
    finally:
        deciding.close()
        other.close()


def test_labels_during_a_pending_rollback_are_read_and_kept_by_its_retry(registry):
    clock = registry.db.clock = FakeClock()
    # The canary answers 1 and fails on a negative x; the stable variant answers 0.
    deployments = deploy_canary(registry, Constant(0), OneUnlessNegative(), share=0.05)
    gates = {"errors": {}, "metric": {}}
    deployments.set_rollout("api", steps=STEPS, min_requests=10_000, gates=gates)
    policy = RolloutPolicy(steps=STEPS, min_requests=10_000, gates=gates)
    canary = routing_keys(lambda k: routed_to_canary(k, 0.05), 60)
    primary = routing_keys(lambda k: not routed_to_canary(k, 0.05), 2)
    slow, deciding, other = _workers(registry)
    both = (deciding, other)
    try:
        k1 = other.predict("api", [RECORD], routing_key=canary[0])
        k2 = other.predict("api", [RECORD], routing_key=canary[1])
        s1 = other.predict("api", [RECORD], routing_key=primary[0])
        s2 = other.predict("api", [RECORD], routing_key=primary[1])
        assert [a.variant for a in (k1, k2, s1, s2)] == ["canary", "canary", "stable", "stable"]
        _feedback(both, k1, 0)  # before: wrong
        # The slow worker's failing candidate requests fail the errors gate.
        for key in canary[2:]:
            clock.advance()
            try:
                deciding.predict("api", [{"x": -1.0}], routing_key=key)
            except RuntimeError as error:  # the model's own error reaches its caller
                assert str(error) == "a negative x"
            if slow.deferred:
                break
        assert len(slow.deferred) == 1
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["decision"]["action"]) == ("rolled_back", "rollback")
        assert state["decision"]["outcome"] == "pending"
        # During the pending rollback: the metric gate, still judging, reads both labels.
        _feedback(both, k2, 0)
        _feedback(both[::-1], s1, 0)
        reads = [(True, True, 0.05), (True, True, 0.05), (False, False, 0.05)]
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(policy, reads)
        assert state["step_labels"] == 2
        slow.make_change()  # not carried out: the ramp is back, its failed gate kept
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["decision"]["outcome"]) == ("ramping", "not_carried_out")
        assert state["gates"]["errors"]["state"]["verdict"] == "fail"
        _feedback(both, s2, 0)  # after it, before it is decided again
        reads.append((False, False, 0.05))
        assert deployments.rollout("api")["state"]["gates"]["metric"] == metric_gate_after(
            policy, reads
        )
        clock.advance()
        late = other.predict("api", [RECORD], routing_key=canary[-1])  # decides it again
        state = deployments.rollout("api")["state"]
        assert (state["status"], state["decision"]["outcome"]) == ("rolled_back", "carried_out")
        assert [v.weight for v in deployments.get("api").variants] == [1.0, 0.0]
        assert state["decision"]["gates"]["metric"]["n_candidate"] == 2
        _feedback(both, late, 0)  # the ramp is over: nothing more is read
        final = deployments.rollout("api")["state"]
        assert final["gates"]["metric"] == metric_gate_after(policy, reads)
        assert final["step_labels"] == 2
    finally:
        deciding.close()
        other.close()
