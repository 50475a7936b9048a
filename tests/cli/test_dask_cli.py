"""`opsloop profile|drift|schema ... --dask SCHEDULER` computes on the cluster and prints
what the in-memory path prints for the same Parquet files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.datasets import credit

pytest.importorskip("distributed")
runner = CliRunner()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    for name, seed in (("train", 1), ("serve", 2)):
        frame = credit(3000, seed=seed)
        if name == "serve":
            frame.loc[[7, 2100], "age"] = [170, 180]
            frame["salary"] = frame["salary"] * 1.2
        (root / name).mkdir()
        for i in range(3):
            part = frame.iloc[i * 1000 : (i + 1) * 1000]
            part.to_parquet(root / name / f"part-{i}.parquet", index=False)
    return root


def run(*args: str):
    return runner.invoke(app, list(args))


def test_profile_on_dask_prints_the_in_memory_counts(dask_client, folders):
    address = dask_client.scheduler.address
    on_dask = run("profile", str(folders / "train"), "--json", "--dask", address)
    in_memory = run("profile", str(folders / "train" / "*.parquet"), "--json")
    assert on_dask.exit_code == 0 and in_memory.exit_code == 0, on_dask.output
    got, want = json.loads(on_dask.output), json.loads(in_memory.output)
    assert got["n_rows"] == want["n_rows"] == 3000
    for name, column in want["columns"].items():
        # Beyond 1,000 distinct values (the free-text purpose) counts are sketched.
        keys = ("type", "count", "null_count", "distinct_exact")
        keys += ("distinct", "top_values") if column.get("distinct_exact", True) else ()
        assert {k: got["columns"][name].get(k) for k in keys} == {k: column.get(k) for k in keys}
        if "numeric" in column:
            for key in ("count", "min", "max", "sum", "mean"):
                assert got["columns"][name]["numeric"][key] == column["numeric"][key], name


def test_schema_infer_and_validate_on_dask_agree_with_memory(dask_client, folders, tmp_path):
    address = dask_client.scheduler.address
    inferred = run("schema", "infer", str(folders / "train"), "--dask", address)
    assert inferred.exit_code == 0, inferred.output
    schema = tmp_path / "schema.yaml"
    schema.write_text(inferred.output)
    serve = str(folders / "serve")
    on_dask = run("schema", "validate", serve, "-s", str(schema), "--json", "--dask", address)
    in_memory = run("schema", "validate", serve, "-s", str(schema), "--json")
    assert on_dask.exit_code == in_memory.exit_code == 1, on_dask.output
    got = json.loads(on_dask.output)
    assert got == json.loads(in_memory.output)
    (age,) = [a for a in got["anomalies"] if a["column"] == "age"]
    assert age["examples"][:2] == [[7, 170], [2100, 180]]


def test_drift_on_dask_gives_the_in_memory_verdicts(dask_client, folders, tmp_path):
    address = dask_client.scheduler.address
    train, serve = str(folders / "train"), str(folders / "serve")
    # The fast KS p-value: scipy's Smirnov series costs seconds on a drifted column.
    fast = ("--ks-p-value", "fast")
    on_dask = run(
        "drift", train, serve, *fast, "--json", str(tmp_path / "d.json"), "--dask", address
    )
    in_memory = run("drift", train, serve, *fast, "--json", str(tmp_path / "m.json"))
    assert on_dask.exit_code == in_memory.exit_code == 0, on_dask.output
    got = json.loads((tmp_path / "d.json").read_text())
    want = json.loads((tmp_path / "m.json").read_text())
    # The same verdicts in the same mode; only the reason for the mode differs.
    assert got["dataset"].pop("mode_reason").startswith("exact: the sorted values (")
    assert want["dataset"].pop("mode_reason") == "in-memory data"
    assert got == want and got["dataset"]["mode"] == "exact"
    assert "mode: exact (exact: the sorted values (" in on_dask.output
    assert next(c for c in got["columns"] if c["column"] == "salary")["drifted"]


def test_drift_sketch_mode_on_dask_is_announced_with_its_bounds(dask_client, folders, tmp_path):
    address = dask_client.scheduler.address
    train, serve = str(folders / "train"), str(folders / "serve")
    path = tmp_path / "s.json"
    result = run(
        "drift",
        train,
        serve,
        "--mode",
        "sketch",
        "--sketch-k",
        "100",
        "--json",
        str(path),
        "--dask",
        address,
    )
    assert result.exit_code == 0, result.output
    assert "mode: sketch (mode='sketch' asked for); KS statistics and p-values" in result.output
    doc = json.loads(path.read_text())
    assert doc["dataset"]["mode"] == "sketch"
    salary = next(c for c in doc["columns"] if c["column"] == "salary")
    low, high = salary["sketch"]["statistic_bounds"]
    assert low <= salary["statistic"] <= high and salary["drifted"]
    assert 0 < salary["sketch"]["rank_error_reference"] < 0.05


def test_dask_reads_parquet_only(folders, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    result = run("profile", str(table), "--dask", "tcp://127.0.0.1:1")
    assert result.exit_code == 2
    assert "Dask reads Parquet here" in result.output
