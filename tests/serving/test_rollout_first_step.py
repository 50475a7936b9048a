"""Setting a canary's rollout moves its candidate to the ramp's first share in the same
transaction, as an audited deploy carrying the decision. When the control plane refuses that
move (here: a protected deployment without approvals of the first step's definition), the
whole ``set_rollout`` fails with the reason and nothing changes: no rollout (or the one set
before, as it was), no audit entry, the weights as they were. Locally and over HTTP, on
SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from tests.clock import FakeClock
from tests.server.running import running_server

from opsloop.errors import NotFoundError
from opsloop.registry import add_user, verify_audit_log
from opsloop.registry.users import PermissionDenied
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant


def _variants(share: float) -> list[Variant]:
    return [
        Variant("stable", "m", version=1, weight=1.0 - share),
        Variant("canary", "m", version=2, role="candidate", weight=share),
    ]


@pytest.fixture
def protected(registry):
    """``api``, protected by one approval, serving a canary at 10% approved by ana and
    deployed by ed; the users' tokens."""
    registry.db.clock = FakeClock()
    registry.register("m", b"stable bytes", flavor="onnx")
    registry.register("m", b"canary bytes", flavor="onnx")
    tokens = {
        name: add_user(registry.db, name, role)[1]
        for name, role in (("root", "admin"), ("ana", "approver"), ("ed", "editor"))
    }
    Deployments(registry.db, actor="root").protect("api", 1)
    Deployments(registry.db, actor="ana").approve("api", _variants(0.1), strategy="canary")
    Deployments(registry.db, actor="ed").deploy("api", _variants(0.1), strategy="canary")
    return registry, tokens


REFUSED = (
    "steps.0: the rollout is not set, since moving 'canary' to its first share (5%, from "
    "10%) was refused: deployment 'api' is protected: this definition needs 1 approval(s) "
    "from distinct approvers other than 'ed', who applies it (an applier's own approval does "
    "not count), has 0"
)


def _unchanged(editor: Deployments, entries: int) -> None:
    assert [v.weight for v in editor.get("api").variants] == [0.9, 0.1]
    assert len(editor.history("api")) == entries


def test_a_refused_first_step_refuses_the_rollout_and_changes_nothing(protected):
    registry, tokens = protected
    editor = Deployments(registry.db, actor="ed")
    entries = len(editor.history("api"))
    with pytest.raises(PermissionDenied) as raised:
        editor.set_rollout("api", steps=[0.05, 0.5, 1.0], min_requests=3)
    assert str(raised.value) == REFUSED
    with pytest.raises(NotFoundError):
        editor.rollout("api")
    _unchanged(editor, entries)
    # Over HTTP: a 403 with the same reason, and still nothing set.
    with (
        running_server(create_app(registry.db, registry.artifacts)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['ed']}"}) as client,
    ):
        response = client.put(
            "/api/v1/deployments/api/rollout", json={"steps": [0.05, 0.5, 1.0], "min_requests": 3}
        )
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == REFUSED
        assert client.get("/api/v1/deployments/api/rollout").status_code == 404
    _unchanged(editor, entries)

    # A rollout whose first share is the canary's own needs no deploy: it is set. A
    # refused one set after it leaves it as it was.
    kept = editor.set_rollout("api", steps=[0.1, 1.0], min_requests=7)
    entries = len(editor.history("api"))
    with pytest.raises(PermissionDenied, match=r"^steps\.0: the rollout is not set"):
        editor.set_rollout("api", steps=[0.05, 0.5, 1.0], min_requests=3)
    assert editor.rollout("api") == kept
    _unchanged(editor, entries)

    # Once the first step's definition is approved, the rollout is set and the step taken,
    # in one change: the entry of set_rollout, then the deploy carrying the decision.
    Deployments(registry.db, actor="ana").approve("api", _variants(0.05), strategy="canary")
    rollout = editor.set_rollout("api", steps=[0.05, 0.5, 1.0], min_requests=3)
    state = rollout["state"]
    assert (state["status"], state["step"], state["share"]) == ("ramping", 0, 0.05)
    assert state["decision"] is None
    assert [v.weight for v in editor.get("api").variants] == [0.95, 0.05]
    history = editor.history("api")
    assert history["action"].tolist()[-2:] == ["set_rollout", "deploy"]
    last = history.iloc[-1]
    assert last["actor"] == "ed"
    assert last["decision"] == {
        "rollout": "canary", "action": "step", "share": 0.05, "stable": "stable",
        "candidate": "canary", "evidence": {"step": 0},
    }  # fmt: skip
    assert last["after"]["approved_by"] == ["ana"]
    assert verify_audit_log(registry.db).ok
