"""The demo's canary follower says when the ramp halts: a halt changes no definition, so
the follower reads the rollout's status while the ramp is ramping and prints the change
that was not carried out, why, and what the deployment keeps serving."""

from __future__ import annotations

from rich.console import Console
from tests.clock import FakeClock

from opsloop.cli.demo import _loop_problem, _Ramp
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.store import ArtifactStore, Database


class RaisesOnDeploy(Deployments):
    """A control plane whose deploy raises the same unexpected error each time."""

    def _deploy(self, *args, **kwargs):
        raise RuntimeError("disk full")


def test_the_demo_prints_a_halted_ramp_and_says_the_loop_did_not_close(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}", clock=FakeClock())
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"), actor="owner")
    registry.register("credit-default", b"live bytes", flavor="onnx")
    registry.register("credit-default", b"retrained bytes", flavor="onnx")
    deployments = Deployments(registry.db)
    deployments.deploy(
        "credit-api",
        [
            Variant("live", "credit-default", version=1, weight=0.9),
            Variant("retrained", "credit-default", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
        reason="try version 2",
    )
    deployments.set_rollout("credit-api", steps=[0.1, 0.5, 1.0], min_requests=10_000)
    console = Console(record=True, width=400)
    ramp = _Ramp(deployments, None, console)
    ramp.follow()
    assert (ramp.ramping, ramp.candidate) == (True, 2)
    worker = RolloutObserver(registry.db, RaisesOnDeploy(registry.db))
    request = {"candidate": True, "failed": True, "latency_ms": 1.0, "share": 0.1,
               "disagrees": None, "anomalous": None}  # fmt: skip
    for _ in range(40):
        worker.record("credit-api", [], request)
        ramp.after_request()
        if not ramp.ramping:
            break
    assert deployments.rollout("credit-api")["state"]["status"] == "halted"
    assert (ramp.ramping, ramp.halted, ramp.rolled_back) == (False, True, False)
    (line,) = console.export_text().splitlines()
    assert line == (
        f"  after {ramp.requests} requests of the canary: the ramp halted: its rollback was "
        "not carried out (RuntimeError: disk full); credit-api keeps canary, live 0.9, "
        "retrained 0.1 until a person decides"
    )
    now = deployments.get("credit-api")
    assert _loop_problem(ramp, [], now, champion=1) == (
        "the canary of v2 halted: a change its gates decided was not carried out (the "
        "rollout's state says why)"
    )
