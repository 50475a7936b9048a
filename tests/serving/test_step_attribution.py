"""A canary's requests are counted at the share they were routed at: a candidate request
still routed at the share the ramp is moving away from (while the step's decision is
pending, its deploy not made yet, or by a worker that has not followed the step) counts
toward no step, so each step is decided on ``min_requests`` requests routed at its own
share; the gates read every request at its own share. With the ramp's functions in a
controlled order, and with a real store (SQLite and PostgreSQL) where a second worker's
requests land inside the first worker's pending step."""

from __future__ import annotations

from tests.clock import FakeClock

from opsloop.analysis.sequential import RateGate
from opsloop.serving import Deployments, Variant
from opsloop.serving.canary_rollout import (
    Outcome,
    new_canary_state,
    not_carried_out,
    observe_labels,
    observe_request,
)
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_policy import RolloutPolicy

POLICY = RolloutPolicy(steps=(0.1, 0.5, 1.0), min_requests=3, gates={"errors": {}})


def _request(state: dict, share: float, at_ms: int):
    return observe_request(
        POLICY, state, candidate=True, failed=False, latency_ms=1.0, share=share, at_ms=at_ms
    )


def test_requests_routed_at_the_old_share_while_a_step_is_pending_do_not_count_toward_it():
    state = new_canary_state(POLICY, "stable", "canary", None, at_ms=0)
    moves = [_request(state, 0.1, at_ms) for at_ms in (1, 2, 3)]
    assert [m and m.action for m in moves] == [None, None, "step"]
    assert (state["share"], state["decision"]["outcome"]) == (0.5, "pending")
    # The deploy to 50% takes a while: three more requests are routed at 10% meanwhile.
    assert [_request(state, 0.1, at_ms) for at_ms in (4, 5, 6)] == [None, None, None]
    assert (state["step_requests"], state["left_share_requests"]) == (0, 3)
    state["decision"]["outcome"] = "carried_out"  # what the deploy's transaction writes
    # Three requests routed at 50% make the step's worth, not the first of them.
    moves = [_request(state, 0.5, at_ms) for at_ms in (7, 8, 9)]
    assert [m and m.action for m in moves] == [None, None, "complete"]
    assert moves[-1].evidence["candidate_requests_at_previous_step"] == 3
    # The gate read each request at the share it was routed at.
    reference = RateGate(shares=(0.1, 0.5))
    reference.update_many([True] * 9, [False] * 9, [0.1] * 6 + [0.5] * 3)
    assert state["gates"]["errors"] == reference.to_dict()
    assert state["candidate_requests"] == 9


def test_a_step_not_carried_out_keeps_the_requests_routed_at_the_share_that_stayed():
    state = new_canary_state(POLICY, "stable", "canary", None, at_ms=0)
    step = [_request(state, 0.1, at_ms) for at_ms in (1, 2, 3)][-1]
    assert [_request(state, 0.1, at_ms) for at_ms in (4, 5)] == [None, None]
    assert not_carried_out(POLICY, state, step, Outcome(None, "busy", retry=True), at_ms=6)
    # Back at 10% with the 3 requests that decided the step and the 2 routed there since.
    assert (state["step"], state["share"], state["step_requests"]) == (0, 0.1, 5)
    assert "left_share_requests" not in state
    again = _request(state, 0.1, at_ms=7)
    assert (again.action, again.evidence["candidate_requests_at_previous_step"]) == ("step", 6)


class SecondWorkerBetween(Deployments):
    """The store's deployments, where a second worker, still routing at the old share,
    reads ``requests`` candidate answers into the rollout right after the first worker
    decided a step and before its deploy (the controller's read of the definition)."""

    def __init__(self, db, worker: RolloutObserver, requests: list[dict]) -> None:
        super().__init__(db)
        self.worker, self.requests = worker, requests

    def get(self, name: str):
        definition = super().get(name)
        while self.requests:
            self.worker.record(name, [], self.requests.pop(0))
        return definition


