"""ONNX and PyTorch variants over HTTP, on a real data plane server on loopback: the records
endpoint and the Open Inference Protocol (with tritonclient's V2 client) answer what the
scikit-learn model or the torch module answers, and a version that does not fit its
signature leaves the deployment not ready, saying why."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from tests.server.running import running_server
from tests.serving.tensor_models import (
    CANCER_CLASSES,
    cancer,
    classes_tag,
    forest,
    iris,
    logistic,
    module_answer,
    onnx_bytes,
    records,
    trained_mlp,
)

from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant, read_prediction_events

FLOAT32 = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture
def served(registry):
    """A data plane server on the store: its URL, a client with the installation token,
    and the app."""
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        yield url, client, app
    app.state.runtime.close()


def test_an_onnx_variant_answers_records_as_the_scikit_learn_model(registry, served):
    _, client, app = served
    frame, label = cancer()
    model = logistic(frame, label)
    registry.register("cancer", onnx_bytes(model, frame), input_schema=frame)
    Deployments(registry.db).deploy("api", [Variant("stable", "cancer", version=1)])
    rows = frame.sample(40, random_state=0)
    response = client.post("/v1/deployments/api/predict", json=records(rows))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == model.predict(rows).tolist()
    assert body["classes"] == [0, 1]
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(rows), **FLOAT32)
    app.state.runtime.recorder.flush()
    events = read_prediction_events(registry.db, "api")
    assert events["request_id"].tolist() == [body["request_id"]]
    assert events["output"][0]["predictions"] == body["predictions"]


@pytest.mark.torch
def test_a_torch_variant_answers_records_as_the_module_called_directly(registry, served):
    _, client, _ = served
    frame, label = cancer()
    net = trained_mlp(frame, label, 2)
    registry.register(
        "net", net, input_schema=frame, output_type="logits", tags=classes_tag(CANCER_CLASSES)
    )
    Deployments(registry.db).deploy("api", [Variant("stable", "net", version=1)])
    rows = frame.sample(30, random_state=1)
    body = client.post("/v1/deployments/api/predict", json=records(rows)).json()
    logits = module_answer(net, rows).astype(float)
    assert body["predictions"] == np.asarray(CANCER_CLASSES)[logits.argmax(axis=1)].tolist()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(body["probabilities"], softmax, **FLOAT32)
    assert body["classes"] == CANCER_CLASSES


def test_the_open_inference_protocol_round_trip_of_an_onnx_variant(registry, served):
    httpclient = pytest.importorskip("tritonclient.http")
    url, _, app = served
    frame, label = iris()
    model = forest(frame, label)
    registry.register("iris", onnx_bytes(model, frame, zipmap=True), input_schema=frame)
    Deployments(registry.db).deploy("flowers", [Variant("stable", "iris", version=1)])
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_model_ready("flowers", headers=headers)
        metadata = client.get_model_metadata("flowers", headers=headers)
        assert [i["name"] for i in metadata["inputs"]] == list(frame.columns)
        assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
            ("predict", "BYTES"),
            ("predict_proba", "FP64"),
        ]
        rows = frame.sample(25, random_state=2)
        # One [rows, 4] tensor, its columns the signature's in order, as binary data.
        matrix = httpclient.InferInput("input", list(rows.shape), "FP64")
        matrix.set_data_from_numpy(rows.to_numpy())
        result = client.infer("flowers", [matrix], headers=dict(headers), request_id="q1")
        labels = [v.decode() for v in result.as_numpy("predict").tolist()]
        assert labels == model.predict(rows).tolist()
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), model.predict_proba(rows), **FLOAT32
        )
        response = result.get_response()
        assert response["id"] == "q1" and response["model_version"] == "stable"
        proba = response["outputs"][1]
        assert proba["parameters"]["classes"] == model.classes_.tolist()
        # One tensor per column, as JSON.
        columns = []
        for name in frame.columns:
            tensor = httpclient.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[name].to_numpy(), binary_data=False)
            columns.append(tensor)
        outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
        # A fresh dict: tritonclient writes the binary header's length into the one given.
        by_column = client.infer("flowers", columns, outputs=outputs, headers=dict(headers))
        assert by_column.as_numpy("predict").tolist() == labels  # JSON: str, not bytes
    finally:
        client.close()


def test_a_version_of_another_width_leaves_the_deployment_not_ready_saying_why(registry, served):
    _, client, _ = served
    frame, label = cancer()
    narrow = frame.iloc[:, :5]
    registry.register("cancer", onnx_bytes(logistic(narrow, label), narrow), input_schema=frame)
    Deployments(registry.db).deploy("api", [Variant("stable", "cancer", version=1)])
    assert client.get("/v2/models/api/ready").status_code == 503
    response = client.post("/v1/deployments/api/predict", json=records(frame.head(1)))
    assert response.status_code == 503
    assert (
        "variant 'stable': models:/cancer/1: input 'X' takes 5 features per row, but the "
        "version's signature has 30 columns ('mean radius', "
    ) in response.json()["detail"]
