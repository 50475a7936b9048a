"""An approval counts only while its approver can approve: approved, then disabled or given
a role that cannot approve, the approver's approval is left out when the protected alias
moves, and the refusal says why. Locally and over HTTP (``acting``), on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from opsloop.registry import PermissionDenied, verify_audit_log
from opsloop.registry.users import set_user_disabled, set_user_role

REFUSAL = (
    "alias 'champion' of model 'm' is protected: moving it to version 2 needs 2 approval(s) "
    "from distinct approvers other than 'eda', who moves it (an applier's own approval does "
    "not count), has 1 (bo); the approval of 'ana' no longer counts: "
)


@pytest.fixture
def approved(registry):
    """Versions 1 and 2 of ``m``, champion at 1 and protected by two approvals."""
    for data in (b"\x08\x01", b"\x08\x02"):
        registry.register("m", data, flavor="onnx")
    registry.set_alias("m", "champion", 1)
    registry.protect_alias("m", "champion", 2)
    return registry


@pytest.mark.parametrize(
    ("lapse", "restore", "why"),
    [
        (
            lambda db: set_user_disabled(db, "ana", actor="owner"),
            lambda db: set_user_disabled(db, "ana", False, actor="owner"),
            "user ana is disabled",
        ),
        (
            lambda db: set_user_role(db, "ana", "editor", actor="owner"),
            lambda db: set_user_role(db, "ana", "admin", actor="owner"),
            "user ana has role 'editor' now, which cannot approve",
        ),
    ],
    ids=["disabled", "demoted"],
)
def test_an_approval_lapses_with_its_approvers_standing(acting, approved, lapse, restore, why):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    assert ana.approve("m", "champion", 2) == 1
    assert bo.approve("m", "champion", 2) == 2
    lapse(approved.db)
    with pytest.raises(PermissionDenied) as refused:
        editor.set_alias("m", "champion", 2)
    assert str(refused.value).endswith(REFUSAL + why)
    assert owner.get_version("m", alias="champion").version == 1
    # The refusal used up nothing, and the approval is still recorded: once its approver
    # can approve again (here an admin, which may approve too) it counts.
    pending = owner.pending_approvals("m")
    assert pending[["approver", "approvals", "required", "lapsed"]].values.tolist() == [
        ["ana", 1, 2, why],
        ["bo", 1, 2, None],
    ]
    restore(approved.db)
    editor.set_alias("m", "champion", 2)
    last = owner.audit("m").iloc[-1]
    assert (last["action"], last["actor"], last["after"]) == (
        "set_alias",
        "eda",
        {"version": 2, "approved_by": ["ana", "bo"]},
    )
    assert verify_audit_log(approved.db).ok


def test_enough_approvals_in_standing_still_carry_the_move(acting, approved):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    ana.approve_protection("m", "champion", 1)
    bo.approve_protection("m", "champion", 1)
    owner.protect_alias("m", "champion", 1)
    ana.approve("m", "champion", 2)
    bo.approve("m", "champion", 2)
    set_user_disabled(approved.db, "ana", actor="owner")
    editor.set_alias("m", "champion", 2)
    # Only the approvers that counted are named; every pending approval is used up.
    assert owner.audit("m").iloc[-1]["after"] == {"version": 2, "approved_by": ["bo"]}
    assert owner.pending_approvals("m").empty
