"""The data plane over HTTP: a real server on loopback answering records, feedback, the
Open Inference Protocol (with tritonclient's V2 client) and Prometheus metrics."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.server.exposition import metric_value
from tests.server.running import running_server

from opsloop.data.schema import Schema
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app, install_data_plane
from opsloop.serving import Deployments, ServingRuntime, Variant, read_feedback
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.row_rejection import rejected_rows
from opsloop.store.waiting_feedback import waiting_counts

RECORD = {"age": 40, "income": 52_000.0}
PROBE = "/v2/health/live"


@pytest.fixture
def served(registry, models):
    """A data plane server on the store: its URL, a client with the installation token,
    and the app (its runtime in ``app.state.runtime``)."""
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    with (
        running_server(app, health_path=PROBE) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield url, client, app
    app.state.runtime.close()


def test_predict_answers_the_models_predictions_with_a_request_id(served, models):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    records = [RECORD, {"age": 70, "income": 90_000.0}]
    response = client.post("/v1/deployments/api/predict", json=records)
    assert response.status_code == 200, response.text
    body = response.json()
    frame = pd.DataFrame(records)
    assert body["predictions"] == models[1].predict(frame).tolist()
    np.testing.assert_allclose(body["probabilities"], models[1].predict_proba(frame), atol=1e-15)
    assert (body["variant"], body["model"], body["version"]) == ("stable", "credit", 1)
    assert len(body["request_id"]) == 32
    wrapped = client.post("/v1/deployments/api/predict", json={"records": records})
    assert wrapped.json()["predictions"] == body["predictions"]


def client_db(served):
    return served[2].state.runtime.db


@pytest.mark.parametrize(
    ("record", "field", "rule"),
    [
        ({"age": "forty", "income": 1.0}, "age", "type_mismatch"),
        ({"age": 40}, "income", "missing_field"),
        ({"age": 40, "income": 1.0, "zip": 1}, "zip", "unexpected_field"),
        ({"age": 4000, "income": 1.0}, "age", "out_of_range"),
    ],
)
def test_a_bad_record_is_a_422_naming_the_field_and_the_rule(served, record, field, rule):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    response = client.post("/v1/deployments/api/predict", json=[record])
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_argument"
    assert f"field {field!r}: {rule}" in response.json()["detail"]


def test_an_unknown_deployment_is_404_and_a_body_of_the_wrong_type_415(served):
    _, client, _ = served
    assert client.post("/v1/deployments/none/predict", json=[RECORD]).status_code == 404
    typed = client.post(
        "/v1/deployments/none/predict", content=b"[]", headers={"Content-Type": "text/plain"}
    )
    assert typed.status_code == 415


def test_routing_over_http_stays_within_binomial_bounds_and_switches_with_a_deploy(served):
    _, client, _ = served
    deployments = Deployments(client_db(served))
    deployments.deploy(
        "api",
        [
            Variant("stable", "credit", version=1, weight=0.7),
            Variant("canary", "credit", version=2, role="candidate", weight=0.3),
        ],
        strategy="canary",
    )
    n = 300
    answered = [
        client.post("/v1/deployments/api/predict", json=[RECORD]).json()["variant"]
        for _ in range(n)
    ]
    low, high = stats.binom.ppf(1e-6, n, 0.3), stats.binom.isf(1e-6, n, 0.3)
    assert low <= answered.count("canary") <= high
    deployments.deploy(
        "api",
        [
            Variant("stable", "credit", version=1, weight=0.0),
            Variant("canary", "credit", version=2, role="candidate", weight=1.0),
        ],
        strategy="blue_green",
    )
    after = {
        client.post("/v1/deployments/api/predict", json=[RECORD]).json()["variant"]
        for _ in range(30)
    }
    assert after == {"canary"}


def test_a_blue_green_switch_and_switch_back_move_every_request(served):
    _, client, _ = served
    deployments = Deployments(client_db(served))
    deployments.deploy(
        "bg",
        [
            Variant("blue", "credit", version=1, weight=1.0),
            Variant("green", "credit", version=2, role="candidate", weight=0.0),
        ],
        strategy="blue_green",
    )

    def answered() -> set[str]:
        return {
            client.post("/v1/deployments/bg/predict", json=[RECORD]).json()["variant"]
            for _ in range(30)
        }

    assert answered() == {"blue"}
    deployments.switch("bg")
    assert answered() == {"green"}
    deployments.switch("bg")
    assert answered() == {"blue"}


def test_the_routing_key_header_makes_assignment_sticky(served):
    _, client, _ = served
    Deployments(client_db(served)).deploy(
        "ab",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    for key in ("alice", "bob", "carol", "dan"):
        seen = {
            client.post(
                "/v1/deployments/ab/predict", json=[RECORD], headers={"X-Routing-Key": key}
            ).json()["variant"]
            for _ in range(5)
        }
        assert len(seen) == 1


def test_feedback_is_joined_to_the_answer_and_an_unknown_id_waits(served):
    _, client, app = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    answer = client.post("/v1/deployments/api/predict", json=[RECORD]).json()
    given = client.post(
        "/v1/deployments/api/feedback", json={"request_id": answer["request_id"], "label": 1}
    )
    assert given.status_code == 201, given.text
    # An id with no answer recorded (yet) waits for one; one never answered is counted
    # unknown once its wait ends.
    unknown = client.post("/v1/deployments/api/feedback", json={"request_id": "f" * 32, "label": 0})
    assert unknown.status_code == 201, unknown.text
    assert waiting_counts(app.state.runtime.db, "api")["waiting"] == 1
    kept = read_feedback(app.state.runtime.db, "api")
    assert kept["request_id"].tolist() == [answer["request_id"]]
    assert kept["label"].tolist() == [1]
    assert kept["output"].iloc[0]["predictions"] == answer["predictions"]
    empty = client.post("/v1/deployments/api/feedback", json={"request_id": "abc"})
    assert empty.status_code == 422


def test_events_of_served_requests_are_readable(served):
    _, client, app = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    ids = [
        client.post("/v1/deployments/api/predict", json=[RECORD]).json()["request_id"]
        for _ in range(3)
    ]
    assert app.state.runtime.recorder.flush()
    events = events_of(app.state.runtime.db, "api")
    assert events["request_id"].tolist() == ids
    assert events["inputs"].tolist() == [[RECORD]] * 3


def test_metrics_count_answers_and_refusals_per_variant(served):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    for _ in range(4):
        client.post("/v1/deployments/api/predict", json=[RECORD])
    client.post("/v1/deployments/api/predict", json=[{"age": "x", "income": 1.0}])
    text = client.get("/metrics").text
    labels = {"deployment": "api", "variant": "stable", "role": "primary"}
    assert metric_value(text, "opsloop_predictions_total", labels) == 4.0
    assert metric_value(text, "opsloop_prediction_latency_seconds_count", labels) == 4.0
    refused = {**labels, "kind": "invalid_input"}
    assert metric_value(text, "opsloop_prediction_errors_total", refused) == 1.0


def test_the_open_inference_protocol_round_trip_with_tritonclient(served, models):
    httpclient = pytest.importorskip("tritonclient.http")
    url, _, app = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_model_ready("api", headers=headers)
        metadata = client.get_model_metadata("api", headers=headers)
        assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
            ("age", "INT64"),
            ("income", "FP64"),
        ]
        ages = np.array([25, 40, 70], dtype=np.int64)
        incomes = np.array([20_000.0, 52_000.0, 90_000.0])
        inputs = [
            httpclient.InferInput("age", [3], "INT64"),
            httpclient.InferInput("income", [3], "FP64"),
        ]
        inputs[0].set_data_from_numpy(ages, binary_data=False)
        inputs[1].set_data_from_numpy(incomes, binary_data=False)
        outputs = [
            httpclient.InferRequestedOutput("predict", binary_data=False),
            httpclient.InferRequestedOutput("predict_proba", binary_data=False),
        ]
        result = client.infer("api", inputs, outputs=outputs, headers=headers, request_id="q1")
        frame = pd.DataFrame({"age": ages, "income": incomes})
        assert result.as_numpy("predict").tolist() == models[1].predict(frame).tolist()
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), models[1].predict_proba(frame), atol=1e-15
        )
        response = result.get_response()
        assert response["id"] == "q1" and response["model_version"] == "stable"
        # The client's defaults: binary tensors in the request and in the answer.
        for tensor, values in zip(inputs, (ages, incomes), strict=True):
            tensor.set_data_from_numpy(values)
        binary = client.infer("api", inputs, headers=headers)
        assert binary.as_numpy("predict").tolist() == models[1].predict(frame).tolist()
        np.testing.assert_allclose(
            binary.as_numpy("predict_proba"), models[1].predict_proba(frame), atol=1e-15
        )
        assert binary.get_output("predict")["parameters"]["binary_data_size"] == 3 * 8
        with pytest.raises(Exception, match="field 'age': type_mismatch"):
            bad = httpclient.InferInput("age", [1], "BYTES")
            bad.set_data_from_numpy(np.array(["old"], dtype=object))
            money = httpclient.InferInput("income", [1], "FP64")
            money.set_data_from_numpy(np.array([1.0]), binary_data=False)
            client.infer("api", [bad, money], outputs=outputs, headers=headers)
    finally:
        client.close()


def test_v2_infer_takes_a_matrix_and_a_version_names_the_variant(served, models):
    _, client, _ = served
    Deployments(client_db(served)).deploy(
        "api",
        [
            Variant("stable", "credit", version=1, weight=0.5),
            Variant("other", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    body = {
        "inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[30, 1e4], [60, 9e4]]}
        ]
    }
    answer = client.post("/v2/models/api/versions/other/infer", json=body)
    assert answer.status_code == 200, answer.text
    frame = pd.DataFrame({"age": [30.0, 60.0], "income": [1e4, 9e4]})
    document = answer.json()
    assert document["model_version"] == "other"
    predict = next(o for o in document["outputs"] if o["name"] == "predict")
    assert predict["shape"] == [2] and predict["data"] == models[2].predict(frame).tolist()
    wrong = client.post(
        "/v2/models/api/infer",
        json={"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1]}]},
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "inputs[0] ('age').data: shape [2] holds 2 values, got 1"
    assert client.get("/v2/models/none/ready").status_code == 404
    assert client.get("/v2/health/ready").status_code == 200


def test_a_token_of_a_viewer_may_predict_and_no_token_may_not(registry, models):
    Deployments(registry.db).deploy("api", [Variant("stable", "credit", version=1)])
    _, token = add_user(registry.db, "reader", "viewer")
    app = create_data_plane_app(registry.db, registry.artifacts)
    with running_server(app, health_path=PROBE) as url:
        anonymous = httpx.post(f"{url}/v1/deployments/api/predict", json=[RECORD])
        assert anonymous.status_code == 401
        allowed = httpx.post(
            f"{url}/v1/deployments/api/predict",
            json=[RECORD],
            headers={"Authorization": f"Bearer {token}"},
        )
        assert allowed.status_code == 200
    app.state.runtime.close()


def test_the_control_plane_can_mount_the_data_plane(registry, models):
    app = create_app(registry.db, registry.artifacts)
    runtime = ServingRuntime(registry.db, registry.artifacts)
    install_data_plane(app, runtime)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app) as url:
        deployed = httpx.put(
            f"{url}/api/v1/deployments/api",
            json={"variants": [{"name": "stable", "model": "credit", "version": 2}]},
            headers=headers,
        )
        assert deployed.status_code in (200, 201), deployed.text
        answer = httpx.post(f"{url}/v1/deployments/api/predict", json=[RECORD], headers=headers)
        assert answer.status_code == 200 and answer.json()["version"] == 2
    runtime.close()


class HeldSink:
    """A sink whose writes wait until the test lets them go, as a stalled store would:
    ``entered`` is set when the recorder's writer is inside ``write``."""

    def __init__(self) -> None:
        self.entered, self.release, self.events = threading.Event(), threading.Event(), []

    def write(self, events) -> None:
        self.entered.set()
        assert self.release.wait(timeout=30)
        self.events.extend(events)


