"""The degrees of automation and model assertions over a real server on loopback: one
process with the control plane (deployments, review queue) and the data plane, as
``opsloop server --serve`` runs them. Each request's answer, its review item, a reviewer's
answer over HTTP, and the label joined to the request as feedback."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.server.exposition import metric_value
from tests.server.running import running_server

from opsloop.analysis.assertions import apply_assertions
from opsloop.data.schema import infer_schema
from opsloop.errors import InvalidArgumentError
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.server.data_plane import install_data_plane
from opsloop.serving import Deployments, HttpDeployments, ServingRuntime, Variant, read_feedback
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.http_review_queue import HttpReviewQueue

RULES = [
    {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"},
    {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"},
]


def loan_model() -> tuple[LogisticRegression, pd.DataFrame]:
    """A classifier on ages 10-80 (so a minor's record is inside the signature's range)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"age": rng.integers(10, 81, 300), "income": rng.normal(50_000.0, 15_000.0, 300)}
    )
    score = (frame["age"] - 45) / 15 + (frame["income"] - 50_000.0) / 15_000.0
    label = (score + rng.normal(0, 0.5, 300) > 0).astype(int)
    return LogisticRegression(max_iter=1000).fit(frame, label), frame


@pytest.fixture
def plane(database, artifacts):
    """Control and data plane in one server: its URL, an HTTP client, the deployments and
    review queue clients (all with the installation token), the runtime and the model."""
    model, frame = loan_model()
    ModelRegistry(database, artifacts, actor="owner").register("loan", model, input_schema=frame)
    app = create_app(database, artifacts)
    runtime = ServingRuntime(database, artifacts)
    install_data_plane(app, runtime)
    token = app.state.installation_token
    with (
        running_server(app) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        deployments, queue = HttpDeployments(url, token=token), HttpReviewQueue(url, token=token)
        yield client, deployments, queue, runtime, model
        deployments.close()
        queue.close()
    runtime.close()


def _predict(client: httpx.Client, records: list[dict]) -> dict:
    response = client.post("/v1/deployments/loans/predict", json=records)
    assert response.status_code == 200, response.text
    return response.json()


def _confidence(model, records: list[dict]) -> np.ndarray:
    return model.predict_proba(pd.DataFrame(records)).max(axis=1)


SURE = [{"age": 75, "income": 90_000.0}, {"age": 20, "income": 20_000.0}]
UNSURE = [{"age": 45, "income": 50_000.0}]


@pytest.mark.parametrize(
    ("level", "status", "reason", "returned", "suggested", "logged"),
    [
        # level, client's status, review reason, answer returned, shown to the reviewer,
        # model's answer in the event log
        ("human_only", "queued", "human_only", False, False, False),
        ("shadow", "queued", "shadow", False, False, True),
        ("ai_assistance", "suggestion", "ai_assistance", True, True, True),
        ("full_automation", "answered", None, True, False, True),
    ],
)
def test_each_level_answers_queues_and_joins_the_reviewers_label(
    plane, level, status, reason, returned, suggested, logged
):
    client, deployments, queue, runtime, model = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)], automation=level)
    body = _predict(client, SURE)
    expected = model.predict(pd.DataFrame(SURE)).tolist()
    assert body["status"] == status
    assert body["predictions"] == (expected if returned else None)
    runtime.recorder.flush(10.0)
    event = events_of(runtime.db, "loans", request_id=body["request_id"]).iloc[0]
    assert event["disposition"] == status
    assert (event["output"]["predictions"] if event["output"] else None) == (
        expected if logged else None
    )
    if reason is None:
        assert body["review_item"] is None
        assert queue.list("loans", state="any") == ()
        return
    item = queue.claim_next("loans")
    assert (item.id, item.request_id, item.reason) == (
        body["review_item"],
        body["request_id"],
        reason,
    )
    assert item.records == SURE
    assert (item.suggestion["predictions"] if item.suggestion else None) == (
        expected if suggested else None
    )
    assert queue.claim_next("loans") is None
    answered = queue.answer(item.id, [0, 1])
    assert (answered.state, answered.label) == ("answered", [0, 1])
    feedback = read_feedback(runtime.db, "loans")
    assert feedback[["request_id", "label"]].values.tolist() == [[body["request_id"], [0, 1]]]


