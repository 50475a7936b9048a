"""A bandit's progress on the data plane's ``/metrics``: a real data plane on loopback,
whose per-variant gauges equal the bandit state the control plane's API gives
(``GET /api/v1/deployments/NAME/rollout``) and the rewards the test sent, tallied here."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from tests.server.exposition import metric_value
from tests.server.running import running_server

from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant

RECORD = {"age": 40, "income": 52_000.0}
SUCCESS = {"a": 0.3, "b": 0.7}


class _Clock:
    """The gauges' clock, moved by the test past their refresh interval."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("bandit", ["bernoulli_thompson", "ucb1"])
def test_the_bandit_gauges_equal_the_state_the_api_reads_and_the_rewards_sent(
    registry, models, bandit
):
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy(
        "api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="bandit",
    )
    deployments.set_rollout("api", bandit=bandit, seed=5)
    app = create_data_plane_app(registry.db, registry.artifacts)
    gauges = app.state.runtime.rollout_gauges
    gauges.clock = clock = _Clock()
    control_app = create_app(registry.db, registry.artifacts)
    rewards = np.random.default_rng(3)
    tally = {"a": [], "b": []}
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            running_server(control_app) as control_url,
            httpx.Client(
                base_url=url,
                headers={"Authorization": f"Bearer {app.state.installation_token}"},
                timeout=30,
            ) as client,
            httpx.Client(
                base_url=control_url,
                headers={"Authorization": f"Bearer {control_app.state.installation_token}"},
                timeout=30,
            ) as control,
        ):
            for _ in range(80):
                answer = client.post("/v1/deployments/api/predict", json=[RECORD]).json()
                reward = int(rewards.random() < SUCCESS[answer["variant"]])
                sent = client.post(
                    "/v1/deployments/api/feedback",
                    json={"request_id": answer["request_id"], "reward": reward},
                )
                assert sent.status_code == 201, sent.text
                tally[answer["variant"]].append(reward)
            clock.now += gauges.refresh_s
            text = client.get("/metrics").text
            rollout = control.get("/api/v1/deployments/api/rollout").json()["rollout"]
    finally:
        app.state.runtime.close()

    policy = rollout["state"]["policy"]
    assert policy["policy"] == bandit
    total = sum(len(r) for r in tally.values())
    assert total == 80
    shares = 0.0
    for i, arm in enumerate(policy["arms"]):
        labels = {"deployment": "api", "variant": arm}
        n, s = len(tally[arm]), float(sum(tally[arm]))
        # As the API reads the shared state, and as the test counted what it sent.
        assert metric_value(text, "opsloop_bandit_rewards", labels) == policy["state"]["counts"][i]
        assert metric_value(text, "opsloop_bandit_rewards", labels) == n
        assert metric_value(text, "opsloop_bandit_reward_sum", labels) == s
        assert metric_value(text, "opsloop_bandit_share", labels) == rollout["shares"][arm]
        shares += metric_value(text, "opsloop_bandit_share", labels)
        mean = metric_value(text, "opsloop_bandit_mean_reward", labels)
        assert mean == (pytest.approx(s / n) if n else None)
        posterior = metric_value(text, "opsloop_bandit_posterior_mean", labels)
        ucb = metric_value(text, "opsloop_bandit_ucb_index", labels)
        if bandit == "bernoulli_thompson":  # Beta(1 + s, 1 + n - s)
            assert posterior == pytest.approx((1 + s) / (2 + n))
            assert ucb is None
        else:
            expected = s / n + math.sqrt(2 * math.log(total) / n) if n else math.inf
            assert ucb == pytest.approx(expected)
            assert posterior is None
    assert shares == pytest.approx(1.0)
    # Both arms were tried, so every gauge above was checked against a real number.
    assert all(tally.values())
