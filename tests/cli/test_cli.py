"""The command line: outputs, exit codes and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opsloop.cli.app import app

runner = CliRunner()


@pytest.fixture
def tables(tmp_path):
    rng = np.random.default_rng(0)
    n = 3_000
    ref = pd.DataFrame(
        {
            "salary": rng.normal(50_000, 8_000, n).round(2),
            "age": rng.integers(20, 70, n),
            "device": rng.choice(["web", "ios", "android"], n),
            "default": rng.integers(0, 2, n),
        }
    )
    cur = ref.drop(columns=["default"]).copy()
    cur["salary"] = rng.normal(56_000, 8_000, n).round(2)
    cur.loc[:9, "device"] = "fax"
    paths = {
        "ref": tmp_path / "ref.csv",
        "cur": tmp_path / "cur.parquet",
        "same": tmp_path / "same.jsonl",
    }
    ref.to_csv(paths["ref"], index=False)
    cur.to_parquet(paths["cur"])
    ref.to_json(paths["same"], orient="records", lines=True)
    return paths, ref, cur


def test_drift_writes_json_and_html_with_one_entry_per_column(tables, tmp_path):
    paths, _, _ = tables
    report_json, report_html = tmp_path / "d.json", tmp_path / "d.html"
    result = runner.invoke(
        app,
        [
            "drift",
            str(paths["ref"]),
            str(paths["cur"]),
            "--json",
            str(report_json),
            "--html",
            str(report_html),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(report_json.read_text())
    by_column = {c["column"]: c for c in doc["columns"]}
    assert set(by_column) == {"salary", "age", "device"}
    for entry in by_column.values():
        assert {"column", "test", "statistic", "p_value", "threshold", "drifted"} <= set(entry)
    assert by_column["salary"]["drifted"] and doc["dataset"]["drifted"]
    assert "plotly" in report_html.read_text()
    assert "DRIFT" in result.output


def test_drift_fail_on_drift_exit_code(tables):
    paths, _, _ = tables
    same = runner.invoke(app, ["drift", str(paths["ref"]), str(paths["same"]), "--fail-on-drift"])
    assert same.exit_code == 0, same.output
    moved = runner.invoke(app, ["drift", str(paths["ref"]), str(paths["cur"]), "--fail-on-drift"])
    assert moved.exit_code == 1


def test_drift_ks_p_value_option_is_recorded_and_checked(tables, tmp_path):
    paths, _, _ = tables
    report_json = tmp_path / "fast.json"
    arguments = ["drift", str(paths["ref"]), str(paths["cur"]), "--json", str(report_json)]
    fast = runner.invoke(app, [*arguments, "--ks-p-value", "fast"])
    assert fast.exit_code == 0, fast.output
    assert json.loads(report_json.read_text())["dataset"]["ks_p_value"] == "fast"
    wrong = runner.invoke(app, [*arguments, "--ks-p-value", "quick"])
    assert wrong.exit_code == 2
    assert "ks_p_value must be one of scipy, fast, got 'quick'" in wrong.output


def test_schema_infer_and_validate(tables, tmp_path):
    paths, _, _ = tables
    schema = tmp_path / "schema.yaml"
    inferred = runner.invoke(
        app,
        [
            "schema",
            "infer",
            str(paths["ref"]),
            "-o",
            str(schema),
            "--exclude-in-serving",
            "default",
        ],
    )
    assert inferred.exit_code == 0, inferred.output
    assert "salary" in schema.read_text()
    clean = runner.invoke(app, ["schema", "validate", str(paths["same"]), "--schema", str(schema)])
    assert clean.exit_code == 0, clean.output
    bad = runner.invoke(
        app,
        [
            "schema",
            "validate",
            str(paths["cur"]),
            "--schema",
            str(schema),
            "--environment",
            "serving",
            "--json",
        ],
    )
    assert bad.exit_code == 1
    anomalies = json.loads(bad.stdout)
    kinds = {(a["column"], a["kind"]) for a in anomalies["anomalies"]}
    assert ("device", "unknown_category") in kinds
    device = next(a for a in anomalies["anomalies"] if a["column"] == "device")
    assert device["count"] == 10


def test_profile_prints_every_column(tables):
    paths, _, _ = tables
    result = runner.invoke(app, ["profile", str(paths["ref"]), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "salary" in json.dumps(doc) and "device" in json.dumps(doc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drift", "missing.csv", "missing2.csv"], "missing.csv: no such file"),
        (["drift", "{ref}", "{bad}"], "cannot read"),
        (["drift", "{ref}", "{other}"], "no columns in common"),
        (["drift", "{ref}", "{ref}", "--correction", "nope"], "correction must be one of"),
        (["profile", "{dir}"], "cannot read as a parquet directory"),
        (["schema", "validate", "{ref}", "--schema", "nope.yaml"], "nope.yaml: no such file"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tables, tmp_path, args, message):
    paths, _, _ = tables
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    other = tmp_path / "other.csv"
    pd.DataFrame({"zzz": [1, 2]}).to_csv(other, index=False)
    filled = [a.format(ref=paths["ref"], bad=bad, other=other, dir=tmp_path) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "opsloop", *filled], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_schema_validate_of_a_csv_names_the_one_cell_that_is_not_a_number(tmp_path):
    import statsmodels.api as sm

    from opsloop.data.schema import infer_schema, validate

    grunfeld = sm.datasets.grunfeld.load_pandas().data
    schema = tmp_path / "g.yaml"
    schema.write_text(infer_schema(grunfeld).to_yaml())
    bad = grunfeld.astype(object)
    bad.loc[3, "capital"] = "lots"
    bad.loc[7, "year"] = "1942?"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    grunfeld.to_csv(tmp_path / "good.csv", index=False)

    clean = runner.invoke(
        app, ["schema", "validate", str(tmp_path / "good.csv"), "-s", str(schema)]
    )
    assert clean.exit_code == 0, clean.output
    found = runner.invoke(
        app, ["schema", "validate", str(tmp_path / "bad.csv"), "-s", str(schema), "--json"]
    )
    assert found.exit_code == 1
    anomalies = json.loads(found.stdout)["anomalies"]
    # What validate says of the same values held as Python objects: one cell each.
    expected = validate(bad, infer_schema(grunfeld)).to_dict()["anomalies"]
    assert anomalies == expected
    assert [(a["column"], a["count"], a["examples"]) for a in anomalies] == [
        ("capital", 1, [[3, "lots"]]),
        ("year", 1, [[7, "1942?"]]),
    ]
    table = runner.invoke(app, ["schema", "validate", str(tmp_path / "bad.csv"), "-s", str(schema)])
    assert table.exit_code == 1
    assert "expected float, found str ×1" in table.stdout and "row 3: 'lots'" in table.stdout


def test_one_anomaly_is_titled_in_the_singular(tmp_path):
    import statsmodels.api as sm

    from opsloop.data.schema import infer_schema

    grunfeld = sm.datasets.grunfeld.load_pandas().data
    schema = tmp_path / "g.yaml"
    schema.write_text(infer_schema(grunfeld).to_yaml())
    serving = grunfeld.copy()
    serving.loc[3, "firm"] = "Tesla"
    serving.to_csv(tmp_path / "one.csv", index=False)
    found = runner.invoke(
        app,
        ["schema", "validate", str(tmp_path / "one.csv"), "-s", str(schema)],
        terminal_width=200,
    )
    assert found.exit_code == 1
    assert "1 anomaly in " in found.output and "anomalies" not in found.output
    assert "unknown_category" in found.output and "'Tesla'" in found.output


def test_profile_table_and_csv_count_the_infinities_the_json_shows(tmp_path):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data[["mean radius", "mean texture"]].copy()
    frame.loc[[3, 50, 400], "mean radius"] = np.inf
    frame.loc[[7, 9], "mean radius"] = -np.inf
    path = tmp_path / "cancer.parquet"
    frame.to_parquet(path)
    document = json.loads(runner.invoke(app, ["profile", str(path), "--json"]).output)
    radius = document["columns"]["mean radius"]
    assert (radius["numeric"]["n_pos_inf"], radius["numeric"]["n_neg_inf"]) == (3, 2)

    result = runner.invoke(app, ["profile", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    shown = pd.read_csv(__import__("io").StringIO(result.output)).set_index("column")
    # Appended: the columns main wrote keep their positions for readers by position.
    assert list(shown.columns) == [
        "type", "count", "null_count", "null_fraction", "invalid_count", "distinct",
        "top_value", "top_count", "true_count", "mean", "std", "min", "max", "median",
        "mean_length", "pos_inf_count", "neg_inf_count",
    ]  # fmt: skip
    assert shown.loc["mean radius", ["pos_inf_count", "neg_inf_count"]].tolist() == [3, 2]
    assert shown.loc["mean texture", ["pos_inf_count", "neg_inf_count"]].tolist() == [0, 0]
    finite = frame["mean radius"][np.isfinite(frame["mean radius"])]
    assert shown.loc["mean radius", "max"] == pytest.approx(finite.max(), rel=1e-9)

    table = runner.invoke(app, ["profile", str(path)]).output
    header = next(line for line in table.splitlines() if "pos_inf_count" in line)
    row = next(line for line in table.splitlines() if line.startswith("│ mean radius"))
    cells = dict(zip(
        [c.strip() for c in header.strip("┃").split("┃")],
        [c.strip() for c in row.strip("│").split("│")],
        strict=True,
    ))  # fmt: skip
    assert (cells["pos_inf_count"], cells["neg_inf_count"]) == ("3", "2")
