"""A deployment protected on its own that requires a passed release gate: a new definition
puts traffic on a version only once that version passed the gate against the version the
primary serves now; a rollback to a definition that passed the gate needs no new verdict.
Locally and through a real server, with gates run for real (:func:`run_gate`)."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server

from opsloop.analysis.gate import parse_gate
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
STABLE_1 = [Variant("stable", "credit", version=1)]
STABLE_3 = [Variant("stable", "credit", version=3)]


def canary(version: int) -> list[Variant]:
    return [
        Variant("stable", "credit", version=1, weight=0.9),
        Variant("canary", "credit", version=version, role="candidate", weight=0.1),
    ]


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    data["y"] = (data["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    return data


@pytest.fixture
def credit(registry, frame):
    """Versions 1 (champion) and 3 of 'credit' read x and z; version 2 reads z only, so it
    fails the gate against version 1 and version 3 passes."""
    for columns, c in ((["x", "z"], 1.0), (["z"], 1.0), (["x", "z"], 0.5)):
        model = LogisticRegression(C=c).fit(frame[columns], frame["y"])
        registry.register("credit", model, input_schema=frame[columns], output_type="int")
    registry.set_alias("credit", "champion", 1)
    return registry


def test_traffic_goes_only_to_a_version_that_passed_against_the_primary(deployments, credit, frame):
    deployments.deploy("api", STABLE_1)
    deployments.protect("api", 0, require_gate="credit", reason="gated releases")
    assert deployments.get("api").required_gate == "credit"
    with pytest.raises(
        PermissionDenied,
        match=r"deployment 'api' is protected: variant 'canary' would serve version 2 of "
        r"model 'credit', which needs a passed release gate 'credit' against version 1; "
        r"version 2 has no gate verdict of 'credit' against version 1 recorded",
    ):
        deployments.deploy("api", canary(2), strategy="canary")
    # A shadow answers no one: it needs no gate.
    shadow = [*STABLE_1, Variant("shadow", "credit", version=2, role="shadow", weight=0)]
    assert deployments.deploy("api", shadow, strategy="shadow").serving == {
        "stable": 1,
        "shadow": 2,
    }
    # Version 2 reads z only: its gate fails, and the refusal names the failed check.
    assert not run_gate(credit, GATE, "models:/credit/2", frame).passed
    with pytest.raises(
        PermissionDenied,
        match=r"variant 'canary' would serve version 2 of model 'credit', which needs a passed "
        r"release gate 'credit' against version 1; the newest verdict of gate 'credit' on "
        r"version 2 against version 1 failed \(failed checks: accuracy non-inferiority "
        r"\(mcnemar\)\)",
    ):
        deployments.deploy("api", canary(2), strategy="canary")
    # A pass against another baseline does not count: the canary must beat the primary.
    assert run_gate(credit, GATE, "models:/credit/3", frame, baseline="models:/credit/2").passed
    with pytest.raises(PermissionDenied, match="version 3 has no gate verdict of 'credit' against"):
        deployments.deploy("api", canary(3), strategy="canary")
    assert run_gate(credit, GATE, "models:/credit/3", frame).passed
    assert deployments.deploy("api", canary(3), strategy="canary").serving == {
        "stable": 1,
        "canary": 3,
    }
    # Promoting the canary: version 3 passed against the primary's version 1.
    assert deployments.deploy("api", STABLE_3).serving == {"stable": 3}
    # Version 1 is now measured against version 3, the primary: deploying it back needs a pass.
    with pytest.raises(
        PermissionDenied,
        match=r"variant 'stable' would serve version 1 of model 'credit', which needs a "
        r"passed release gate 'credit' against version 3; version 1 has no gate verdict of "
        r"'credit' against version 3 recorded",
    ):
        deployments.deploy("api", STABLE_1)
    # A rollback restores the canary's definition, which passed the gate when deployed.
    restored = deployments.rollback("api", reason="version 3 misbehaves alone")
    assert restored.serving == {"stable": 1, "canary": 3}
    history = deployments.history("api")
    actions = ["deploy", "protect", "deploy", "deploy", "deploy", "rollback"]
    assert history["action"].tolist() == actions
    assert history.iloc[-1]["after"]["passed_gate"] == "credit"
    assert history.iloc[-1]["after"]["restores"] == int(history.iloc[3]["id"])
    assert history.iloc[1]["before"] == {"required_approvals": 0, "require_gate": False}
    assert history.iloc[1]["after"] == {"required_approvals": 0, "require_gate": "credit"}
    assert "passed_gate" not in history.iloc[0]["after"]  # deployed before the protection
    assert verify_audit_log(credit.db).ok
    with credit.db.read() as connection:
        assert state_problems(connection) == []


def test_a_rollback_to_a_definition_deployed_before_the_gate_needs_its_verdict(
    deployments, credit, frame
):
    deployments.deploy("api", STABLE_1)
    deployments.deploy("api", STABLE_3)
    deployments.protect("api", 0, require_gate=True)
    with pytest.raises(
        PermissionDenied,
        match=r"variant 'stable' would serve version 1 of model 'credit', which needs a "
        r"passed release gate against version 3; version 1 has no gate verdict against "
        r"version 3 recorded",
    ):
        deployments.rollback("api")
    assert deployments.get("api").serving == {"stable": 3}  # the refusal changed nothing
    assert run_gate(credit, GATE, "models:/credit/1", frame, baseline="models:/credit/3").passed
    assert deployments.rollback("api").serving == {"stable": 1}
    # The gate named in the entry is the requirement met, "any gate" here.
    assert deployments.history("api").iloc[-1]["after"]["passed_gate"] is True


def test_a_primary_following_an_alias_is_the_baseline_and_no_gate_lifts_the_protection(
    deployments, credit, frame
):
    follows = [Variant("stable", "credit", alias="champion")]
    deployments.protect("api", 0, require_gate="credit")
    # A new deployment has no baseline yet: a pass against any version counts.
    with pytest.raises(PermissionDenied, match="version 1 has no gate verdict of 'credit' rec"):
        deployments.deploy("api", follows)
    assert run_gate(credit, GATE, "models:/credit/1", frame, baseline="models:/credit/3").passed
    assert deployments.deploy("api", follows).serving == {"stable": 1}
    assert run_gate(credit, GATE, "models:/credit/3", frame).passed  # against the champion
    moved = [
        Variant("stable", "credit", alias="champion", weight=0.9),
        Variant("canary", "credit", version=3, role="candidate", weight=0.1),
    ]
    assert deployments.deploy("api", moved, strategy="canary").serving == {
        "stable": 1,
        "canary": 3,
    }
    # No approvals and no gate lift the protection: version 2 deploys ungated.
    deployments.protect("api", 0)
    lifted = deployments.deploy("api", canary(2), strategy="canary")
    assert (lifted.serving["canary"], lifted.required_gate) == (2, False)
    with credit.db.read() as connection:
        assert connection.execute(sa.select(tables.protected_deployments)).all() == []


def test_approvals_and_the_gate_are_both_required(credit, frame):
    tokens = {
        name: add_user(credit.db, name, role)[1]
        for name, role in (("root", "admin"), ("ana", "approver"), ("ed", "editor"))
    }
    tokens["cy"] = add_user(credit.db, "cy", "gatekeeper")[1]
    Deployments(credit.db, actor="root").protect("api", 1, require_gate="credit")
    approver, editor = Deployments(credit.db, actor="ana"), Deployments(credit.db, actor="ed")
    with pytest.raises(PermissionDenied, match="needs a passed release gate 'credit'; version 1"):
        editor.deploy("api", STABLE_1)
    approver.approve("api", STABLE_1)
    # An editor's verdict is kept but does not count, as for a protected alias.
    assert run_gate(credit, GATE, "models:/credit/1", frame, actor="ed").passed
    with pytest.raises(PermissionDenied, match=r"counts \(ignored: recorded by 'ed' as editor"):
        editor.deploy("api", STABLE_1)
    assert run_gate(credit, GATE, "models:/credit/1", frame, actor="cy").passed
    # The refusals used up nothing: the approval still counts once the gate passed.
    assert editor.deploy("api", STABLE_1).serving == {"stable": 1}
    assert run_gate(credit, GATE, "models:/credit/3", frame, actor="cy").passed
    with pytest.raises(PermissionDenied, match="this definition needs 1 approval"):
        editor.deploy("api", STABLE_3)
    with running_server(create_app(credit.db, credit.artifacts)) as url:
        remote = HttpDeployments(url, token=tokens["ed"])
        refused = httpx.put(
            f"{url}/api/v1/deployments/api",
            json={"variants": [v.to_dict() for v in canary(2)], "strategy": "canary"},
            headers={"Authorization": f"Bearer {tokens['ed']}"},
        )
        assert refused.status_code == 403
        assert (
            "variant 'canary' would serve version 2 of model 'credit', which needs a passed "
            "release gate 'credit' against version 1" in refused.json()["detail"]
        )
        with pytest.raises(PermissionDenied):
            remote.protect("api", 0)  # an admin's decision
        headers = {"Authorization": f"Bearer {tokens['root']}"}
        for bad in (1, None, ["credit"], ""):
            answer = httpx.put(
                f"{url}/api/v1/deployments/api/protection",
                json={"required_approvals": 0, "require_gate": bad},
                headers=headers,
            )
            assert answer.status_code == 422, bad
            assert "require_gate" in str(answer.json()), bad
        remote.close()
    with pytest.raises(ValueError, match="require_gate must be true, false, or a gate's name"):
        Deployments(credit.db, actor="root").protect("api", 0, require_gate=1)


def test_a_gate_requirement_changed_by_hand_shows_in_the_state_check(credit):
    Deployments(credit.db).protect("api", 2, require_gate="credit")
    with credit.db.read() as connection:
        assert state_problems(connection) == []
    with credit.db.write() as connection:
        connection.execute(sa.update(tables.protected_deployments).values(required_gate_json=None))
    with credit.db.read() as connection:
        assert state_problems(connection) == [
            "deployment:api: the log says it requires 'credit' as its gate, the table holds False"
        ]
