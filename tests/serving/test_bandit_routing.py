"""Bandit deployments over HTTP: a real data plane on loopback routes by the shared policy,
rewards arrive through the feedback endpoint by request id, and traffic moves to the
better variant."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from tests.server.running import running_server
from tests.serving.served_models import classifier

from opsloop.learn.bandits import POLICIES, BernoulliThompson
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, ServingRuntime, Variant, read_feedback

RECORD = {"age": 40, "income": 52_000.0}
SUCCESS = {"a": 0.2, "b": 0.6}


def _bandit_deployment(registry) -> Deployments:
    """Deploy "api" as a bandit between versions 1 (a) and 2 (b) of "credit", half each."""
    deployments = Deployments(registry.db)
    deployments.deploy(
        "api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="bandit",
    )
    return deployments


def test_a_bandit_moves_traffic_to_the_variant_with_the_better_rewards(registry):
    for c, seed in ((1.0, 0), (0.001, 1)):
        model, frame = classifier(c=c, seed=seed)
        registry.register("credit", model, input_schema=frame)
    deployments = _bandit_deployment(registry)
    deployments.set_rollout("api", bandit="bernoulli_thompson", seed=7)
    app = create_data_plane_app(registry.db, registry.artifacts)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    rewards = np.random.default_rng(11)
    served = []
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ):
            for _ in range(300):
                answer = client.post("/v1/deployments/api/predict", json=[RECORD])
                assert answer.status_code == 200, answer.text
                variant = answer.json()["variant"]
                reward = int(rewards.random() < SUCCESS[variant])
                sent = client.post(
                    "/v1/deployments/api/feedback",
                    json={"request_id": answer.json()["request_id"], "reward": reward},
                )
                assert sent.status_code == 201, sent.text
                served.append((variant, reward))
    finally:
        app.state.runtime.close()

    # The reference: the same policy, seed and rewards, run here without a server.
    reference, draws, again = BernoulliThompson(["a", "b"]), np.random.default_rng(7), []
    replay = np.random.default_rng(11)
    for _ in range(300):
        arm = reference.choose(draws)
        reward = int(replay.random() < SUCCESS[arm])
        reference.update(arm, reward)
        again.append((arm, reward))
    assert served == again

    rollout = deployments.rollout("api")
    state = rollout["state"]["policy"]["state"]
    # Every reward reached the shared state once.
    assert state["counts"] == [sum(v == arm for v, _ in served) for arm in ("a", "b")]
    assert state["sums"] == [float(sum(r for v, r in served if v == arm)) for arm in ("a", "b")]
    assert rollout["shares"]["b"] > 0.95
    assert [v for v, _ in served[-100:]].count("b") >= 90


def test_a_reward_the_policy_cannot_read_is_refused_naming_it(registry):
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    registry.register("credit", model, input_schema=frame)
    deployments = _bandit_deployment(registry)
    deployments.set_rollout("api")
    app = create_data_plane_app(registry.db, registry.artifacts)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ):
            answer = client.post("/v1/deployments/api/predict", json=[RECORD]).json()
            sent = client.post(
                "/v1/deployments/api/feedback",
                json={"request_id": answer["request_id"], "reward": 0.5},
            )
    finally:
        app.state.runtime.close()
    assert sent.status_code == 422, sent.text
    assert "reward" in sent.json()["detail"]
    assert read_feedback(registry.db, "api").empty  # refused before anything was kept


def test_a_bandit_without_a_rollout_starts_thompson_sampling_with_its_first_reward(registry):
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    registry.register("credit", model, input_schema=frame)
    deployments = _bandit_deployment(registry)
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        answer = runtime.predict("api", [RECORD])
        runtime.feedback("api", answer.request_id, reward=1, actor="ana")
    finally:
        runtime.close()
    rollout = deployments.rollout("api")
    assert rollout["policy"]["bandit"] == "bernoulli_thompson"
    counts = {"a": [1, 0], "b": [0, 1]}[answer.variant]
    assert rollout["state"]["policy"]["state"] == {
        "counts": counts,
        "sums": [float(c) for c in counts],
    }


# Real-valued rewards per arm: normal for Gaussian Thompson sampling, and in [0, 1] (the
# range UCB1's bound assumes) for UCB1 and epsilon-greedy, with b the better arm.
REAL_REWARDS = {
    "gaussian_thompson": lambda rng, arm: float(rng.normal({"a": 1.0, "b": 2.5}[arm], 1.0)),
    "ucb1": lambda rng, arm: float(rng.beta(*{"a": (2, 5), "b": (5, 2)}[arm])),
    "epsilon_greedy": lambda rng, arm: float(rng.beta(*{"a": (2, 5), "b": (5, 2)}[arm])),
}
PARAMS = {
    "gaussian_thompson": {"prior_count": 0.01},
    "ucb1": {},
    "epsilon_greedy": {"epsilon": 0.2},
}


@pytest.mark.parametrize("bandit", sorted(REAL_REWARDS))
def test_real_valued_rewards_route_as_the_same_policy_replayed_offline(registry, bandit):
    for c, seed in ((1.0, 0), (0.001, 1)):
        model, frame = classifier(c=c, seed=seed)
        registry.register("credit", model, input_schema=frame)
    deployments = _bandit_deployment(registry)
    deployments.set_rollout("api", bandit=bandit, bandit_params=PARAMS[bandit], seed=5)
    app = create_data_plane_app(registry.db, registry.artifacts)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    rewards, served = np.random.default_rng(13), []
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ):
            for _ in range(80):
                answer = client.post("/v1/deployments/api/predict", json=[RECORD])
                assert answer.status_code == 200, answer.text
                variant = answer.json()["variant"]
                reward = REAL_REWARDS[bandit](rewards, variant)
                sent = client.post(
                    "/v1/deployments/api/feedback",
                    json={"request_id": answer.json()["request_id"], "reward": reward},
                )
                assert sent.status_code == 201, sent.text
                served.append((variant, reward))
    finally:
        app.state.runtime.close()

    # The reference: the same policy, parameters, seed and rewards, without a server.
    reference = POLICIES[bandit](["a", "b"], **PARAMS[bandit])
    draws, replay, again = np.random.default_rng(5), np.random.default_rng(13), []
    for _ in range(80):
        arm = reference.choose(draws)
        reward = REAL_REWARDS[bandit](replay, arm)
        reference.update(arm, reward)
        again.append((arm, reward))
    assert served == again
    assert {arm for arm, _ in served} == {"a", "b"}  # both arms were learned
    # The shared state (counts, sums and, for Gaussian sampling, the squared deviations)
    # is the replay's, so every real reward reached it once and unrounded.
    shared = deployments.rollout("api")["state"]["policy"]
    assert shared == reference.to_dict()
    assert shared["state"]["sums"] == [
        pytest.approx(sum(r for v, r in served if v == arm), rel=1e-12) for arm in ("a", "b")
    ]
