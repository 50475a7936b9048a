"""The deployments contract: the local class and the HTTP client give the same answers for
every operation of the table, on SQLite and PostgreSQL, and both have the Protocol's
signatures."""

from __future__ import annotations

import inspect
import math

import pandas as pd
import pytest
from tests.server.running import running_server

from opsloop.contract.operation import ACTOR
from opsloop.errors import ConflictError
from opsloop.registry import PermissionDenied, add_user
from opsloop.server import create_app
from opsloop.serving import (
    Deployment,
    Deployments,
    HttpDeployments,
    UnknownDeploymentError,
    Variant,
    read_feedback,
    record_feedback,
)
from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS, DeploymentService
from opsloop.serving.deployment_settings import MicroBatching
from opsloop.serving.prediction_events import (
    PredictionEvent,
    StoreEventSink,
    read_prediction_events,
)

FAR_FUTURE_MS = 2**62


def canary(weight: float) -> list[Variant]:
    return [
        Variant("stable", "credit", alias="champion", weight=1 - weight),
        Variant("canary", "credit", version=2, role="candidate", weight=weight),
    ]


def blue_green() -> list[Variant]:
    return [
        Variant("stable", "credit", alias="champion", weight=1.0),
        Variant("canary", "credit", version=2, role="candidate", weight=0.0),
    ]


def _plain(value):
    """A result as plain data, without what differs between two stores by construction:
    the times of changes, the hashes that cover them, the audit ids (the two sides
    interleave in one log); of an entry's origin only whether it is recorded (one side's
    changes come from this process, the other's over HTTP)."""
    if isinstance(value, pd.DataFrame):
        kept = value.drop(
            columns=["id", "time", "prev_hash", "hash", "updated_ms"], errors="ignore"
        )
        if "origin" in kept:
            kept["origin"] = [origin is not None for origin in kept["origin"]]
        rows = kept.to_dict("records")
        for row in rows:  # a rollback names the audit id of the entry it restores
            if isinstance(row.get("after"), dict):
                row["after"] = {k: v for k, v in row["after"].items() if k != "restores"}
        return {"columns": list(kept.columns), "rows": rows}
    if hasattr(value, "to_dict"):
        document = value.to_dict()
        document.pop("updated_ms", None)
        if isinstance(value, Deployment):
            document.pop("revision")  # an audit id
        return document
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


