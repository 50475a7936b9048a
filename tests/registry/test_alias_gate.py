"""A protected alias that requires a passed release gate: moving it, and a deployment that
follows it, is refused until the version passed the gate against the alias's current version;
locally and over HTTP (``acting``), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server

from opsloop.analysis.gate import parse_gate
from opsloop.errors import InvalidArgumentError
from opsloop.registry import PermissionDenied, add_user, verify_audit_log
from opsloop.registry.audit_state import state_problems
from opsloop.registry.release_gate import run_gate
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.store import tables

GATE = parse_gate(
    {
        "version": 1,
        "name": "credit",
        "label": "y",
        "checks": [{"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05}],
    }
)
OTHER = dataclasses.replace(GATE, name="smoke")


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    data["y"] = (data["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    return data


@pytest.fixture
def credit(registry, frame):
    """Versions 1 (champion) and 3 of 'credit' read x and z; version 2 reads z only."""
    for columns, c in ((["x", "z"], 1.0), (["z"], 1.0), (["x", "z"], 0.5)):
        model = LogisticRegression(C=c).fit(frame[columns], frame["y"])
        registry.register("credit", model, input_schema=frame[columns], output_type="int")
    registry.set_alias("credit", "champion", 1)
    return registry


def test_the_alias_moves_only_to_a_version_that_passed_against_the_champion(acting, credit, frame):
    owner, editor, ci = acting("owner"), acting("eda"), acting("cy")
    owner.protect_alias("credit", "champion", 0, require_gate=True, reason="gated releases")
    with pytest.raises(
        PermissionDenied,
        match=r"alias 'champion' of model 'credit' is protected: moving it to version 3 needs "
        r"a passed release gate against version 1; version 3 has no gate verdict against "
        r"version 1 recorded",
    ):
        editor.set_alias("credit", "champion", 3)
    # Version 2 reads z only: the gate fails, and the failure is what the refusal names.
    assert not run_gate(ci, GATE, "models:/credit/2", frame).passed
    with pytest.raises(
        PermissionDenied,
        match=r"the newest verdict of gate 'credit' on version 2 against version 1 failed "
        r"\(failed checks: accuracy non-inferiority \(mcnemar\)\)",
    ):
        editor.set_alias("credit", "champion", 2)
    # A pass against another baseline does not count: version 3 must beat the champion.
    assert run_gate(ci, GATE, "models:/credit/3", frame, baseline="models:/credit/2").passed
    with pytest.raises(PermissionDenied, match="version 3 has no gate verdict against version 1"):
        editor.set_alias("credit", "champion", 3)
    assert run_gate(ci, GATE, "models:/credit/3", frame).passed
    editor.set_alias("credit", "champion", 3)
    assert editor.get_version("credit", alias="champion").version == 3
    # Version 1 passed against nothing while it was champion: moving back needs a new pass.
    with pytest.raises(PermissionDenied, match="version 1 has no gate verdict against version 3"):
        editor.set_alias("credit", "champion", 1)
    entries = owner.audit("credit")
    protection = entries[entries["action"] == "protect_alias"].iloc[-1]
    assert protection["before"] == {"required_approvals": 0, "require_gate": False}
    assert protection["after"] == {"required_approvals": 0, "require_gate": True}
    assert verify_audit_log(credit.db).ok


def test_a_named_gate_is_matched_by_name_or_by_its_sha256(acting, credit, frame, tmp_path):
    owner, editor, ci = acting("owner"), acting("eda"), acting("cy")
    owner.protect_alias("credit", "champion", 0, require_gate="credit")
    assert run_gate(ci, OTHER, "models:/credit/3", frame).passed
    with pytest.raises(PermissionDenied, match="version 3 has no gate verdict of 'credit'"):
        editor.set_alias("credit", "champion", 3)
    assert run_gate(ci, GATE, "models:/credit/3", frame).passed
    editor.set_alias("credit", "champion", 3)
    # Pinned to one revision of the gate file: its sha256.
    path = tmp_path / "gate.yaml"
    path.write_text(
        "version: 2\nname: credit\nlabel: y\nchecks:\n"
        "  - {kind: non_inferiority, metric: accuracy, margin: 0.05}\n"
    )
    from opsloop.analysis.gate import load_gate

    pinned = load_gate(path)
    # Another gate in place of the named one could be weaker: another person approves it.
    ana = acting("ana")
    ana.approve_protection("credit", "champion", 0, require_gate=pinned.sha256)
    owner.protect_alias("credit", "champion", 0, require_gate=pinned.sha256)
    assert run_gate(ci, GATE, "models:/credit/1", frame).passed  # same name, other text
    with pytest.raises(PermissionDenied, match=f"no gate verdict of '{pinned.sha256}'"):
        editor.set_alias("credit", "champion", 1)
    assert run_gate(ci, pinned, "models:/credit/1", frame).passed
    editor.set_alias("credit", "champion", 1)
    # require_gate=False with no approvals lifts the protection, approved by another.
    ana.approve_protection("credit", "champion", 0)
    owner.protect_alias("credit", "champion", 0)
    editor.set_alias("credit", "champion", 2)
    assert verify_audit_log(credit.db).ok


def test_approvals_and_the_gate_are_both_required(acting, credit, frame):
    owner, editor, ana, ci = acting("owner"), acting("eda"), acting("ana"), acting("cy")
    owner.protect_alias("credit", "champion", 1, require_gate=True)
    assert ana.approve("credit", "champion", 3) == 1
    with pytest.raises(PermissionDenied, match="needs a passed release gate"):
        editor.set_alias("credit", "champion", 3)
    # The refusal used up nothing: the approval still counts once the gate passed.
    assert run_gate(ci, GATE, "models:/credit/3", frame).passed
    editor.set_alias("credit", "champion", 3)
    assert run_gate(ci, GATE, "models:/credit/1", frame, record=True).passed
    with pytest.raises(PermissionDenied, match=r"needs 1 approval\(s\) from distinct approvers"):
        editor.set_alias("credit", "champion", 1)


def test_a_bad_requirement_is_refused_naming_the_field(acting, credit):
    owner = acting("owner")
    for bad in (1, "", None):
        with pytest.raises(ValueError, match="require_gate"):
            owner.protect_alias("credit", "champion", 0, require_gate=bad)
    with pytest.raises(PermissionDenied):
        acting("eda").protect_alias("credit", "champion", 0, require_gate=True)


def test_over_http_a_refused_move_is_a_403_and_a_bad_requirement_a_422(credit):
    _, token = add_user(credit.db, "owner", "admin")
    credit.protect_alias("credit", "champion", 0, require_gate="credit")
    with running_server(create_app(credit.db, credit.artifacts)) as url:
        headers = {"Authorization": f"Bearer {token}"}
        api = f"{url}/api/v1/models/credit/aliases/champion"
        moved = httpx.put(api, json={"version": 3}, headers=headers)
        assert moved.status_code == 403
        assert "needs a passed release gate 'credit' against version 1" in moved.json()["detail"]
        for bad in (1, None, ["credit"]):
            answer = httpx.put(
                f"{api}/protection",
                json={"required_approvals": 0, "require_gate": bad},
                headers=headers,
            )
            assert answer.status_code == 422, bad
            assert "require_gate" in str(answer.json()), bad


def test_a_gate_requirement_changed_by_hand_shows_in_the_state_check(credit):
    credit.protect_alias("credit", "champion", 1, require_gate="credit")
    with credit.db.read() as connection:
        assert state_problems(connection) == []
    with credit.db.write() as connection:
        connection.execute(sa.update(tables.protected_aliases).values(required_gate_json=None))
    with credit.db.read() as connection:
        assert state_problems(connection) == [
            "model:credit/alias:champion: the log says it requires 'credit' as its gate, "
            "the table holds False"
        ]


@pytest.fixture(params=["local", "http"])
def deploying(request, credit):
    """Deployments on the registry's store, used directly or through a real server."""
    if request.param == "local":
        yield Deployments(credit.db)
        return
    with running_server(create_app(credit.db, credit.artifacts)) as url:
        client = HttpDeployments(url, token="")
        yield client
        client.close()