def test_an_answer_that_does_not_fit_the_request_is_a_422_naming_label(plane):
    client, deployments, queue, runtime, model = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)], automation="shadow")
    body = _predict(client, SURE)
    runtime.recorder.flush(10.0)  # the model's answer (logged, not shown) is recorded
    item = queue.claim_next("loans")
    path = f"/api/v1/review/items/{item.id}/answer"
    refusals = [
        ("approve", "label: the answer has 2 records; give a list of 2 values"),
        ([1, 0, 1], "label: expected 2 values, one per record, got 3"),
        ([1, "yes"], "label[1]: the model answers classes (integers); give a class"),
        ([0.5, 1], "label[0]: the model answers classes (integers); give a class, got 0.5"),
    ]
    for label, rule in refusals:
        response = client.post(path, json={"label": label})
        assert response.status_code == 422, response.text
        assert rule in response.json()["detail"], response.text
        with pytest.raises(InvalidArgumentError, match=re.escape(rule)):
            queue.answer(item.id, label)
    assert queue.get(item.id).state == "claimed"
    assert read_feedback(runtime.db, "loans").empty
    truth = model.predict(pd.DataFrame(SURE)).tolist()
    assert queue.answer(item.id, truth).label == truth
    feedback = read_feedback(runtime.db, "loans")
    assert feedback[["request_id", "label"]].values.tolist() == [[body["request_id"], truth]]


def test_partial_automation_answers_the_confident_and_queues_the_rest(plane):
    client, deployments, queue, runtime, model = plane
    sure, unsure = _confidence(model, SURE).min(), _confidence(model, UNSURE).max()
    assert unsure < 0.6 < 0.9 < sure  # the records are what their names say
    deployments.deploy(
        "loans", [Variant("stable", "loan", version=1)], automation="partial_automation"
    )
    deployments.configure("loans", confidence_threshold=0.8)
    confident = _predict(client, SURE)
    assert (confident["status"], confident["review_item"]) == ("answered", None)
    assert confident["predictions"] == model.predict(pd.DataFrame(SURE)).tolist()
    doubtful = _predict(client, UNSURE)
    assert (doubtful["status"], doubtful["predictions"]) == ("queued", None)
    item = queue.get(doubtful["review_item"])
    assert (item.reason, item.request_id) == ("low_confidence", doubtful["request_id"])
    assert item.suggestion["predictions"] == model.predict(pd.DataFrame(UNSURE)).tolist()
    assert [i.id for i in queue.list("loans")] == [item.id]
    queue.claim(item.id)
    queue.answer(item.id, [1])
    runtime.recorder.flush(10.0)
    feedback = read_feedback(runtime.db, "loans")
    assert feedback[["request_id", "label"]].values.tolist() == [[doubtful["request_id"], [1]]]
    # A threshold of 1 trusts no answer short of certain: the second record is not.
    assert _confidence(model, SURE[1:])[0] < 1.0
    deployments.configure("loans", confidence_threshold=1.0)
    assert _predict(client, SURE)["status"] == "queued"


def test_assertions_override_and_send_to_review_with_their_firings_counted(plane):
    client, deployments, queue, runtime, model = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    settings = deployments.configure("loans", assertions=RULES, reason="credit policy 7")
    assert settings.revision == 1
    # The income at which a 45-year-old's probability is 0.5: the boundary of the model.
    (b_age, b_income), b0 = model.coef_[0], model.intercept_[0]
    boundary = {"age": 45, "income": float(-(b0 + b_age * 45) / b_income)}
    minors = [{"age": 16, "income": 90_000.0}, {"age": 60, "income": 80_000.0}]
    assert model.predict(pd.DataFrame(minors)).tolist() == [1, 1]
    first = _predict(client, minors)
    assert (first["status"], first["predictions"]) == ("answered", ["decline", 1])
    assert first["rules"] == [["minor"], []]
    second = _predict(client, [boundary])
    assert (second["status"], second["rules"]) == ("queued", [["unsure"]])
    item = queue.get(second["review_item"])
    assert (item.reason, item.rules) == ("assertion", ["unsure"])
    third = _predict(client, [{"age": 15, "income": 40_000.0}, {"age": 17, "income": 1.0e5}])
    assert third["predictions"] == ["decline", "decline"]
    metrics = client.get("/metrics").text
    fired = "opsloop_assertion_firings_total"
    assert metric_value(metrics, fired, {"rule": "minor", "action": "override"}) == 3.0
    assert metric_value(metrics, fired, {"rule": "unsure", "action": "review"}) == 1.0
    assert metric_value(metrics, "opsloop_review_queued_total", {"reason": "assertion"}) == 1.0
    runtime.recorder.flush(10.0)
    events = events_of(runtime.db, "loans")
    assert events["assertions"].tolist() == [{"minor": 1}, {"unsure": 1}, {"minor": 2}]
    assert events["disposition"].tolist() == ["answered", "queued", "answered"]
    # The event keeps the model's own answer; the override is the rules' doing.
    assert events["output"].iloc[0]["predictions"] == [1, 1]
    # The same rules offline give the same firings on the same rows.
    rows = pd.DataFrame([*minors, boundary])
    offline = apply_assertions(RULES, rows, model.predict(rows), model.predict_proba(rows)[:, 1])
    assert offline.counts == {"minor": 1, "unsure": 1}
    assert offline.actions.tolist() == ["override", "none", "review"]
    history = deployments.history("loans")
    assert history["action"].tolist() == ["deploy", "configure"]
    assert history["reason"].iloc[1] == "credit policy 7"
    assert history["after"].iloc[1]["assertions"] == RULES