def _candidate(share: float) -> dict:
    return {"candidate": True, "failed": False, "latency_ms": 1.0, "share": share,
            "disagrees": None, "anomalous": None}  # fmt: skip


def test_a_second_workers_requests_inside_a_pending_step_count_toward_no_step(registry):
    registry.db.clock = FakeClock()
    registry.register("m", b"stable bytes", flavor="onnx")
    registry.register("m", b"canary bytes", flavor="onnx")
    deployments = Deployments(registry.db)
    deployments.deploy(
        "api",
        [Variant("stable", "m", version=1, weight=0.9),
         Variant("canary", "m", version=2, role="candidate", weight=0.1)],
        strategy="canary",
    )  # fmt: skip
    deployments.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=3)
    second = RolloutObserver(registry.db, Deployments(registry.db))
    controller = SecondWorkerBetween(registry.db, second, [_candidate(0.1) for _ in range(3)])
    first = RolloutObserver(registry.db, controller)
    for _ in range(3):
        registry.db.clock.advance()
        first.record("api", [], _candidate(0.1))
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["share"], state["decision"]["outcome"]) == (1, 0.5, "carried_out")
    assert (state["step_requests"], state["left_share_requests"]) == (0, 3)
    # A worker that has not followed the step yet: its requests at 10% count toward none.
    second.record("api", [], _candidate(0.1))
    for _ in range(2):
        first.record("api", [], _candidate(0.5))
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    first.record("api", [], _candidate(0.5))
    assert [v.weight for v in deployments.get("api").variants] == [0.0, 1.0]
    state = deployments.rollout("api")["state"]
    assert state["status"] == "completed"
    assert state["decision"]["candidate_requests_at_previous_step"] == 3
    errors = state["gates"]["errors"]["state"]
    assert (errors["n_candidate"], state["candidate_requests"]) == (10, 10)


# The candidate's weight before the ramp's first step, and a weight set by hand.

FROM_TEN = RolloutPolicy(steps=(0.05, 0.5, 1.0), min_requests=3, gates={"errors": {}})


def _at(policy, state: dict, share: float, at_ms: int, live_share: float | None = None):
    return observe_request(
        policy, state, candidate=True, failed=False, latency_ms=1.0, share=share,
        at_ms=at_ms, live_share=live_share,
    )  # fmt: skip


def test_requests_routed_at_the_weight_before_the_first_step_count_toward_no_step():
    """The candidate answered 10% before a ramp whose first step is 5%: a worker that has
    not followed the first step still routes at 10%, and those requests are left behind."""
    state = new_canary_state(FROM_TEN, "stable", "canary", None, at_ms=0, share_before=0.1)
    assert [_at(FROM_TEN, state, 0.1, t, live_share=0.05) for t in (1, 2, 3)] == [None] * 3
    assert (state["step"], state["step_requests"], state["left_share_requests"]) == (0, 0, 3)
    moves = [_at(FROM_TEN, state, 0.05, t, live_share=0.05) for t in (4, 5, 6)]
    assert [m and m.action for m in moves] == [None, None, "step"]
    assert moves[-1].evidence["candidate_requests_at_previous_step"] == 3


def test_a_state_kept_without_the_weight_before_the_ramp_still_reads_requests():
    """A state written before the weight was kept has none to leave behind: it reads as it
    did, requests at a share outside the ramp counting toward the current step."""
    state = new_canary_state(FROM_TEN, "stable", "canary", None, at_ms=0)
    assert "share_before" not in state
    moves = [_at(FROM_TEN, state, 0.1, t) for t in (1, 2, 3)]
    assert [m and m.action for m in moves] == [None, None, "step"]