def test_a_deployment_following_the_alias_serves_another_version_only_once_it_passed(
    deploying, credit, frame
):
    credit.protect_alias("credit", "champion", 0, require_gate="credit")
    follows = [Variant("stable", "credit", alias="champion")]
    deploying.deploy("credit-api", follows)
    canary = [
        Variant("stable", "credit", alias="champion", weight=0.9),
        Variant("canary", "credit", version=2, role="candidate", weight=0.1),
    ]
    with pytest.raises(
        PermissionDenied,
        match=r"deployment 'credit-api' is guarded: it follows the protected alias "
        r"credit@champion, and variant 'canary' would serve version 2 in its place, which "
        r"needs a passed release gate 'credit' against version 1; version 2 has no gate "
        r"verdict of 'credit' against version 1 recorded",
    ):
        deploying.deploy("credit-api", canary, strategy="canary")
    # A shadow answers no one: it needs no gate.
    shadow = [follows[0], Variant("shadow", "credit", version=2, role="shadow", weight=0)]
    assert deploying.deploy("credit-api", shadow, strategy="shadow").serving == {
        "stable": 1,
        "shadow": 2,
    }
    assert not run_gate(credit, GATE, "models:/credit/2", frame).passed
    with pytest.raises(PermissionDenied, match="the newest verdict of gate 'credit' on version 2"):
        deploying.deploy("credit-api", canary, strategy="canary")
    assert run_gate(credit, GATE, "models:/credit/3", frame).passed
    pinned = [Variant("stable", "credit", version=3)]
    assert deploying.deploy("credit-api", pinned).serving == {"stable": 3}


