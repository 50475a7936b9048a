"""Feedback labels over HTTP, against a real server on loopback: a label that is not one
scalar per record of the answer (nested, an object, non-finite, too many values), or not
one of the classes a classifier's answer carries, is a 422 naming ``label`` and the rule,
and is not kept; a well-formed one is a 201."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant, read_feedback
from opsloop.serving.prediction_feedback import record_feedback

RECORDS = [{"age": 40, "income": 52_000.0}, {"age": 70, "income": 90_000.0}]


@pytest.fixture
def answered(registry, models):
    """A client of a data plane on loopback, and the request id of a two-record answer."""
    app = create_data_plane_app(registry.db, registry.artifacts)
    Deployments(registry.db).deploy("api", [Variant("stable", "credit", version=1)])
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(base_url=url, headers=token, timeout=30) as client,
    ):
        answer = client.post("/v1/deployments/api/predict", json=RECORDS)
        assert answer.status_code == 200, answer.text
        assert app.state.runtime.recorder.flush()
        yield client, answer.json()["request_id"]
    app.state.runtime.close()


@pytest.mark.parametrize(
    ("label", "rule"),
    [
        ("[[1], [0]]", "label[0]: must be a finite number, a bool or a text"),
        ('{"a": 1}', "label: must be a finite number, a bool or a text"),
        ("[1, 0, 1]", "label: expected 2 values, one per record, got 3"),
        ("0", "label: the answer has 2 records; give a list of 2 values"),
        ("[1, NaN]", "label[1]: must be finite, got nan"),
        ("Infinity", "label: must be finite, got inf"),
        ('"' + "x" * 1_001 + '"', "got a text of 1001 characters"),
        (
            '["approve", 0]',
            "label[0]: the model answers classes (integers); give a class, got the text",
        ),
        ("[1, 0.5]", "label[1]: the model answers classes (integers); give a class, got 0.5"),
        # The answer carries the classifier's classes: a class it does not have is refused.
        (
            "[1, 2]",
            "label[1]: the model answers one of its 2 classes (0, 1); give one of them, got 2",
        ),
    ],
)
def test_a_label_that_does_not_fit_the_answer_is_a_422_naming_label(
    answered, registry, label, rule
):
    client, request_id = answered
    body = f'{{"request_id": "{request_id}", "label": {label}}}'
    response = client.post(
        "/v1/deployments/api/feedback", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    assert rule in response.text, response.text[:500]
    assert "label" in response.text
    assert read_feedback(registry.db, "api").empty


def test_a_non_finite_reward_is_a_422_and_one_label_per_record_is_kept(answered, registry):
    client, request_id = answered
    refused = client.post(
        "/v1/deployments/api/feedback",
        content=f'{{"request_id": "{request_id}", "reward": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    [item] = refused.json()["detail"]
    assert (item["loc"], item["type"]) == (["body", "reward"], "finite_number")
    kept = client.post(
        "/v1/deployments/api/feedback", json={"request_id": request_id, "label": [1, None]}
    )
    assert kept.status_code == 201, kept.text
    assert read_feedback(registry.db, "api")["label"].tolist() == [[1, None]]


@pytest.mark.parametrize(
    ("digits", "excerpt"),
    [
        ("7" * 30, "77777777... (30 digits) is beyond 64 bits"),
        # Too long to write out in decimal cheaply: its size in bits (4000 sevens: 13288).
        ("7" * 4_000, f"an integer of {int('7' * 4_000).bit_length()} bits is beyond 64 bits"),
    ],
)
def test_an_integer_beyond_64_bits_is_a_422_that_does_not_repeat_it(
    answered, registry, digits, excerpt
):
    client, request_id = answered
    body = f'{{"request_id": "{request_id}", "label": [{digits}, 0]}}'
    response = client.post(
        "/v1/deployments/api/feedback", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    message = response.json()["detail"][0]["msg"]
    assert message.startswith("Value error, label[0]: must be a finite number"), message
    assert message.endswith(excerpt), message
    assert len(message) < 200
    assert read_feedback(registry.db, "api").empty


def test_record_feedback_takes_numpy_values_and_a_tuple_from_python(answered, registry):
    _, request_id = answered
    record_feedback(
        registry.db, "api", request_id, label=(np.int64(1), np.bool_(False)), actor="ana"
    )
    assert read_feedback(registry.db, "api")["label"].tolist() == [[1, False]]
    with pytest.raises(
        InvalidArgumentError, match=r"label: the answer has 2 records; give a list of 2 values"
    ):
        record_feedback(registry.db, "api", request_id, label=np.float32(0.5), actor="ana")


def test_a_wine_that_is_no_class_of_the_served_classifier_is_a_422(registry):
    data = load_wine(as_frame=True)
    names = np.asarray(["class_0", "class_1", "class_2"], dtype=object)
    model = LogisticRegression(max_iter=10_000).fit(data.data, names[data.target])
    registry.register("wine", model, input_schema=data.data)
    Deployments(registry.db).deploy("wine", [Variant("stable", "wine", version=1)])
    app = create_data_plane_app(registry.db, registry.artifacts)
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    rows = data.data.iloc[[0, 70]]
    try:
        with (
            running_server(app, health_path="/v2/health/live") as url,
            httpx.Client(base_url=url, headers=token, timeout=30) as client,
        ):
            answer = client.post("/v1/deployments/wine/predict", json=rows.to_dict("records"))
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == model.predict(rows).tolist()
            assert app.state.runtime.recorder.flush()
            request_id = answer.json()["request_id"]
            refused = client.post(
                "/v1/deployments/wine/feedback",
                json={"request_id": request_id, "label": ["class_0", "zinfandel"]},
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"] == (
                "label[1]: the model answers one of its 3 classes ('class_0', 'class_1', "
                "'class_2'); give one of them, got 'zinfandel'"
            )
            assert read_feedback(registry.db, "wine").empty
            truth = names[data.target.to_numpy()[[0, 70]]].tolist()
            kept = client.post(
                "/v1/deployments/wine/feedback", json={"request_id": request_id, "label": truth}
            )
            assert kept.status_code == 201, kept.text
    finally:
        app.state.runtime.close()
    assert read_feedback(registry.db, "wine")["label"].tolist() == [truth]