def test_a_full_event_buffer_drops_events_counts_them_and_still_answers(registry, models):
    Deployments(registry.db).deploy("api", [Variant("stable", "credit", version=1)])
    sink = HeldSink()
    runtime = ServingRuntime(registry.db, registry.artifacts, sink=sink, event_capacity=3)
    app = create_data_plane_app(registry.db, registry.artifacts, runtime=runtime)
    token = app.state.installation_token
    try:
        with (
            running_server(app, health_path=PROBE) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
        ):
            first = client.post("/v1/deployments/api/predict", json=[RECORD])
            # The writer holds the first event in the stalled sink: the buffer is empty.
            assert sink.entered.wait(timeout=30)
            answers = [client.post("/v1/deployments/api/predict", json=[RECORD]) for _ in range(10)]
            text = client.get("/metrics").text
            # Three of the ten wait in the buffer; the seven after them are dropped.
            assert metric_value(text, "opsloop_events_dropped_total", {}) == 7.0
            assert runtime.recorder.dropped == 7
            sink.release.set()
            assert runtime.recorder.flush()
    finally:
        sink.release.set()
        runtime.close()
    assert [a.status_code for a in [first, *answers]] == [200] * 11
    assert all(a.json()["variant"] == "stable" for a in answers)
    # The events kept are the first request's and the three buffered after it, in order.
    ids = [a.json()["request_id"] for a in [first, *answers]]
    assert [e.request_id for e in sink.events] == ids[:4]