RULES = [
    {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"},
    {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"},
]

#: Each operation of the table, called as a user would, in an order that gives every call
#: something to find. A new operation without a case here fails the coverage test.
SCENARIO = [
    ("deploy", lambda d, n: d.deploy(n, canary(0.1), strategy="canary", reason="v2 try")),
    ("get", lambda d, n: d.get(n)),
    (
        "deploy",
        lambda d, n: d.deploy(
            n, canary(0.1), strategy="canary", expected_revision=d.get(n).revision
        ),
    ),
    ("protect", lambda d, n: d.protect(n, 0, reason="no approvals needed yet")),
    ("approve", lambda d, n: d.approve(n, canary(0.5), strategy="canary", comment="ok")),
    ("list", lambda d, n: d.list().query("name == @n").reset_index(drop=True)),
    ("lineage", lambda d, n: d.lineage(n)),
    ("lineage", lambda d, n: d.lineage(n, variant="canary")),
    ("at", lambda d, n: d.at(n, FAR_FUTURE_MS)),
    ("at", lambda d, n: d.at(n, 0)),
    ("settings", lambda d, n: d.settings(n)),
    ("configure", lambda d, n: d.configure(n, confidence_threshold=0.8, assertions=RULES)),
    ("settings", lambda d, n: d.settings(n)),
    (
        "configure",
        lambda d, n: d.configure(n, batching=MicroBatching(max_batch_size=16, max_wait_ms=2.5)),
    ),
    ("settings", lambda d, n: d.settings(n)),
    ("input_detector", lambda d, n: d.input_detector(n)),
    # Without a signature a version takes no detector; the action alone can be set.
    ("set_input_detector", lambda d, n: d.set_input_detector(n, None, action="review")),
    ("input_detector", lambda d, n: d.input_detector(n)),
    (
        "configure",
        lambda d, n: d.configure(
            n, outputs={"stable": {"decimals": 3}, "canary": {"label_only": True}}
        ),
    ),
    ("settings", lambda d, n: d.settings(n)),
    ("configure", lambda d, n: d.configure(n, routing_key_field="user_id")),
    ("settings", lambda d, n: d.settings(n)),
    (
        "set_rollout",
        lambda d, n: d.set_rollout(
            n, steps=[0.2, 0.6, 1.0], min_requests=50, gates={"errors": {"alpha": 0.01}}
        ),
    ),
    # A data plane on another host reads its answers into the ramp, at the ramp's first
    # share.
    (
        "observe_rollout",
        lambda d, n: d.observe_rollout(
            n,
            quiet=[{"share": 0.2, "requests": 3}],
            request={
                "candidate": True,
                "failed": True,
                "latency_ms": 4.5,
                "share": 0.2,
                "disagrees": None,
            },
        ),
    ),
    ("rollout", lambda d, n: d.rollout(n)),
    # A regression's metric gate: a loss, its effect in the loss's units.
    (
        "set_rollout",
        lambda d, n: d.set_rollout(
            n, steps=[0.2, 1.0], gates={"metric": {"loss": "absolute", "effect": 2.5}}
        ),
    ),
    ("rollout", lambda d, n: d.rollout(n)),
    ("deploy", lambda d, n: d.deploy(n, canary(0.3), strategy="canary", reason="wider")),
    ("rollback", lambda d, n: d.rollback(n, reason="back to 10%")),
    ("get", lambda d, n: d.get(n)),
    ("history", lambda d, n: d.history(n)),
    ("traffic", lambda d, n: d.traffic(n, since_ms=0, until_ms=4_000, buckets=2)),
    # One canary outcome: its deviation is nan, which must cross the wire as nan.
    ("ab_report", lambda d, n: d.ab_report(n)),
    ("ab_report", lambda d, n: d.ab_report(n, outcome="reward", alpha=0.1, power=0.9)),
    ("shadow_agreement", lambda d, n: d.shadow_agreement(n, since_ms=0, until_ms=4_000)),
    # Blue/green: stable takes all, then the standby canary does, then stable again.
    ("deploy", lambda d, n: d.deploy(n, blue_green(), strategy="blue_green", reason="bg")),
    ("switch", lambda d, n: d.switch(n, reason="canary goes live")),
    ("switch", lambda d, n: d.switch(n)),
    ("history", lambda d, n: d.history(n).tail(3).reset_index(drop=True)),
    ("history", lambda d, n: d.history(n, last=2, action="deploy")),
    ("list", lambda d, n: len(d.list(limit=1, offset=1)) + len(d.list(limit=1_000))),
    ("revision", lambda d, n: d.revision() > 0),
    # A data plane on another host records its answers, then their feedback, through these.
    ("record_events", lambda d, n: d.record_events([served(n, "late-1"), served(n, "late-2")])),
    ("feedback", lambda d, n: d.feedback(n, f"{n}-late-1", label=1, reward=1.0)),
    ("protect", lambda d, n: d.protect(n, 1, reason="guard it")),
    # The owner's approval of lowering it is recorded, and would not count toward a
    # lowering they apply.
    ("approve_protection", lambda d, n: d.approve_protection(n, 0, comment="sunset")),
    # Every pending approval still counts: none lapsed.
    ("lapsed_approvals", lambda d, n: d.lapsed_approvals(n)),
    ("retire", lambda d, n: d.retire(n, reason="done")),
]


def served(name: str, request: str) -> PredictionEvent:
    """An answer of ``name``'s stable variant, after the traffic's range."""
    return PredictionEvent(name, "stable", "primary", "credit", 1, f"{name}-{request}", None,
                           [{"x": 1}], {"predictions": [1]}, None, 2.5, 9_000)  # fmt: skip


def test_every_operation_has_a_parity_case():
    assert {method for method, _ in SCENARIO} == {
        operation.method for operation in DEPLOYMENT_OPERATIONS.operations
    }


def _renamed(value, name: str):
    """``value`` with the deployment's name replaced and times (``*_ms``) left out, also
    inside the audit log's ``before`` and ``after`` documents."""
    if isinstance(value, dict):
        return {key: _renamed(item, name) for key, item in value.items() if not key.endswith("_ms")}
    if isinstance(value, list):
        return [_renamed(item, name) for item in value]
    if isinstance(value, str):
        return value.replace(name, "NAME")
    if isinstance(value, float) and math.isnan(value):
        return "nan"  # nan equals nothing, itself included
    return value


def test_local_and_http_give_the_same_answers(registry, tracking):
    for number in (1, 2):
        run_id = tracking.create_run("credit")
        registry.register("credit", f"model {number}".encode(), flavor="onnx", run_id=run_id)
    registry.set_alias("credit", "champion", 1)
    # One admin acts on both sides: approving needs a registered user with the role.
    _, token = add_user(registry.db, "owner", "admin")
    local = Deployments(registry.db, actor="owner")
    # Answers recorded for both deployments, so that their traffic has something to count.
    StoreEventSink(registry.db).write(
        [
            PredictionEvent(name, variant, role, "credit", 1, f"{name}-{i}", None, [], None,
                            "boom" if role == "shadow" else None, 1.0 + i, 500 * i)
            for name in ("api-local", "api-http")
            for i, (variant, role) in enumerate(
                [("stable", "primary"), ("canary", "primary"), ("stable", "primary"),
                 ("canary", "shadow"), ("stable", "primary")])
        ]
    )  # fmt: skip
    # The canary's shadow copies of two of the stable's requests, and outcomes for the A/B
    # report: stable 2 of 3, canary 1 of 1.
    StoreEventSink(registry.db).write(
        [
            PredictionEvent(name, "canary", "shadow", "credit", 2, f"{name}-{i}", None, [],
                            {"predictions": [1]}, None, 2.0, 500 * i + 1)
            for name in ("api-local", "api-http")
            for i in (0, 2)
        ]
    )  # fmt: skip
    for name in ("api-local", "api-http"):
        for i, reward in ((0, 1.0), (1, 1.0), (2, 0.0), (4, 1.0)):
            record_feedback(registry.db, name, f"{name}-{i}", reward=reward, actor="owner")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpDeployments(url, token=token)
        for method, call in SCENARIO:
            mine, theirs = call(local, "api-local"), call(remote, "api-http")
            assert type(mine) is type(theirs), method
            assert _renamed(_plain(mine), "api-local") == _renamed(_plain(theirs), "api-http"), (
                method
            )
        remote.close()
    # What the data plane's calls left in the store, kept by the retire under the history name.
    for name in ("api-local", "api-http"):
        kept = f"{name}/retired-1"
        late = read_feedback(registry.db, kept).query("request_id.str.contains('late')")
        assert late[["request_id", "label", "reward", "created_by"]].values.tolist() == [
            [f"{name}-late-1", 1, 1.0, "owner"]
        ]
        assert (read_prediction_events(registry.db, kept)["at_ms"] == 9_000).sum() == 2
        assert read_prediction_events(registry.db, name).empty


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [
        (name, parameter.kind, parameter.default)
        for name, parameter in signature.parameters.items()
    ]


@pytest.mark.parametrize("implementation", [Deployments, HttpDeployments])
def test_implementations_have_the_protocols_signatures(implementation):
    for operation in DEPLOYMENT_OPERATIONS.operations:
        wanted = getattr(DeploymentService, operation.method)
        found = getattr(implementation, operation.method)
        assert _parameters(found) == _parameters(wanted), operation.method
        if ACTOR in inspect.signature(wanted).parameters:
            assert inspect.signature(found).parameters[ACTOR].default is None


def test_the_openapi_document_has_a_response_schema_for_every_deployment_route(registry):
    document = create_app(registry.db, registry.artifacts).openapi()
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/deployments"):
            continue
        for verb, operation in item.items():
            status, answer = next(iter(operation["responses"].items()))
            if status == "204":
                continue
            schema = answer["content"]["application/json"]["schema"]
            assert schema != {}, (verb, path)


def test_a_switch_and_a_switch_back_over_http_and_locally(registry):
    registry.register("credit", b"model 1", flavor="onnx")
    registry.register("credit", b"model 2", flavor="onnx")
    registry.set_alias("credit", "champion", 1)
    _, token = add_user(registry.db, "owner", "admin")
    local = Deployments(registry.db, actor="owner")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpDeployments(url, token=token)
        for side, name in ((local, "bg-local"), (remote, "bg-http")):
            side.deploy(name, blue_green(), strategy="blue_green")
            side.deploy(f"{name}-c", canary(0.2), strategy="canary")
            first = side.switch(name, reason="v2 goes live")
            assert [(v.name, v.weight) for v in first.variants] == [
                ("stable", 0.0),
                ("canary", 1.0),
            ]
            assert first.serving == {"stable": 1, "canary": 2}
            back = side.switch(name)
            assert [(v.name, v.weight) for v in back.variants] == [
                ("stable", 1.0),
                ("canary", 0.0),
            ]
            entries = side.history(name)
            assert entries["action"].tolist() == ["deploy", "deploy", "deploy"]
            assert entries["reason"].tolist()[1:] == [
                "v2 goes live",
                "switch blue/green: canary -> stable",
            ]
            assert [e.get("switched") for e in entries["after"]] == [
                None,
                {"from": "stable", "to": "canary"},
                {"from": "canary", "to": "stable"},
            ]
            assert entries["actor"].tolist() == ["owner"] * 3
            # A canary does not switch: a 409 naming the strategy, and nothing changes.
            with pytest.raises(ConflictError, match=r"^strategy: .*'canary'; only a 'blue_green'"):
                side.switch(f"{name}-c")
            assert len(side.history(f"{name}-c")) == 1
            with pytest.raises(UnknownDeploymentError):
                side.switch(f"{name}-none")
        remote.close()


def test_a_protected_switch_needs_approvals_of_the_swapped_definition(registry):
    registry.register("credit", b"model 1", flavor="onnx")
    registry.register("credit", b"model 2", flavor="onnx")
    registry.set_alias("credit", "champion", 1)
    add_user(registry.db, "owner", "admin")
    add_user(registry.db, "apo", "approver")
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy("bg", blue_green(), strategy="blue_green")
    deployments.protect("bg", 1)
    with pytest.raises(PermissionDenied, match="protected"):
        deployments.switch("bg")
    assert deployments.get("bg").variants[0].weight == 1.0
    swapped = [v.with_weight(1.0 - v.weight) for v in blue_green()]
    deployments.approve("bg", swapped, strategy="blue_green", actor="apo")
    switched = deployments.switch("bg")
    assert switched.variants[1].weight == 1.0
    assert deployments.history("bg")["after"].iloc[-1]["approved_by"] == ["apo"]
