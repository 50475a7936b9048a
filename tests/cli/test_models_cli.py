"""``opsloop models`` against a real server (OPSLOOP_TRACKING_URI) and against the local store:
the same output, and the server's refusals as one line with exit code 2."""

from __future__ import annotations

import json

import pytest
import typer
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.tracking import models_app
from opsloop.registry import ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

app = typer.Typer()
app.add_typer(models_app, name="models")
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["models", *args])


@pytest.fixture
def served(store_uri, monkeypatch):
    """A server on the store, users with tokens, and the local registry on the same store."""
    database = Database(store_uri)
    tokens = {
        name: add_user(database, name, role)[1]
        for name, role in (("eda", "editor"), ("ana", "approver"), ("vic", "viewer"))
    }
    local = ModelRegistry(database, ArtifactStore(artifact_uri()), actor="eda")
    local.register("churn", b"\x08\x01", flavor="onnx", metrics={"auc": 0.8123456789012})
    local.register("churn", b"\x08\x02", flavor="onnx")
    with running_server(create_app(database, ArtifactStore(artifact_uri()))) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        yield local, tokens
    database.dispose()


def test_models_commands_work_against_a_server(served, monkeypatch):
    local, tokens = served
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["eda"])
    moved = invoke("alias", "churn", "challenger", "2", "--reason", "try")
    assert moved.exit_code == 0, moved.output
    assert "churn: challenger -> version 2" in moved.output
    assert local.get_version("churn", alias="challenger").version == 2
    assert local.audit("churn")["actor"].tolist()[-1] == "eda"

    shown = json.loads(invoke("show", "churn", "--alias", "challenger", "--json").output)
    assert shown["version"] == local.get_version("churn", 2).to_dict()
    assert shown["lineage"] == local.lineage("churn", 2).to_dict()
    first = json.loads(invoke("show", "churn", "--version", "1", "--json").output)
    assert first["version"]["metrics"] == {"auc": 0.8123456789012}
    listed = json.loads(invoke("list", "--json").output)
    assert listed == [
        {
            "name": "churn",
            "description": None,
            "latest_version": 2,
            "aliases": {"challenger": 2},
        }
    ]
    assert "1 model(s)" in invoke("list").output

    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["vic"])
    refused = invoke("approve", "churn", "champion", "2")
    assert refused.exit_code == 2
    assert "user 'vic' has role 'viewer'; this needs 'approver'" in refused.output
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["ana"])
    approved = invoke("approve", "churn", "champion", "2", "--comment", "ok")
    assert approved.exit_code == 0, approved.output
    assert "churn: 1 approval(s) for champion -> version 2" in approved.output
    assert local.audit("churn")["actor"].tolist()[-1] == "ana"
    missing = invoke("show", "ghost")
    assert missing.exit_code == 2 and "unknown model 'ghost'" in missing.output
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", "olp_forged")
    forged = invoke("list")
    assert forged.exit_code == 2 and "unknown or revoked API token" in forged.output


def test_the_json_of_the_server_and_the_local_store_is_the_same(served, monkeypatch):
    _, tokens = served
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["vic"])
    over_http = [invoke(*command, "--json").output for command in (["list"], ["show", "churn"])]
    monkeypatch.delenv("OPSLOOP_TRACKING_URI")
    on_store = [invoke(*command, "--json").output for command in (["list"], ["show", "churn"])]
    assert over_http == on_store
    assert json.loads(on_store[1])["version"]["version"] == 2


def test_an_admin_protects_an_alias_with_a_required_gate_over_the_server(served, monkeypatch):
    local, tokens = served
    _, admin = add_user(local.db, "ola", "admin")
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["eda"])
    refused = invoke("protect", "churn", "champion", "--require-gate", "credit")
    assert refused.exit_code == 2
    assert "user 'eda' has role 'editor'; this needs 'admin'" in refused.output
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", admin)
    protected = invoke(
        "protect",
        "churn",
        "champion",
        "--approvals",
        "1",
        "--require-gate",
        "credit",
        "--reason",
        "gated releases",
    )
    assert protected.exit_code == 0, protected.output
    assert (
        "churn: champion moves only with 1 approval(s) and a passed release gate 'credit'"
        in protected.output
    )
    entry = local.audit("churn").iloc[-1]
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "protect_alias",
        "ola",
        "gated releases",
    )
    assert entry["after"] == {"required_approvals": 1, "require_gate": "credit"}
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["eda"])
    moved = invoke("alias", "churn", "champion", "2")
    assert moved.exit_code == 2
    assert "needs a passed release gate 'credit'" in moved.output
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", admin)
    both = invoke("protect", "churn", "champion", "--require-gate", "x", "--require-any-gate")
    assert both.exit_code == 2 and "not both" in both.output
    # Lifting it is itself protected: another person approves exactly that first.
    ModelRegistry(local.db, local.artifacts, actor="ana").approve_protection("churn", "champion", 0)
    lifted = invoke("protect", "churn", "champion")
    assert lifted.exit_code == 0 and "churn: champion is not protected" in lifted.output
    assert local.audit("churn").iloc[-1]["after"] == {
        "required_approvals": 0,
        "require_gate": False,
        "approved_by": ["ana"],
    }
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["eda"])
    assert invoke("alias", "churn", "champion", "2").exit_code == 0


