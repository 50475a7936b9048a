"""``--html --run RUN_ID``: the report is logged to the run and listed with the reports."""

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import opsloop
from opsloop.cli.app import app
from opsloop.tracking import tracking_backend


def _data(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(0, 1, 500)}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"x": rng.normal(2, 1, 500)}).to_csv(tmp_path / "cur.csv", index=False)


def test_drift_html_run_logs_the_report_to_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    _data(tmp_path)
    with opsloop.start_run(experiment="drift-checks") as run:
        pass
    result = CliRunner().invoke(
        app, ["drift", "ref.csv", "cur.csv", "--html", "drift.html", "--run", run.run_id]
    )
    assert result.exit_code == 0, result.output
    backend = tracking_backend()
    listed = backend.search_artifacts(suffix=".html", max_results=10, offset=0)
    assert listed["path"].tolist() == ["drift.html"]
    assert listed["run_id"].tolist() == [run.run_id]
    logged = backend.get_run(run.run_id)
    assert logged.status == "FINISHED"  # the run stays as it was
    (artifact,) = logged.artifacts
    assert backend.read_artifact(artifact.sha256) == (tmp_path / "drift.html").read_bytes()


def test_run_without_html_or_an_unknown_run_is_refused_before_the_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    _data(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["drift", "ref.csv", "cur.csv", "--run", "abc"])
    assert result.exit_code == 2
    assert "--run needs --html" in result.output
    result = runner.invoke(
        app, ["drift", "ref.csv", "cur.csv", "--html", "d.html", "--run", "no-such-run"]
    )
    assert result.exit_code == 2
    assert "no-such-run" in result.output
    assert not (tmp_path / "d.html").exists()
