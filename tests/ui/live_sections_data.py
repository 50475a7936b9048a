"""What the live parts of the results, review and run pages show, and the changes made
behind an open page: a canary whose ramp the rollout observer steps, answers rewarded
through the feedback, review items a deployment queues, and a running run that logs
another step of its loss. Each change goes through the same calls the data plane and a
training script make."""

from __future__ import annotations

from types import SimpleNamespace

from opsloop.registry import ModelRegistry, add_user
from opsloop.serving import Deployments, Variant, record_feedback
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.tracking import ActiveRun, LocalTrackingStore

NAME = "api"
#: The canary's ramp: 10 good answers at 20% move it to 50%.
STEPS, MIN_REQUESTS = [0.2, 0.5, 1.0], 10
ROLES = {"ed": "editor", "vic": "viewer"}
SUGGESTION = {"predictions": [1], "probabilities": [[0.25, 0.75]], "classes": [0, 1]}


def loss(step: int) -> float:
    return 1.0 / (step + 1)


class LiveData:
    """The data behind the pages, and the changes a test makes while a page is open."""

    def __init__(self, database, artifacts) -> None:
        self.tokens = {name: add_user(database, name, role)[1] for name, role in ROLES.items()}
        registry = ModelRegistry(database, artifacts, actor="ed")
        registry.register("m", b"one", flavor="onnx")
        registry.register("m", b"two", flavor="onnx")
        self.deployments = Deployments(database, actor="ed")
        self.deployments.deploy(
            NAME,
            [
                Variant("stable", "m", version=1, weight=0.8),
                Variant("canary", "m", version=2, role="candidate", weight=0.2),
            ],
            strategy="canary",
            reason="try version 2",
        )
        self.deployments.set_rollout(NAME, steps=STEPS, min_requests=MIN_REQUESTS)
        self.observer = RolloutObserver(database, self.deployments)
        self.queue = ReviewQueue(database, actor="ed")
        self.queue.enqueue(NAME, [{"age": 30}], reason="low_confidence", suggestion=SUGGESTION)
        self.tracking = LocalTrackingStore(database, artifacts)
        self.run_id = self.tracking.create_run("churn", name="trial")
        self.run = ActiveRun(self.tracking, self.run_id)
        self.steps = 0
        self.database, self.sink, self.answered = database, StoreEventSink(database), 0
        for _ in range(3):
            self.log_step()

    def step_canary(self) -> None:
        """Good answers from the candidate until the ramp takes its next step (20% to 50%)."""
        for _ in range(MIN_REQUESTS):
            served = SimpleNamespace(definition=self.deployments.get(NAME))
            self.observer.observe(served, "canary", failed=False, latency_ms=1.0)

    def answer_and_reward(self, variant: str, rewards: list[float]) -> None:
        """One answer of ``variant`` per reward, recorded as the data plane's event sink
        does, then each answer's reward given as feedback."""
        version = {"stable": 1, "canary": 2}[variant]
        first = self.answered
        self.answered += len(rewards)
        ids = [f"{variant}-{n}" for n in range(first, self.answered)]
        self.sink.write(
            [
                PredictionEvent(NAME, variant, "primary", "m", version, request_id, None,
                                [{"x": 1.0}], {"predictions": [1]}, None, 1.0, 1_000)
                for request_id in ids
            ]
        )  # fmt: skip
        for request_id, reward in zip(ids, rewards, strict=True):
            record_feedback(self.database, NAME, request_id, reward=reward, actor="ed")

    def queue_item(self, age: int) -> int:
        """A new item waiting for a person; its id."""
        return self.queue.submit(NAME, [{"age": age}]).id

    def log_step(self) -> None:
        """The run's next step of ``loss``, written now."""
        self.run.log_metric("loss", loss(self.steps), step=self.steps)
        self.run.flush()
        self.steps += 1

    def close(self) -> None:
        self.run.end()
