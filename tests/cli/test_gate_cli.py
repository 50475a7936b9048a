"""``opsloop gate run`` on registered versions trained on scikit-learn's breast cancer data:
exit codes, output formats, and the verdict recorded in the candidate's audit trail."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.registry import ModelRegistry, add_user, verify_audit_log
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.store.location import artifact_uri
from opsloop.tracking.dataset_digest import dataset_sha256

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

FEATURES = list(load_breast_cancer().feature_names)
WEAK = ["mean symmetry", "mean fractal dimension"]
GATE = """\
version: 4
name: cancer
label: target
checks:
  - kind: non_inferiority
    metric: auc
    margin: 0.02
  - kind: floor
    metric: auc
    min: 0.9
  - kind: slices
    tags: [size]
    margin: 0.05
  - kind: data_contract
    ignore: [out_of_range]
"""
runner = CliRunner()
# What the served fixture opened: the server's URL and its users' tokens.
_SERVED: dict = {}


@pytest.fixture(scope="module")
def models():
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = pd.qcut(frame["mean radius"], 3, labels=["small", "medium", "large"]).astype(
        str
    )
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["target"])

    def fit(columns, C=1.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        return model.fit(train[columns], train["target"]), train[columns]

    return {
        "baseline": fit(FEATURES),
        "good": fit(FEATURES, C=0.3),
        "weak": fit(WEAK),
        "test": test.reset_index(drop=True),
        "train": train.reset_index(drop=True),
    }


@pytest.fixture
def files(models, store_uri, tmp_path):
    """Versions 1 (champion), 2 (good) and 3 (weak) of model 'cancer'; the gate and data."""
    database = Database(store_uri)
    registry = ModelRegistry(database, ArtifactStore(artifact_uri()), actor="ci")
    for name in ("baseline", "good", "weak"):
        model, inputs = models[name]
        registry.register("cancer", model, input_schema=inputs, output_type="int")
    registry.set_alias("cancer", "champion", 1)
    gate, data = tmp_path / "gate.yaml", tmp_path / "eval.csv"
    gate.write_text(GATE)
    models["test"].to_csv(data, index=False)
    yield registry, gate, data
    database.dispose()


def gate_run(gate, data, *args):
    return runner.invoke(app, ["gate", "run", str(gate), "--data", str(data), *args])


def test_a_good_candidate_passes_and_the_pass_is_recorded(files):
    registry, gate, data = files
    result = gate_run(gate, data, "--candidate", "models:/cancer/2")
    assert result.exit_code == 0, result.output
    assert "gate cancer v4: PASSED, cancer v2 against cancer v1 (cancer@champion)" in result.output
    assert "auc non-inferiority (delong)" in result.output
    entry = registry.audit("cancer").iloc[-1]
    assert (entry["action"], entry["entity"]) == ("gate_passed", "model:cancer/version:2")
    recorded = entry["after"]
    assert recorded["gate_sha256"] == hashlib.sha256(GATE.encode()).hexdigest()
    assert recorded["gate_version"] == 4 and recorded["failed"] == []
    assert recorded["baseline"] == {"model": "cancer", "version": 1}
    assert recorded["data_sha256"] == dataset_sha256(pd.read_csv(data))
    assert verify_audit_log(registry.db).ok


def test_a_worse_candidate_exits_1_with_the_failed_checks_as_json(files):
    registry, gate, data = files
    page = gate.parent / "gate.html"
    result = gate_run(
        gate, data, "--candidate", "models:/cancer/3", "--format", "json", "--html", str(page)
    )
    assert result.exit_code == 1, result.output
    assert "gate cancer v4: FAILED, cancer v3 against cancer v1" in page.read_text()
    document = json.loads(result.stdout)
    assert document["passed"] is False
    failed = [c["name"] for c in document["checks"] if c["verdict"] == "fail"]
    assert failed == [
        "auc non-inferiority (delong)",
        "auc >= 0.9",
        "no slice of size worse by more than 0.05 (level 0.05)",
    ]
    auc = document["checks"][0]
    assert auc["threshold"] == 0.02 and auc["p_value"] > 0.05
    assert auc["evidence"]["baseline"] > 0.99 > 0.8 > auc["evidence"]["candidate"]
    entry = registry.audit("cancer").iloc[-1]
    assert (entry["action"], entry["after"]["failed"]) == ("gate_failed", failed)


def test_github_annotations_name_each_failed_check(files):
    _, gate, data = files
    result = gate_run(gate, data, "--candidate", "models:/cancer/3", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error title=gate check failed::auc non-inferiority (delong): ")
    assert lines[1].startswith("::error title=gate check failed::auc >= 0.9: auc 0.706")
    assert lines[-1].startswith("::error title=release gate::gate cancer v4: FAILED")


def test_junit_and_markdown_for_ci(files):
    import xml.etree.ElementTree as ET

    _, gate, data = files
    junit, markdown = gate.parent / "gate.xml", gate.parent / "gate.md"
    result = gate_run(
        gate,
        data,
        "--candidate",
        "models:/cancer/3",
        "--format",
        "markdown",
        "--junit",
        str(junit),
        "--markdown",
        str(markdown),
        "--no-record",
    )
    assert result.exit_code == 1
    assert result.stdout == markdown.read_text()
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][2:]
    assert [row.split(" | ")[1] for row in rows] == ["❌ fail", "❌ fail", "❌ fail", "✅ pass"]
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "3")
    failed = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failed == [
        "auc non-inferiority (delong)",
        "auc >= 0.9",
        "no slice of size worse by more than 0.05 (level 0.05)",
    ]


def test_an_explicit_baseline_and_no_record(files):
    registry, gate, data = files
    before = len(registry.audit("cancer"))
    result = gate_run(
        gate,
        data,
        "--candidate",
        "models:/cancer@champion",
        "--baseline",
        "models:/cancer/2",
        "--no-record",
        "--json",
        str(gate.parent / "out.json"),
    )
    assert result.exit_code == 0, result.output
    assert json.loads((gate.parent / "out.json").read_text())["baseline"] == "cancer v2"
    assert len(registry.audit("cancer")) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("margin: 0.02", "margin: -1"),
            "error: gate.yaml: checks[0].margin must be a number >= 0",
        ),
        (("kind: floor", "kind: ceiling"), "error: gate.yaml: checks[1].kind: 'ceiling' is not"),
        (("label: target", "label: outcome"), "error: eval.csv has no label column 'outcome'"),
        (("version: 4", "version: four"), "error: gate.yaml: version must be an integer >= 1"),
    ],
)
def test_a_bad_gate_exits_2_with_one_line_naming_the_field(files, change, message):
    registry, gate, data = files
    gate.write_text(GATE.replace(*change))
    result = gate_run(gate, data, "--candidate", "models:/cancer/2")
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert registry.audit("cancer")["action"].iloc[-1] == "set_alias"  # nothing recorded


def test_unknown_versions_and_a_missing_champion_exit_2(files):
    _, gate, data = files
    unknown = gate_run(gate, data, "--candidate", "models:/cancer/9")
    assert unknown.exit_code == 2 and "model 'cancer' has no version 9" in unknown.output
    gate.write_text(GATE.replace("label: target", "label: target\nbaseline: production"))
    missing = gate_run(gate, data, "--candidate", "models:/cancer/2")
    assert missing.exit_code == 2
    assert "has no alias 'production': the gate's baseline is models:/cancer@production" in (
        missing.output
    )
    bad_format = gate_run(gate, data, "--candidate", "models:/cancer/2", "--format", "xml")
    assert (
        bad_format.exit_code == 2
        and "--format must be one of table, json, github, markdown" in (bad_format.output)
    )


def test_the_label_option_overrides_the_gate_file(files, tmp_path):
    _, gate, data = files
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(data).rename(columns={"target": "malignant"}).to_csv(renamed, index=False)
    result = gate_run(gate, renamed, "--candidate", "models:/cancer/2", "--label", "malignant")
    assert result.exit_code == 0, result.output
    assert np.isfinite(
        json.loads(
            gate_run(
                gate,
                renamed,
                "--candidate",
                "models:/cancer/2",
                "--label",
                "malignant",
                "--format",
                "json",
                "--no-record",
            ).stdout
        )["checks"][0]["statistic"]
    )


def test_the_evaluation_data_can_be_a_runs_artifact(files):
    from opsloop.tracking import start_run

    registry, gate, data = files
    with start_run("evaluation", capture=False) as run:
        run.backend.log_artifact(run.run_id, data.read_bytes(), "holdout/eval.csv")
    reference = f"runs:/{run.run_id}/holdout/eval.csv"
    result = gate_run(gate, reference, "--candidate", "models:/cancer/2")
    assert result.exit_code == 0, result.output
    entry = registry.audit("cancer").iloc[-1]
    assert entry["after"]["data"] == reference
    assert entry["after"]["data_sha256"] == dataset_sha256(pd.read_csv(data))
    missing = gate_run(gate, f"runs:/{run.run_id}/other.csv", "--candidate", "models:/cancer/2")
    assert missing.exit_code == 2 and "logged no artifact 'other.csv'" in missing.output


@pytest.fixture
def served(models, store_uri, tmp_path, monkeypatch):
    """A server on its own store and artifact folder (nothing of it in this OPSLOOP_HOME)
    holding versions 1 (champion), 2 (good) and 3 (weak) of 'cancer', its champion alias
    protected by the gate 'cancer'; this side reaches it with a gatekeeper's token (CI's),
    and ``_SERVED["tokens"]`` holds the editor's too."""
    database = Database(store_uri)
    artifacts = ArtifactStore(tmp_path / "server-artifacts")
    add_user(database, "owner", "admin")
    _, editor = add_user(database, "eda", "editor")
    _, gatekeeper = add_user(database, "ci", "gatekeeper")
    _SERVED["tokens"] = {"eda": editor, "ci": gatekeeper}
    registry = ModelRegistry(database, artifacts, actor="owner")
    for name in ("baseline", "good", "weak"):
        model, inputs = models[name]
        registry.register("cancer", model, input_schema=inputs, output_type="int")
    registry.set_alias("cancer", "champion", 1)
    registry.protect_alias("cancer", "champion", 0, require_gate="cancer")
    gate, data = tmp_path / "gate.yaml", tmp_path / "eval.csv"
    gate.write_text(GATE + "  - {kind: budget, max_size_mb: 5, max_p99_ms: 1000, rows: 50}\n")
    models["test"].to_csv(data, index=False)
    with running_server(create_app(database, artifacts)) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", gatekeeper)
        _SERVED["url"] = url
        yield registry, gate, data
    database.dispose()


