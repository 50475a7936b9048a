import json

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from typer.testing import CliRunner

from opsloop.cli.analysis import app
from opsloop.datasets import credit, human_labels

FEATURES = ["age", "salary", "commission", "loan_amount"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze")
    df = credit(800, seed=5)
    df["human"] = human_labels(df, seed=5)
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0)
    model.fit(df[FEATURES], df["default"])
    skops.io.dump(model, folder / "model.skops")
    regressor = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0)
    regressor.fit(df[["age", "commission"]], df["salary"])
    skops.io.dump(regressor, folder / "regressor.skops")
    df.drop(columns=["applied_at", "purpose"]).to_csv(folder / "loans.csv", index=False)
    return folder, df, model


def test_classifier_report(files):
    folder, df, model = files
    html, out_json = folder / "report.html", folder / "report.json"
    result = CliRunner().invoke(
        app,
        [
            str(folder / "model.skops"),
            str(folder / "loans.csv"),
            "--label",
            "default",
            "--tags",
            "gender,device",
            "--human-labels",
            "human",
            "--html",
            str(html),
            "--json",
            str(out_json),
            "--trust",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Most room for improvement" in result.output
    report = json.loads(out_json.read_text())
    predicted = model.predict(df[FEATURES])
    assert report["errors"]["errors"] == int((predicted != df["default"]).sum())
    assert report["errors"]["baseline_error_rate"] == pytest.approx(
        float(np.mean(df["human"] != df["default"]))
    )
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_regressor_report_has_residuals(files):
    folder, _, _ = files
    out_json = folder / "regression.json"
    result = CliRunner().invoke(
        app,
        [
            str(folder / "regressor.skops"),
            str(folder / "loans.csv"),
            "--label",
            "salary",
            "--tags",
            "gender",
            "--json",
            str(out_json),
            "--trust",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out_json.read_text())
    assert report["residuals"]["n"] == 800
    assert report["fairness"]["task"] == "regression"
    assert {c["feature"] for c in report["residuals"]["correlations"]} >= {"loan_amount"}


def test_no_explain_leaves_the_explanations_out(files):
    folder, _, _ = files
    outputs = {}
    for flag in ("--explain", "--no-explain"):
        out_json = folder / f"explain{flag}.json"
        result = CliRunner().invoke(
            app,
            [
                str(folder / "regressor.skops"),
                str(folder / "loans.csv"),
                *("--label", "salary", "--json", str(out_json), "--trust", flag),
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[flag] = json.loads(out_json.read_text())
    assert outputs["--explain"]["explanation"]["shapley"]["method"] == "tree"
    assert outputs["--no-explain"]["explanation"] is None
    # everything else is the same report
    del outputs["--explain"]["explanation"], outputs["--no-explain"]["explanation"]
    assert outputs["--explain"] == outputs["--no-explain"]


def test_cli_and_analysis_import_no_skops():
    # skops.io imports torch through scikit-learn's array_api_compat: seconds of every run
    import subprocess
    import sys

    code = (
        "import sys, opsloop.cli.app, opsloop.cli.analysis, opsloop.analysis, "
        "opsloop.reports.analysis; "
        "from opsloop.analysis import explain, shapley_values; "
        "print(sorted(m for m in ('skops', 'skops.io', 'torch') if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_errors_are_one_line(files):
    folder, _, _ = files
    runner = CliRunner()
    result = runner.invoke(
        app, [str(folder / "model.skops"), str(folder / "loans.csv"), "--label", "nope"]
    )
    assert result.exit_code == 2
    assert "has no column 'nope'" in result.output
    result = runner.invoke(
        app, [str(folder / "m.pkl"), str(folder / "loans.csv"), "--label", "default"]
    )
    assert result.exit_code == 2
    assert "pass trust=True (--trust)" in result.output
    # A forest's tree objects are beyond skops' defaults but on opsloop's allow-list.
    result = runner.invoke(
        app, [str(folder / "model.skops"), str(folder / "loans.csv"), "--label", "default"]
    )
    assert result.exit_code == 0, result.output


def test_a_corrupt_or_failing_model_is_one_line_naming_the_file_and_step(files, tmp_path):
    folder, _, _ = files
    runner = CliRunner()
    data = str(folder / "loans.csv")
    (tmp_path / "fake.skops").write_bytes(b"not a zip file")
    result = runner.invoke(app, [str(tmp_path / "fake.skops"), data, "--label", "default"])
    assert result.exit_code == 2
    assert "fake.skops: the artifact is not a readable skops file" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    (tmp_path / "fake.joblib").write_bytes(b"\x80\x05garbage")
    result = runner.invoke(
        app, [str(tmp_path / "fake.joblib"), data, "--label", "default", "--trust"]
    )
    assert result.exit_code == 2
    assert "fake.joblib: not a readable joblib/pickle file" in result.output
    # A model whose own predict fails: the step and the model are named, on one line.
    from sklearn.linear_model import LogisticRegression

    narrow = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    skops.io.dump(narrow, tmp_path / "narrow.skops")
    result = runner.invoke(app, [str(tmp_path / "narrow.skops"), data, "--label", "default"])
    assert result.exit_code == 2
    assert "narrow.skops: predict failed on loans.csv (ValueError: " in result.output


def test_multiclass_with_only_small_slices_says_so(tmp_path):
    import joblib
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop.analysis import error_analysis

    X, y = load_wine(return_X_y=True, as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y.to_numpy()]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X.iloc[::2], names[::2])
    joblib.dump(model, tmp_path / "wine.joblib")
    test = X.iloc[1::2].assign(cultivar=names[1::2])
    test.to_csv(tmp_path / "wine.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            str(tmp_path / "wine.joblib"),
            str(tmp_path / "wine.csv"),
            "--label",
            "cultivar",
            "--tags",
            "magnesium,alcohol",
            "--no-explain",
            "--hlp",
            "0",
            "--trust",
        ],
    )
    assert result.exit_code == 0, result.output
    # 89 rows in five bins per tag: every slice is under min_size 30
    assert "Every slice has fewer than 30 rows (min_size)" in result.output
    expected = error_analysis(
        names[1::2],
        model.predict(X.iloc[1::2]),
        pd.read_csv(tmp_path / "wine.csv")[["magnesium", "alcohol"]],
        hlp=0.0,
    )
    assert all(r.small for r in expected.rows) and expected.top(3) == ()
    first = expected.rows[0]
    line = next(row for row in result.output.splitlines() if first.value in row)
    assert first.tag in line and f"{first.error_rate:.2%}" in line and "yes" in line


def test_regression_prints_the_residual_summary_and_slice_errors(tmp_path):
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=30, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    joblib.dump(model, tmp_path / "diabetes.joblib")
    X.assign(y=y).iloc[300:].to_csv(tmp_path / "diabetes.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            str(tmp_path / "diabetes.joblib"),
            str(tmp_path / "diabetes.csv"),
            "--label",
            "y",
            "--tags",
            "sex",
            "--no-explain",
            "--trust",
        ],
    )
    assert result.exit_code == 0, result.output
    truth, predicted = y.iloc[300:].to_numpy(), model.predict(X.iloc[300:])
    residuals = truth - predicted
    mae, rmse = mean_absolute_error(truth, predicted), root_mean_squared_error(truth, predicted)
    assert f"mean absolute error {mae:.4g}, root mean squared error {rmse:.4g}" in result.output
    summary = next(row for row in result.output.splitlines() if f"{mae:.4g}" in row and "│" in row)
    for value in (rmse, residuals.mean(), residuals.std(ddof=1), np.median(residuals)):
        assert f"{value:.4g}" in summary
    assert f"Highest mean absolute error by slice (overall {mae:.4g})" in result.output
    sex = X["sex"].iloc[300:].to_numpy()
    for value in np.unique(sex):
        rows = sex == value
        assert f"{mean_absolute_error(truth[rows], predicted[rows]):.4g}" in result.output


def test_a_three_class_model_on_data_of_two_classes_gets_multiclass_fairness(tmp_path):
    import joblib
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True, as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y.to_numpy()]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X, names)
    joblib.dump(model, tmp_path / "wine.joblib")
    # only two of the three cultivars in the data analysed
    keep = names != "barbera"
    test = X[keep].assign(cultivar=names[keep])
    assert set(model.predict(X[keep])) <= {"barolo", "grignolino"}
    test.to_csv(tmp_path / "wine.csv", index=False)
    out_json = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            str(tmp_path / "wine.joblib"),
            str(tmp_path / "wine.csv"),
            "--label",
            "cultivar",
            "--tags",
            "alcohol",
            "--no-explain",
            "--json",
            str(out_json),
            "--trust",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out_json.read_text())["fairness"]["task"] == "multiclass"
