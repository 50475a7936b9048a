"""``record_events`` holds every event to one type, called from Python or over HTTP: a field
out of its range is refused with the same message naming the event, the field and the rule
(locally, through the HTTP client, and as a 422 naming the same field to any other HTTP
client), a refused call keeps nothing, and what was kept before stays. On SQLite and
PostgreSQL, against a real server."""

from __future__ import annotations

import dataclasses

import httpx
import numpy as np
import pytest
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments
from opsloop.serving.control_plane_sink import ControlPlaneSink
from opsloop.serving.event_documents import MAX_EVENTS
from opsloop.serving.prediction_events import PredictionEvent, read_prediction_events
from opsloop.serving.record_validation import MAX_RECORDS
from opsloop.store.installation_token import read_installation_token

GOOD = {"deployment": "api", "variant": "a", "role": "primary", "model": "m", "version": 1,
        "request_id": "r1", "inputs": [{"x": 1.0}], "output": {"predictions": [0]},
        "latency_ms": 0.5, "at_ms": 1_000}  # fmt: skip

# (field, bad value, the message's rule, the wire's rule as pydantic words it)
BROKEN = [
    ("latency_ms", -1.0, "Input should be greater than or equal to 0, got -1.0"),
    ("latency_ms", float("nan"), "Input should be a finite number, got nan"),
    ("at_ms", 10**20, "Input should be less than or equal to "),
    ("version", 0, "Input should be greater than or equal to 1, got 0"),
    ("routed_share", 1.5, "Input should be less than 1, got 1.5"),
    ("routed_share", 0.0, "Input should be greater than 0, got 0.0"),
    ("generation", -1, "Input should be greater than or equal to 0, got -1"),
    ("request_id", "a b", "String should match pattern '^[0-9A-Za-z_.:-]+$', got 'a b'"),
    ("request_id", "r" * 65, "String should have at most 64 characters, got 'rrr"),
    ("role", "judge", "must be one of"),
    ("disposition", "maybe", "must be one of"),
    ("routed", "no", "Input should be a valid boolean, got 'no'"),
]


@pytest.mark.parametrize(("field", "value", "rule"), BROKEN)
def test_a_field_out_of_its_range_is_refused_alike_from_python_and_over_http(
    registry, field, value, rule
):
    local = Deployments(registry.db)
    assert local.record_events([GOOD]) == 1
    bad = {**GOOD, "request_id": "r2", field: value}
    with pytest.raises(InvalidArgumentError) as from_python:
        local.record_events([{**GOOD, "request_id": "r3"}, bad])
    message = str(from_python.value)
    assert message.startswith(f"events[1].{field}: ")
    assert rule in message
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        try:
            with pytest.raises(InvalidArgumentError) as over_http:
                client.record_events([{**GOOD, "request_id": "r3"}, bad])
        finally:
            client.close()
        # Another HTTP client (nothing checked before sending): a 422 naming the field.
        if not (isinstance(value, float) and np.isnan(value)):
            answer = httpx.post(
                f"{url}/api/v1/serving/events",
                json={"events": [GOOD, bad]},
                headers={"Authorization": f"Bearer {read_installation_token()}"},
            )
            assert answer.status_code == 422
            (problem,) = answer.json()["detail"]
            assert problem["loc"][:4] == ["body", "events", 1, field]
            assert problem["msg"] in message
    assert str(over_http.value) == message
    # Nothing of a refused call is kept; what was kept before stays.
    assert read_prediction_events(registry.db, "api")["request_id"].tolist() == ["r1"]


def test_a_prediction_event_object_is_checked_as_its_document_is(registry):
    event = PredictionEvent("api", "a", "primary", "m", 1, "r1", None, [{"x": 1.0}],
                            {"predictions": [0]}, None, -0.5, 1_000)  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"^events\[0\]\.latency_ms: .*got -0\.5$"):
        Deployments(registry.db).record_events([event])
    with pytest.raises(InvalidArgumentError, match=r"^events\[0\]\.extra: Extra inputs"):
        Deployments(registry.db).record_events([{**GOOD, "extra": 1}])
    assert read_prediction_events(registry.db, "api").empty


def test_what_was_kept_before_is_kept_still(registry):
    # numpy numbers and tuples read as the JSON they write; an event object keeps its
    # ``routed`` flag; a request of more records than a list of names may hold (the most a
    # request may carry) travels through a control plane too.
    local = Deployments(registry.db)
    document = {**GOOD, "at_ms": np.int64(2_000), "latency_ms": np.float32(0.25),
                "version": np.int64(1), "inputs": ({"x": 1.0},)}  # fmt: skip
    assert local.record_events([document]) == 1
    event = PredictionEvent("api", "a", "primary", "m", 1, "r2", None, [{"x": 2.0}],
                            {"predictions": [1]}, None, 0.5, 3_000, routed=True)  # fmt: skip
    assert local.record_events([event]) == 1
    wide = dataclasses.replace(event, request_id="wide", inputs=[{"x": 0.0}] * 1_001, routed=None)
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        try:
            ControlPlaneSink(client).write([wide])
            with pytest.raises(InvalidArgumentError, match=r"^events\[0\]\.inputs: List should"):
                client.record_events(
                    [{**wide.to_document(), "inputs": [{"x": 0.0}] * (MAX_RECORDS + 1)}]
                )
        finally:
            client.close()
    events = read_prediction_events(registry.db, "api").set_index("request_id")
    assert events.index.tolist() == ["r1", "r2", "wide"]
    assert events.loc["r1", "at_ms"] == 2_000 and events.loc["r1", "latency_ms"] == 0.25
    assert events.loc["r1", "inputs"] == [{"x": 1.0}]
    assert events.loc["r2", "routed"] == True  # noqa: E712 - a numpy bool from the frame
    assert len(events.loc["wide", "inputs"]) == 1_001


def test_the_http_client_refuses_more_events_than_the_server_takes_before_sending(registry):
    events = [{**GOOD, "request_id": f"r{n}"} for n in range(MAX_EVENTS + 1)]
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        # The server refuses them (any client): a 422 naming events and the bound.
        answer = httpx.post(
            f"{url}/api/v1/serving/events",
            json={"events": events},
            headers={"Authorization": f"Bearer {read_installation_token()}"},
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "events"]
        assert f"at most {MAX_EVENTS} items" in answer.json()["detail"][0]["msg"]
    # Ours refuses them before sending: no server listens at its address any more.
    client = HttpDeployments(url, token="")
    try:
        with pytest.raises(InvalidArgumentError, match=rf"events: at most {MAX_EVENTS} events"):
            client.record_events(events)
    finally:
        client.close()
