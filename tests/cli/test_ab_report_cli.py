"""``opsloop deployments ab-report`` through typer's runner on a store per test."""

from __future__ import annotations

import json
import math

import pytest
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.analysis.ab_test import compare_proportions
from opsloop.cli.deployments import deployments_app
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, PredictionEvent, StoreEventSink, Variant, record_feedback
from opsloop.store import ArtifactStore, open_database
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

runner = CliRunner()
# (variant, requests, conversions among them): arm b converts 30 of 200, arm a 18 of 200.
TRAFFIC = (("a", 200, 18), ("b", 200, 30))


@pytest.fixture
def answered(store_uri):
    """An A/B deployment whose arms answered and earned the conversions of TRAFFIC."""
    db = open_database()
    registry = ModelRegistry(db, ArtifactStore(artifact_uri()))
    for number in (1, 2):
        registry.register("credit", f"model {number}".encode(), flavor="onnx")
    Deployments(db).deploy(
        "ab-api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    events = [
        PredictionEvent(
            "ab-api",
            arm,
            "primary",
            "credit",
            version,
            f"{arm}-{i}",
            None,
            [{}],
            {"predictions": [0]},
            None,
            1.0,
            1_000,
        )
        for version, (arm, requests, _) in enumerate(TRAFFIC, start=1)
        for i in range(requests)
    ]
    StoreEventSink(db).write(events)
    for arm, requests, conversions in TRAFFIC:
        for i in range(requests):
            record_feedback(db, "ab-api", f"{arm}-{i}", reward=float(i < conversions), actor="ana")
    return db


def test_ab_report_prints_the_comparison_as_json_and_as_a_table(answered):
    found = runner.invoke(deployments_app, ["ab-report", "ab-api", "--json"])
    assert found.exit_code == 0, found.output
    report = json.loads(found.stdout)
    expected = compare_proportions(18, 200, 30, 200).to_dict()
    assert report["comparisons"]["b"] == pytest.approx(expected, abs=0, nan_ok=True)
    assert [(arm["variant"], arm["requests"], arm["outcomes"]) for arm in report["arms"]] == [
        ("a", 200, 200),
        ("b", 200, 200),
    ]
    assert report["arms"][1]["mean"] == 30 / 200
    table = runner.invoke(deployments_app, ["ab-report", "ab-api", "--alpha", "0.1"])
    assert table.exit_code == 0, table.output
    assert "A/B report of ab-api: reward as a proportion, arms against a" in table.stdout
    assert "90% low" in table.stdout
    assert not math.isnan(report["comparisons"]["b"]["p_value"])


def test_ab_report_of_an_unknown_outcome_is_one_line_and_exit_code_2(answered):
    found = runner.invoke(deployments_app, ["ab-report", "ab-api", "--outcome", "clicks"])
    assert found.exit_code == 2
    assert found.stderr.strip() == (
        "error: outcome must be one of reward, label, correct, got 'clicks'"
    )


def test_ab_report_through_a_server_gives_the_stores_numbers(answered, monkeypatch):
    local = runner.invoke(deployments_app, ["ab-report", "ab-api", "--json"])
    app = create_app(answered, ArtifactStore(artifact_uri()))
    with running_server(app) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", app.state.installation_token)
        remote = runner.invoke(deployments_app, ["ab-report", "ab-api", "--json"])
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert json.loads(remote.stdout)["comparisons"]["b"]["n_b"] == 200
