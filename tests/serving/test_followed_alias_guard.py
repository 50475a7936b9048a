"""A protected deployment guards the alias it follows: moving an unprotected alias that a
protected deployment serves needs the deployment's approvals of that move, by people other
than the mover, and the refusal names the deployment and how to approve. And an approval of
a deployment's definition lapses with its approver's standing; lowering or removing a
deployment's protection needs approvals of it by people other than the admin. Locally and
over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from tests.server.running import running_server

from opsloop.errors import ConflictError
from opsloop.registry import HttpModelRegistry, ModelRegistry, add_user, verify_audit_log
from opsloop.registry.users import PermissionDenied, set_user_disabled, set_user_role
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant

USERS = {"root": "admin", "eda": "editor", "ana": "approver", "bo": "approver"}


@pytest.fixture(params=["local", "http"])
def acting(request, registry):
    """``acting(user)``: (registry, deployments) acting as that user, locally or through a
    real server with the user's token. ``credit`` has versions 1 and 2, ``champion`` at 1
    (unprotected); deployment ``api`` follows it and needs two approvals per change."""
    tokens = {name: add_user(registry.db, name, role)[1] for name, role in USERS.items()}
    root = ModelRegistry(registry.db, registry.artifacts, actor="root")
    for data in (b"\x08\x01", b"\x08\x02"):
        root.register("credit", data, flavor="onnx")
    root.set_alias("credit", "champion", 1)
    admin = Deployments(registry.db, actor="root")
    admin.deploy("api", [Variant("stable", "credit", alias="champion")])
    admin.protect("api", 2)
    if request.param == "local":
        yield lambda user: (
            ModelRegistry(registry.db, registry.artifacts, actor=user),
            Deployments(registry.db, actor=user),
        )
        return
    clients: list = []
    with running_server(create_app(registry.db, registry.artifacts)) as url:

        def open_as(user: str):
            pair = (
                HttpModelRegistry(url, token=tokens[user]),
                HttpDeployments(url, token=tokens[user]),
            )
            clients.extend(pair)
            return pair

        yield open_as
        for client in clients:
            client.close()


def _lower_protection(db, required: int) -> None:
    """Lower deployment ``api``'s protection to ``required``, approved by ana and bo."""
    for approver in ("ana", "bo"):
        Deployments(db, actor=approver).approve_protection("api", required)
    Deployments(db, actor="root").protect("api", required)


def test_moving_an_alias_a_protected_deployment_follows_needs_its_approvals(acting, registry):
    (eda, deployments), (ana, _), (bo, _) = acting("eda"), acting("ana"), acting("bo")
    with pytest.raises(PermissionDenied) as refused:
        eda.set_alias("credit", "champion", 2, reason="unreviewed")
    assert str(refused.value).endswith(
        "alias 'champion' of model 'credit' is guarded by deployment 'api': moving it to "
        "version 2 needs 2 approval(s) from distinct approvers other than 'eda', who moves it "
        "(an applier's own approval does not count), has 0 (a protected deployment follows "
        "it; its approvers approve the move: opsloop models approve credit champion 2)"
    )
    assert deployments.get("api").serving == {"stable": 1}
    # Approvals of the move, as for a protected alias; the mover's own never counts.
    assert ana.approve("credit", "champion", 2) == 1
    assert bo.approve("credit", "champion", 2) == 2
    # What is waiting shows the deployment's requirement, as the version page does.
    pending = eda.pending_approvals("credit")
    assert pending[["approver", "approvals", "required"]].values.tolist() == [
        ["ana", 2, 2],
        ["bo", 2, 2],
    ]
    with pytest.raises(PermissionDenied, match=r"has 1 \(bo\); 'ana' approved it too"):
        ana.set_alias("credit", "champion", 2)
    eda.set_alias("credit", "champion", 2, reason="approved")
    assert deployments.get("api").serving == {"stable": 2}
    last = eda.audit("credit").iloc[-1]
    assert (last["action"], last["actor"], last["after"]) == (
        "set_alias",
        "eda",
        {"version": 2, "approved_by": ["ana", "bo"], "protected_deployments": ["api"]},
    )
    # Once the deployment stops being protected the alias moves freely again.
    _lower_protection(registry.db, 0)
    eda.set_alias("credit", "champion", 1)
    assert deployments.get("api").serving == {"stable": 1}
    assert verify_audit_log(registry.db).ok


