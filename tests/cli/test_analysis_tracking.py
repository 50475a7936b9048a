"""``opsloop analyze --run / --experiment``: the report logged to a tracked run."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeRegressor
from statsmodels.stats.stattools import durbin_watson
from typer.testing import CliRunner

from opsloop.cli.analysis import app
from opsloop.datasets import credit
from opsloop.store import ArtifactStore
from opsloop.store.location import artifact_uri
from opsloop.tracking import get_run, search_runs, start_run

FEATURES = ["age", "salary", "commission", "loan_amount"]
HLP = 0.05


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze-tracked")
    df = credit(600, seed=11).drop(columns=["applied_at", "purpose"])
    model = RandomForestClassifier(n_estimators=8, max_depth=3, random_state=0)
    model.fit(df[FEATURES], df["default"])
    skops.io.dump(model, folder / "model.skops")
    regressor = DecisionTreeRegressor(max_depth=4, random_state=0)
    regressor.fit(df[["age", "commission"]], df["salary"])
    skops.io.dump(regressor, folder / "tree.skops")
    df.to_csv(folder / "loans.csv", index=False)
    # what the CLI reads back from the CSV, so that numbers match to the last bit
    return folder, pd.read_csv(folder / "loans.csv"), model, regressor


def analyze(folder, model: str, label: str, *extra: str):
    arguments = [str(folder / model), str(folder / "loans.csv"), "--label", label, "--trust"]
    return CliRunner().invoke(app, [*arguments, *extra])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def room_by_hand(df: pd.DataFrame, wrong: np.ndarray, tag: str, value: str) -> float:
    inside = (df[tag].astype(str) == value).to_numpy()
    return max(wrong[inside].mean() - HLP, 0.0) * inside.mean()


def test_report_is_logged_to_an_existing_run(files, tmp_path):
    folder, df, model, _ = files
    with start_run("churn", name="training", capture=False) as training:
        training.log_metric("auc", 0.81)
    before = get_run(training.run_id)
    html, document = tmp_path / "report.html", tmp_path / "report.json"
    result = analyze(
        folder,
        "model.skops",
        "default",
        "--tags",
        "gender,device",
        "--hlp",
        str(HLP),
        "--html",
        str(html),
        "--json",
        str(document),
        "--run",
        training.run_id,
    )
    assert result.exit_code == 0, result.output
    assert f"Report logged to run {training.run_id}" in result.output

    run = get_run(training.run_id)
    artifacts = {a.path: a for a in run.artifacts}
    assert sorted(artifacts) == ["analysis.html", "analysis.json"]
    assert artifacts["analysis.html"].sha256 == sha256(html)
    assert artifacts["analysis.json"].sha256 == sha256(document)
    assert artifacts["analysis.html"].size == html.stat().st_size
    stored = ArtifactStore(artifact_uri())
    assert stored.get_bytes(artifacts["analysis.json"].sha256) == document.read_bytes()

    report = json.loads(document.read_text())
    wrong = (model.predict(df[FEATURES]) != df["default"].to_numpy()).astype(float)
    top = next(row for row in report["errors"]["rows"] if not row["small"])
    assert run.metrics == {
        "auc": 0.81,
        "analysis.n": 600.0,
        "analysis.error_rate": report["errors"]["error_rate"],
        "analysis.baseline_error_rate": HLP,
        "analysis.top_room": top["room"],
    }
    assert run.metrics["analysis.error_rate"] == pytest.approx(wrong.mean(), abs=1e-15)
    assert run.metrics["analysis.top_room"] == pytest.approx(
        room_by_hand(df, wrong, top["tag"], top["value"]), abs=1e-12
    )
    assert run.tags["analysis.top_slice"] == f"{top['tag']} = {top['value']}"
    assert f"{top['tag']} = {top['value']}" in result.output  # the printed headline
    assert run.tags["analysis.model"] == "model.skops"
    # the run was finished and stays so, with its end time
    assert (run.status, run.end_ms) == ("FINISHED", before.end_ms)


def test_regression_report_starts_a_run_in_an_experiment(files, tmp_path):
    folder, df, _, regressor = files
    document = tmp_path / "regression.json"
    result = analyze(
        folder, "tree.skops", "salary", "--experiment", "credit-analysis", "--json", str(document)
    )
    assert result.exit_code == 0, result.output
    found = search_runs("credit-analysis")
    assert len(found) == 1
    run = get_run(found["run_id"].iloc[0])
    assert run.status == "FINISHED" and run.name == "analysis of tree.skops"
    assert f"Report logged to run {run.run_id} in experiment 'credit-analysis'" in result.output
    artifacts = {a.path: a for a in run.artifacts}
    assert artifacts["analysis.json"].sha256 == sha256(document)
    page = ArtifactStore(artifact_uri()).get_bytes(artifacts["analysis.html"].sha256)
    assert hashlib.sha256(page).hexdigest() == artifacts["analysis.html"].sha256
    assert b'id="residuals-fitted"' in page

    residuals = df["salary"].to_numpy() - regressor.predict(df[["age", "commission"]])
    assert set(run.metrics) == {
        "analysis.n",
        "analysis.residual_mean",
        "analysis.residual_std",
        "analysis.durbin_watson",
    }
    assert run.metrics["analysis.n"] == 600.0
    assert run.metrics["analysis.residual_mean"] == pytest.approx(residuals.mean(), abs=1e-6)
    assert run.metrics["analysis.residual_std"] == pytest.approx(residuals.std(ddof=1), rel=1e-12)
    assert run.metrics["analysis.durbin_watson"] == pytest.approx(
        durbin_watson(residuals), rel=1e-12
    )
    report = json.loads(document.read_text())["residuals"]
    assert run.metrics["analysis.residual_std"] == report["residual_std"]
    assert "analysis.top_slice" not in run.tags


def test_unknown_run_is_one_line_and_exit_2(files, tmp_path):
    folder, _, _, _ = files
    html = tmp_path / "never.html"
    result = analyze(folder, "model.skops", "default", "--run", "nope", "--html", str(html))
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown run id 'nope'"
    assert not html.exists()


def test_run_and_experiment_together_are_refused(files):
    folder, _, _, _ = files
    result = analyze(folder, "model.skops", "default", "--run", "r", "--experiment", "e")
    assert result.exit_code == 2
    assert "give --run (an existing run) or --experiment (a new run), not both" in result.output
    assert search_runs().empty


def test_a_registered_model_is_analysed_by_alias_version_or_source_run(files, tmp_path):
    from opsloop.registry import open_registry

    folder, _, model, _ = files
    with start_run("churn", name="training", capture=False) as training:
        training.log_metric("auc", 0.81)
    registry = open_registry()
    registry.register("churn", model, run_id=training.run_id)
    registry.set_alias("churn", "champion", 1)
    expected = analyze(folder, "model.skops", "default", "--json", str(tmp_path / "file.json"))
    assert expected.exit_code == 0, expected.output
    from_file = json.loads((tmp_path / "file.json").read_text())
    for reference, name in (
        ("models:/churn@champion", "churn@champion"),
        ("models:/churn/1", "churn v1"),
        (f"runs:/{training.run_id}", f"churn v1 (run {training.run_id})"),
    ):
        out = tmp_path / "registered.json"
        result = CliRunner().invoke(
            app,
            [reference, str(folder / "loans.csv"), "--label", "default", "--json", str(out)],
        )
        assert result.exit_code == 0, result.output
        document = json.loads(out.read_text())
        assert document["title"] == f"Analysis of {name} on loans.csv"
        # the same model, loaded from the registry, gives the same analysis
        assert {k: v for k, v in document.items() if k != "title"} == {
            k: v for k, v in from_file.items() if k != "title"
        }


def test_unknown_registry_references_are_one_line_and_exit_2(files):
    folder = files[0]
    for reference, message in (
        ("models:/nope@champion", "unknown model 'nope'"),
        ("models:/nope", "give models:/NAME/VERSION or models:/NAME@ALIAS"),
        ("runs:/abc", "no registered model version comes from run abc"),
    ):
        result = CliRunner().invoke(
            app, [reference, str(folder / "loans.csv"), "--label", "default"]
        )
        assert result.exit_code == 2
        assert message in result.output