def test_a_weight_set_back_by_hand_to_a_left_share_counts_toward_the_current_step():
    """The ramp is at 50% when a person sets the candidate back to 10%, the first step's
    share: the requests routed there now are judged toward the step, not left behind
    forever; a worker still routing at 10% while the definition says 50% is left behind."""
    state = new_canary_state(POLICY, "stable", "canary", None, at_ms=0, share_before=0.2)
    assert [_request(state, 0.1, t) for t in (1, 2)] == [None, None]
    assert _request(state, 0.1, 3).action == "step"
    state["decision"]["outcome"] = "carried_out"  # now at 50%
    assert _at(POLICY, state, 0.1, 4, live_share=0.5) is None  # a lagging worker
    assert _at(POLICY, state, 0.2, 5, live_share=0.5) is None  # one from before the ramp
    assert (state["step_requests"], state["left_share_requests"]) == (0, 2)
    # Set back by hand to 10%, and later to 20% (the weight before the ramp).
    assert _at(POLICY, state, 0.1, 6, live_share=0.1) is None
    assert _at(POLICY, state, 0.2, 7, live_share=0.2) is None
    last = _at(POLICY, state, 0.2, 8, live_share=0.2)
    assert (last.action, last.evidence["candidate_requests_at_previous_step"]) == ("complete", 3)
    assert state["left_share_requests"] == 0


def _canary(registry, share: float) -> Deployments:
    registry.db.clock = FakeClock()
    registry.register("m", b"stable bytes", flavor="onnx")
    registry.register("m", b"canary bytes", flavor="onnx")
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy("api", _weights(share), strategy="canary")
    return deployments


def _weights(share: float) -> list[Variant]:
    return [
        Variant("stable", "m", version=1, weight=1.0 - share),
        Variant("canary", "m", version=2, role="candidate", weight=share),
    ]


def test_a_lagging_workers_requests_at_the_weight_before_the_rollout_count_toward_no_step(
    registry,
):
    deployments = _canary(registry, 0.1)
    deployments.set_rollout("api", steps=[0.05, 0.5, 1.0], min_requests=3)
    assert [v.weight for v in deployments.get("api").variants] == [0.95, 0.05]
    assert deployments.rollout("api")["state"]["share_before"] == 0.1
    lagging = RolloutObserver(registry.db, Deployments(registry.db))
    for _ in range(3):
        registry.db.clock.advance()
        lagging.record("api", [], _candidate(0.1))
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["step_requests"], state["left_share_requests"]) == (0, 0, 3)
    assert [v.weight for v in deployments.get("api").variants] == [0.95, 0.05]
    for _ in range(3):
        registry.db.clock.advance()
        lagging.record("api", [], _candidate(0.05))
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    state = deployments.rollout("api")["state"]
    assert state["decision"]["candidate_requests_at_previous_step"] == 3


def test_a_ramp_whose_candidate_is_set_back_by_hand_goes_on_from_the_share_it_routes_at(
    registry,
):
    deployments = _canary(registry, 0.1)
    deployments.set_rollout("api", steps=[0.1, 0.5, 1.0], min_requests=3)
    worker = RolloutObserver(registry.db, Deployments(registry.db))
    for _ in range(3):
        registry.db.clock.advance()
        worker.record("api", [], _candidate(0.1))
    assert [v.weight for v in deployments.get("api").variants] == [0.5, 0.5]
    deployments.deploy("api", _weights(0.1), strategy="canary")  # back to 10% by hand
    for _ in range(3):
        registry.db.clock.advance()
        worker.record("api", [], _candidate(0.1))
    state = deployments.rollout("api")["state"]
    assert (state["status"], state.get("left_share_requests", 0)) == ("completed", 0)
    assert state["decision"]["candidate_requests_at_previous_step"] == 3
    assert [v.weight for v in deployments.get("api").variants] == [0.0, 1.0]


RAMP = RolloutPolicy(steps=(0.05, 0.25, 0.5, 1.0), min_requests=1, gates={"metric": {}})


def _ramp_pending_25_to_50() -> tuple[dict, object]:
    """A ramp stepped to 25% (carried out) whose step 25% -> 50% is decided and pending."""
    state = new_canary_state(RAMP, "stable", "canary", None, at_ms=0)
    request = {"candidate": True, "failed": False, "latency_ms": 1.0}
    assert observe_request(RAMP, state, share=0.05, at_ms=1, **request).share == 0.25
    state["decision"]["outcome"] = "carried_out"
    pending = observe_request(RAMP, state, share=0.25, at_ms=3, **request)
    assert (pending.action, pending.share) == ("step", 0.5)
    assert pending.evidence["candidate_labels_at_previous_step"] == 0
    return state, pending


