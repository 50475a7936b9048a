"""Answers that say less, per variant: a deployment's settings round, cut to the top k or
reduce to the label the probabilities a variant answers, through a real data plane on
loopback, on breast_cancer; the store keeps the full answers."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.learn.robustness import RestrictedOutput, restrict_probabilities, threshold_attack
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving.prediction_events import read_prediction_events


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    frame, label = load_breast_cancer(return_X_y=True, as_frame=True)
    return frame, label.to_numpy()


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


class _Served:
    """The data plane's records endpoint as a classifier, for the attacks."""

    def __init__(self, client: httpx.Client, deployment: str, model) -> None:
        self.client, self.deployment = client, deployment
        self.classes_, self.columns = model.classes_, model.feature_names_in_

    def predict_proba(self, X) -> np.ndarray:
        records = _records(pd.DataFrame(X, columns=self.columns))
        answer = self.client.post(f"/v1/deployments/{self.deployment}/predict", json=records)
        assert answer.status_code == 200, answer.text
        return np.array(answer.json()["probabilities"])


def test_a_variant_answers_restricted_probabilities_and_the_store_keeps_the_full_ones(
    registry, cancer
):
    frame, label = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(frame[:400], label[:400])
    registry.register("cancer", model, input_schema=frame)
    deployments = Deployments(registry.db)
    deployments.deploy(
        "api",
        [
            Variant("stable", "cancer", version=1, weight=0.5),
            Variant("canary", "cancer", version=1, role="candidate", weight=0.5),
        ],
        strategy="canary",
    )
    deployments.configure("api", outputs={"stable": {"top_k": 1, "decimals": 2}})
    deployments.deploy("one", [Variant("stable", "cancer", version=1)])
    deployments.configure("one", outputs={"stable": {"top_k": 1, "decimals": 2}})
    new = frame[400:440]
    full = model.predict_proba(new)
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        answers = [
            client.post("/v1/deployments/api/predict", json=[record]).json()
            for record in _records(new)
        ]
        v2 = client.post(
            "/v2/models/one/infer",
            json={
                "inputs": [
                    {
                        "name": "input",
                        "shape": list(new.shape),
                        "datatype": "FP64",
                        "data": new.to_numpy().ravel().tolist(),
                    }
                ]
            },
        )
    app.state.runtime.close()
    # What the model answered, as the events keep it, equals scikit-learn's answer.
    events = read_prediction_events(registry.db, "api").set_index("request_id")
    for row, answer in enumerate(answers):
        assert answer["predictions"] == [model.predict(new.iloc[[row]])[0]]
        kept = events.loc[answer["request_id"], "output"]["probabilities"]
        np.testing.assert_allclose(kept, full[[row]], rtol=1e-12, atol=0)
        if answer["variant"] == "stable":
            # e.g. [0.0, 0.97]: one class's probability, to two decimals
            restricted = restrict_probabilities(kept, top_k=1, decimals=2).tolist()
            assert answer["probabilities"] == restricted
            assert sum(p > 0 for p in answer["probabilities"][0]) == 1
        else:
            assert answer["probabilities"] == kept
    assert {"stable", "canary"} == {answer["variant"] for answer in answers}
    # The Open Inference Protocol's answer is restricted the same way.
    assert v2.status_code == 200, v2.text
    proba = next(o for o in v2.json()["outputs"] if o["name"] == "predict_proba")
    got = np.array(proba["data"]).reshape(proba["shape"])
    kept = read_prediction_events(registry.db, "one")["output"].iloc[0]["probabilities"]
    np.testing.assert_array_equal(got, restrict_probabilities(kept, top_k=1, decimals=2))
    np.testing.assert_allclose(kept, full, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_label_only_answers_leave_the_attack_what_the_offline_measurement_gives(registry, cancer):
    """An overfit forest served with its full probabilities gives the threshold attacks a
    clear advantage; served label-only, the attacks through the endpoint get exactly what
    :class:`RestrictedOutput` gives them offline."""
    frame, label = cancer
    members, outsiders = (frame[:250], label[:250]), (frame[250:500], label[250:500])
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(*members)
    registry.register("forest", forest, input_schema=frame)
    deployments = Deployments(registry.db)
    deployments.deploy("full", [Variant("stable", "forest", version=1)])
    deployments.deploy("labels", [Variant("stable", "forest", version=1)])
    deployments.configure("labels", outputs={"stable": {"label_only": True}})
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    served = {}
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        for name in ("full", "labels"):
            for score in ("loss", "confidence"):
                model = _Served(client, name, forest)
                served[name, score] = threshold_attack(model, members, outsiders, score)
    app.state.runtime.close()
    restricted = RestrictedOutput(forest, label_only=True)
    for score in ("loss", "confidence"):
        full, labels = served["full", score], served["labels", score]
        offline_full = threshold_attack(forest, members, outsiders, score)
        offline_labels = threshold_attack(restricted, members, outsiders, score)
        assert (full.advantage, full.auc) == (offline_full.advantage, offline_full.auc)
        assert (labels.advantage, labels.auc) == (offline_labels.advantage, offline_labels.auc)
        assert full.advantage > labels.advantage
    # Label-only, every answer's top value is 1: the confidence attack learns nothing. The
    # loss attack learns only whether the forest is right, and a member is always right,
    # so its advantage is the forest's error on the outsiders.
    assert served["labels", "confidence"].advantage == 0.0
    error = float(np.mean(forest.predict(outsiders[0]) != outsiders[1]))
    assert served["labels", "loss"].advantage == pytest.approx(error, abs=1e-12)


def test_restrictions_are_checked_audited_and_followed_by_a_running_data_plane(registry):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5, 3.5]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    registry.register("m", model, input_schema=frame)
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        row = pd.DataFrame({"x": [1.2], "y": [1.7]})
        first = runtime.predict("api", [{"x": 1.2, "y": 1.7}]).answer.probabilities
        np.testing.assert_allclose(first, model.predict_proba(row), rtol=1e-12, atol=0)
        deployments.configure("api", outputs={"stable": {"decimals": 1}}, reason="round")
        rounded = runtime.predict("api", [{"x": 1.2, "y": 1.7}]).answer.probabilities
        assert rounded == np.round(first, 1).tolist()
        assert rounded != first
    finally:
        runtime.close()
    history = deployments.history("api")
    assert history["action"].tolist() == ["deploy", "configure"]
    assert history["after"].iloc[-1]["outputs"] == {
        "stable": {"decimals": 1, "top_k": None, "label_only": False}
    }
    for outputs, message in [
        ({"canary": {"top_k": 1}}, "outputs: the deployment has no variant 'canary'"),
        ({"stable": {"top_k": 0}}, r"outputs.stable.top_k: must be an integer >= 1, got 0"),
        ({"stable": {"label_only": True, "top_k": 1}}, "outputs.stable: label_only answers"),
        ({"stable": {"rounding": 2}}, r"outputs.stable: unknown fields \['rounding'\]"),
        ({"stable": {}}, "outputs.stable: restricts nothing"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            deployments.configure("api", outputs=outputs)
    # Nothing refused was kept.
    assert deployments.settings("api").outputs["stable"].decimals == 1


def test_a_running_data_plane_serves_a_re_created_deployment_without_the_retired_settings(
    registry,
):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5, 3.5]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    registry.register("m", model, input_schema=frame)
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    every = {"name": "every", "when": "probability >= 0", "action": "override", "value": 7}
    deployments.configure(
        "api",
        assertions=[every],
        batching={"max_batch_size": 8, "max_wait_ms": 2.0},
        outputs={"stable": {"label_only": True}},
    )
    record, row = {"x": 2.2, "y": 2.7}, pd.DataFrame({"x": [2.2], "y": [2.7]})
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        old = runtime.predict("api", [record])
        assert (old.predictions, old.answer.probabilities, old.rules) == (
            [7],
            [[0.0, 1.0]],
            [["every"]],
        )
        assert runtime.served("api").batching is not None
        deployments.retire("api", reason="renamed")
        deployments.deploy("api", [Variant("stable", "m", version=1)])
        # The same runtime follows: no rule, no restriction, no batching of the old one.
        new = runtime.predict("api", [record])
        assert new.predictions == model.predict(row).tolist()
        assert new.rules == [[]]
        np.testing.assert_allclose(
            new.answer.probabilities, model.predict_proba(row), rtol=1e-12, atol=0
        )
        assert runtime.served("api").batching is None
    finally:
        runtime.close()


def test_a_wrong_restriction_over_http_is_a_422_naming_the_field(registry):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    registry.register("m", LogisticRegression().fit(frame, [0, 0, 1, 1]), input_schema=frame)
    Deployments(registry.db).deploy("api", [Variant("stable", "m", version=1)])
    app = create_app(registry.db, registry.artifacts)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app) as url:
        for outputs, field in [
            ({"stable": {"decimals": 16}}, "decimals"),
            ({"stable": {"top_k": "2"}}, "top_k"),
            ({"other": {"top_k": 1}}, "no variant 'other'"),
            ({"stable": {"label_only": True, "decimals": 1}}, "label_only"),
        ]:
            answer = httpx.put(
                f"{url}/api/v1/deployments/api/settings", json={"outputs": outputs}, headers=headers
            )
            assert answer.status_code == 422, answer.text
            assert field in answer.text
        answer = httpx.put(
            f"{url}/api/v1/deployments/api/settings",
            json={"outputs": {"stable": {"top_k": 1}}},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"] == {
            "stable": {"decimals": None, "top_k": 1, "label_only": False}
        }
