"""Four eyes on protected aliases: a move counts only the approvals of people other than the
one who moves it, uses all of them up, and its entry names who approved; pointing an alias
where it points changes nothing. Locally and over HTTP (``acting``), on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from opsloop.errors import ConflictError
from opsloop.registry import PermissionDenied, UnknownModelError, verify_audit_log
from opsloop.registry.separate_approvers import approval_shortfall, counted_approvers
from opsloop.store import tables


@pytest.fixture
def protected(registry):
    """Versions 1 to 3 of ``m``, champion at 1, protected by two approvals."""
    for data in (b"\x08\x01", b"\x08\x02", b"\x08\x03"):
        registry.register("m", data, flavor="onnx")
    registry.set_alias("m", "champion", 1)
    registry.protect_alias("m", "champion", 2)
    return registry


def test_the_movers_own_approval_never_counts(acting, protected):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    assert ana.approve("m", "champion", 2) == 1
    assert bo.approve("m", "champion", 2) == 2
    with pytest.raises(PermissionDenied) as refused:
        ana.set_alias("m", "champion", 2)
    assert str(refused.value).endswith(
        "alias 'champion' of model 'm' is protected: moving it to version 2 needs 2 approval(s) "
        "from distinct approvers other than 'ana', who moves it (an applier's own approval "
        "does not count), has 1 (bo); 'ana' approved it too"
    )
    assert editor.get_version("m", alias="champion").version == 1
    # The refusal used up nothing: an editor who approved nothing moves it.
    editor.set_alias("m", "champion", 2, reason="two approvals")
    last = owner.audit("m").iloc[-1]
    assert (last["action"], last["actor"], last["after"]) == (
        "set_alias",
        "eda",
        {"version": 2, "approved_by": ["ana", "bo"]},
    )
    # An admin who approved counts once the others make two without them.
    owner.approve("m", "champion", 3)
    ana.approve("m", "champion", 3)
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\); 'owner' approved it too$"):
        owner.set_alias("m", "champion", 3)
    bo.approve("m", "champion", 3)
    owner.set_alias("m", "champion", 3)
    assert owner.audit("m").iloc[-1]["after"] == {"version": 3, "approved_by": ["ana", "bo"]}
    # Every approval of the move was used up, the mover's own too.
    assert owner.pending_approvals("m").empty
    assert verify_audit_log(protected.db).ok


def test_pointing_a_protected_alias_where_it_points_changes_nothing(acting, protected):
    owner, editor, ana, viewer = (acting(user) for user in ("owner", "eda", "ana", "vic"))
    owner.protect_alias("m", "champion", 2, require_gate=True)
    # Approving the version it points at approves no move: refused, nothing recorded.
    entries = len(owner.audit("m"))
    with pytest.raises(ConflictError) as refused:
        ana.approve("m", "champion", 1, comment="kept")
    assert str(refused.value).endswith(
        "alias 'champion' of model 'm' points at version 1 already: nothing to approve"
    )
    assert owner.pending_approvals("m").empty
    # No approvals and no gate verdict asked, no entry written.
    editor.set_alias("m", "champion", 1, reason="again")
    assert editor.get_version("m", alias="champion").version == 1
    assert len(owner.audit("m")) == entries
    # Still an editor's change, and only to a version that exists.
    with pytest.raises(PermissionDenied, match="user 'vic' has role 'viewer'; this needs 'editor'"):
        viewer.set_alias("m", "champion", 1)
    with pytest.raises(UnknownModelError, match="model 'm' has no version 4"):
        editor.set_alias("m", "champion", 4)
    # Moving it does need both.
    with pytest.raises(PermissionDenied, match="needs a passed release gate"):
        editor.set_alias("m", "champion", 2)
    assert len(owner.audit("m")) == entries


def test_re_pointing_uses_up_older_approvals_of_where_it_points(acting, protected):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    # Approvals of the version in place, as recorded before approve() refused them.
    with protected.db.write() as connection:
        model_id = connection.execute(
            sa.select(tables.registered_models.c.id).where(tables.registered_models.c.name == "m")
        ).scalar_one()
        version_id = connection.execute(
            sa.select(tables.model_versions.c.id).where(
                tables.model_versions.c.model_id == model_id,
                tables.model_versions.c.version == 1,
            )
        ).scalar_one()
        for approver in ("ana", "bo"):
            connection.execute(
                tables.approvals.insert().values(
                    model_id=model_id,
                    alias="champion",
                    version_id=version_id,
                    approver=approver,
                    comment="keep v1",
                    created_ms=0,
                    consumed=False,
                )
            )
    assert len(owner.pending_approvals("m")) == 2
    # Re-pointing the alias at version 1 moves nothing, and uses them up: they cannot
    # carry a later move back to version 1 that nobody approved.
    editor.set_alias("m", "champion", 1, reason="re-assert")
    assert owner.pending_approvals("m").empty
    ana.approve("m", "champion", 2)
    bo.approve("m", "champion", 2)
    editor.set_alias("m", "champion", 2)
    with pytest.raises(PermissionDenied, match=r"moving it to version 1 needs 2 .*has 0$"):
        editor.set_alias("m", "champion", 1, reason="back, unapproved")
    assert editor.get_version("m", alias="champion").version == 2


def test_the_count_leaves_out_the_applier_and_says_so():
    assert counted_approvers(["bo", "ana", "bo"], "ana") == ("bo",)
    assert counted_approvers(["bo", "ana"], "cy", also_excluded=["bo"]) == ("ana",)
    assert approval_shortfall(1, ["bo"], "ana") is None
    assert approval_shortfall(0, [], "ana") is None
    assert approval_shortfall(2, ["ana", "bo", "cy"], "ana") is None
    assert approval_shortfall(3, ["ana", "bo", "cy"], "ana") == (
        "needs 3 approval(s) from distinct approvers other than 'ana', who applies it (an "
        "applier's own approval does not count), has 2 (bo, cy); 'ana' approved it too"
    )