def test_a_protected_alias_asks_the_larger_of_the_two_counts(acting, registry):
    (eda, _), (ana, _) = acting("eda"), acting("ana")
    ModelRegistry(registry.db, registry.artifacts, actor="root").protect_alias(
        "credit", "champion", 1
    )
    ana.approve("credit", "champion", 2)
    with pytest.raises(PermissionDenied, match=r"is guarded by deployment 'api'.*has 1 \(ana\)"):
        eda.set_alias("credit", "champion", 2)
    _lower_protection(registry.db, 1)
    eda.set_alias("credit", "champion", 2)
    assert eda.audit("credit").iloc[-1]["after"]["approved_by"] == ["ana"]


@pytest.mark.parametrize("lapse", ["disabled", "demoted"])
def test_a_deployment_approval_lapses_with_its_approvers_standing(acting, registry, lapse):
    (_, eda), (_, ana), (_, bo) = acting("eda"), acting("ana"), acting("bo")
    pinned = [Variant("stable", "credit", version=2)]
    ana.approve("api", pinned)
    assert bo.approve("api", pinned) == 2
    if lapse == "disabled":
        set_user_disabled(registry.db, "bo", actor="root")
        why = "user bo is disabled"
    else:
        set_user_role(registry.db, "bo", "viewer", actor="root")
        why = "user bo has role 'viewer' now, which cannot approve"
    with pytest.raises(PermissionDenied) as refused:
        eda.deploy("api", pinned)
    assert str(refused.value).endswith(
        "deployment 'api' is protected: this definition needs 2 approval(s) from distinct "
        "approvers other than 'eda', who applies it (an applier's own approval does not "
        f"count), has 1 (ana); the approval of 'bo' no longer counts: {why}"
    )
    assert eda.lapsed_approvals("api").definitions == {"bo": why}
    assert eda.lapsed_approvals("api").protection == ()
    assert eda.get("api").serving == {"stable": 1}


def test_removing_a_deployments_protection_needs_approvals_of_others(acting, registry):
    (_, root), (_, ana), (_, bo), (eda_registry, eda) = (
        acting(user) for user in ("root", "ana", "bo", "eda")
    )
    with pytest.raises(PermissionDenied) as refused:
        root.protect("api", 0, reason="alone")
    assert str(refused.value).endswith(
        "deployment 'api' is protected by 2 approval(s): lowering it to no protection needs 2 "
        "approval(s) from distinct approvers other than 'root', who applies it (an applier's "
        "own approval does not count), has 0 (to approve: opsloop deployments "
        "approve-protection api 0)"
    )
    assert root.approve_protection("api", 0) == 1
    assert ana.approve_protection("api", 0, comment="sunset") == 2
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\); 'root' approved it too"):
        root.protect("api", 0)
    # While protected, the alias it follows still needs the deployment's approvals.
    with pytest.raises(PermissionDenied, match="guarded by deployment 'api'"):
        eda_registry.set_alias("credit", "champion", 2)
    bo.approve_protection("api", 0)
    root.protect("api", 0)
    last = root.history("api").iloc[-1]
    assert (last["action"], last["actor"], last["after"]) == (
        "protect",
        "root",
        {"required_approvals": 0, "require_gate": False, "approved_by": ["ana", "bo"]},
    )
    eda_registry.set_alias("credit", "champion", 2)
    assert eda.get("api").serving == {"stable": 2}
    # Protecting again needs nothing; approving a change that tightens it is refused.
    root.protect("api", 1)
    with pytest.raises(ConflictError, match="nothing to approve"):
        ana.approve_protection("api", 2)
    assert verify_audit_log(registry.db).ok


