"""Schemathesis against real servers on loopback: every operation of the OpenAPI document,
with an admin's token and, on an embedded server, with no token, must answer without a
server error, with only the status codes and content types the document lists for it, with
error bodies that match the shared error schema, and with a 4xx to data the schema refuses.

The admin's store is seeded with an experiment, a run with metrics, a registered model with
an alias and a deployment, so the listing and search routes answer with real rows, not only
empty lists. Generation is derandomized and bounded per operation, so the file sends the
same cases on every run.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database

from .running import running_server

API = "/api/v1"
# Rules JSON Schema cannot state: between fields, between items of a list, between a body
# and its path, or of a grammar. Every other rule is in the document, so a request the
# document allows is refused only for one of these, and the 422 names it.
RULES_BEYOND_THE_SCHEMA = (
    # A run's environment: its hash is that of its other fields.
    "sha256: must be the hash of python_version, platform and packages",
    # Metric points come as parallel lists.
    "keys, values, steps and timestamps_ms need one length",
    # A version is registered over HTTP from a stored artifact, with its flavor.
    "flavor must be one of sklearn, onnx, pytorch, python, got None",
    "register needs a model object or an artifact_sha256",
    # A version's training reference is compressed JSON in base64 (a profile, a schema and
    # a sample that agree with each other), built by the client from the training data.
    '"detail":"training_reference',
    # A version's input schema is a schema document (columns and their rules), checked by
    # the schema module that reads it.
    '"detail":"input_schema: ',
    # An upload's bytes hash to the sha256 in its path.
    "artifact body: expected sha256",
    # A deployment's definition: a variant serves a version or follows an alias, its role
    # and weight agree (a shadow takes no traffic), the strategy fits the variants, live
    # weights sum to 1. Rules of one field are in the document, so pydantic would refuse
    # those with a list of errors, not with one of these messages.
    '"detail":"variant \'',
    '"detail":"variants: ',
    '"detail":"strategy ',
    # A model assertion's condition is an expression in the rules' grammar.
    '"error":"AssertionRuleError"',
    # A bandit's parameters are those of the bandit named beside them, bound_ms is the
    # latency gate's, and each gate's are those of its kind.
    "bandit_params:",
    "bound_ms belongs to the latency gate",
    # A canary gate takes the parameters of its kind (rate, drift or estimate).
    "are its parameters, got",
    # A rate gate's baseline settings go together: baseline_alpha and guard with a
    # baseline, a window and a minimum with a recorded one (the errors gate's only),
    # baseline_alpha below alpha, no beta, no more events than requests, and a rate left
    # to detect above the baseline's.
    "only with a baseline",
    "only with baseline 'recorded'",
    "only the errors gate takes it",
    "baseline_alpha must be below alpha",
    "baseline: not with beta",
    "more than one per request",
    "leaves no rate to detect",
    # The disagreement gate needs its accepted rate, by its name or its former one.
    "max_rate is required",
    "give max_rate or margin",
    # A search's filter and order clauses are in the filter language.
    '"detail":"filter: ',
    '"detail":"order_by: ',
    # A search's page token is one the search wrote, for the same search.
    '"detail":"page_token: ',
    # A ramp's shares increase to 1.
    '"detail":"steps: ',
    # Monitoring: a policy is a rule in its grammar; times and latencies come one for all
    # rows or one per row; a window is at most 100 years in any unit.
    '"detail":"policy ',
    # A stored policy's rules: each in the grammar (named by its position), none twice.
    '"detail":"rules.',
    "give one, or one per row",
    "; give one per row",
    "; give one per id",
    "at most 36500d (100 years)",
    # Monitoring's probabilities: one row per row, all rows as long (one column per class,
    # named by as many classes, which need the probabilities beside them), a reference's
    # rows summing to 1 and coming with their labels.
    '"detail":"classes: ',
    "give the labels too",
    "probabilities: one column per class",
    "probabilities: numbers, one row per",
    "must sum to 1",
    # A retrain request's label column is not one of the deployment's inputs.
    "is also an input column of",
    # A time range (traffic, shadow agreement) ends after it starts.
    "until_ms: must be after since_ms",
    # Feedback carries a label, a reward or both.
    "feedback: give a label, a reward or both",
    # A label (logged, or a review answer) is one value per record of the answer it is
    # about (a finite number, a bool or a short text), of the kind the model answers: the
    # count and the kind are those of the stored answer or item.
    "one per record",
    "the model answers ",
    # An input detector's shapes follow its features (one location per feature, a square
    # symmetric precision), its rank is among its calibration rows, and its features are
    # distinct numeric columns of every variant's signature.
    '"detail":"detector',
    # The audit log's entries of a version are those of a version of a named model.
    "version: give the model's name with it",
    # A page of windows before a cursor: the cursor's variant goes with its start.
    "before_variant: needs before_ms",
    # Whose predictions a reference keeps is said only with the predictions.
    "predicted_by: names the model version whose predictions the reference keeps",
    # A rotated token's expiry lies after now, by the store's clock.
    "expires_ms: must be after now",
)


@schemathesis.check
def accepts_schema_valid_data(ctx, response, case):
    """positive_data_acceptance, less the refusals that name a rule of
    RULES_BEYOND_THE_SCHEMA."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422 and any(
            rule in response.text for rule in RULES_BEYOND_THE_SCHEMA
        ):
            return None
        raise


# response_schema_conformance checks every error body against ErrorOut and the success
# bodies that declare a model.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    accepts_schema_valid_data,
]
EXAMPLES_PER_OPERATION = 10


