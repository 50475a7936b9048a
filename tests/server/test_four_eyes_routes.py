"""Four eyes over REST, against a real server on loopback, on SQLite and PostgreSQL: a
protected alias move and a protected deployment change count only the approvals of people
other than the one who applies them; the refusal is a 403 naming the applier; applying what
is in place already is a 200/204 that changes nothing."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from tests.server.running import running_server

from opsloop.registry import ModelRegistry, add_user, verify_audit_log
from opsloop.registry.users import set_user_disabled, set_user_role
from opsloop.server import create_app
from opsloop.serving import Deployments, LapsedApprovals
from opsloop.store import tables

API = "/api/v1"
VARIANTS = [{"name": "stable", "model": "credit", "version": 2}]


@pytest.fixture
def served(database, artifacts):
    """A server with users root (admin), ana and bo (approvers) and eda (editor), and
    versions 1 and 2 of ``credit``, its champion alias at 1 and deployment ``api`` serving
    version 1, both protected by two approvals; yields a client factory by user."""
    users = {"root": "admin", "ana": "approver", "bo": "approver", "eda": "editor"}
    tokens = {name: add_user(database, name, role)[1] for name, role in users.items()}
    root = ModelRegistry(database, artifacts, actor="root")
    for data in (b"\x08\x01", b"\x08\x02"):
        root.register("credit", data, flavor="onnx")
    root.set_alias("credit", "champion", 1)
    with running_server(create_app(database, artifacts, allow_embedded=False)) as url:
        clients: list[httpx.Client] = []

        def as_user(name: str) -> httpx.Client:
            clients.append(
                httpx.Client(
                    base_url=f"{url}{API}",
                    headers={"Authorization": f"Bearer {tokens[name]}"},
                    timeout=30,
                )
            )
            return clients[-1]

        admin = as_user("root")
        deployed = admin.put("/deployments/api", json={"variants": [{**VARIANTS[0], "version": 1}]})
        assert deployed.status_code == 200, deployed.text
        protection = {"required_approvals": 2}
        assert admin.put("/deployments/api/protection", json=protection).status_code == 204
        assert (
            admin.put("/models/credit/aliases/champion/protection", json=protection).status_code
            == 204
        )
        yield as_user
        for client in clients:
            client.close()


def _refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert (body["code"], body["error"]) == ("denied", "PermissionDenied")
    return body["detail"]


def test_a_protected_alias_moves_only_with_approvals_of_others(served, database):
    ana, bo, eda = served("ana"), served("bo"), served("eda")
    for approver in (ana, bo):
        approved = approver.post("/models/credit/aliases/champion/approvals", json={"version": 2})
        assert approved.status_code == 201, approved.text
    move = {"version": 2, "reason": "better"}
    assert _refusal(ana.put("/models/credit/aliases/champion", json=move)) == (
        "alias 'champion' of model 'credit' is protected: moving it to version 2 needs 2 "
        "approval(s) from distinct approvers other than 'ana', who moves it (an applier's own "
        "approval does not count), has 1 (bo); 'ana' approved it too"
    )
    # The refusal used up nothing: an editor moves it with both approvals.
    assert eda.put("/models/credit/aliases/champion", json=move).status_code == 204
    entries = eda.get("/audit", params={"model": "credit"}).json()["entries"]
    last = entries[-1]
    assert (last["actor"], last["action"], last["after"]) == (
        "eda",
        "set_alias",
        {"version": 2, "approved_by": ["ana", "bo"]},
    )
    # Pointing it where it points: no approvals, no entry.
    assert eda.put("/models/credit/aliases/champion", json=move).status_code == 204
    again = eda.get("/audit", params={"model": "credit"}).json()["entries"]
    assert again[-1]["id"] == last["id"]
    assert verify_audit_log(database).ok


def test_a_protected_deployment_changes_only_with_approvals_of_others(served, database):
    root, ana, bo, eda = served("root"), served("ana"), served("bo"), served("eda")
    for approver in (root, ana):
        approved = approver.post("/deployments/api/approvals", json={"variants": VARIANTS})
        assert approved.status_code == 200, approved.text
    assert approved.json() == {"approvals": 2}
    change = {"variants": VARIANTS, "reason": "version 2"}
    assert _refusal(root.put("/deployments/api", json=change)) == (
        "deployment 'api' is protected: this definition needs 2 approval(s) from distinct "
        "approvers other than 'root', who applies it (an applier's own approval does not "
        "count), has 1 (ana); 'root' approved it too"
    )
    assert bo.post("/deployments/api/approvals", json={"variants": VARIANTS}).json() == {
        "approvals": 3
    }
    made = root.put("/deployments/api", json=change)
    assert made.status_code == 200, made.text
    assert made.json()["serving"] == {"stable": 2}
    last = eda.get("/deployments/api/history").json()["entries"][-1]
    assert (last["actor"], last["action"], last["after"]["approved_by"]) == (
        "root",
        "deploy",
        ["ana", "bo"],
    )
    # Deploying it again changes nothing: no approvals, the same revision, no entry.
    again = eda.put("/deployments/api", json=change)
    assert again.status_code == 200, again.text
    assert again.json()["revision"] == made.json()["revision"] == last["id"]
    assert eda.get("/deployments/api/history").json()["entries"][-1]["id"] == last["id"]
    # Every approval of it was used up, root's own too: going back and forth needs new ones.
    back = {"variants": [{**VARIANTS[0], "version": 1}]}
    for approver in (ana, bo):
        approver.post("/deployments/api/approvals", json=back)
    assert eda.put("/deployments/api", json=back).status_code == 200
    assert _refusal(eda.put("/deployments/api", json=change)).endswith("has 0")
    assert verify_audit_log(database).ok


def test_lowering_a_protection_over_rest_needs_approvals_of_others(served, database):
    root, ana, bo, eda = served("root"), served("ana"), served("bo"), served("eda")
    alias = "/models/credit/aliases/champion/protection"
    for path, hint in (
        (alias, "opsloop models approve-protection credit champion --approvals 0"),
        ("/deployments/api/protection", "opsloop deployments approve-protection api 0"),
    ):
        assert _refusal(root.put(path, json={"required_approvals": 0})).endswith(
            "is protected by 2 approval(s): lowering it to no protection needs 2 approval(s) "
            "from distinct approvers other than 'root', who applies it (an applier's own "
            f"approval does not count), has 0 (to approve: {hint})"
        )
        # A client's mistake is a 422 naming the field.
        bad = ana.post(f"{path}/approvals", json={"required_approvals": -1})
        assert bad.status_code == 422, bad.text
        assert "required_approvals" in bad.text
        assert eda.post(f"{path}/approvals", json={"required_approvals": 0}).status_code == 403
        tighter = ana.post(f"{path}/approvals", json={"required_approvals": 3})
        assert tighter.status_code == 409, tighter.text
        for count, approver in enumerate((ana, bo), start=1):
            approved = approver.post(f"{path}/approvals", json={"required_approvals": 0})
            assert approved.status_code in (200, 201), approved.text
            assert approved.json() == {"approvals": count}
        assert root.put(path, json={"required_approvals": 0}).status_code == 204
    entries = eda.get("/audit", params={"model": "credit"}).json()["entries"]
    history = eda.get("/deployments/api/history").json()["entries"]
    for last, action in ((entries[-1], "protect_alias"), (history[-1], "protect")):
        assert (last["actor"], last["action"], last["after"]) == (
            "root",
            action,
            {"required_approvals": 0, "require_gate": False, "approved_by": ["ana", "bo"]},
        )
    assert verify_audit_log(database).ok


def test_approving_the_protection_of_an_unknown_deployment_is_a_404(served):
    ana = served("ana")
    answer = ana.post("/deployments/nope/protection/approvals", json={"required_approvals": 0})
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == "no deployment named 'nope'"
    lapsed = ana.get("/deployments/api/approvals/lapsed")
    assert (lapsed.status_code, lapsed.json()) == (200, {"lapsed": {}, "protection": []})


def test_lapsed_approvals_name_pending_protection_approvals_apart(served, database):
    """Approvals of lowering the protection whose approvers were disabled or demoted since
    are listed beside the definition approvals, with what they approve; ``lapsed`` keeps
    its meaning (definition approvals only)."""
    ana, bo, root = served("ana"), served("bo"), served("root")
    for client, path, body in (
        (ana, "protection/approvals", {"required_approvals": 0, "comment": "sunset"}),
        (bo, "protection/approvals", {"required_approvals": 1}),
        (bo, "approvals", {"variants": VARIANTS}),
    ):
        approved = client.post(f"/deployments/api/{path}", json=body)
        assert approved.status_code in (200, 201), approved.text
    lapsed = root.get("/deployments/api/approvals/lapsed")
    assert (lapsed.status_code, lapsed.json()) == (200, {"lapsed": {}, "protection": []})
    set_user_disabled(database, "ana", actor="root")
    set_user_role(database, "bo", "editor", actor="root")
    demoted = "user bo has role 'editor' now, which cannot approve"
    with database.read() as connection:
        given = dict(
            connection.execute(
                sa.select(
                    tables.protection_approvals.c.approver,
                    tables.protection_approvals.c.created_ms,
                )
            ).all()
        )
    lapsed = root.get("/deployments/api/approvals/lapsed")
    assert lapsed.status_code == 200, lapsed.text
    assert lapsed.json() == {
        "lapsed": {"bo": demoted},
        "protection": [
            {
                "approver": "ana",
                "why": "user ana is disabled",
                "required_approvals": 0,
                "require_gate": False,
                "created_ms": given["ana"],
                "comment": "sunset",
            },
            {
                "approver": "bo",
                "why": demoted,
                "required_approvals": 1,
                "require_gate": False,
                "created_ms": given["bo"],
                "comment": None,
            },
        ],
    }
    local = Deployments(database).lapsed_approvals("api")
    assert local.to_dict() == lapsed.json()
    assert LapsedApprovals.from_dict(lapsed.json()) == local
    # A server older than the protection approvals answered only ``lapsed``.
    assert LapsedApprovals.from_dict({"lapsed": {"bo": demoted}}).protection == ()
    # The admin's lowering does not count them: it is refused, naming ana's as lapsed.
    refused = root.put("/deployments/api/protection", json={"required_approvals": 0})
    assert "the approval of 'ana' no longer counts: user ana is disabled" in _refusal(refused)