def test_only_a_gatekeepers_or_an_admins_verdict_counts(acting, credit, frame):
    """An editor or an approver may record a verdict, and it stays in the audit log, but a
    protected alias does not count it; nor a pass without the sha256 of what was run."""
    owner, editor, ana, ci = acting("owner"), acting("eda"), acting("ana"), acting("cy")
    owner.protect_alias("credit", "champion", 0, require_gate="credit")
    made = {
        "gate": "credit",
        "gate_sha256": GATE.sha256,
        "data_sha256": "d" * 64,
        "baseline": {"model": "credit", "version": 1},
        "failed": [],
    }
    editor.record_gate("credit", 3, passed=True, gate=made)
    assert run_gate(ana, GATE, "models:/credit/3", frame).passed
    with pytest.raises(
        PermissionDenied,
        match=r"version 3 has no gate verdict of 'credit' against version 1 that counts "
        r"\(ignored: recorded by 'ana' as approver; recorded by 'eda' as editor\); one counts "
        r"when a gatekeeper or an admin records it with the gate's and the data's sha256",
    ):
        editor.set_alias("credit", "champion", 3)
    with pytest.raises(InvalidArgumentError, match="gate: recorder_role is set by the registry"):
        editor.record_gate("credit", 3, passed=True, gate={**made, "recorder_role": "admin"})
    ci.record_gate("credit", 3, passed=True, gate={**made, "data_sha256": None})
    ci.record_gate("credit", 3, passed=True, gate={**made, "failed": ["auc >= 0.75"]})
    with pytest.raises(PermissionDenied) as refused:
        editor.set_alias("credit", "champion", 3)
    assert "recorded by 'cy' as a pass with failed checks; recorded by 'cy' without the data's" in (
        str(refused.value)
    )
    entries = owner.audit("credit")
    roles = entries[entries["action"] == "gate_passed"]["after"].map(lambda a: a["recorder_role"])
    assert roles.tolist() == ["editor", "approver", "gatekeeper", "gatekeeper"]
    # The admin's pass counts; so would the gatekeeper's run of the gate.
    owner.record_gate("credit", 3, passed=True, gate=made)
    editor.set_alias("credit", "champion", 3)
    assert run_gate(ci, GATE, "models:/credit/1", frame, baseline="models:/credit/3").passed
    editor.set_alias("credit", "champion", 1)
    assert verify_audit_log(credit.db).ok
