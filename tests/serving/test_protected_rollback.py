"""Rollback on a protected deployment: back to the definition its approvals covered, with
no new approvals and audited as such; every other change still needs approvals. Locally,
and over HTTP (the control plane's rollback, and a data plane serving the canary)."""

from __future__ import annotations

import httpx
import pytest
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.served_models import Constant

from opsloop.errors import ConflictError
from opsloop.registry import add_user, verify_audit_log
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.registry.users import PermissionDenied
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, HttpDeployments, ServingRuntime, Variant

RECORD = {"x": 1.0}
CHAMPION = [Variant("stable", "stable-model", version=1)]
CANARY = [
    Variant("stable", "stable-model", version=1, weight=0.9),
    Variant("canary", "canary-model", version=1, role="candidate", weight=0.1),
]
GATES = {"disagreement": {"max_rate": 0.02}}


@pytest.fixture
def protected(registry):
    """A deployment protected by one approval: the champion alone, then a canary of a
    candidate that always disagrees, each approved by ana and deployed by ed."""
    registry.db.clock = FakeClock()
    registry.register("stable-model", Constant(0))
    registry.register("canary-model", Constant(1))
    tokens = {
        name: add_user(registry.db, name, role)[1]
        for name, role in (("root", "admin"), ("ana", "approver"), ("ed", "editor"))
    }
    Deployments(registry.db, actor="root").protect("api", 1)
    approver, editor = Deployments(registry.db, actor="ana"), Deployments(registry.db, actor="ed")
    approver.approve("api", CHAMPION)
    editor.deploy("api", CHAMPION)
    champion_entry = int(editor.history("api").iloc[-1]["id"])
    approver.approve("api", CANARY, strategy="canary")
    editor.deploy("api", CANARY, strategy="canary")
    editor.set_rollout("api", steps=[0.1, 1.0], min_requests=100_000, gates=GATES)
    return registry, editor, champion_entry, tokens


def _rolled_back_to_the_champion(deployments, champion_entry: int) -> None:
    definition = deployments.get("api")
    assert (definition.strategy, definition.variants) == ("single", tuple(CHAMPION))
    last = deployments.history("api").iloc[-1]
    assert (last["action"], last["actor"]) == ("rollback", "ed")
    assert last["after"]["restores"] == champion_entry
    assert last["after"]["approved_by"] == ["ana"]
    assert last["after"]["approvals_reused"] is True
    assert "gate 'disagreement' failed" in last["reason"]
    assert deployments.rollout("api")["state"]["status"] == "rolled_back"


def test_a_failing_canary_on_a_protected_deployment_goes_back_under_its_approvals(protected):
    registry, editor, champion_entry, _ = protected
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        for i in range(5_000):
            runtime.predict("api", [RECORD], routing_key=f"user-{i}")
            if editor.get("api").strategy != "canary":
                break
    finally:
        runtime.close()
    _rolled_back_to_the_champion(editor, champion_entry)
    # Any other change still needs approvals: the canary again, or another rollback.
    with pytest.raises(PermissionDenied, match="needs 1 approval"):
        editor.deploy("api", CANARY, strategy="canary")
    with pytest.raises(ConflictError, match="is a rollback already"):
        editor.rollback("api")
    verification = verify_audit_log(editor.db)
    assert verification.ok and verification.state_problems == ()


def test_a_data_plane_over_http_rolls_a_protected_canary_back(protected):
    registry, editor, champion_entry, tokens = protected
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    with (
        running_server(app, health_path="/v2/health/live") as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens['ed']}"}, timeout=30
        ) as client,
    ):
        for i in range(5_000):
            answer = client.post(
                "/v1/deployments/api/predict", json=[RECORD], headers={"X-Routing-Key": f"u{i}"}
            )
            assert answer.status_code == 200, answer.text
            if editor.get("api").strategy != "canary":
                break
        assert client.post("/v1/deployments/api/predict", json=[RECORD]).json()["variant"] == (
            "stable"
        )
    app.state.runtime.close()
    _rolled_back_to_the_champion(editor, champion_entry)


def test_the_control_plane_rolls_back_under_covered_approvals_only(protected):
    registry, editor, champion_entry, tokens = protected
    root = Deployments(registry.db, actor="root")
    # "web" was deployed before its protection: no approvals ever covered its champion.
    editor.deploy("web", CHAMPION)
    editor.deploy("web", CANARY, strategy="canary")
    root.protect("web", 1)
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token=tokens["ed"])
        try:
            with pytest.raises(PermissionDenied, match=r"'web' is protected: .*needs 1 approval"):
                client.rollback("web", reason="no approvals covered the champion")
            assert client.get("web").strategy == "canary"
            restored = client.rollback("api", away_from="canary", reason="by hand")
            assert (restored.strategy, restored.variants) == ("single", tuple(CHAMPION))
            last = client.history("api").iloc[-1]
            assert last["action"] == "rollback"
            assert last["after"]["restores"] == champion_entry
            assert last["after"]["approvals_reused"] is True
            with pytest.raises(ConflictError, match="is a rollback already"):
                client.rollback("api")
            with pytest.raises(PermissionDenied):
                client.deploy("api", CANARY, strategy="canary")
        finally:
            client.close()


