"""``opsloop select``: the funnel on a file and on a database table from the command line."""

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opsloop.cli.selection import app

runner = CliRunner()


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    return pd.DataFrame(
        {
            "x": x,
            "x_copy": x * 2,
            "holes": np.where(rng.random(400) < 0.9, np.nan, 1.0),
            "flat": 1.0,
            "noise": rng.normal(size=400),
            "y": (x > 0).astype(int),
        }
    )


def test_select_file_prints_steps_and_writes_reports(frame, tmp_path):
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    html, report = tmp_path / "report.html", tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "file",
            str(data),
            "--target",
            "y",
            "--k",
            "0",
            "--no-model",
            "--html",
            str(html),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "5 → 4 → 3 → 2 → 2" in result.output
    assert "kept 2 of 5: x, noise" in result.output
    document = json.loads(report.read_text())
    assert document["counts"] == [5, 4, 3, 2, 2]
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_select_table_and_nulls_on_sqlite(frame, tmp_path):
    path = tmp_path / "sel.db"
    with sqlite3.connect(path) as db:
        frame.to_sql("sel_cli", db, index=False)
    url = f"sqlite:///{path}"
    result = runner.invoke(
        app, ["table", url, "sel_cli", "--target", "y", "--k", "1", "--no-model"]
    )
    assert result.exit_code == 0, result.output
    assert "kept 1 of 5: x" in result.output
    result = runner.invoke(app, ["nulls", url, "sel_cli", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["column"]: r for r in json.loads(result.output)["columns"]}
    assert rows["holes"]["null_fraction"] == pytest.approx(frame["holes"].isna().mean())
    assert rows["flat"]["n_distinct"] == 1


def test_errors_are_one_line_with_exit_code_2(frame, tmp_path):
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    result = runner.invoke(app, ["file", str(data), "--target", "nope"])
    assert result.exit_code == 2
    assert "has no column 'nope' (the target)" in result.output
    result = runner.invoke(app, ["file", str(tmp_path / "missing.csv"), "--target", "y"])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["file", str(data), "--target", "y", "--pearson", "2"])
    assert result.exit_code == 2 and "numeric_redundancy: threshold must be" in result.output


def test_select_file_on_breast_cancer_keeps_the_strongest_column(tmp_path):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    # What a CSV export adds: a date column (read back as text) and a free-text note.
    # (the rows come sorted in a way that tells the classes apart, so the dates are shuffled)
    days = pd.date_range("2021-01-01", periods=len(data), freq="D")
    data["visited"] = days[rng.permutation(len(data))].strftime("%Y-%m-%d")
    data["note"] = [f"seen by clinician {i}" for i in rng.permutation(len(data))]
    path = tmp_path / "breast_cancer.csv"
    data.to_csv(path, index=False)
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["file", str(path), "--target", "target", "--json", str(report)])
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    columns = {c["column"]: c for c in document["columns"]}
    kept = [name for name, c in columns.items() if c["kept"]]
    assert {"worst concave points", "worst perimeter", "worst texture"} <= set(kept)
    assert len(kept) <= 6
    assert columns["visited"]["kind"] == "numeric" and columns["visited"]["step"] is not None
    assert document["not_judged"] == ["note"] and not columns["note"]["judged"]
    assert "not judged (no step reading the target measures text): note" in result.output