def test_protect_on_the_local_store(store_uri, monkeypatch):
    monkeypatch.delenv("OPSLOOP_TRACKING_URI", raising=False)
    database = Database(store_uri)
    local = ModelRegistry(database, ArtifactStore(artifact_uri()))
    local.register("churn", b"\x08\x01", flavor="onnx")
    protected = invoke("protect", "churn", "champion", "--require-any-gate")
    assert protected.exit_code == 0, protected.output
    assert "churn: champion moves only with a passed release gate" in protected.output
    moved = invoke("alias", "churn", "champion", "1")
    assert moved.exit_code == 2
    assert "version 1 has no gate verdict recorded" in moved.output
    database.dispose()


def test_an_alias_moves_with_approvals_of_people_other_than_its_mover(served, monkeypatch):
    local, tokens = served
    _, admin = add_user(local.db, "ola", "admin")
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", admin)
    assert invoke("protect", "churn", "champion", "--approvals", "1").exit_code == 0
    assert invoke("approve", "churn", "champion", "2").exit_code == 0
    # The admin approved the move; moving it themselves, their approval does not count.
    own = invoke("alias", "churn", "champion", "2")
    assert own.exit_code == 2
    assert (
        "alias 'champion' of model 'churn' is protected: moving it to version 2 needs 1 "
        "approval(s) from distinct approvers other than 'ola', who moves it (an applier's own "
        "approval does not count), has 0; 'ola' approved it too"
    ) in " ".join(own.output.split())
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["eda"])
    moved = invoke("alias", "churn", "champion", "2")
    assert moved.exit_code == 0, moved.output
    entry = local.audit("churn").iloc[-1]
    assert (entry["action"], entry["actor"], entry["after"]) == (
        "set_alias",
        "eda",
        {"version": 2, "approved_by": ["ola"]},
    )
    # Pointing it where it points changes nothing: no approvals, no entry.
    again = invoke("alias", "churn", "champion", "2")
    assert again.exit_code == 0 and "churn: champion -> version 2" in again.output
    assert local.audit("churn").iloc[-1]["id"] == entry["id"]


def test_four_eyes_holes_stay_closed_over_the_command_line(served, monkeypatch):
    from opsloop.registry.users import set_user_disabled
    from opsloop.serving import Deployments, Variant

    local, tokens = served
    _, admin = add_user(local.db, "ola", "admin")
    _, second = add_user(local.db, "abe", "approver")
    local.set_alias("churn", "champion", 1)
    root = Deployments(local.db, actor="ola")
    root.deploy("churn-api", [Variant("stable", "churn", alias="champion")])
    root.protect("churn-api", 1)

    def as_user(token: str, *args: str):
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", token)
        return invoke(*args)

    # A protected deployment follows the unprotected alias: moving it needs its approvals.
    refused = as_user(tokens["eda"], "alias", "churn", "champion", "2")
    assert refused.exit_code == 2
    assert (
        "alias 'champion' of model 'churn' is guarded by deployment 'churn-api': moving it to "
        "version 2 needs 1 approval(s)"
    ) in " ".join(refused.output.split())
    # An approval whose approver is disabled since no longer counts.
    assert as_user(tokens["ana"], "approve", "churn", "champion", "2").exit_code == 0
    set_user_disabled(local.db, "ana", actor="ola")
    lapsed = as_user(tokens["eda"], "alias", "churn", "champion", "2")
    assert lapsed.exit_code == 2
    assert "the approval of 'ana' no longer counts: user ana is disabled" in " ".join(
        lapsed.output.split()
    )
    assert as_user(second, "approve", "churn", "champion", "2").exit_code == 0
    assert as_user(tokens["eda"], "alias", "churn", "champion", "2").exit_code == 0
    assert local.audit("churn").iloc[-1]["after"] == {
        "version": 2,
        "approved_by": ["abe"],
        "protected_deployments": ["churn-api"],
    }
    # Lowering an alias's protection needs another person's approval of exactly that.
    assert as_user(admin, "protect", "churn", "champion", "--approvals", "1").exit_code == 0
    alone = as_user(admin, "protect", "churn", "champion")
    assert alone.exit_code == 2
    assert "opsloop models approve-protection churn champion --approvals 0" in " ".join(
        alone.output.split()
    )
    approved = as_user(second, "approve-protection", "churn", "champion", "--comment", "ok")
    assert approved.exit_code == 0, approved.output
    assert "churn: 1 approval(s) for lowering the protection of champion" in approved.output
    lifted = as_user(admin, "protect", "churn", "champion")
    assert lifted.exit_code == 0 and "churn: champion is not protected" in lifted.output
    assert local.audit("churn").iloc[-1]["after"]["approved_by"] == ["abe"]