def test_an_approver_of_the_definition_may_roll_back_to_it(protected):
    registry, editor, champion_entry, _ = protected
    # ana approved the champion that ed deployed: rolling back to it herself restores what
    # one person approved and another applied, so her approval covers it; only ed's own
    # approval of it (had he given one) would not.
    ana = Deployments(registry.db, actor="ana")
    restored = ana.rollback("api", away_from="canary", reason="by hand")
    assert (restored.strategy, restored.variants) == ("single", tuple(CHAMPION))
    last = editor.history("api").iloc[-1]
    assert (last["action"], last["actor"]) == ("rollback", "ana")
    assert last["after"]["restores"] == champion_entry
    assert (last["after"]["approved_by"], last["after"]["approvals_reused"]) == (["ana"], True)


def test_a_failing_canary_goes_back_when_its_ramps_setter_approved_the_champion(protected):
    registry, editor, champion_entry, _ = protected
    # The ramp rolls back as the user who set it: ana, who approved the champion.
    Deployments(registry.db, actor="ana").set_rollout(
        "api", steps=[0.1, 1.0], min_requests=100_000, gates=GATES
    )
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        for i in range(5_000):
            runtime.predict("api", [RECORD], routing_key=f"user-{i}")
            if editor.get("api").strategy != "canary":
                break
    finally:
        runtime.close()
    definition = editor.get("api")
    assert (definition.strategy, definition.variants) == ("single", tuple(CHAMPION))
    last = editor.history("api").iloc[-1]
    assert (last["action"], last["actor"]) == ("rollback", "ana")
    assert last["after"]["restores"] == champion_entry
    assert (last["after"]["approved_by"], last["after"]["approvals_reused"]) == (["ana"], True)
    assert editor.rollout("api")["state"]["status"] == "rolled_back"


def test_a_deployers_own_approval_covers_nothing_through_a_chain_of_rollbacks(protected):
    registry, editor, _, _ = protected
    ana, root = Deployments(registry.db, actor="ana"), Deployments(registry.db, actor="root")
    add_user(registry.db, "cy", "editor")
    root.protect("old", 1)
    ana.approve("old", CHAMPION)
    editor.deploy("old", CHAMPION)
    document = dict(editor.history("old").iloc[-1]["after"])
    # Entries as the rule before four eyes wrote them: ed deployed the champion with only
    # his own approval, then cy rolled back to it reusing that approval.
    with registry.db.write() as connection:
        lock_audit_log(connection)
        append_audit(
            connection,
            "ed",
            "deploy",
            "deployment:old",
            None,
            None,
            {**document, "approved_by": ["ed"]},
        )
    deployed = int(editor.history("old").iloc[-1]["id"])
    with registry.db.write() as connection:
        lock_audit_log(connection)
        append_audit(
            connection,
            "cy",
            "rollback",
            "deployment:old",
            None,
            None,
            {**document, "approved_by": ["ed"], "approvals_reused": True, "restores": deployed},
        )
    rolled_back = int(editor.history("old").iloc[-1]["id"])
    ana.approve("old", CANARY, strategy="canary")
    editor.deploy("old", CANARY, strategy="canary")
    # Restoring cy's rollback, the approval it reused is ed's own (he applied what it
    # restores): it covers nothing, for root as for anyone.
    with pytest.raises(PermissionDenied, match=r"other than 'root', who applies it .*has 0$"):
        root.rollback("old")
    ana.approve("old", CHAMPION)
    assert root.rollback("old").variants == tuple(CHAMPION)
    last = editor.history("old").iloc[-1]
    assert (last["after"]["restores"], last["after"]["approved_by"]) == (rolled_back, ["ana"])
    assert last["after"]["approvals_reused"] is False


def test_an_older_entry_that_counted_its_deployers_own_approval_covers_nothing(protected):
    registry, editor, _, _ = protected
    ana, root = Deployments(registry.db, actor="ana"), Deployments(registry.db, actor="root")
    root.protect("old", 1)
    ana.approve("old", CHAMPION)
    editor.deploy("old", CHAMPION)
    # An entry as the rule before four eyes wrote it: ed deployed the champion with only
    # his own approval (the definition in place is the same, so the state stays coherent).
    document = {**editor.history("old").iloc[-1]["after"], "approved_by": ["ed"]}
    previous = {k: v for k, v in document.items() if k != "approved_by"}
    with registry.db.write() as connection:
        lock_audit_log(connection)
        append_audit(connection, "ed", "deploy", "deployment:old", None, previous, document)
    older = int(editor.history("old").iloc[-1]["id"])
    ana.approve("old", CANARY, strategy="canary")
    editor.deploy("old", CANARY, strategy="canary")
    # Rolling back to it, ed's approval counts neither for root nor as its deployer's.
    with pytest.raises(PermissionDenied, match=r"other than 'root', who applies it .*has 0$"):
        root.rollback("old")
    ana.approve("old", CHAMPION)
    restored = root.rollback("old")
    assert restored.variants == tuple(CHAMPION)
    last = editor.history("old").iloc[-1]
    assert (last["after"]["restores"], last["after"]["approved_by"]) == (older, ["ana"])
    assert last["after"]["approvals_reused"] is False
