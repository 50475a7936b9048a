"""Retraining asked for by a person, from Python and from ``opsloop monitor retrain``: the
same action as the policy's, on the rows since the change point the monitoring recorded,
through the gate to a canary; what it needs and when it cannot start are said."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.retrain_request import latest_change_point, retrain_on_request
from opsloop.monitoring.training_window import training_window
from opsloop.registry import ModelRegistry
from opsloop.registry.audit import audit_entries
from opsloop.serving import Deployments, Variant
from opsloop.store import open_database

from .conftest import HOUR_MS, T0
from .test_evaluation import PER_WINDOW, WINDOWING, Traffic
from .test_policy_actions import FIT, FLIP_AT, _run, loop

__all__ = ["loop"]

ALERT = "concept_drift > 0 -> alert"


def test_a_requested_retrain_learns_from_the_last_change_point(db, clock, loop):
    traffic, _, deployments, context = loop
    with pytest.raises(InvalidArgumentError, match="since: no change point is recorded"):
        retrain_on_request(context, "cancer", train=FIT, windowing=WINDOWING)
    _run(db, clock, traffic, ALERT, context)
    assert latest_change_point(db, "cancer", "default") == T0 + FLIP_AT * HOUR_MS
    outcome = retrain_on_request(context, "cancer", train=FIT, windowing=WINDOWING)
    assert outcome["status"] == "done", outcome["reason"]
    # From the change point to the end of the last evaluated window: two windows of rows.
    start, end = T0 + FLIP_AT * HOUR_MS, T0 + (FLIP_AT + 2) * HOUR_MS
    window = training_window(db, "cancer", start_ms=start, end_ms=end, label="label")
    assert outcome["window"] == window.to_dict()
    assert window.new_rows == 2 * PER_WINDOW
    assert deployments.get("cancer").serving == {"live": 1, "retrained": 2}
    entries = audit_entries(db, entity="monitor:cancer")
    last = entries.iloc[-1]
    assert last["action"] == "policy_retrain"
    assert last["reason"].startswith("done: ")
    # T0 + 4 h, the start of the data, as people read it.
    assert (
        f"retrain requested by {context.acting}, on the data from 2027-01-15T12:00:00Z"
        in last["reason"]
    )


def test_a_requested_retrain_needs_a_registry_a_gate_and_data(db, clock, loop):
    traffic, _, _, context = loop
    with pytest.raises(InvalidArgumentError, match="needs ActionContext"):
        retrain_on_request(ActionContext(db), "cancer", train=FIT)
    with pytest.raises(InvalidArgumentError, match="until: 'cancer' variant 'default' has no"):
        retrain_on_request(context, "cancer", train=FIT, since_ms=T0, windowing=WINDOWING)
    _run(db, clock, traffic, ALERT, context, windows=1)
    since = T0 + HOUR_MS * 9 // 10  # the last tenth of the only window
    outcome = retrain_on_request(context, "cancer", train=FIT, since_ms=since, windowing=WINDOWING)
    rows = training_window(db, "cancer", start_ms=since, end_ms=T0 + HOUR_MS, label="label")
    assert outcome["status"] == "failed"
    assert outcome["reason"] == (
        f"{rows.new_rows} labelled rows since the change point; the policy needs min_rows=50"
    )
    assert 0 < rows.new_rows < 50


@pytest.fixture
def local_store(tmp_path, monkeypatch, cancer):
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    db = open_database()
    registry = ModelRegistry()
    traffic = Traffic(cancer, flip_at=FLIP_AT)
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    Deployments(db).deploy("cancer", [Variant("live", "cancer-model", version=1)])
    from opsloop.monitoring.reference import set_reference

    set_reference(db, "cancer", traffic.train, predictions=traffic.model.predict(traffic.train))
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps(GATE_DOCUMENT))
    return db, traffic, gate


GATE_DOCUMENT = {
    "version": 1,
    "label": "label",
    "checks": [{"kind": "floor", "metric": "accuracy", "min": 0.8}],
}


def test_the_command_line_retrains_and_prints_what_it_did(local_store, monkeypatch):
    db, traffic, gate = local_store
    now = {"ms": T0}
    monkeypatch.setattr(db, "clock", lambda: now["ms"])
    for k in range(FLIP_AT + 2):
        traffic.log(db, k, with_labels=True)
        now["ms"] = T0 + (k + 1) * HOUR_MS
    runner = CliRunner()
    args = ["monitor", "evaluate", "cancer", "--rule", ALERT]
    assert runner.invoke(app, args).exit_code == 0
    since = pd.Timestamp(T0 + FLIP_AT * HOUR_MS, unit="ms").isoformat()
    args = ["monitor", "retrain", "cancer", "--train", FIT, "--gate", str(gate)]
    result = runner.invoke(app, [*args, "--since", since])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"window: 2027-01-15 12:00 to 2027-01-15 14:00, {2 * PER_WINDOW} labelled rows and 0 "
        "from the reference"
    )
    assert lines[1].startswith("registered cancer-model v2 (run ")
    assert lines[1].endswith("gated against v1")
    assert lines[2].startswith("done: ") and "canary of cancer-model v2 at 5%" in lines[2]
    assert Deployments(db).get("cancer").serving == {"live": 1, "retrained": 2}
    refused = runner.invoke(app, [*args, "--since", "yesterday-ish"])
    assert refused.exit_code == 2
    assert "--since: milliseconds since the epoch or an ISO time" in refused.output
    assert WINDOWING.window_ms == HOUR_MS
