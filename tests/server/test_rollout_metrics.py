"""A canary's ramp and gate evidence on the data plane's ``/metrics``: real data planes on
loopback (on the store and on a control plane's URL) whose gauges equal the rollout
document ``GET /api/v1/deployments/NAME/rollout`` answers, during a ramp and after a
failing gate rolled the canary back."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
from tests.server.exposition import metric_value
from tests.server.running import running_server
from tests.serving.served_models import Flaky

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app, create_remote_data_plane_app
from opsloop.serving import Deployments, Variant

RECORD = {"x": 1.0}
PROBE = "/v2/health/live"


def _canary(registry, primary, candidate, share, steps, min_requests):
    registry.register("stable-model", primary)
    registry.register("canary-model", candidate)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "ramp",
        [
            Variant("stable", "stable-model", version=1, weight=1 - share),
            Variant("canary", "canary-model", version=1, role="candidate", weight=share),
        ],
        strategy="canary",
    )
    deployments.set_rollout("ramp", steps=steps, min_requests=min_requests)
    return deployments


@contextmanager
def _served(app, token):
    with (
        running_server(app, health_path=PROBE) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield client
    app.state.runtime.close()


class _Clock:
    """The gauges' clock, moved by the test past their refresh interval."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _scrape(client, clock, gauges):
    clock.now += gauges.refresh_s
    return client.get("/metrics").text


def _assert_gauges_equal(text, rollout):
    state, labels = rollout["state"], {"deployment": "ramp"}
    assert metric_value(text, "opsloop_rollout_step", labels) == state["step"]
    for status in ("ramping", "completed", "rolled_back"):
        expected = float(state["status"] == status)
        assert metric_value(text, "opsloop_rollout_state", {**labels, "state": status}) == (
            expected
        )
    for gate, decision in rollout["decisions"].items():
        gate_labels = {**labels, "gate": gate}
        assert metric_value(text, "opsloop_gate_statistic", gate_labels) == decision["statistic"]
        assert (
            metric_value(text, "opsloop_gate_threshold", gate_labels) == decision["fail_threshold"]
        )
        for arm in ("candidate", "primary"):
            samples = metric_value(text, "opsloop_gate_samples", {**gate_labels, "arm": arm})
            assert samples == decision[f"n_{arm}"]
        failed = metric_value(text, "opsloop_gate_failed", gate_labels)
        assert failed == float(decision["verdict"] == "fail")


def test_the_gauges_follow_a_ramp_step_by_step_and_are_read_once_a_refresh(registry):
    deployments = _canary(registry, Flaky(0.0, seed=3), Flaky(0.0, seed=4), 0.1,
                          steps=[0.1, 0.5, 1.0], min_requests=40)  # fmt: skip
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    gauges = app.state.runtime.rollout_gauges
    clock = gauges.clock = _Clock()
    control_app = create_app(registry.db, registry.artifacts)
    control_token = {"Authorization": f"Bearer {control_app.state.installation_token}"}
    with (
        _served(app, app.state.installation_token) as client,
        running_server(control_app) as control,
        httpx.Client(base_url=control, headers=control_token, timeout=30) as control_client,
    ):
        seen_steps = []
        for i in range(5_000):
            client.post("/v1/deployments/ramp/predict", json=[RECORD], headers={
                "X-Routing-Key": f"user-{i}"})  # fmt: skip
            rollout = deployments.rollout("ramp")
            if rollout["state"]["step"] not in seen_steps:
                seen_steps.append(rollout["state"]["step"])
                text = _scrape(client, clock, gauges)
                rollout = control_client.get("/api/v1/deployments/ramp/rollout").json()["rollout"]
                _assert_gauges_equal(text, rollout)
                share = {0: 0.1, 1: 0.5, 2: 1.0}[rollout["state"]["step"]]
                assert rollout["state"]["share"] == share
                assert metric_value(text, "opsloop_rollout_weight", {
                    "deployment": "ramp", "variant": "canary"}) == share  # fmt: skip
                assert metric_value(text, "opsloop_rollout_weight", {
                    "deployment": "ramp", "variant": "stable"}) == 1.0 - share  # fmt: skip
            if rollout["state"]["status"] != "ramping":
                break
        assert seen_steps == [0, 1, 2]
        assert rollout["state"]["status"] == "completed"
        # Within the refresh interval a scrape shows what was read, without reading again.
        reads = gauges.reads
        before = client.get("/metrics").text
        assert gauges.reads == reads
        assert metric_value(before, "opsloop_rollout_step", {"deployment": "ramp"}) == 2


def test_after_a_failing_gate_the_gauges_equal_the_rollback_evidence_on_both_workers(registry):
    deployments = _canary(registry, Flaky(0.0, seed=1), Flaky(1.0, seed=2), 0.5,
                          steps=[0.5, 1.0], min_requests=100_000)  # fmt: skip
    add_user(registry.db, "owner", "admin")
    worker = add_user(registry.db, "worker", "editor")[1]
    store_app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        remote_app = create_remote_data_plane_app(url, token=worker, trust=True)
        with (
            _served(store_app, worker) as on_store,
            _served(remote_app, worker) as on_url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {worker}"}, timeout=30
            ) as control,
        ):
            for i in range(500):
                (on_store, on_url)[i % 2].post(
                    "/v1/deployments/ramp/predict", json=[RECORD],
                    headers={"X-Routing-Key": f"u{i}"},
                )  # fmt: skip
                if deployments.get("ramp").variants[1].weight == 0.0:
                    break
            rollout = control.get("/api/v1/deployments/ramp/rollout").json()["rollout"]
            assert rollout["state"]["status"] == "rolled_back"
            assert rollout["decisions"]["errors"]["verdict"] == "fail"
            for client, app in ((on_store, store_app), (on_url, remote_app)):
                gauges = app.state.runtime.rollout_gauges
                gauges.clock = _Clock()
                text = _scrape(client, gauges.clock, gauges)
                _assert_gauges_equal(text, rollout)
                labels = {"deployment": "ramp", "gate": "errors"}
                assert metric_value(text, "opsloop_gate_failed", labels) == 1.0
                assert metric_value(text, "opsloop_rollout_weight", {
                    "deployment": "ramp", "variant": "canary"}) == 0.0  # fmt: skip
