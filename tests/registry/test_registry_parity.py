"""The registry contract: the local registry and the HTTP client give the same answers for
every operation of the table (and the methods composed on them), on SQLite and
PostgreSQL, and both have the Protocol's signatures."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
from tests.server.running import running_server

from opsloop.contract.operation import ACTOR
from opsloop.registry import HttpModelRegistry, ModelRegistry, add_user
from opsloop.registry.registry_service import REGISTRY_OPERATIONS, RegistryService
from opsloop.server import create_app

FAR_FUTURE_MS = 2**62


def _plain(value):
    """A result as plain data, without the times of changes, the hashes that cover them and
    the audit ids (the two sides interleave in one log); of an entry's origin only whether
    it is recorded (one side's changes come from this process, the other's over HTTP)."""
    if isinstance(value, pd.DataFrame):
        kept = value.drop(
            columns=["id", "time", "prev_hash", "hash", "created_ms"], errors="ignore"
        )
        if "origin" in kept:
            kept["origin"] = [origin is not None for origin in kept["origin"]]
        return {"columns": list(kept.columns), "rows": kept.to_dict("records")}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _renamed(value, name: str):
    """``value`` with the model's name replaced and times (``*_ms``) left out, also inside
    the audit log's ``before`` and ``after`` documents."""
    if isinstance(value, dict):
        return {
            _renamed(key, name): _renamed(item, name)
            for key, item in value.items()
            if not (isinstance(key, str) and key.endswith("_ms"))
        }
    if isinstance(value, list | tuple):
        return [_renamed(item, name) for item in value]
    if isinstance(value, str):
        return value.replace(name, "NAME")
    return value


#: Each operation of the table (and each composed method), called as a user would, in an
#: order that gives every call something to find; ``same_moment`` calls read the whole
#: store, so both sides are called with nothing written in between.
SCENARIO = [
    ("register", lambda r, n: r.register(n, b"\x08\x01", flavor="onnx", metrics={"auc": 0.9})),
    ("register", lambda r, n: r.register(n, b"\x08\x02", flavor="onnx", tags={"team": "risk"})),
    ("get_version", lambda r, n: r.get_version(n)),
    ("get_version", lambda r, n: r.get_version(n, 1)),
    ("set_description", lambda r, n: r.set_description(n, f"{n} scores churn")),
    (
        "protect_alias",
        lambda r, n: r.protect_alias(n, "champion", 1, require_gate="ci", reason="four eyes"),
    ),
    (
        "approve_protection",
        lambda r, n: r.approve_protection(n, "champion", 0, require_gate="ci", comment="later"),
    ),
    ("approve", lambda r, n: r.approve(n, "champion", 2, comment="checked")),
    ("pending_approvals", lambda r, n: r.pending_approvals(n)),
    ("pending_approvals", lambda r, n: r.pending_approvals(n, version=1)),
    (
        "record_gate",
        lambda r, n: (
            r.record_gate(
                n,
                2,
                passed=True,
                gate={"gate": "ci", "gate_sha256": "a" * 64, "data_sha256": "b" * 64, "failed": []},
            )
            and None
        ),
    ),
    ("set_alias", lambda r, n: r.set_alias(n, "champion", 2, reason="better auc")),
    ("get_version", lambda r, n: r.get_version(n, alias="champion")),
    ("alias_at", lambda r, n: r.alias_at(n, "champion", FAR_FUTURE_MS)),
    ("alias_at", lambda r, n: r.alias_at(n, "champion", 0)),
    ("loader_record", lambda r, n: r.loader_record(n, 1)),
    (
        "record_gate",
        lambda r, n: r.record_gate(n, 2, passed=True, gate={"failed": []}, reason="ci") and None,
    ),
    ("lineage", lambda r, n: r.lineage(n, alias="champion")),
    ("search", lambda r, n: r.search(n, tags={"team": "risk"})),
    ("search", lambda r, n: r.search(n, min_metrics={"auc": 0.5})),
    ("audit", lambda r, n: r.audit(n)),
    ("audit", lambda r, n: r.audit(n, last=2)),
    ("audit", lambda r, n: r.audit(n, version=2)),
    ("audit", lambda r, n: r.audit(n, version=2, last=1)),
    ("search", lambda r, n: r.search(model=n, limit=1, offset=1)),
    ("list_models", lambda r, n: r.list_models(n)),
    ("load", lambda r, n: r.load(n, alias="champion")),
    ("artifact_bytes", lambda r, n: r.artifact_bytes(n, 2)),
    ("resolve", lambda r, n: r.resolve(f"models:/{n}@champion")),
    ("load_reference", lambda r, n: r.load_reference(f"models:/{n}/1")),
]
SAME_MOMENT = [
    ("list_models", lambda r: r.list_models()),
    ("list_models", lambda r: r.list_models(limit=1, offset=1)),
    ("audit_head", lambda r: r.audit_head()),
    ("verify_audit_log", lambda r: r.verify_audit_log()),
]


