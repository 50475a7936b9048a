"""The version page shows the release gates' verdicts recorded on the version: each check
with its statistic, threshold and verdict, from a real gate run, over a real server, read
from that version's entries of the audit log alone."""

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
from opsloop.ui.gate_verdicts import version_gate_verdicts

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


def test_the_page_reads_only_the_versions_entries_and_shows_what_the_whole_log_gives(
    database, artifacts
):
    registry = ModelRegistry(database, artifacts)
    registry.register("m", b"x", flavor="onnx")
    registry.register("m", b"y", flavor="onnx")
    registry.register("m2", b"z", flavor="onnx")
    failed = {"gate": "release", "checks": 2, "failed": ["auc >= 0.8"]}
    registry.record_gate("m", 2, passed=False, gate=failed, reason="first try")
    # Entries of other entities: the other version's verdict, an alias, another model.
    registry.record_gate("m", 1, passed=True, gate={"gate": "release", "checks": 2, "failed": []})
    registry.set_alias("m", "champion", 1)
    registry.record_gate("m2", 1, passed=False, gate=failed)
    registry.record_gate("m", 2, passed=True, gate={"gate": "release", "checks": 2, "failed": []})
    whole = version_gate_verdicts(registry.audit(), "m", 2)
    assert [(v["verdict"], v["reason"]) for v in whole] == [
        ("passed", None), ("failed", "first try")
    ]  # fmt: skip
    assert version_gate_verdicts(registry.audit("m", version=2), "m", 2) == whole
    app = create_app(database, artifacts)
    returned = []  # the entries each audit query of the page returns
    audit = app.state.registry.audit

    def recorded(*arguments, **options):
        found = audit(*arguments, **options)
        returned.append(found)
        return found

    app.state.registry.audit = recorded
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        page = client.get("/models/m/versions/2").text
    (read,) = returned
    # The version's register entry and its two verdicts: 3 of the log's 10 entries.
    assert len(registry.audit()) == 10
    assert read[["action", "entity"]].values.tolist() == [
        ["register_version", "model:m/version:2"],
        ["gate_failed", "model:m/version:2"],
        ["gate_passed", "model:m/version:2"],
    ]
    assert version_gate_verdicts(read, "m", 2) == whole
    assert page.index("release: passed</h3>") < page.index("release: failed</h3>")
    assert "Recorded without each check's numbers: 2 checks, failed: auc &gt;= 0.8." in page
