"""The version page shows the release gates' verdicts recorded on the version: each check
with its statistic, threshold and verdict, from a real gate run, over a real server."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from tests.server.running import running_server
from tests.ui.test_pages import session

from opsloop.analysis.gate import parse_gate
from opsloop.registry import ModelRegistry
from opsloop.registry.release_gate import run_gate
from opsloop.server import create_app

GATE = parse_gate(
    {
        "version": 1,
        "label": "y",
        "checks": [
            {"kind": "floor", "metric": "accuracy", "min": 0.9},
            {"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05},
        ],
    }
)


def _rows(html: str, table_class: str) -> list[list[str]]:
    """The body rows of the first table of class ``table_class``, as cell texts."""
    table = re.search(rf'<table class="{table_class}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert table, f"no table {table_class}"
    cells = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells.findall(row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    ]


def test_the_version_page_shows_each_checks_statistic_threshold_and_verdict(database, artifacts):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    frame["y"] = (frame["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    registry = ModelRegistry(database, artifacts)
    good = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    blind = LogisticRegression().fit(frame[["z"]], frame["y"])
    registry.register("m", good, input_schema=frame[["x", "z"]], output_type="int")
    registry.register("m", blind, input_schema=frame[["z"]], output_type="int")
    registry.set_alias("m", "champion", 1)
    run_gate(registry, GATE, "models:/m/2", frame, data_name="holdout")
    accuracy = accuracy_score(frame["y"], blind.predict(frame[["z"]]))
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        gated = client.get("/models/m/versions/2")
        ungated = client.get("/models/m/versions/1").text
    assert gated.status_code == 200
    assert "gate v1: failed</h3>" in gated.text
    assert "against m v1, on holdout (300 rows)" in gated.text
    floor, inferiority = _rows(gated.text, "gate-checks")
    assert floor[1:3] == ["floor", f"{accuracy:.6g}"] and accuracy < 0.9
    assert (floor[4], floor[5]) == ("0.9", "fail")
    assert (inferiority[0], inferiority[1]) == (
        "accuracy non-inferiority (mcnemar)",
        "non_inferiority",
    )
    assert (inferiority[3], inferiority[4], inferiority[5]) == ("1", "0.05", "fail")
    assert "No release gate has been run on this version." in ungated


def test_a_verdict_recorded_without_the_checks_numbers_names_the_failed_checks(database, artifacts):
    registry = ModelRegistry(database, artifacts)
    registry.register("m", b"x", flavor="onnx")
    registry.record_gate(
        "m", 1, passed=False, gate={"gate": "release", "checks": 3, "failed": ["auc >= 0.75"]}
    )
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        page = client.get("/models/m/versions/1").text
    assert "release: failed</h3>" in page
    assert "Recorded without each check's numbers: 3 checks, failed: auc &gt;= 0.75." in page
