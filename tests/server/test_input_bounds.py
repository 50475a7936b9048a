"""Bounded input over HTTP, against a real server on loopback: every out-of-range integer,
boolean-for-integer, overlong or NUL-holding text and oversized filter is a 422 naming the
field, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

from .running import running_server

API = "/api/v1"
BIG = 3442620334329280367904404826750976  # the probe's required_approvals
OVER_INT64 = 10_000_000_000_000_000_000  # the probe's at_ms
NUL = "a\x00b"
RUN = "0" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: these requests are all refused before touching a row."""
    root = tmp_path_factory.mktemp("bounds")
    with pytest.MonkeyPatch.context() as patch:
        # The module's own home: the server keeps its installation token there.
        patch.setenv("OPSLOOP_HOME", str(root / "home"))
        database = Database(f"sqlite:///{root / 'store.db'}")
        app = create_app(database, ArtifactStore(root / "artifacts"))
    token = {"Authorization": f"Bearer {app.state.installation_token}"}
    with (
        running_server(app) as url,
        httpx.Client(base_url=url + API, timeout=30, headers=token) as client,
    ):
        yield client, root
    database.dispose()


def _variants(**variant) -> dict:
    return {"variants": [{"name": "a", "model": "m", "version": 1, **variant}]}


def _metrics(**lists) -> dict:
    points = {"keys": ["auc"], "values": [0.5], "steps": [0], "timestamps_ms": [1], **lists}
    return {"metrics": points}


# (method, path, JSON body or None, the field the 422 must name)
CASES = [
    # Integers beyond 64 bits (OverflowError, a 500, before).
    ("PUT", "/deployments/B/protection", {"required_approvals": BIG}, "body.required_approvals"),
    ("GET", f"/deployments/x/at?at_ms={OVER_INT64}", None, "query.at_ms"),
    ("GET", f"/models/m/aliases/a/at?at_ms={OVER_INT64}", None, "query.at_ms"),
    ("GET", f"/models/m/version?version={OVER_INT64}", None, "query.version"),
    ("GET", f"/models/m/lineage?version={OVER_INT64}", None, "query.version"),
    ("GET", f"/models/m/loader?version={OVER_INT64}", None, "query.version"),
    # A published head is a sha256 (the pattern travels to query parameters too).
    ("GET", "/audit/verify?head=x", None, "query.head"),
    ("POST", "/runs", {"experiment": "e", "start_ms": BIG}, "body.start_ms"),
    ("POST", f"/runs/{RUN}/batch", _metrics(steps=[BIG]), "body.metrics.steps.0"),
    ("POST", f"/runs/{RUN}/batch", _metrics(timestamps_ms=[BIG]), "body.metrics.timestamps_ms.0"),
    ("POST", f"/runs/{RUN}/batch", {"status": "FINISHED", "end_ms": BIG}, "body.end_ms"),
    ("POST", f"/runs/{RUN}/end", {"end_ms": BIG}, "body.end_ms"),
    ("POST", "/runs/search", {"max_results": BIG}, "body.max_results"),
    ("PUT", "/models/m/aliases/a", {"version": BIG}, "body.version"),
    ("POST", "/models/m/aliases/a/approvals", {"version": BIG}, "body.version"),
    (
        "PUT",
        "/models/m/aliases/a/protection",
        {"required_approvals": BIG},
        "body.required_approvals",
    ),
    ("PUT", "/deployments/d", _variants(version=BIG), "body.variants.0.version"),
    ("POST", "/deployments/d/approvals", _variants(version=BIG), "body.variants.0.version"),
    (
        "POST",
        f"/runs/{RUN}/datasets",
        {"name": "t", "sha256": "a" * 64, "n_rows": BIG, "n_columns": 1},
        "body.n_rows",
    ),
    # Within 64 bits but beyond what the column or a timestamp holds.
    ("PUT", "/deployments/B/protection", {"required_approvals": 2**31}, "body.required_approvals"),
    ("PUT", "/models/m/aliases/a", {"version": 2**31}, "body.version"),
    ("POST", "/runs", {"experiment": "e", "start_ms": 2**62}, "body.start_ms"),
    (
        "POST",
        f"/runs/{RUN}/datasets",
        {"name": "t", "sha256": "a" * 64, "n_rows": 1, "n_columns": 2**31},
        "body.n_columns",
    ),
    # Booleans are not integers, and text is not a number.
    ("PUT", "/deployments/B/protection", {"required_approvals": False}, "body.required_approvals"),
    ("POST", "/runs/search", {"max_results": True}, "body.max_results"),
    ("POST", "/runs", {"experiment": "e", "start_ms": True}, "body.start_ms"),
    ("POST", f"/runs/{RUN}/batch", _metrics(steps=[True]), "body.metrics.steps.0"),
    ("POST", f"/runs/{RUN}/batch", _metrics(values=[True]), "body.metrics.values.0"),
    ("POST", f"/runs/{RUN}/batch", _metrics(values=["0.5"]), "body.metrics.values.0"),
    ("PUT", "/deployments/d", _variants(weight=True), "body.variants.0.weight"),
    ("POST", "/runs", {"experiment": "e", "code": {"dirty": "yes"}}, "body.code.dirty"),
    (
        "POST",
        f"/runs/{RUN}/datasets",
        {"name": "t", "sha256": "a" * 64, "n_rows": False, "n_columns": 1},
        "body.n_rows",
    ),
    # Overlong text and NUL characters.
    ("POST", "/runs", {"experiment": "e", "name": "x" * 1_000_000}, "body.name"),
    ("POST", "/runs", {"experiment": "e", "name": NUL}, "body.name"),
    ("POST", "/runs", {"experiment": "e", "tags": {"team": NUL}}, "tag 'team'"),
    ("POST", "/runs", {"experiment": "e", "command": "x" * 10_001}, "body.command"),
    ("POST", "/experiments", {"name": "e", "description": "x" * 10_001}, "body.description"),
    ("POST", f"/runs/{RUN}/batch", {"params": {"depth": NUL}}, "param 'depth'"),
    ("POST", f"/runs/{RUN}/batch", {"tags": {"x" * 251: "v"}}, f"body.tags.{'x' * 251}.[key]"),
    ("POST", f"/runs/{RUN}/artifacts?path=a%00b", None, "query parameter 'path'"),
    ("PUT", "/models/m/description", {"description": NUL}, "body.description"),
    ("PUT", "/models/m/aliases/a", {"version": 1, "reason": "x" * 10_001}, "body.reason"),
    ("PUT", "/deployments/d", {**_variants(), "description": NUL}, "body.description"),
    ("PUT", "/deployments/d", _variants(name=NUL), "body.variants.0.name"),
    (
        "POST",
        "/models/m/versions",
        {"artifact_sha256": "a" * 64, "flavor": "onnx", "description": NUL},
        "body.description",
    ),
    ("DELETE", "/deployments/d?reason=" + "x" * 10_001, None, "query.reason"),
    # A page's cursor: a window's start (and variant), an alert's id.
    ("GET", f"/monitoring/d/evaluations?before_ms={OVER_INT64}", None, "query.before_ms"),
    ("GET", "/monitoring/d/evaluations?before_ms=true", None, "query.before_ms"),
    (
        "GET",
        "/monitoring/d/evaluations?before_ms=1&before_variant=a%00b",
        None,
        "query parameter 'before_variant'",
    ),
    (
        "GET",
        "/monitoring/d/evaluations?before_ms=1&before_variant=" + "v" * 300,
        None,
        "query.before_variant",
    ),
    ("GET", "/monitoring/d/alerts?before_id=0", None, "query.before_id"),
    ("GET", "/monitoring/d/alerts?before_id=2147483648", None, "query.before_id"),
    # Lists beyond what one statement may bind.
    ("POST", "/runs/histories", {"run_ids": [RUN] * 1_001}, "body.run_ids"),
    ("POST", "/runs/search", {"experiments": ["e"] * 1_001}, "body.experiments"),
]