@pytest.mark.parametrize(("approvals", "gate"), [(0, True), (1, "smoke")])
def test_a_followers_release_gate_guards_the_alias_move(acting, registry, approvals, gate):
    """A protected deployment's release gate holds for the version an alias move would have
    it serve, as for a definition pinning that version there: by a gate alone, or besides
    approvals (which the move has here)."""
    (root_registry, root), (eda, deployments), (ana, _), (bo, _) = (
        acting(user) for user in ("root", "eda", "ana", "bo")
    )
    root.deploy("gated", [Variant("stable", "credit", alias="champion")])
    root.protect("gated", approvals, require_gate=gate)
    needs = "a passed release gate" if gate is True else "a passed release gate 'smoke'"
    lacks = "no gate verdict" if gate is True else "no gate verdict of 'smoke'"
    missing = f"needs {needs} against version 1; version 2 has {lacks} against version 1 recorded"
    with pytest.raises(PermissionDenied) as pinned:
        root.deploy("gated", [Variant("stable", "credit", version=2)])
    assert str(pinned.value).endswith(missing)
    ana.approve("credit", "champion", 2)
    bo.approve("credit", "champion", 2)
    with pytest.raises(PermissionDenied) as refused:
        eda.set_alias("credit", "champion", 2)
    assert str(refused.value).endswith(
        "alias 'champion' of model 'credit' is guarded by deployment 'gated', which requires "
        "a release gate: its variant 'stable' follows the alias, so moving it to version 2 "
        f"needs what deploying version 2 there needs, and version 2 {missing}"
    )
    assert deployments.get("gated").serving == {"stable": 1}
    assert deployments.get("api").serving == {"stable": 1}
    verdict = {
        "gate": "smoke",
        "gate_sha256": "a" * 64,
        "data_sha256": "d" * 64,
        "baseline": {"model": "credit", "version": 1},
        "failed": [],
    }
    root_registry.record_gate("credit", 2, passed=True, gate=verdict)
    eda.set_alias("credit", "champion", 2)
    assert deployments.get("gated").serving == {"stable": 2}
    assert eda.audit("credit").iloc[-1]["after"] == {
        "version": 2,
        "protected_deployments": ["api", "gated"],
        "approved_by": ["ana", "bo"],
    }
    assert verify_audit_log(registry.db).ok


def test_a_deployments_protection_approval_lapses_when_it_changes(acting, registry):
    """Approved against two approvals, lowering deployment ``api`` to none does not pass
    once it is tightened to two approvals and a gate, nor after it returns to two."""
    (_, root), (_, ana), (_, bo) = (acting(user) for user in ("root", "ana", "bo"))
    ana.approve_protection("api", 0)
    assert bo.approve_protection("api", 0) == 2
    root.protect("api", 2, require_gate=True)
    with pytest.raises(PermissionDenied) as refused:
        root.protect("api", 0)
    assert str(refused.value).endswith(
        "deployment 'api' is protected by 2 approval(s) and any release gate: lowering it to "
        "no protection needs 2 approval(s) from distinct approvers other than 'root', who "
        "applies it (an applier's own approval does not count), has 0 (to approve: opsloop "
        "deployments approve-protection api 0)"
    )
    ana.approve_protection("api", 2)
    bo.approve_protection("api", 2)
    root.protect("api", 2)
    with pytest.raises(PermissionDenied, match=r"has 0 \("):
        root.protect("api", 0)
    assert ana.approve_protection("api", 0) == 1
    entries = root.history("api")
    assert entries[entries["action"] == "protect"].iloc[-1]["after"] == {
        "required_approvals": 2,
        "require_gate": False,
        "approved_by": ["ana", "bo"],
    }
