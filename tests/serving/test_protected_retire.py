"""Retiring a protected deployment, on SQLite and PostgreSQL, locally and through a real
server: any protection (approvals or a release gate) makes the retire an admin's decision,
and a deployment created again under a gate that survived the retire is judged against what
the retired deployment's primary served, never against nothing."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server

from opsloop.analysis.gate import parse_gate
from opsloop.registry import ModelRegistry, PermissionDenied, add_user, verify_audit_log
from opsloop.registry.release_gate import run_gate
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant

GATE = parse_gate(
    {
        "version": 1,
        "name": "credit",
        "label": "y",
        "checks": [{"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05}],
    }
)


def stable(version: int) -> list[Variant]:
    return [Variant("stable", "credit", version=version)]


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    data["y"] = (data["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    return data


@pytest.fixture
def credit(registry, frame):
    """Versions 1 and 3 of 'credit' read x and z (3 passes the gate against 1 and against
    2); version 2 reads z only. Users: root (admin), ed (editor), cy (gatekeeper), ana
    (approver)."""
    for columns, c in ((["x", "z"], 1.0), (["z"], 1.0), (["x", "z"], 0.5)):
        model = LogisticRegression(C=c).fit(frame[columns], frame["y"])
        registry.register("credit", model, input_schema=frame[columns], output_type="int")
    tokens = {
        name: add_user(registry.db, name, role)[1]
        for name, role in (("root", "admin"), ("ed", "editor"), ("cy", "gatekeeper"))
    }
    tokens["ana"] = add_user(registry.db, "ana", "approver")[1]
    registry.tokens = tokens
    return registry


def test_a_gate_alone_makes_the_retire_an_admins_and_keeps_the_baseline(credit, frame):
    root, editor = Deployments(credit.db, actor="root"), Deployments(credit.db, actor="ed")
    editor.deploy("api", stable(1))
    root.protect("api", 0, require_gate="credit")
    # Version 3 passed against version 2 only: not against version 1, which the primary serves.
    assert run_gate(
        credit, GATE, "models:/credit/3", frame, baseline="models:/credit/2", actor="cy"
    ).passed
    with pytest.raises(PermissionDenied, match="version 3 has no gate verdict of 'credit' against"):
        editor.deploy("api", stable(3))
    # Retiring the endpoint would reset its baseline: an editor may not.
    with pytest.raises(PermissionDenied, match="user 'ed' has role 'editor'; this needs 'admin'"):
        editor.retire("api")
    assert editor.get("api").serving == {"stable": 1}
    with running_server(create_app(credit.db, credit.artifacts, allow_embedded=False)) as url:
        headers = {"Authorization": f"Bearer {credit.tokens['ed']}"}
        refused = httpx.delete(f"{url}/api/v1/deployments/api", headers=headers, timeout=30)
        assert refused.status_code == 403, refused.text
        assert "admin" in refused.json()["detail"]
    root.retire("api", reason="moved")
    # Created again under the gate that survived the retire, it is judged against version 1,
    # what the retired deployment's primary served: the pass against version 2 does not do.
    with pytest.raises(
        PermissionDenied,
        match=r"variant 'stable' would serve version 3 of model 'credit', which needs a passed "
        r"release gate 'credit' against version 1 \(the retired deployment's\); version 3 "
        r"has no gate verdict of 'credit' against version 1 recorded",
    ):
        editor.deploy("api", stable(3))
    with pytest.raises(PermissionDenied, match="against version 1"):
        root.deploy("api", stable(3))
    # Version 1 itself is the baseline: it comes back with no verdict.
    assert editor.deploy("api", stable(1)).serving == {"stable": 1}
    root.retire("api")
    assert run_gate(
        credit, GATE, "models:/credit/3", frame, baseline="models:/credit/1", actor="cy"
    ).passed
    created = editor.deploy("api", stable(3))
    assert created.serving == {"stable": 3}
    assert editor.history("api", last=1)["after"].iloc[0]["passed_gate"] == "credit"
    assert verify_audit_log(credit.db).ok


def test_an_unprotected_deployment_is_still_an_editors_to_retire(credit):
    editor = Deployments(credit.db, actor="ed")
    editor.deploy("api", stable(1))
    editor.retire("api")
    # A name never deployed before its gate has no baseline: any passed verdict counts.
    Deployments(credit.db, actor="root").protect("web", 0, require_gate="credit")
    with pytest.raises(PermissionDenied) as refused:
        editor.deploy("web", stable(2))
    assert "against version" not in str(refused.value)
    assert "version 2 has no gate verdict of 'credit' recorded" in str(refused.value)


def test_a_protected_alias_the_retired_deployment_followed_still_guards_the_name(credit):
    """An unprotected deployment following a protected alias is an editor's to retire, but
    created again under the name it is still a change away from that alias: pinning another
    version needs the alias's approvals, as it would have before the retire."""
    root = Deployments(credit.db, actor="root")
    admin = ModelRegistry(credit.db, credit.artifacts, actor="root")
    admin.set_alias("credit", "champion", 1)
    admin.protect_alias("credit", "champion", 1)
    editor = Deployments(credit.db, actor="ed")
    editor.deploy("web", [Variant("stable", "credit", alias="champion")])
    editor.retire("web")
    with pytest.raises(
        PermissionDenied,
        match=r"deployment 'web' is guarded: it follows the protected alias credit@champion",
    ):
        editor.deploy("web", stable(2))
    Deployments(credit.db, actor="ana").approve("web", stable(2))
    assert editor.deploy("web", stable(2)).serving == {"stable": 2}
    # Following the alias again needs nothing.
    root.retire("web")
    assert editor.deploy("web", [Variant("stable", "credit", alias="champion")]).serving == {
        "stable": 1
    }


def test_a_name_retired_from_a_protected_alias_is_free_to_serve_another_model(credit, frame):
    """Created again serving none of the alias's model, the name needs no approvals: the
    retire took the alias's model off it, and any other name could serve this definition."""
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    admin = ModelRegistry(credit.db, credit.artifacts, actor="root")
    admin.register("other", model, input_schema=frame[["x"]], output_type="int")
    admin.set_alias("credit", "champion", 1)
    admin.protect_alias("credit", "champion", 1)
    editor = Deployments(credit.db, actor="ed")
    editor.deploy("web", [Variant("stable", "credit", alias="champion")])
    editor.retire("web")
    other = [Variant("stable", "other", version=1)]
    assert editor.deploy("web", other).serving == {"stable": 1}
    # A live deployment that drops the alias's model still needs its approvals, and says so.
    editor.deploy("api", [Variant("stable", "credit", alias="champion")])
    with pytest.raises(PermissionDenied, match=r"this definition serves no version of 'credit'"):
        editor.deploy("api", other)