def test_a_flag_returns_the_answer_unchanged_and_records_and_counts_the_firing(plane):
    client, deployments, _, runtime, model = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    rich = {"name": "rich", "when": "income > 75000", "action": "flag"}
    deployments.configure("loans", assertions=[rich])
    records = [
        {"age": 30, "income": 90_000.0},
        {"age": 50, "income": 40_000.0},
        {"age": 70, "income": 80_000.0},
    ]
    answer = _predict(client, records)
    rows = pd.DataFrame(records)
    # The model's own answer, as if no rule were set: a flag changes nothing returned.
    assert answer["status"] == "answered"
    assert answer["predictions"] == model.predict(rows).tolist()
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba(rows), rtol=1e-12)
    assert answer["rules"] == [["rich"], [], ["rich"]]
    assert "review_item" not in answer or answer["review_item"] is None
    again = _predict(client, records[1:])
    assert again["rules"] == [[], ["rich"]]
    metrics = client.get("/metrics").text
    fired = {"deployment": "loans", "rule": "rich", "action": "flag"}
    assert metric_value(metrics, "opsloop_assertion_firings_total", fired) == 3.0
    assert metric_value(metrics, "opsloop_review_queued_total", {"reason": "assertion"}) is None
    assert runtime.recorder.flush(10.0)
    events = events_of(runtime.db, "loans")
    assert events["assertions"].tolist() == [{"rich": 2}, {"rich": 1}]
    assert events["disposition"].tolist() == ["answered", "answered"]
    assert events["output"].iloc[0]["predictions"] == answer["predictions"]
    offline = apply_assertions([rich], rows, model.predict(rows), model.predict_proba(rows)[:, 1])
    assert offline.actions.tolist() == ["flag", "none", "flag"]


def test_a_broken_rule_or_threshold_is_refused_naming_it(plane):
    client, deployments, _, _, _ = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    # A rule's fields are checked by the request model (the OpenAPI document states
    # them), its condition by the rules' parser.
    with pytest.raises(
        InvalidArgumentError,
        match=r"assertions\.0\.action: .*must be one of flag, override, review, got 'deny'",
    ):
        odd = {"name": "odd", "when": "age > 1", "action": "deny"}
        deployments.configure("loans", assertions=[odd])
    with pytest.raises(InvalidArgumentError, match="rule 'odd': unexpected character ';'"):
        odd = {"name": "odd", "when": "age > 1;", "action": "flag"}
        deployments.configure("loans", assertions=[odd])
    with pytest.raises(
        InvalidArgumentError, match=r"confidence_threshold: Input should be less than or equal to 1"
    ):
        deployments.configure("loans", confidence_threshold=2.0)
    response = client.put(
        "/api/v1/deployments/loans/settings", json={"confidence_threshold": "high"}
    )
    assert response.status_code == 422
    assert "confidence_threshold" in response.text
    assert deployments.settings("loans").revision == 0


def test_a_rule_named_as_the_input_detectors_count_is_refused_naming_its_name(plane):
    """An event's ``assertions`` count the detector's flagged records under
    ``input_detector``: a rule of that name would add its firings to them."""
    client, deployments, _, _, _ = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    rules = [RULES[0], {"name": "input_detector", "when": "age > 70", "action": "flag"}]
    response = client.put("/api/v1/deployments/loans/settings", json={"assertions": rules})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        "assertions.1.name: 'input_detector' is reserved for the count of records the input "
        "anomaly detector flagged"
    )
    with pytest.raises(InvalidArgumentError, match=r"^assertions\.0\.name: 'input_detector'"):
        deployments.configure("loans", assertions=rules[1:])
    assert deployments.settings("loans").revision == 0


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "loan_amount > 50000",
            "assertions.0.when: unknown field 'loan_amount': variant 'stable' (model 'loan' "
            "version 1) has the fields ['age', 'income'] and the outputs ['prediction', "
            "'probability']",
        ),
        (
            "yearly income > 5",
            "rule 'big': unexpected 'income' at position 7 of 'yearly income > 5'; write a "
            "field with spaces in backticks, as `yearly income`",
        ),
        (
            '"income" > 5',
            "rule 'big': compares the text 'income' with a number (a field is written as is, "
            "or in backticks when its name has spaces) at position 9",
        ),
    ],
)
def test_a_rule_the_served_records_cannot_meet_is_refused_when_set(plane, when, message):
    client, deployments, _, _, _ = plane
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    rules = [{"name": "big", "when": when, "action": "flag"}]
    response = client.put("/api/v1/deployments/loans/settings", json={"assertions": rules})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(message), response.text
    assert deployments.settings("loans").revision == 0
    assert len(_predict(client, SURE)["predictions"]) == 2


