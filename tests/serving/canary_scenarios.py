"""Parts of the canary tests' scenarios: routing keys that land where a test needs them, the
task-metric gate a ramp's state must hold after given reads (derived by a fresh gate of the
policy), and an operator who edits a deployment under its controller."""

from __future__ import annotations

from collections.abc import Callable

from opsloop.serving import Deployments
from opsloop.serving.rollout_policy import RolloutPolicy


def routing_keys(test: Callable[[str], bool], count: int) -> list[str]:
    """The first ``count`` routing keys ``user-N`` for which ``test(key)`` holds."""
    found, n = [], 0
    while len(found) < count:
        key = f"user-{n}"
        if test(key):
            found.append(key)
        n += 1
    return found


def metric_gate_after(policy: RolloutPolicy, reads: list[tuple[bool, bool, float]]) -> dict:
    """The metric gate of ``policy`` after reading ``(candidate, wrong, share)`` events in
    order."""
    gate = policy.gate("metric")
    for candidate, wrong, share in reads:
        gate.update(candidate, wrong, share=share)
    return gate.to_dict()


class KeepsChanging(Deployments):
    """The store's deployments, where an operator (``eda``) edits the description (nothing
    the ramp decides on) after each of the controller's first ``times`` reads: each
    conditional write then finds the revision moved, so its change is not carried out."""

    def __init__(self, db, times: int) -> None:
        super().__init__(db)
        self.times = times
        self.operator = Deployments(db, actor="eda")

    def get(self, name: str):
        definition = super().get(name)
        if self.times > 0:
            self.times -= 1
            self.operator.deploy(
                name,
                list(definition.variants),
                strategy=definition.strategy,
                description=f"edit {self.times}",
            )
        return definition