def _label(state: dict, share: float, at_ms: int) -> None:
    observe_labels(RAMP, state, candidate=True, wrong=[False], answered_ms=0, at_ms=at_ms,
                   routed_share=share)  # fmt: skip


def test_a_step_retried_takes_back_no_label_routed_at_an_older_share():
    state, pending = _ramp_pending_25_to_50()
    for at_ms in (4, 5, 6):  # late labels of requests routed at 5%, the step before
        _label(state, 0.05, at_ms)
    assert (state["step_labels"], state["left_share_labels"]) == (0, 3)
    assert not_carried_out(RAMP, state, pending, Outcome(None, "locked", retry=True), at_ms=10)
    # Back at 25%, which no label was routed at: the 5% labels stay left behind.
    assert (state["share"], state["step_labels"], state["left_share_labels"]) == (0.25, 0, 3)
    assert state["retrying"]["wait"] == 0
    again = observe_request(RAMP, state, candidate=True, failed=False, latency_ms=1.0,
                            share=0.25, at_ms=11)  # fmt: skip
    assert (again.action, again.share) == ("step", 0.5)
    assert again.evidence["candidate_labels_at_previous_step"] == 0
    assert again.evidence["candidate_requests_at_previous_step"] == 2


def test_a_step_retried_takes_back_what_was_routed_at_the_share_it_left_alone():
    state, pending = _ramp_pending_25_to_50()
    request = {"candidate": True, "failed": False, "latency_ms": 1.0}
    # While the 50% step is pending: requests and labels routed at 25% (the definition
    # still routes there) and at 5% (a worker that never followed the first step).
    for share, at_ms in ((0.25, 4), (0.05, 5), (0.05, 6)):
        assert observe_request(RAMP, state, share=share, at_ms=at_ms, **request) is None
        _label(state, share, at_ms)
    assert (state["step_requests"], state["left_share_requests"]) == (0, 3)
    assert (state["step_labels"], state["left_share_labels"]) == (0, 3)
    assert not_carried_out(RAMP, state, pending, Outcome(None, "locked", retry=True), at_ms=10)
    # The step's own request and the one at 25% since; the 5% ones stay left behind.
    assert (state["step_requests"], state["left_share_requests"]) == (2, 2)
    assert (state["step_labels"], state["left_share_labels"]) == (1, 2)
    again = observe_request(RAMP, state, share=0.25, at_ms=11, **request)
    assert again.evidence["candidate_requests_at_previous_step"] == 3
    assert again.evidence["candidate_labels_at_previous_step"] == 1


def test_a_pending_step_saved_before_the_leaving_share_was_counted_takes_all_back():
    # The same pending step twice: as this version keeps it, and as a state saved before
    # the requests and labels at the share being left were counted apart from older ones
    # (no leaving_share_* keys: every left-behind request and label was taken back).
    evidence = []
    for saved_before in (False, True):
        state, pending = _ramp_pending_25_to_50()
        request = {"candidate": True, "failed": False, "latency_ms": 1.0}
        for at_ms in (4, 5):  # routed at 25% while the 50% step is pending
            assert observe_request(RAMP, state, share=0.25, at_ms=at_ms, **request) is None
            _label(state, 0.25, at_ms)
        if saved_before:
            del state["leaving_share_requests"], state["leaving_share_labels"]
        assert not_carried_out(RAMP, state, pending, Outcome(None, "locked", retry=True), at_ms=10)
        left = (state.get("left_share_requests", 0), state.get("left_share_labels", 0))
        assert left == (0, 0)
        again = observe_request(RAMP, state, share=0.25, at_ms=11, **request)
        evidence.append(
            (
                again.evidence["candidate_requests_at_previous_step"],
                again.evidence["candidate_labels_at_previous_step"],
            )
        )
    # The step's own request, the two at 25% since and the one that re-decides; 2 labels.
    assert evidence == [(4, 2), (4, 2)]