def test_a_deploy_bringing_a_version_whose_records_lack_a_rules_field_is_refused(
    plane, database, artifacts
):
    """A version deployed after the rules were set is checked against them too: one whose
    records lack a rule's field would make every request a 503, so the deploy is a 422
    naming the variant, the rule and the field, and nothing changes until the rules do."""
    client, deployments, _, _, _ = plane
    model, frame = loan_model()
    wider = frame.assign(loan_amount=frame["income"] / 2)
    ModelRegistry(database, artifacts, actor="owner").register(
        "loan",
        LogisticRegression(max_iter=1000).fit(wider, model.predict(frame)),
        input_schema=wider,
    )
    deployments.deploy("loans", [Variant("stable", "loan", version=2)])
    deployments.configure(
        "loans", assertions=[{"name": "big", "when": "loan_amount > 50000", "action": "flag"}]
    )
    lacks = (
        "'big' (assertions.0.when) of deployment 'loans' reads the field 'loan_amount', which "
        "the records of variant '{}' (model 'loan' version 1) lack: they have the fields "
        "['age', 'income'] and the outputs ['prediction', 'probability'] (change the "
        "assertions first)"
    )
    response = client.put(
        "/api/v1/deployments/loans",
        json={"variants": [{"name": "stable", "model": "loan", "version": 1}]},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "variants.0: assertion " + lacks.format("stable")
    with pytest.raises(InvalidArgumentError) as raised:
        deployments.deploy(
            "loans",
            [
                Variant("stable", "loan", version=2, weight=0.9),
                Variant("canary", "loan", version=1, role="candidate", weight=0.1),
            ],
            strategy="canary",
        )
    assert str(raised.value) == "variants.1: assertion " + lacks.format("canary")
    assert deployments.get("loans").serving == {"stable": 2}
    assert deployments.history("loans")["action"].tolist() == ["deploy", "configure"]
    records = [{**record, "loan_amount": record["income"] / 2} for record in SURE]
    assert len(_predict(client, records)["predictions"]) == 2
    # The rules changed first, the same deploy goes through and version 1 answers.
    deployments.configure(
        "loans", assertions=[{"name": "big", "when": "income > 100000", "action": "flag"}]
    )
    deployments.deploy("loans", [Variant("stable", "loan", version=1)])
    assert len(_predict(client, SURE)["predictions"]) == 2


def test_a_rule_on_a_column_served_records_never_carry_is_refused_set_or_deployed(
    database, artifacts
):
    """A signature's column kept for training alone (absent from its ``serving``
    environment) is no field of a served record: a rule reading it is refused when it is
    set, and so is a deploy bringing a version where the rule's field is such a column."""
    registry = ModelRegistry(database, artifacts, actor="owner")
    frame = pd.DataFrame({"age": [20, 40], "debt": [1.0, 2.0], "outcome": [0, 1]})
    registry.register(
        "m", b"v1", flavor="onnx",
        input_schema=infer_schema(frame, environments={"serving": ["outcome"]}),
    )  # fmt: skip
    registry.register(
        "m", b"v2", flavor="onnx",
        input_schema=infer_schema(frame, environments={"serving": ["outcome", "debt"]}),
    )  # fmt: skip
    deployments = Deployments(database, actor="owner")
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    with pytest.raises(InvalidArgumentError) as raised:
        deployments.configure(
            "api", assertions=[{"name": "won", "when": "outcome > 0", "action": "flag"}]
        )
    assert str(raised.value) == (
        "assertions.0.when: unknown field 'outcome': variant 'stable' (model 'm' version 1) "
        "has the fields ['age', 'debt'] and the outputs ['prediction', 'probability']"
    )
    owes = {"name": "owes", "when": "debt > 1.5", "action": "flag"}
    deployments.configure("api", assertions=[owes])
    with pytest.raises(InvalidArgumentError) as raised:
        deployments.deploy("api", [Variant("stable", "m", version=2)])
    assert str(raised.value) == (
        "variants.0: assertion 'owes' (assertions.0.when) of deployment 'api' reads the field "
        "'debt', which the records of variant 'stable' (model 'm' version 2) lack: they have "
        "the fields ['age'] and the outputs ['prediction', 'probability'] (change the "
        "assertions first)"
    )
    assert deployments.get("api").serving == {"stable": 1}
    assert deployments.history("api")["action"].tolist() == ["deploy", "configure"]
