"""``opsloop deployments`` through typer's runner on a store per test."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tests.clock import FakeClock
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.deployments import deployments_app
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments
from opsloop.store import ArtifactStore, open_database
from opsloop.store.database import now_ms
from opsloop.store.location import artifact_uri
from opsloop.tracking.capture import current_user

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(deployments_app, list(args))


@pytest.fixture
def clock(store_uri) -> Iterator[FakeClock]:
    """The clock of the store the commands open (request it before the fixtures that write)."""
    database = open_database()
    database.clock = FakeClock()
    yield database.clock
    database.clock = now_ms  # the store stays open in this process for later tests


@pytest.fixture
def credit(store_uri):
    registry = ModelRegistry(open_database(), ArtifactStore(artifact_uri()))
    for number in (1, 2):
        registry.register("credit", f"model {number}".encode(), flavor="onnx")
    registry.set_alias("credit", "champion", 1)
    return registry


def test_deploy_show_list_lineage_history_and_retire(clock, credit):
    before = clock.advance()
    clock.advance()
    made = invoke(
        "deploy",
        "credit-api",
        "--variant",
        "stable=credit@champion,weight=0.95",
        "--variant",
        "canary=credit/2,role=candidate,weight=0.05",
        "--strategy",
        "canary",
        "--reason",
        "try v2",
    )
    assert made.exit_code == 0, made.output
    assert made.output.strip() == ("credit-api (canary): stable -> version 1, canary -> version 2")
    shown = json.loads(invoke("show", "credit-api", "--json").output)
    assert shown == Deployments(credit.db).get("credit-api").to_dict()
    assert shown["updated_by"] == current_user()
    table = invoke("show", "credit-api")
    assert "credit-api: canary, full_automation" in table.output
    assert "credit@champion" in table.output
    listed = json.loads(invoke("list", "--json").output)
    assert [row["name"] for row in listed] == ["credit-api"]
    lineage = json.loads(invoke("lineage", "credit-api", "--json").output)
    expected = [entry.to_dict() for entry in Deployments(credit.db).lineage("credit-api")]
    assert lineage == expected
    assert [(row["variant"], row["version"]) for row in lineage] == [("stable", 1), ("canary", 2)]
    assert "lineage of credit-api" in invoke("lineage", "credit-api").output
    earlier = invoke("show", "credit-api", "--at", str(before))
    assert earlier.exit_code == 2
    assert "did not exist at" in earlier.output
    between = clock.advance()
    clock.advance()
    retired = invoke("retire", "credit-api", "--reason", "done")
    assert retired.exit_code == 0 and "retired" in retired.output
    history = json.loads(invoke("history", "credit-api", "--json").output)
    assert [(row["action"], row["reason"]) for row in history] == [
        ("deploy", "try v2"),
        ("retire", "done"),
    ]
    assert "history of credit-api" in invoke("history", "credit-api").output
    then = json.loads(invoke("show", "credit-api", "--at", str(between), "--json").output)
    assert (then["strategy"], then["serving"]) == ("canary", {"stable": 1, "canary": 2})
    assert invoke("show", "credit-api", "--at", str(clock.advance())).exit_code == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--variant", "stable=credit"], "the model must be MODEL/VERSION or MODEL@ALIAS"),
        (["--variant", "stable=credit/9"], "variant 'stable': model 'credit' has no version 9"),
        (
            ["--variant", "a=credit/1", "--variant", "b=credit/2,role=candidate,weight=0"],
            "strategy 'single': needs exactly one variant",
        ),
        (["--variant", "a=credit/1", "--strategy", "rolling"], "strategy must be one of"),
        (
            ["--variant", "a=credit/1", "--variant", "b=credit/2,role=shadow,weight=0,sample=0"],
            "variant 'b': shadow_sample: must be a share in (0, 1], got 0.0",
        ),
    ],
)
def test_a_bad_definition_is_one_line_and_exit_code_2(credit, arguments, message):
    result = invoke("deploy", "credit-api", *arguments)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert Deployments(credit.db).list().empty


def test_an_unknown_deployment_or_a_bad_time_exits_2(credit):
    missing = invoke("show", "nothing")
    assert missing.exit_code == 2 and "no deployment named 'nothing'" in missing.output
    bad_time = invoke("show", "nothing", "--at", "yesterday")
    assert bad_time.exit_code == 2 and "--at: give milliseconds" in bad_time.output


def test_at_reads_an_iso_time(credit):
    assert invoke("deploy", "api", "--variant", "stable=credit/1").exit_code == 0
    old = invoke("show", "api", "--at", "2020-01-01T00:00:00")
    assert old.exit_code == 2 and "did not exist at 2020-01-01T00:00:00" in old.output
    later = invoke("show", "api", "--at", "2999-01-01T00:00:00+00:00", "--json")
    assert json.loads(later.output)["serving"] == {"stable": 1}


def test_protect_approve_and_deploy(credit):
    from opsloop.registry import add_user

    me = current_user()
    add_user(credit.db, me, "admin")  # the command line acts as the OS user
    add_user(credit.db, "ana", "approver")
    assert invoke("protect", "api", "1", "--reason", "production").exit_code == 0
    arguments = ["--variant", "stable=credit@champion"]
    refused = invoke("deploy", "api", *arguments)
    assert refused.exit_code == 2
    assert "deployment 'api' is protected: this definition needs 1 approval(s)" in refused.output
    approved = invoke("approve", "api", *arguments, "--comment", "checked")
    assert approved.exit_code == 0 and "1 approval(s) for this definition" in approved.output
    # Four eyes: the deployer's own approval is recorded but does not count.
    own = invoke("deploy", "api", *arguments)
    assert own.exit_code == 2
    assert (
        f"needs 1 approval(s) from distinct approvers other than {me!r}, who applies it (an "
        f"applier's own approval does not count), has 0; {me!r} approved it too"
    ) in " ".join(own.output.split())
    # getpass reads LOGNAME first: the command acts as ana.
    by_ana = runner.invoke(deployments_app, ["approve", "api", *arguments], env={"LOGNAME": "ana"})
    assert by_ana.exit_code == 0 and "2 approval(s) for this definition" in by_ana.output
    made = invoke("deploy", "api", *arguments)
    assert made.exit_code == 0, made.output
    assert json.loads(invoke("show", "api", "--json").output)["required_approvals"] == 1
    last = Deployments(credit.db).history("api").iloc[-1]
    assert (last["action"], last["actor"], last["after"]["approved_by"]) == ("deploy", me, ["ana"])


def test_protect_with_a_required_gate(credit):
    from opsloop.registry import add_user

    add_user(credit.db, current_user(), "admin")  # the command line acts as the OS user
    add_user(credit.db, "ana", "approver")
    approver = Deployments(credit.db, actor="ana")
    both = invoke("protect", "api", "0", "--require-gate", "credit", "--require-any-gate")
    assert both.exit_code == 2 and "not both" in both.output
    protected = invoke("protect", "api", "0", "--require-gate", "credit", "--reason", "gated")
    assert protected.exit_code == 0, protected.output
    assert "api: changes need a passed release gate 'credit'" in protected.output
    refused = invoke("deploy", "api", "--variant", "stable=credit/1")
    assert refused.exit_code == 2
    assert (
        "variant 'stable' would serve version 1 of model 'credit', which needs a passed "
        "release gate 'credit'; version 1 has no gate verdict of 'credit' recorded"
    ) in " ".join(refused.output.split())
    verdict = {"gate": "credit", "gate_sha256": "a" * 64, "data_sha256": "b" * 64, "failed": []}
    credit.record_gate("credit", 1, passed=True, gate=verdict)  # an admin's verdict counts
    made = invoke("deploy", "api", "--variant", "stable=credit/1")
    assert made.exit_code == 0, made.output
    shown = invoke("show", "api")
    assert "api: single, full_automation, requires a passed release gate 'credit'" in (
        " ".join(shown.output.split())
    )
    assert json.loads(invoke("show", "api", "--json").output)["required_gate"] == "credit"
    # Any gate in place of 'credit' loosens the gate: another person approves it first.
    approver.approve_protection("api", 1, require_gate=True)
    anyone = invoke("protect", "api", "1", "--require-any-gate")
    assert anyone.exit_code == 0
    assert "api: changes need 1 approval(s) and a passed release gate" in anyone.output
    history = Deployments(credit.db).history("api")
    assert history.iloc[-1]["after"] == {
        "required_approvals": 1,
        "require_gate": True,
        "approved_by": ["ana"],
    }
    approver.approve_protection("api", 0)
    lifted = invoke("protect", "api", "0")
    assert lifted.exit_code == 0 and "api: changes need 0 approval(s)" in lifted.output


def test_a_shadow_answering_a_share_of_the_copies_is_deployed_and_shown(credit):
    made = invoke(
        "deploy",
        "api",
        "--variant",
        "stable=credit/1",
        "--variant",
        "copy=credit/2,role=shadow,weight=0,sample=0.25",
        "--strategy",
        "shadow",
    )
    assert made.exit_code == 0, made.output
    shown = json.loads(invoke("show", "api", "--json").output)
    assert [v["shadow_sample"] for v in shown["variants"]] == [1.0, 0.25]
    table = invoke("show", "api").output
    assert "shadow_sample" in table and "0.25" in table
    listed = json.loads(invoke("list", "--json").output)
    assert listed[0]["variants"] == (
        "stable=credit/1 (primary, 1); copy=credit/2 (shadow, 0, sample 0.25)"
    )


def test_switch_moves_all_traffic_to_the_standby_and_back(credit):
    deployed = invoke(
        "deploy",
        "bg",
        "--variant",
        "blue=credit/1,weight=1",
        "--variant",
        "green=credit/2,role=candidate,weight=0",
        "--strategy",
        "blue_green",
    )
    assert deployed.exit_code == 0, deployed.output
    there = invoke("switch", "bg", "--reason", "v2 goes live")
    assert there.exit_code == 0, there.output
    assert there.output.strip() == "bg: green takes all the traffic (version 2)"
    back = invoke("switch", "bg")
    assert back.output.strip() == "bg: blue takes all the traffic (version 1)"
    history = Deployments(credit.db).history("bg")
    assert history["reason"].tolist() == [None, "v2 goes live", "switch blue/green: green -> blue"]
    assert invoke("deploy", "one", "--variant", "stable=credit/1").exit_code == 0
    refused = invoke("switch", "one")
    assert refused.exit_code == 2
    assert refused.output.startswith("error: strategy: deployment 'one' is 'single'")


def test_history_shows_a_rollbacks_sentence_and_its_evidence_on_request(credit):
    from types import SimpleNamespace

    from opsloop.serving import Variant
    from opsloop.serving.rollout_observer import RolloutObserver

    deployments = Deployments(credit.db)
    deployments.deploy(
        "api",
        [Variant("stable", "credit", version=1, weight=0.9),
         Variant("canary", "credit", version=2, role="candidate", weight=0.1)],
        strategy="canary",
    )  # fmt: skip
    deployments.set_rollout("api", steps=[0.5, 1.0], min_requests=10, reason="ramp it")
    observer = RolloutObserver(credit.db, deployments)
    while deployments.rollout("api")["state"]["status"] == "ramping":
        served = SimpleNamespace(definition=deployments.get("api"))
        observer.observe(served, "canary", failed=True, latency_ms=1.0)
    rows = json.loads(invoke("history", "api", "--json").output)
    stored = rows[-1]["reason"]
    sentence, _, evidence = stored.partition(" evidence=")
    assert sentence.startswith("rollout: gate 'errors' failed") and json.loads(evidence)["gates"]
    # The table's reason is the sentence; the evidence only with --evidence.
    plain = runner.invoke(deployments_app, ["history", "api"], terminal_width=4000).output
    assert sentence in plain and "evidence=" not in plain
    assert max(len(line) for line in plain.splitlines()) < len(stored)
    full = runner.invoke(
        deployments_app, ["history", "api", "--evidence"], terminal_width=4000
    ).output
    assert "evidence=" in full and max(len(line) for line in full.splitlines()) > len(stored)


def test_lowering_a_protection_needs_another_persons_approval(credit):
    from opsloop.registry import add_user

    add_user(credit.db, current_user(), "admin")
    add_user(credit.db, "ana", "approver")
    assert invoke("deploy", "api", "--variant", "stable=credit/1").exit_code == 0
    assert invoke("protect", "api", "1").exit_code == 0
    alone = invoke("protect", "api", "0")
    assert alone.exit_code == 2
    assert (
        "deployment 'api' is protected by 1 approval(s): lowering it to no protection needs 1 "
        "approval(s)"
    ) in " ".join(alone.output.split())
    # The admin's own approval is recorded, never counted toward their own change.
    own = invoke("approve-protection", "api", "0", "--comment", "mine")
    assert own.exit_code == 0, own.output
    assert "api: 1 approval(s) for lowering its protection" in own.output
    assert invoke("protect", "api", "0").exit_code == 2
    assert invoke("approve-protection", "api", "-1").exit_code != 0
    Deployments(credit.db, actor="ana").approve_protection("api", 0)
    lifted = invoke("protect", "api", "0")
    assert lifted.exit_code == 0, lifted.output
    assert Deployments(credit.db).history("api").iloc[-1]["after"]["approved_by"] == ["ana"]