def test_every_operation_has_a_parity_case():
    covered = {method for method, _ in SCENARIO} | {method for method, _ in SAME_MOMENT}
    wanted = {operation.method for operation in REGISTRY_OPERATIONS.operations}
    assert covered == wanted | set(REGISTRY_OPERATIONS.composed)


#: The calls made as a second user: the owner moves the alias, whose own approval of the
#: move would not count (four eyes).
AS_APPROVER = {"approve", "approve_protection"}


def test_local_and_http_give_the_same_answers(registry):
    _, token = add_user(registry.db, "owner", "admin")
    _, approver_token = add_user(registry.db, "ana", "approver")
    local = ModelRegistry(registry.db, registry.artifacts, actor="owner")
    local_approver = ModelRegistry(registry.db, registry.artifacts, actor="ana")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpModelRegistry(url, token=token)
        remote_approver = HttpModelRegistry(url, token=approver_token)
        for method, call in SCENARIO:
            if method in AS_APPROVER:
                mine, theirs = call(local_approver, "m-local"), call(remote_approver, "m-http")
            else:
                mine, theirs = call(local, "m-local"), call(remote, "m-http")
            assert type(mine) is type(theirs), method
            assert _renamed(_plain(mine), "m-local") == _renamed(_plain(theirs), "m-http"), method
        for method, call in SAME_MOMENT:
            mine, theirs = call(local), call(remote)
            if isinstance(mine, pd.DataFrame):
                pd.testing.assert_frame_equal(mine, theirs)
            else:
                assert mine == theirs, method
        remote.close()
        remote_approver.close()


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [
        (name, parameter.kind, parameter.default)
        for name, parameter in signature.parameters.items()
    ]


@pytest.mark.parametrize("implementation", [ModelRegistry, HttpModelRegistry])
def test_implementations_have_the_protocols_signatures(implementation):
    methods = [op.method for op in REGISTRY_OPERATIONS.operations]
    for method in [*methods, *REGISTRY_OPERATIONS.composed]:
        wanted = getattr(RegistryService, method)
        found = getattr(implementation, method)
        assert _parameters(found) == _parameters(wanted), method
        if ACTOR in inspect.signature(wanted).parameters:
            assert inspect.signature(found).parameters[ACTOR].default is None


def test_the_openapi_document_has_a_response_schema_for_every_registry_route(registry):
    document = create_app(registry.db, registry.artifacts).openapi()
    paths = [p for p in document["paths"] if p.startswith(("/api/v1/models", "/api/v1/audit"))]
    assert len(paths) == 17
    for path in paths:
        for verb, operation in document["paths"][path].items():
            status, answer = next(iter(operation["responses"].items()))
            if status == "204":
                continue
            assert answer["content"]["application/json"]["schema"] != {}, (verb, path)