def test_against_a_server_the_gate_loads_measures_and_records_through_it(served):
    registry, gate, data = served
    result = gate_run(gate, data, "--candidate", "models:/cancer/2", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["candidate"] == "cancer v2" and document["baseline"] == (
        "cancer v1 (cancer@champion)"
    )
    budget = document["checks"][-1]
    version = registry.get_version("cancer", 2)
    assert budget["kind"] == "budget" and budget["passed"]
    assert budget["evidence"]["size_bytes"] == version.artifact_size
    assert budget["evidence"]["rows"] == 50 and budget["evidence"]["p99_ms"] > 0
    entry = registry.audit("cancer").iloc[-1]
    assert (entry["action"], entry["entity"], entry["actor"]) == (
        "gate_passed",
        "model:cancer/version:2",
        "ci",
    )
    assert entry["after"]["gate"] == "cancer" and entry["after"]["recorder_role"] == "gatekeeper"
    assert entry["after"]["baseline"] == {"model": "cancer", "version": 1}
    # The protected champion moves to what passed, and refuses what failed, naming it.
    moved = runner.invoke(
        app,
        ["models", "alias", "cancer", "champion", "2"],
        env={"OPSLOOP_TRACKING_TOKEN": _SERVED["tokens"]["eda"]},
    )
    assert moved.exit_code == 0, moved.output
    assert registry.get_version("cancer", alias="champion").version == 2
    failed = gate_run(gate, data, "--candidate", "models:/cancer/3")
    assert failed.exit_code == 1, failed.output
    refused = runner.invoke(app, ["models", "alias", "cancer", "champion", "3"])
    assert refused.exit_code != 0
    assert "moving it to version 3 needs a passed release gate 'cancer' against version 2" in (
        " ".join(refused.output.split())
    )
    assert registry.get_version("cancer", alias="champion").version == 2
    assert verify_audit_log(registry.db).ok
    # Nothing came from, or went to, an artifact folder on this side.
    here = Path(artifact_uri())
    assert not here.exists() or not any(here.rglob("*"))


def test_against_a_server_a_budget_over_its_bound_fails(served):
    registry, gate, data = served
    gate.write_text(GATE + "  - {kind: budget, max_size_mb: 0.0001, rows: 20}\n")
    result = gate_run(
        gate,
        data,
        "--candidate",
        "models:/cancer/2",
        "--no-record",
        "--json",
        str(gate.parent / "out.json"),
    )
    assert result.exit_code == 1, result.output
    budget = json.loads((gate.parent / "out.json").read_text())["checks"][-1]
    size_mb = registry.get_version("cancer", 2).artifact_size / 1e6
    assert not budget["passed"]
    assert budget["reason"] == f"artifact {size_mb:.4g} MB is above 0.0001 MB"


ATTACKS = """\
version: 1
name: attacks
label: target
checks:
  - kind: robustness
    attack: random_search
    epsilon: 0.2
    min_accuracy: {floor}
    rows: 40
    queries: 20
  - kind: privacy
    attack: threshold
    max_advantage: 0.3
"""


def test_robustness_and_privacy_checks_with_the_training_rows(files, models, tmp_path):
    registry, _, data = files
    members = tmp_path / "train.csv"
    models["train"].to_csv(members, index=False)
    gate = tmp_path / "attacks.yaml"
    gate.write_text(ATTACKS.format(floor=0.3))
    args = ("--candidate", "models:/cancer/2", "--members", str(members), "--format", "json")
    passed = gate_run(gate, data, *args)
    assert passed.exit_code == 0, passed.output
    robustness, privacy = json.loads(passed.output)["checks"]
    assert robustness["kind"] == "robustness" and robustness["evidence"]["rows"] == 40
    assert robustness["evidence"]["candidate"]["constrained_by_schema"] is True
    assert privacy["evidence"]["members"] == len(models["train"])
    assert privacy["evidence"]["members_source"]["sha256"] == dataset_sha256(pd.read_csv(members))
    assert registry.audit("cancer").iloc[-1]["after"]["members_sha256"] == dataset_sha256(
        pd.read_csv(members)
    )
    # A floor the attack breaks: exit 1, the failed check named.
    gate.write_text(ATTACKS.format(floor=0.99))
    failed = gate_run(gate, data, *args)
    assert failed.exit_code == 1, failed.output
    (check,) = [c for c in json.loads(failed.output)["checks"] if c["verdict"] == "fail"]
    assert check["kind"] == "robustness" and "is below the floor 0.99" in check["reason"]
    # Without the training rows, the gate cannot run: exit 2, naming what it needs.
    missing = gate_run(gate, data, "--candidate", "models:/cancer/2")
    assert missing.exit_code == 2
    assert "a privacy check needs the candidate's training rows" in missing.output


def test_against_a_server_an_editors_pass_is_recorded_but_does_not_count(served, models):
    """A pass recorded by an editor, by ``opsloop gate run`` or by hand over HTTP, stays in
    the audit log and does not move the protected alias; the gatekeeper's pass does."""
    import httpx

    registry, gate, data = served
    editor = {"OPSLOOP_TRACKING_TOKEN": _SERVED["tokens"]["eda"]}
    run = runner.invoke(
        app,
        ["gate", "run", str(gate), "--data", str(data), "--candidate", "models:/cancer/2"],
        env=editor,
    )
    assert run.exit_code == 0, run.output
    assert registry.audit("cancer").iloc[-1]["after"]["recorder_role"] == "editor"
    sha = hashlib.sha256(gate.read_bytes()).hexdigest()
    made = {
        "gate": "cancer",
        "gate_sha256": sha,
        "data_sha256": "d" * 64,
        "baseline": {"model": "cancer", "version": 1},
        "failed": [],
    }
    api = _SERVED["url"] + "/api/v1/models/cancer/versions/2/gates"
    headers = {"Authorization": "Bearer " + _SERVED["tokens"]["eda"]}
    recorded = httpx.post(api, json={"passed": True, "gate": made}, headers=headers)
    assert recorded.status_code == 201, recorded.text
    # The role is the registry's to write: an editor claiming another is a 422 naming it.
    claimed = httpx.post(
        api,
        json={"passed": True, "gate": {**made, "recorder_role": "gatekeeper"}},
        headers=headers,
    )
    assert claimed.status_code == 422
    assert "recorder_role is set by the registry" in claimed.text
    moved = runner.invoke(app, ["models", "alias", "cancer", "champion", "2"], env=editor)
    assert moved.exit_code == 2
    said = " ".join(moved.output.split())
    assert "version 2 has no gate verdict of 'cancer' against version 1 that counts" in said
    assert "recorded by 'eda' as editor" in said
    # A gatekeeper's hand-made pass without the data's sha256 does not count either.
    bare = {k: v for k, v in made.items() if k != "data_sha256"}
    ci_headers = {"Authorization": "Bearer " + _SERVED["tokens"]["ci"]}
    assert (
        httpx.post(api, json={"passed": True, "gate": bare}, headers=ci_headers).status_code == 201
    )
    moved = runner.invoke(app, ["models", "alias", "cancer", "champion", "2"], env=editor)
    assert moved.exit_code == 2
    assert "recorded by 'ci' without the data's sha256" in " ".join(moved.output.split())
    # CI's run of the gate, under the gatekeeper's token, counts.
    ci = gate_run(gate, data, "--candidate", "models:/cancer/2")
    assert ci.exit_code == 0, ci.output
    moved = runner.invoke(app, ["models", "alias", "cancer", "champion", "2"], env=editor)
    assert moved.exit_code == 0, moved.output
    assert registry.get_version("cancer", alias="champion").version == 2
    assert verify_audit_log(registry.db).ok