def test_an_unknown_field_with_a_long_name_is_named_by_an_excerpt(served):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    name = "x" * 1_000_000
    response = client.post("/v1/deployments/api/predict", json=[{**RECORD, name: 1}])
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < 1_000
    quoted = repr("x" * 120)
    expected = f"field {quoted[:-1]}…' (1,000,000 characters): unexpected_field"
    assert expected in response.json()["detail"]


def test_a_nan_is_refused_under_the_rule_batch_scoring_names(served, registry):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    response = client.post(
        "/v1/deployments/api/predict",
        content=b'[{"age": 40, "income": NaN}]',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "records: record 0, field 'income': null_fraction_exceeded (the signature allows no "
        "nulls in this field; found NaN)"
    )
    schema = Schema.from_dict(registry.get_version("credit", 1).signature["inputs"])
    frame = pd.DataFrame([{"age": 40, "income": float("nan")}])
    rejected = rejected_rows(frame, schema)
    assert rejected.values.tolist() == [
        [
            0,
            "income",
            "null_fraction_exceeded",
            "the signature allows no nulls in this field; found NaN",
        ]
    ]


@pytest.mark.parametrize(
    ("datatype", "age", "income", "message"),
    [
        (
            "UINT8",
            1000,
            52_000.0,
            "inputs[0] ('age').data[0]: UINT8 data must be in [0, 255], got 1000",
        ),
        (
            "INT8",
            -200,
            52_000.0,
            "inputs[0] ('age').data[0]: INT8 data must be in [-128, 127], got -200",
        ),
        (
            "UINT64",
            -1,
            52_000.0,
            "inputs[0] ('age').data[0]: UINT64 data must be in [0, 18446744073709551615], got -1",
        ),
        (
            "INT64",
            2**63,
            52_000.0,
            "inputs[0] ('age').data[0]: INT64 data must be in [-9223372036854775808, "
            "9223372036854775807], got 9223372036854775808",
        ),
        (
            "FP16",
            40,
            70_000.0,
            "inputs[1] ('income').data[0]: FP16 data must be finite values within ±65504.0 "
            "(or non-finite), got 70000.0",
        ),
        (
            "FP32",
            40,
            1e39,
            "inputs[1] ('income').data[0]: FP32 data must be finite values within "
            "±3.4028234663852886e+38 (or non-finite), got 1e+39",
        ),
    ],
)
def test_v2_data_beyond_its_datatype_is_a_422_naming_the_input_and_the_rule(
    served, datatype, age, income, message
):
    _, client, _ = served
    Deployments(client_db(served)).deploy("api", [Variant("stable", "credit", version=1)])
    income_type = datatype if datatype.startswith("FP") else "FP64"
    age_type = "INT64" if datatype.startswith("FP") else datatype
    body = {
        "inputs": [
            {"name": "age", "shape": [1], "datatype": age_type, "data": [age]},
            {"name": "income", "shape": [1], "datatype": income_type, "data": [income]},
        ]
    }
    answer = client.post("/v2/models/api/infer", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == message
    body["inputs"][0] = {"name": "age", "shape": [1], "datatype": "UINT8", "data": [40]}
    body["inputs"][1] = {"name": "income", "shape": [1], "datatype": "FP32", "data": [52_000.0]}
    assert client.post("/v2/models/api/infer", json=body).status_code == 200
