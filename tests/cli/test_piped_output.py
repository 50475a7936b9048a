"""Output outside a terminal (the test runner's output is not a TTY): tables at full width,
never cut or wrapped; ``--format csv|json|table``; ISO times; everything the help names."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import typer
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.app import app as main_app
from opsloop.cli.tracking import models_app, runs_app
from opsloop.data.profile import profile
from opsloop.registry import ModelRegistry
from opsloop.store import ArtifactStore, Database
from opsloop.store.location import artifact_uri
from opsloop.tracking import get_run, start_run

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

runner = CliRunner()
app = typer.Typer()
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")


@pytest.fixture
def wide_csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {f"a_rather_long_column_name_{i}": rng.normal(i, 1.0, 200) for i in range(6)}
    )
    frame["category_of_the_customer"] = rng.choice(["retail", "business"], 200)
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_profile_table_is_not_squeezed_when_piped(wide_csv):
    path, frame = wide_csv
    result = runner.invoke(main_app, ["profile", str(path)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    expected = profile(frame).to_frame()
    header = next(line for line in result.output.splitlines() if "column" in line)
    for name in expected.columns:
        assert f" {name} " in header
    for name in frame.columns:
        assert any(line.startswith(f"│ {name} ") for line in result.output.splitlines())


def test_profile_as_csv_holds_every_statistic(wide_csv):
    path, frame = wide_csv
    result = runner.invoke(main_app, ["profile", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    read = pd.read_csv(io.StringIO(result.output)).set_index("column")
    expected = profile(frame).to_frame()
    assert list(read.columns) == [str(c) for c in expected.columns]
    assert read.loc["a_rather_long_column_name_3", "mean"] == pytest.approx(
        frame["a_rather_long_column_name_3"].mean(), rel=1e-12
    )
    bad = runner.invoke(main_app, ["profile", str(path), "--format", "xml"])
    assert bad.exit_code == 2 and "--format must be one of table, csv, json" in bad.output


@pytest.fixture
def model(store_uri):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with start_run("churn", name="fit", capture=True) as run:
        run.log_metric("auc", 0.8)
        run.log_dataset(frame, "train")
    database = Database(store_uri)
    registry = ModelRegistry(database, ArtifactStore(artifact_uri()), actor="eda")
    registry.register("churn", b"\x08\x01", flavor="onnx", run_id=run.run_id)
    yield run.run_id, registry
    database.dispose()


def test_runs_list_keeps_ids_whole_and_times_iso(model):
    run_id, _ = model
    run = get_run(run_id)
    result = runner.invoke(app, ["runs", "list", "churn"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if run_id in line)
    start = pd.Timestamp(run.start_ms, unit="ms", tz="UTC").isoformat()
    assert start in row
    as_csv = runner.invoke(app, ["runs", "list", "churn", "--format", "csv"])
    read = pd.read_csv(io.StringIO(as_csv.output))
    assert read["run_id"].tolist() == [run_id] and read["start_time"].tolist() == [start]


def test_runs_show_prints_iso_times(model):
    run_id, _ = model
    run = get_run(run_id)
    result = runner.invoke(app, ["runs", "show", run_id])
    assert result.exit_code == 0, result.output
    stamp = pd.Timestamp(run.start_ms, unit="ms", tz="UTC")
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{run.start_ms % 1000:03d}Z"
    assert "│ start " in result.output and iso in result.output
    assert str(run.start_ms) not in result.output


def test_models_show_lists_datasets_and_packages(model):
    _, registry = model
    lineage = registry.lineage("churn", 1)
    assert lineage.datasets and lineage.packages
    result = runner.invoke(app, ["models", "show", "churn"])
    assert result.exit_code == 0, result.output
    assert "datasets" in result.output and lineage.datasets[0][1] in result.output
    assert f"{len(lineage.packages)} packages" in result.output
    for package in lineage.packages[:3]:
        assert package in result.output
    as_json = json.loads(runner.invoke(app, ["models", "show", "churn", "--json"]).output)
    assert as_json["lineage"]["datasets"] == dict(lineage.datasets)


def _long_csv(output: str) -> pd.DataFrame:
    read = pd.read_csv(io.StringIO(output), dtype=str, keep_default_na=False)
    assert list(read.columns) == ["section", "item", "field", "value"]
    return read


def _field(read: pd.DataFrame, section: str, field: str, item: str = "") -> str:
    found = read[(read.section == section) & (read.item == item) & (read.field == field)]
    assert len(found) == 1, (section, item, field)
    return found["value"].iloc[0]


def test_runs_show_takes_format_csv_and_json(model):
    run_id, _ = model
    run = get_run(run_id)
    as_csv = runner.invoke(app, ["runs", "show", run_id[:8], "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    read = _long_csv(as_csv.output)
    assert _field(read, "metrics", "auc") == "0.8"
    assert _field(read, "run", "run_id") == run_id
    stamp = pd.Timestamp(run.start_ms, unit="ms", tz="UTC")
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{run.start_ms % 1000:03d}Z"
    assert _field(read, "run", "start") == iso
    assert _field(read, "run", "packages") == str(len(run.environment.packages))
    (dataset,) = run.datasets
    assert _field(read, "datasets", "sha256", item="train") == dataset.sha256
    assert _field(read, "datasets", "n_rows", item="train") == "3"
    as_json = runner.invoke(app, ["runs", "show", run_id, "--format", "json"])
    assert json.loads(as_json.output) == json.loads(
        runner.invoke(app, ["runs", "show", run_id, "--json"]).output
    )
    assert json.loads(as_json.output)["start_ms"] == run.start_ms
    table = runner.invoke(app, ["runs", "show", run_id, "--format", "table"])
    assert table.output == runner.invoke(app, ["runs", "show", run_id]).output
    bad = runner.invoke(app, ["runs", "show", run_id, "--format", "yaml"])
    assert bad.exit_code == 2 and "--format must be one of table, csv, json" in bad.output


def test_models_show_takes_format_csv_and_json(model):
    run_id, registry = model
    lineage = registry.lineage("churn", 1)
    as_csv = runner.invoke(app, ["models", "show", "churn", "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    read = _long_csv(as_csv.output)
    assert _field(read, "version", "flavor") == "onnx"
    assert _field(read, "lineage", "run_id") == run_id
    (name, sha256), *_ = lineage.datasets
    assert _field(read, "datasets", "sha256", item=name) == sha256
    packages = read[read.section == "packages"]
    assert packages["item"].tolist() == list(lineage.packages)
    assert "none recorded" not in as_csv.output  # the notes are for people, not for the CSV
    as_json = runner.invoke(app, ["models", "show", "churn", "--format", "json"])
    assert json.loads(as_json.output) == json.loads(
        runner.invoke(app, ["models", "show", "churn", "--json"]).output
    )
    both = runner.invoke(app, ["models", "show", "churn", "--json", "--format", "csv"])
    assert both.exit_code == 2 and "two formats" in both.output