def _seed(url: str, headers: dict) -> None:
    """An experiment, a run with metrics, a model version with an alias, a deployment."""
    with httpx.Client(base_url=f"{url}{API}", headers=headers) as client:
        client.post("/experiments", json={"name": "churn"}).raise_for_status()
        run_id = client.post("/runs", json={"experiment": "churn"}).json()["run_id"]
        batch = {
            "metrics": {"keys": ["auc"], "values": [0.9], "steps": [0], "timestamps_ms": [1000]},
            "params": {"depth": "3"},
        }
        client.post(f"/runs/{run_id}/batch", json=batch).raise_for_status()
        data = b"\x08\x01"
        digest = hashlib.sha256(data).hexdigest()
        client.put(
            f"/artifacts/{digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()
        version = {"artifact_sha256": digest, "flavor": "onnx", "run_id": run_id}
        client.post("/models/credit/versions", json=version).raise_for_status()
        client.put("/models/credit/aliases/champion", json={"version": 1}).raise_for_status()
        deployment = {"variants": [{"name": "main", "model": "credit", "version": 1}]}
        client.put("/deployments/web", json=deployment).raise_for_status()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two real servers on 127.0.0.1 over fresh SQLite stores: one with an admin user (its
    URL and the admin's token) and one embedded, with no users (its URL)."""
    root = tmp_path_factory.mktemp("schemathesis")
    with pytest.MonkeyPatch.context() as patch:
        # One home and one audit key for the module (each test gets its own OPSLOOP_HOME).
        patch.setenv("OPSLOOP_HOME", str(root / "home"))
        patch.setenv("OPSLOOP_AUDIT_KEY", "5a" * 32)
        database = Database(f"sqlite:///{root / 'store.db'}")
        # A name no generated case is likely to hit: rotating this admin's token (or
        # disabling them) would end the session every later case uses.
        _user, token = add_user(database, "admin-of-the-schemathesis-server", "admin")
        app = create_app(database, ArtifactStore(root / "artifacts"), allow_embedded=False)
        embedded_database = Database(f"sqlite:///{root / 'embedded.db'}")
        embedded = create_app(embedded_database, ArtifactStore(root / "embedded-artifacts"))
        assert embedded.state.installation_token is not None
        with running_server(app) as url, running_server(embedded) as embedded_url:
            headers = {"Authorization": f"Bearer {token}"}
            _seed(url, headers)
            yield {"admin": (url, headers), "embedded": embedded_url}
        database.dispose()
        embedded_database.dispose()


def _document() -> dict:
    # The document depends only on the code, so an app on an in-memory store gives the one
    # the served app publishes (test_the_served_document_is_the_one_tested checks it);
    # loading it here lets pytest collect one test per operation.
    app = create_app(
        Database("sqlite://"), ArtifactStore("memory://opsloop-openapi"), allow_embedded=False
    )
    return app.openapi()


schema = schemathesis.openapi.from_dict(_document())


def test_the_served_document_is_the_one_tested(servers):
    url, _headers = servers["admin"]
    assert httpx.get(f"{url}/openapi.json").json() == schema.raw_schema


def test_every_operation_documents_the_refusals_it_can_give():
    operations = {
        (method.upper(), path): operation
        for path, methods in schema.raw_schema["paths"].items()
        for method, operation in methods.items()
    }
    assert sorted(operations[("GET", f"{API}/health")]["responses"]) == ["200", "400"]
    refusals = {"400", "401", "403", "404", "413", "415", "422"}
    for (method, path), operation in operations.items():
        if path == f"{API}/health":
            continue
        assert refusals <= set(operation["responses"]), (method, path)
        error = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorOut"}
    # A stored artifact whose bytes changed is a 409; only the routes that read stored
    # artifacts (downloads, and registration, which checks the upload) document it.
    assert "409" in operations[("GET", f"{API}/artifacts/{{sha256}}")]["responses"]
    assert "409" not in operations[("POST", f"{API}/runs")]["responses"]
    error_schema = schema.raw_schema["components"]["schemas"]["ErrorOut"]
    assert error_schema["required"] == ["detail"]
    assert set(error_schema["properties"]) == {"detail", "error"}


def _integer_schemas(node):
    if isinstance(node, dict):
        if node.get("type") == "integer":
            yield node
        for value in node.values():
            yield from _integer_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _integer_schemas(value)


def test_integer_bounds_and_key_rules_are_published_exactly():
    bounds = [
        node[key]
        for node in _integer_schemas(schema.raw_schema)
        for key in ("minimum", "maximum")
        if key in node
    ]
    # FastAPI's own document writes 2**63 - 1 as the float 2**63; every bound is an int.
    assert bounds and all(type(bound) is int for bound in bounds)
    assert 2**63 - 1 in bounds and float(2**63) not in bounds
    search = schema.raw_schema["components"]["schemas"]["TrackingSearchRunsIn"]
    assert search["properties"]["max_results"]["anyOf"][0]["maximum"] == 2**63 - 1
    # A map's key rule is a rule on every key, not patternProperties (which lets other
    # keys through).
    tags = schema.raw_schema["components"]["schemas"]["RegistryRegisterIn"]["properties"]["tags"]
    assert tags["anyOf"][0]["propertyNames"]["pattern"] == "^[A-Za-z0-9_\\-./: ]+$"
    assert "patternProperties" not in str(schema.raw_schema)


_bounded = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@schema.parametrize()
@_bounded
def test_with_an_admin_token(case, servers):
    url, headers = servers["admin"]
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)


@schema.parametrize()
@_bounded
def test_without_a_token(case, servers):
    """The embedded server (no users) refuses every request that lacks its installation
    token, with a documented 401."""
    case.call_and_validate(base_url=servers["embedded"], checks=CHECKS)
