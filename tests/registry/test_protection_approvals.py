"""Lowering or removing an alias's protection is itself protected: it needs approvals of
exactly that protection by people other than the admin who applies it, as many as the
protection asks for (at least one), and its entry names them; setting or tightening one
needs none. Locally and over HTTP (``acting``), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from opsloop.errors import ConflictError, InvalidArgumentError
from opsloop.registry import PermissionDenied, verify_audit_log
from opsloop.registry.users import set_user_disabled


@pytest.fixture
def protected(registry):
    """Versions 1 and 2 of ``m``, champion at 1, protected by two approvals."""
    for data in (b"\x08\x01", b"\x08\x02"):
        registry.register("m", data, flavor="onnx")
    registry.set_alias("m", "champion", 1)
    registry.protect_alias("m", "champion", 2)
    return registry


def _last(client) -> dict:
    entry = client.audit("m").iloc[-1]
    return {"action": entry["action"], "actor": entry["actor"], "after": entry["after"]}


def test_removing_a_protection_needs_approvals_of_others(acting, protected):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    with pytest.raises(PermissionDenied) as refused:
        owner.protect_alias("m", "champion", 0, reason="alone")
    assert str(refused.value).endswith(
        "alias 'champion' of model 'm' is protected by 2 approval(s): lowering it to no "
        "protection needs 2 approval(s) from distinct approvers other than 'owner', who "
        "applies it (an applier's own approval does not count), has 0 (to approve: "
        "opsloop models approve-protection m champion --approvals 0)"
    )
    # The admin's own approval is recorded, never counted.
    assert owner.approve_protection("m", "champion", 0, comment="retiring it") == 1
    assert ana.approve_protection("m", "champion", 0) == 2
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\); 'owner' approved it too"):
        owner.protect_alias("m", "champion", 0)
    # An approval names the protection asked for: lowering to one is another change.
    assert bo.approve_protection("m", "champion", 1) == 1
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        owner.protect_alias("m", "champion", 0)
    with pytest.raises(PermissionDenied, match=r"to 1 approval\(s\) needs 2 .* has 1 \(bo\)"):
        owner.protect_alias("m", "champion", 1)
    assert editor.get_version("m", alias="champion").version == 1
    bo.approve_protection("m", "champion", 0)
    owner.protect_alias("m", "champion", 0, reason="approved")
    assert _last(owner) == {
        "action": "protect_alias",
        "actor": "owner",
        "after": {"required_approvals": 0, "require_gate": False, "approved_by": ["ana", "bo"]},
    }
    # Unprotected, the alias moves with no approvals.
    editor.set_alias("m", "champion", 2)
    # Setting a protection again needs no approval, nor does tightening it.
    owner.protect_alias("m", "champion", 1)
    owner.protect_alias("m", "champion", 1, require_gate="credit")
    assert _last(owner)["after"] == {"required_approvals": 1, "require_gate": "credit"}
    assert verify_audit_log(protected.db).ok


def test_what_loosens_a_protection_and_who_may_approve_it(acting, protected):
    owner, ana, bo, viewer = (acting(user) for user in ("owner", "ana", "bo", "vic"))
    # Only a change that lowers the protection has anything to approve.
    with pytest.raises(ConflictError) as refused:
        ana.approve_protection("m", "champion", 3)
    assert str(refused.value).endswith(
        "alias 'champion' of model 'm' has 2 approval(s); 3 approval(s) does not lower it, and "
        "only lowering or removing a protection needs approval: nothing to approve"
    )
    with pytest.raises(PermissionDenied, match="user 'vic' has role 'viewer'; this needs"):
        viewer.approve_protection("m", "champion", 0)
    with pytest.raises(InvalidArgumentError, match="required_approvals"):
        ana.approve_protection("m", "champion", -1)
    # A protection by a gate alone: dropping the gate, or taking any gate for the named
    # one, needs one other person.
    # Two approvals for a gate in place of them: fewer approvals, so approved first.
    ana.approve_protection("m", "champion", 0, require_gate="credit")
    bo.approve_protection("m", "champion", 0, require_gate="credit")
    owner.protect_alias("m", "champion", 0, require_gate="credit")
    assert _last(owner)["after"] == {
        "required_approvals": 0,
        "require_gate": "credit",
        "approved_by": ["ana", "bo"],
    }
    with pytest.raises(
        PermissionDenied,
        match=r"by 0 approval\(s\) and the release gate 'credit': lowering it to 0 ",
    ):
        owner.protect_alias("m", "champion", 0, require_gate=True)
    ana.approve_protection("m", "champion", 0, require_gate=True)
    owner.protect_alias("m", "champion", 0, require_gate=True)
    assert _last(owner)["after"]["approved_by"] == ["ana"]
    # An approver disabled since approving no longer counts.
    bo.approve_protection("m", "champion", 0)
    set_user_disabled(protected.db, "bo", actor="owner")
    with pytest.raises(PermissionDenied) as lapsed:
        owner.protect_alias("m", "champion", 0)
    assert "the approval of 'bo' no longer counts: user bo is disabled" in str(lapsed.value)


def test_an_approval_lapses_when_the_protection_changes(acting, protected):
    """An approval covers the protection it was given against: tightened since, the old
    approval does not lower the tighter one; and any change uses up the pending approvals,
    so one never counts again when the protection returns to what it was."""
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    assert ana.approve_protection("m", "champion", 0) == 1
    assert bo.approve_protection("m", "champion", 0) == 2
    owner.protect_alias("m", "champion", 2, require_gate=True)
    with pytest.raises(PermissionDenied) as refused:
        owner.protect_alias("m", "champion", 0)
    assert str(refused.value).endswith(
        "alias 'champion' of model 'm' is protected by 2 approval(s) and any release gate: "
        "lowering it to no protection needs 2 approval(s) from distinct approvers other than "
        "'owner', who applies it (an applier's own approval does not count), has 0 (to "
        "approve: opsloop models approve-protection m champion --approvals 0)"
    )
    # Back to two approvals without a gate, approved against the gated protection...
    assert ana.approve_protection("m", "champion", 2) == 1
    assert bo.approve_protection("m", "champion", 2) == 2
    owner.protect_alias("m", "champion", 2)
    assert _last(owner)["after"] == {
        "required_approvals": 2,
        "require_gate": False,
        "approved_by": ["ana", "bo"],
    }
    # ...the approvals of removing it given before the gate count no more.
    with pytest.raises(PermissionDenied, match=r"needs 2 approval\(s\) .* has 0 \("):
        owner.protect_alias("m", "champion", 0)
    assert ana.approve_protection("m", "champion", 0) == 1
    assert editor.get_version("m", alias="champion").version == 1
    assert verify_audit_log(protected.db).ok
