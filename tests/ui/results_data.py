"""Deployments whose results the results page shows: a canary that ramped one step and was
rolled back by its errors gate, a bandit with rewards, and an A/B test with a shadow whose
answers agree with the primary's on most requests. Each is built through the same calls
the data plane makes (the rollout observer, the bandit's reward, recorded prediction
events, feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from opsloop.analysis.sequential import RateGate
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant, record_feedback
from opsloop.serving.bandit_routing import record_reward
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.rollout_observer import RolloutObserver

# 2026-01-01T00:00:00Z: the answers of the A/B test fall in the hour before it.
END_MS = 1_767_225_600_000
END = "2026-01-01T00:00:00"
#: The canary: 10 good answers at 20% move it to 50%; errors from then on roll it back.
STEPS, MIN_REQUESTS = [0.2, 0.5, 1.0], 10
#: The bandit's rewards per arm (0/1, Thompson sampling on a Beta(1, 1) prior).
REWARDS = {"a": [1, 0, 0, 1], "b": [1, 1, 1, 0, 1]}
#: The A/B test: request i went to arm a (even) or b (odd), predicted i % 3 == 0, and
#: earned REWARD[i]; its shadow answered requests 0-7, request 7 with an error, and
#: disagreed on request 2 only.
REQUESTS = 10
REWARD = [1, 1, 0, 1, 1, 1, 1, 1, 0, 0]
SHADOW_ANSWERED, SHADOW_FAILED, SHADOW_DISAGREES = range(8), 7, 2


@dataclass
class Results:
    failures_to_rollback: int  # failing candidate answers at 50% until the gate failed
    gate: RateGate  # the reference gate, fed the same answers by hand


def _canary(registry: ModelRegistry, deployments: Deployments) -> Results:
    deployments.deploy(
        "canary-api",
        [
            Variant("stable", "m", version=1, weight=0.9),
            Variant("canary", "m", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
        reason="try version 2",
    )
    deployments.set_rollout("canary-api", steps=STEPS, min_requests=MIN_REQUESTS)
    observer = RolloutObserver(registry.db, deployments)
    gate = RateGate(shares=[s for s in STEPS if s < 1])

    def answer(failed: bool) -> None:
        served = SimpleNamespace(definition=deployments.get("canary-api"))
        share = served.definition.variants[1].weight
        gate.update(True, failed, share=share)
        observer.observe(served, "canary", failed=failed, latency_ms=1.0)

    for _ in range(MIN_REQUESTS):
        answer(False)
    failures = 0
    while deployments.rollout("canary-api")["state"]["status"] == "ramping":
        assert failures < MIN_REQUESTS, "the gate should fail before the next step"
        answer(True)
        failures += 1
    return Results(failures, gate)


def _bandit(registry: ModelRegistry, deployments: Deployments) -> None:
    deployments.deploy(
        "bandit-api",
        [
            Variant("a", "m", version=1, weight=0.5),
            Variant("b", "m", version=2, role="candidate", weight=0.5),
        ],
        strategy="bandit",
    )
    deployments.set_rollout("bandit-api", seed=0)
    for arm, rewards in REWARDS.items():
        for reward in rewards:
            record_reward(registry.db, "bandit-api", arm, reward, arms=["a", "b"])


def _ab(registry: ModelRegistry, deployments: Deployments) -> None:
    deployments.deploy(
        "ab-api",
        [
            Variant("a", "m", version=1, weight=0.5),
            Variant("b", "m", version=2, role="candidate", weight=0.5),
            Variant("s", "m", version=2, role="shadow", weight=0.0),
        ],
        strategy="ab",
    )
    events = []
    for i in range(REQUESTS):
        arm, version = ("a", 1) if i % 2 == 0 else ("b", 2)
        predicted = int(i % 3 == 0)
        at = END_MS - 60_000 + 1_000 * i
        events.append(
            PredictionEvent("ab-api", arm, "primary", "m", version, f"q{i}", None, [{}],
                            {"predictions": [predicted]}, None, 2.0, at)
        )  # fmt: skip
        if i in SHADOW_ANSWERED:
            failed = i == SHADOW_FAILED
            guess = 1 - predicted if i == SHADOW_DISAGREES else predicted
            events.append(
                PredictionEvent("ab-api", "s", "shadow", "m", 2, f"q{i}", None, [{}],
                                None if failed else {"predictions": [guess]},
                                "boom" if failed else None, 3.0, at + 5)
            )  # fmt: skip
    StoreEventSink(registry.db).write(events)
    for i, reward in enumerate(REWARD):
        record_feedback(registry.db, "ab-api", f"q{i}", reward=reward, actor="ana")


def populate_results(database, artifacts) -> Results:
    registry = ModelRegistry(database, artifacts, actor="ana")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    deployments = Deployments(database, actor="ana")
    results = _canary(registry, deployments)
    _bandit(registry, deployments)
    _ab(registry, deployments)
    return results
