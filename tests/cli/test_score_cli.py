"""``opsloop score`` through typer's runner on a store per test: the file is scored by the
deployed model, the summary names what was done, and a file it cannot score is one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli import score as score_cli
from opsloop.cli.app import app
from opsloop.errors import InvalidArgumentError
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
from opsloop.serving.batch_scoring import score_file
from opsloop.store import ArtifactStore, open_database
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

runner = CliRunner()


@pytest.fixture
def deployed(store_uri):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    db = open_database()
    ModelRegistry(db, ArtifactStore(artifact_uri())).register("cancer", model, input_schema=X)
    Deployments(db).deploy("api", [Variant("stable", "cancer", version=1)])
    return model, X


def test_score_writes_the_predictions_and_prints_the_summary(deployed, tmp_path):
    model, X = deployed
    data = X.astype(object).copy()
    data.loc[5, "mean area"] = "large"
    data.to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(
        app,
        [
            "score",
            "api",
            str(tmp_path / "in.csv"),
            str(tmp_path / "out.parquet"),
            "--chunk-size",
            "50",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["chunks"]) == (
        569,
        568,
        1,
        12,
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    kept = X.drop(index=5)
    np.testing.assert_array_equal(out["prediction"], model.predict(kept))
    bad = pd.read_csv(tmp_path / "out.rejected.csv")
    assert bad[["row", "field", "rule"]].values.tolist() == [[5, "mean area", "type_mismatch"]]
    events = read_prediction_events(open_database(), "api", role="batch")
    assert len(events) == 568


def test_score_prints_one_line_of_summary(deployed, tmp_path):
    _, X = deployed
    X.iloc[:10].to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(app, ["score", "api", str(tmp_path / "in.csv"), str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("api: 10 of 10 rows scored by stable into ")
    assert "0 rejected into" in result.stdout


def test_a_file_without_a_signature_column_is_one_line_and_exit_code_2(deployed, tmp_path):
    _, X = deployed
    X.drop(columns="mean radius").to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(app, ["score", "api", str(tmp_path / "in.csv"), str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: input: column 'mean radius' is missing (the signature requires it)"
    )


def test_an_output_in_a_missing_folder_is_named_as_the_output(deployed, tmp_path):
    _, X = deployed
    X.iloc[:10].to_csv(tmp_path / "in.csv", index=False)
    output = tmp_path / "nope" / "x.csv"
    result = runner.invoke(app, ["score", "api", str(tmp_path / "in.csv"), str(output)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: output: {tmp_path / 'nope'} does not exist"
    assert not (tmp_path / "nope").exists()
    assert read_prediction_events(open_database(), "api", role="batch").empty


def test_an_unknown_deployment_is_one_line_and_exit_code_2(store_uri, tmp_path):
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = runner.invoke(
        app, ["score", "ghost", str(tmp_path / "in.csv"), str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no deployment named 'ghost'"


def test_score_shows_its_progress_bar_on_a_terminal(deployed, tmp_path, monkeypatch):
    _, X = deployed
    X.to_csv(tmp_path / "in.csv", index=False)
    # rich draws a live bar only on an interactive terminal, which the runner's stderr is
    # not: the command's stderr console is one here (plain text, wide enough for the path).
    terminal = Console(
        stderr=True, force_terminal=True, force_interactive=True, color_system=None, width=400
    )
    monkeypatch.setattr(score_cli, "err", terminal)
    result = runner.invoke(
        app,
        ["score", "api", str(tmp_path / "in.csv"), str(tmp_path / "o.csv"), "--chunk-size", "100"],
    )
    assert result.exit_code == 0, result.output
    drawn = [line for line in result.stderr.splitlines() if "scoring " in line]
    assert drawn, result.stderr
    # Its last drawing, at the end: all of INPUT, every row read.
    last = drawn[-1].split("\r")[-1].replace("\x1b[2K", "")
    assert last.startswith(f"scoring {tmp_path / 'in.csv'} ")
    assert " 100%  569 rows " in last
    # The bar is on stderr only: stdout keeps the one line of summary for a pipe.
    assert "scoring" not in result.stdout
    assert result.stdout.startswith("api: 569 of 569 rows scored by stable into ")


def test_all_variants_through_the_cli_writes_each_variants_predictions(deployed, tmp_path):
    model, X = deployed
    _, y = load_breast_cancer(return_X_y=True, as_frame=True)
    weak = LogisticRegression(C=1e-4, max_iter=1000).fit(X, y)
    db = open_database()
    artifacts = ArtifactStore(artifact_uri())
    ModelRegistry(db, artifacts).register("cancer", weak, input_schema=X)
    Deployments(db).deploy(
        "api",
        [
            Variant("stable", "cancer", version=1, weight=0.9),
            Variant("canary", "cancer", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    X.to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(
        app,
        ["score", "api", str(tmp_path / "in.csv"), str(tmp_path / "cli.csv"), "--all-variants"],
    )
    assert result.exit_code == 0, result.output
    assert "rows scored by stable, canary into" in result.stdout
    cli = pd.read_csv(tmp_path / "cli.csv")
    np.testing.assert_array_equal(cli["prediction_stable"], model.predict(X))
    np.testing.assert_array_equal(cli["prediction_canary"], weak.predict(X))
    # The two models differ on some rows, so the columns are each variant's own.
    assert (cli["prediction_stable"] != cli["prediction_canary"]).any()
    # The library's result on the same file: the same rows and columns, request ids aside.
    runtime = ServingRuntime(db, artifacts)
    try:
        score_file(runtime, "api", tmp_path / "in.csv", tmp_path / "lib.csv", all_variants=True)
    finally:
        runtime.close()
    library = pd.read_csv(tmp_path / "lib.csv")
    pd.testing.assert_frame_equal(
        cli.drop(columns="request_id"), library.drop(columns="request_id")
    )
    events = read_prediction_events(db, "api", role="batch")
    assert events.groupby("variant").size().to_dict() == {"stable": 1138}
    others = read_prediction_events(db, "api", role="batch_shadow")
    assert others.groupby("variant").size().to_dict() == {"canary": 1138}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_writes_each_classs_probability_as_the_model_gives_it(deployed, tmp_path, suffix):
    model, X = deployed
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    other.fit(X, (X["mean radius"] > X["mean radius"].median()).astype(int))
    db = open_database()
    ModelRegistry(db, ArtifactStore(artifact_uri())).register("cancer", other, input_schema=X)
    Deployments(db).deploy(
        "both",
        [
            Variant("stable", "cancer", version=1),
            Variant("other", "cancer", version=2, role="shadow", weight=0.0),
        ],
        strategy="shadow",
    )
    X.iloc[:120].to_csv(tmp_path / "in.csv", index=False)
    for name, extra in (("api", []), ("both", ["--all-variants"])):
        output = tmp_path / f"{name}{suffix}"
        arguments = ["score", name, str(tmp_path / "in.csv"), str(output), "--chunk-size", "50"]
        arguments.append("--probabilities")
        result = runner.invoke(app, arguments + extra)
        assert result.exit_code == 0, result.output
        scored = pd.read_csv(output) if suffix == ".csv" else pd.read_parquet(output)
        if name == "api":
            columns = {"probability_0": (model, 0), "probability_1": (model, 1)}
        else:
            columns = {f"probability_{variant}@{k}": (fitted, k)
                       for variant, fitted in (("stable", model), ("other", other))
                       for k in (0, 1)}  # fmt: skip
        for column, (fitted, k) in columns.items():
            # Chunk by chunk as scored (a BLAS call's rounding may depend on its size); the
            # input went through a CSV file, whose text a parser may read an ulp apart.
            expected = np.concatenate(
                [
                    fitted.predict_proba(X.iloc[i : min(i + 50, 120)])[:, k]
                    for i in range(0, 120, 50)
                ]
            )
            np.testing.assert_allclose(scored[column].to_numpy(), expected, rtol=1e-12)
        assert sorted(c for c in scored.columns if c.startswith("probability")) == sorted(columns)
    # The events hold the same numbers.
    events = read_prediction_events(db, "api", role="batch")
    held = np.array([output["probabilities"][0] for output in events["output"]])
    np.testing.assert_allclose(held, model.predict_proba(X.iloc[:120]), rtol=1e-12)


def test_score_writes_probabilities_only_when_asked_so_a_file_scored_before_still_is(
    deployed, tmp_path
):
    _model, X = deployed
    # A stacked model's input may well be named as a probability column.
    db = open_database()
    data = X.iloc[:40].assign(probability_1=np.linspace(0.0, 1.0, 40))
    stacked = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    stacked.fit(data, (data["mean radius"] > data["mean radius"].median()).astype(int))
    ModelRegistry(db, ArtifactStore(artifact_uri())).register("stacked", stacked, input_schema=data)
    Deployments(db).deploy("stack", [Variant("stable", "stacked", version=1)])
    data.to_csv(tmp_path / "in.csv", index=False)
    arguments = ["score", "stack", str(tmp_path / "in.csv"), str(tmp_path / "out.csv")]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored.columns) == ["row", "request_id", *data.columns, "prediction"]
    assert scored["prediction"].tolist() == stacked.predict(data).tolist()
    np.testing.assert_array_equal(scored["probability_1"], data["probability_1"])
    # Asked for, the clash is refused, naming the option.
    result = runner.invoke(app, [*arguments, "--probabilities"])
    assert result.exit_code != 0
    assert "'probability_1' clashes with the probability column" in result.output
    assert "--probabilities" in result.output


def test_the_probability_columns_of_two_variants_never_share_a_name():
    from opsloop.serving.batch_scoring import score_rows
    from opsloop.serving.loaded_variant import LoadedVariant

    X = pd.DataFrame({"x": np.arange(10.0)})
    a = LogisticRegression().fit(X, np.array(["b_c", "d"] * 5))
    a_b = LogisticRegression().fit(X, np.array(["c", "d"] * 5))
    variants = [
        LoadedVariant("a", "primary", "m", 1, "sklearn", None, a),
        LoadedVariant("a_b", "shadow", "m", 2, "sklearn", None, a_b),
    ]
    common = dict(all_variants=True, first_row=0, batch_id="b", clock=lambda: 0)
    scored, _ = score_rows("api", X, variants, probabilities=True, **common)
    expected = {
        "probability_a@b_c": a.predict_proba(X)[:, 0],
        "probability_a@d": a.predict_proba(X)[:, 1],
        "probability_a_b@c": a_b.predict_proba(X)[:, 0],
        "probability_a_b@d": a_b.predict_proba(X)[:, 1],
    }
    assert [c for c in scored.scored.columns if c.startswith("probability")] == list(expected)
    for column, values in expected.items():
        np.testing.assert_array_equal(scored.scored[column].to_numpy(), values)
    # A name with "@" (which a definition refuses) given to a loaded variant directly
    # still never collides silently: the error names the variants' clash, not the input.
    first = LogisticRegression().fit(X, np.array(["c", "d"] * 5))
    second = LogisticRegression().fit(X, np.array(["b@c", "e"] * 5))
    clashing = [
        LoadedVariant("a@b", "primary", "m", 1, "sklearn", None, first),
        LoadedVariant("a", "shadow", "m", 2, "sklearn", None, second),
    ]
    with pytest.raises(
        InvalidArgumentError,
        match="variant 'a' answers a probability column 'probability_a@b@c' that another",
    ):
        score_rows("api", X, clashing, probabilities=True, **common)
