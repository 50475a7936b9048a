"""A change conditional on the definition it was made from (``expected_revision``): made
when the definition is still that revision's, refused with a 409 naming the change made
since otherwise, and then nothing changes, locally and over HTTP alike."""

from __future__ import annotations

import pytest

from opsloop.errors import ConflictError
from opsloop.registry import add_user
from opsloop.serving import Deployments, Variant


def _canary(weight: float) -> list[Variant]:
    return [
        Variant("stable", "credit", version=1, weight=1 - weight),
        Variant("canary", "credit", version=2, role="candidate", weight=weight),
    ]


def _blue_green() -> list[Variant]:
    return [
        Variant("blue", "credit", version=1, weight=1.0),
        Variant("green", "credit", version=2, role="candidate", weight=0.0),
    ]


@pytest.fixture
def credit(registry):
    registry.register("credit", b"model 1", flavor="onnx")
    registry.register("credit", b"model 2", flavor="onnx")
    return registry


def test_the_revision_is_the_id_of_the_entry_that_set_the_definition(credit, deployments):
    first = deployments.deploy("api", _canary(0.1), strategy="canary")
    entries = deployments.history("api")
    assert first.revision == int(entries["id"].iloc[-1])
    assert deployments.get("api").revision == first.revision
    deployments.configure("api", confidence_threshold=0.7)  # not the definition
    assert deployments.get("api").revision == first.revision
    second = deployments.deploy("api", _canary(0.2), strategy="canary")
    assert second.revision == int(deployments.history("api")["id"].iloc[-1]) > first.revision
    back = deployments.rollback("api")
    assert back.revision == int(deployments.history("api")["id"].iloc[-1]) > second.revision
    assert deployments.get("api").revision == back.revision
    # What served at a time is the definition of the entry that set it then.
    assert deployments.at("api", int(entries["time"].iloc[-1].value // 1_000_000)).revision == (
        first.revision
    )


def test_a_stale_revision_changes_nothing(credit, deployments):
    seen = deployments.deploy("api", _canary(0.1), strategy="canary")
    # Someone else (a ramping canary, another user) deploys after the page was read.
    moved = deployments.deploy("api", _canary(0.4), strategy="canary", reason="ramp to 40%")
    entries = len(deployments.history("api"))
    with pytest.raises(ConflictError) as refused:
        deployments.deploy("api", _canary(0.2), strategy="canary", expected_revision=seen.revision)
    message = str(refused.value)
    assert message.startswith(
        f"expected_revision: deployment 'api' changed since revision {seen.revision}; "
        f"it is at revision {moved.revision}: deploy by "
    )
    assert message.endswith(" UTC (ramp to 40%); read it again before changing it")
    with pytest.raises(ConflictError, match=r"^expected_revision: deployment 'api' changed"):
        deployments.rollback("api", expected_revision=seen.revision)
    with pytest.raises(ConflictError, match=r"^expected_revision: deployment 'api' changed"):
        deployments.deploy("api", _canary(0.2), strategy="canary", expected_revision=0)
    assert len(deployments.history("api")) == entries
    assert [v.weight for v in deployments.get("api").variants] == [0.6, 0.4]
    # The revision read now is the one to change from.
    done = deployments.deploy(
        "api", _canary(0.2), strategy="canary", expected_revision=moved.revision
    )
    assert [v.weight for v in done.variants] == [0.8, 0.2]
    assert len(deployments.history("api")) == entries + 1


def test_zero_creates_only_a_deployment_that_does_not_exist(credit, deployments):
    made = deployments.deploy("new", _canary(0.1), strategy="canary", expected_revision=0)
    assert made.revision > 0
    deployments.retire("new")
    with pytest.raises(ConflictError, match=r"was read at revision .* no longer exists"):
        deployments.deploy("new", _canary(0.1), strategy="canary", expected_revision=made.revision)


def test_a_stale_switch_is_refused(credit, deployments):
    seen = deployments.deploy("bg", _blue_green(), strategy="blue_green")
    switched = deployments.switch("bg")
    with pytest.raises(ConflictError, match=f"at revision {switched.revision}: deploy by "):
        deployments.switch("bg", expected_revision=seen.revision)
    assert [v.weight for v in deployments.get("bg").variants] == [0.0, 1.0]
    again = deployments.switch("bg", expected_revision=switched.revision)
    assert [v.weight for v in again.variants] == [1.0, 0.0]


def test_a_stale_approval_is_refused(credit):
    # Approving needs a registered approver (over HTTP, their token: the parity test's).
    add_user(credit.db, "apo", "approver")
    add_user(credit.db, "ed", "editor")
    deployments = Deployments(credit.db, actor="ed")
    seen = deployments.deploy("api", _canary(0.1), strategy="canary")
    deployments.deploy("api", _canary(0.4), strategy="canary")
    approvals = len(deployments.history("api", action="approve"))
    with pytest.raises(ConflictError, match=f"changed since revision {seen.revision};"):
        deployments.approve(
            "api", _canary(0.2), strategy="canary", expected_revision=seen.revision, actor="apo"
        )
    assert len(deployments.history("api", action="approve")) == approvals
    now = deployments.get("api").revision
    count = deployments.approve(
        "api", _canary(0.2), strategy="canary", expected_revision=now, actor="apo"
    )
    assert count == 1


def test_a_revision_must_be_a_whole_number_from_zero(credit, deployments):
    deployments.deploy("api", _canary(0.1), strategy="canary")
    with pytest.raises(ValueError, match="expected_revision"):
        deployments.deploy("api", _canary(0.1), strategy="canary", expected_revision=-1)