def _names(response: httpx.Response, field: str) -> bool:
    detail = response.json()["detail"]
    if isinstance(detail, list):  # FastAPI's validation errors locate the field
        return any(".".join(str(part) for part in item["loc"]) == field for item in detail)
    return field in detail


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES, ids=lambda v: str(v)[:40])
def test_out_of_bounds_input_is_a_422_naming_the_field(server, method, path, body, field):
    client, _root = server
    content = None if body is None else json.dumps(body)
    response = client.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text[:500]
    assert _names(response, field), response.text[:500]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # About 400 nested parentheses and 2,000 NOTs were a RecursionError (a 500).
        ("(" * 400 + "metrics.a > 1" + ")" * 400, "nest too deep at position 32; the limit is 32"),
        ("not " * 2_000 + "metrics.a > 1", "nest too deep at position 128; the limit is 32"),
        # 2,000 ORs took 4.2 s and ended in "Expression tree too large" (a 500).
        (" or ".join(["status = 'a'"] * 2_000), "at most 20000 characters"),
        (
            " or ".join(["status = 'a'"] * 201),
            "too many comparisons at position 3200; the limit is 200",
        ),
        (
            "status in (" + ", ".join(["'a'"] * 1_001) + ")",
            "too many values at position 5011; the limit is 1000",
        ),
        ("start_time > 1e23", "start_time compares with milliseconds from -9223372036854775808 to"),
        ("start_time > 100000000000000000000000", "integer 100000000000000000000000 at position"),
        ("metrics.a > " + "9" * 5_000, "beyond 64 bits"),
    ],
)
def test_oversized_filters_are_a_422_naming_the_filter_and_the_limit(server, text, message):
    client, _root = server
    response = client.post("/runs/search", json={"filter": text})
    assert response.status_code == 422, response.text[:500]
    assert "filter" in response.text and message in response.text, response.text[:500]


def test_a_filter_at_the_limits_is_accepted(server):
    client, _root = server
    nested = "not " * 16 + "(" * 16 + "status = 'a'" + ")" * 16
    response = client.post("/runs/search", json={"filter": nested})
    assert response.status_code == 200, response.text
    many = " or ".join(["status = 'a'"] * 200)
    assert client.post("/runs/search", json={"filter": many}).status_code == 200


def test_a_refused_large_value_is_not_echoed_whole(server):
    client, _root = server
    name = "n" * 1_000_000
    response = client.post("/experiments", json={"name": name})
    assert response.status_code == 422
    assert len(response.content) < 2_000
    echoed = response.json()["detail"][0]["input"]
    assert echoed == "n" * 200 + "... (1000000 characters in all)"
