import json
import re

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from opsloop.analysis import (
    compare_models,
    error_analysis,
    error_tree,
    explain,
    fairness,
    hlp,
    residual_analysis,
    slice_metrics,
    sliceline,
)
from opsloop.datasets import credit, human_labels
from opsloop.reports.analysis import AnalysisReport
from opsloop.reports.formatting import format_share


@pytest.fixture(scope="module")
def report():
    df = credit(1500, seed=3)
    truth = df["default"].to_numpy()
    rng = np.random.default_rng(3)
    mobile = df["device"].astype(str).to_numpy() == "mobile"
    predicted = truth ^ (rng.random(len(df)) < np.where(mobile, 0.3, 0.08))
    after = np.where(mobile & (rng.random(len(df)) < 0.6), truth, predicted)
    tags = df[["gender", "device", "region"]]
    baseline = hlp(human_labels(df, seed=3), truth, tags)
    features = df[["age", "salary", "loan_amount"]]
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    model.fit(features, truth)
    from sklearn.metrics import accuracy_score

    return AnalysisReport(
        errors=error_analysis(truth, predicted, tags, hlp=baseline),
        slices=slice_metrics(truth, predicted, tags, accuracy_score, n_boot=20),
        tree=error_tree(df[["age", "device", "salary"]], truth, predicted, max_depth=2),
        found=sliceline(tags, (predicted != truth).astype(float), min_support=50),
        comparison=compare_models(truth, predicted, after, tags),
        residuals=residual_analysis(
            df["salary"].to_numpy(), df["salary"].to_numpy() * 0.9, df[["age"]], n_permutations=99
        ),
        fairness=fairness(truth, predicted, df[["gender"]]),
        explanation=explain(model, features, truth, top=2),
        title="Champion <model>",
    )


def test_page_is_standalone_and_holds_every_part(report, tmp_path):
    path = report.to_html(tmp_path / "analysis.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Champion &lt;model&gt;" in page  # titles from users are escaped
    assert not re.search(r"<script[^>]+src=", page)  # nothing loaded from elsewhere
    assert page.count("plotly.js v") == 1
    for heading in [
        "Room for improvement by tag",
        "Metrics per slice",
        "Error tree",
        "Slices with the highest error",
        "Before and after, slice by slice",
        "Residuals",
        "Fairness (binary)",
        "What the model relies on",
        "Feature effects",
        "Local surrogate",
    ]:
        assert heading in page
    top = report.errors.top(1)[0]
    assert f"<td>{top.tag}</td><td>{top.value}</td>" in page
    assert format_share(top.room) in page
    assert report.tree.leaves[0].rule.replace(">", "&gt;").replace("<", "&lt;") in page
    assert 'id="errors-room"' in page and 'id="ale-0"' in page and 'id="pdp-1"' in page


def test_headline_names_the_slice_with_most_room(report):
    top = report.errors.top(1)[0]
    assert report.headline() == (
        f"{format_share(report.errors.error_rate)} of {report.errors.n} predictions are wrong; "
        f"most room for improvement in {top.tag} = {top.value} "
        f"({format_share(top.room)} of all predictions)."
    )


def test_to_dict_is_json(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert d["errors"]["n"] == 1500
    assert d["explanation"]["model_kind"] == "tree"


def test_same_report_renders_the_same_page(report):
    assert report.render_html() == report.render_html()


def test_bad_path():
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        AnalysisReport().to_html(3)
