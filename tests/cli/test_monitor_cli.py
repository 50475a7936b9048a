"""``opsloop monitor`` through typer's runner on a store per test: evaluate, status, report."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from tests.clock import FakeClock
from tests.evaluator_process import evaluate_until_first_round
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.detect import ADWIN
from opsloop.monitoring.evaluation import read_evaluations
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.feature_stream import (
    FeatureReference,
    feature_detector_setting,
    window_inputs,
)
from opsloop.monitoring.monitor_report import window_label
from opsloop.monitoring.reference import set_reference
from opsloop.store import open_database
from opsloop.store.database import now_ms

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

HOUR_MS = 3_600_000
T0 = 1_800_000_000_000
RULE = "drift_share > 0.3 for 2 windows -> alert"
runner = CliRunner()


@pytest.fixture
def clock(store_uri) -> Iterator[FakeClock]:
    database = open_database()
    database.clock = FakeClock(T0)
    yield database.clock
    database.clock = now_ms


@pytest.fixture
def wine_traffic(clock):
    """Wine: 100 rows as reference, then four hourly windows of 60 rows, the last two with
    every feature moved by two standard deviations."""
    frame = load_wine(as_frame=True).data
    order = np.random.default_rng(2).permutation(len(frame))
    reference = frame.iloc[order[:100]].reset_index(drop=True)
    live = frame.iloc[order[100:]].reset_index(drop=True)
    db = open_database()
    set_reference(db, "wine", reference)
    rng = np.random.default_rng(9)
    for k in range(4):
        rows = live.iloc[rng.choice(len(live), 60)].reset_index(drop=True)
        if k >= 2:
            rows = rows + 2 * reference.std()
        times = T0 + k * HOUR_MS + np.arange(60) * 1000
        log_predictions(
            db,
            "wine",
            rows,
            np.zeros(60, dtype=int),
            at_ms=times,
            request_ids=[f"{k}-{i}" for i in range(60)],
        )
    clock.now_ms = T0 + 4 * HOUR_MS
    return reference


def test_evaluate_status_and_report(wine_traffic, tmp_path):
    result = runner.invoke(app, ["monitor", "evaluate", "wine", "--rule", RULE])
    assert result.exit_code == 0, result.output
    assert "4 window(s) evaluated, 1 alert(s) raised" in result.output
    status = runner.invoke(app, ["monitor", "status", "wine", "--json"])
    document = json.loads(status.output)
    assert [w["start_ms"] for w in document["windows"]] == [T0 + k * HOUR_MS for k in range(4)]
    shares = [w["drift_share"] for w in document["windows"]]
    assert max(shares[:2]) <= 0.3 < min(shares[2:])
    assert [(a["rule"], a["window"]) for a in document["alerts"]] == [
        (RULE, "2027-01-15 11:00")
    ]  # window 3, T0 + 3 h
    table = runner.invoke(app, ["monitor", "status", "wine"])
    assert table.exit_code == 0 and f"{RULE} -> alert" in table.output
    assert document["reference"] == "set explicitly" and "reference: set explicitly" in table.output
    out = tmp_path / "wine.html"
    report = runner.invoke(app, ["monitor", "report", "wine", "--html", str(out)])
    assert report.exit_code == 0, report.output
    page = out.read_text()
    assert 'id="monitoring-heatmap"' in page and "1 alert(s) over 4 window(s)" in page
    for feature in wine_traffic.columns:
        assert feature in page


def test_feature_detectors_on_and_their_alarms_in_status(wine_traffic):
    bad = runner.invoke(app, ["monitor", "features", "wine", "--on", "--max-features", "0"])
    assert bad.exit_code != 0 and "max_features: must be an integer of at least 1" in bad.output
    on = runner.invoke(app, ["monitor", "features", "wine", "--on", "--max-features", "3"])
    assert on.exit_code == 0
    assert "feature detectors of wine: on (ADWIN, at most 3 features)" in on.output
    result = runner.invoke(
        app, ["monitor", "evaluate", "wine", "--rule", "feature_alarms > 0 -> alert"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(runner.invoke(app, ["monitor", "status", "wine", "--json"]).output)
    found = [
        (w["window"], a["feature"], a["position"])
        for w in document["windows"]
        for a in w["feature_alarm_list"]
    ]
    # The first three columns, each read by ADWIN directly as normal scores against the
    # reference: the same alarms, all after the shift at row 120 (the third window).
    db = open_database()
    inputs = window_inputs(db, "wine", "default", T0, T0 + 4 * HOUR_MS)
    reference = FeatureReference.of(wine_traffic)
    expected = []
    for name in inputs.columns[:3]:
        scores = reference.normal_scores(name, inputs[name].to_numpy(float))
        for p in ADWIN.preset("monitoring").update_many(scores).drift_indices.tolist():
            expected.append((window_label(T0 + p // 60 * HOUR_MS), name, p))
    assert sorted(found) == sorted(expected) and expected
    assert all(p >= 120 for _, _, p in expected)
    table = runner.invoke(app, ["monitor", "status", "wine"]).output
    for window, name, p in found:
        assert f"feature alarm {window} default: {name} (ADWIN) at value {p}" in table
    # CUSUM instead, for the windows to come; an unknown detector is refused by name.
    bad = runner.invoke(app, ["monitor", "features", "wine", "--on", "--detector", "KSWIN"])
    assert bad.exit_code != 0 and "detector: must be one of ADWIN, CUSUM" in bad.output
    on = runner.invoke(app, ["monitor", "features", "wine", "--on", "--detector", "CUSUM"])
    assert "feature detectors of wine: on (CUSUM, at most 50 features)" in on.output
    assert feature_detector_setting(db, "wine")["detector"] == "CUSUM"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.received.append(
            json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_evaluate_calls_the_webhook_and_says_so(wine_traffic):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        rule = f"drift_share > 0.3 for 2 windows -> webhook(url={url})"
        result = runner.invoke(app, ["monitor", "evaluate", "wine", "--rule", rule])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert f"webhook done: delivered to {url} (204)" in result.output
    assert "2027-01-15 11:00 default: no labels" in result.output
    (payload,) = server.received
    assert payload["deployment"] == "wine" and payload["start_ms"] == T0 + 3 * HOUR_MS


def test_a_stored_policy_is_set_shown_and_applied_without_rules(wine_traffic):
    set_it = ["monitor", "policy", "set", "wine", "--rule", RULE, "--error-detector", "CUSUM"]
    result = runner.invoke(app, [*set_it, "--reason", "watch drift"])
    assert result.exit_code == 0, result.output
    assert "wine: error-stream detector CUSUM, 1 rule(s) (revision 1, by " in result.output
    # A bad rule is refused with its position, and nothing is stored.
    bad = runner.invoke(
        app, ["monitor", "policy", "set", "wine", "--rule", RULE, "--rule", "x > 1 -> alert"]
    )
    assert bad.exit_code == 2
    assert "error: rules.1: policy 'x > 1 -> alert': unknown signal 'x'" in bad.output
    empty = runner.invoke(app, ["monitor", "policy", "set", "wine"])
    assert empty.exit_code == 2 and "give the rules with --rule" in empty.output
    shown = json.loads(runner.invoke(app, ["monitor", "policy", "show", "wine", "--json"]).output)
    assert (shown["rules"], shown["error_detector"], shown["revision"]) == ([RULE], "CUSUM", 1)
    # Evaluated without --rule: the stored rule fires, as --rule RULE made it fire.
    result = runner.invoke(app, ["monitor", "evaluate", "wine"])
    assert result.exit_code == 0, result.output
    assert "4 window(s) evaluated, 1 alert(s) raised" in result.output
    windows = read_evaluations(open_database(), "wine")
    assert {w.metrics["error_detector"]["name"] for w in windows} == {"CUSUM"}
    # DDM is taken with its warning (River's defaults, uncalibrated).
    ddm = runner.invoke(
        app, ["monitor", "policy", "set", "wine", "--no-rules", "--error-detector", "DDM"]
    )
    assert ddm.exit_code == 0, ddm.output
    assert "warning: DDM has no calibrated preset" in ddm.output
    assert "mean delay of 556 items" in ddm.output


def test_a_deployment_without_reference_is_one_line_and_exit_2(clock):
    result = runner.invoke(app, ["monitor", "evaluate", "nothing"])
    assert result.exit_code == 2
    assert "deployment 'nothing' has no monitoring reference" in result.output


def test_a_bad_rule_names_the_action(clock):
    result = runner.invoke(
        app, ["monitor", "evaluate", "wine", "--rule", "drift_share > 1 -> retrain"]
    )
    assert result.exit_code == 2
    assert "retrain needs the option train=..." in result.output


def test_evaluate_follow_runs_until_sigterm_and_exits_0(tmp_path, monkeypatch):
    """A real ``opsloop monitor evaluate --follow`` on a SQLite store: it evaluates the
    closed windows at once, then waits for the next close; SIGTERM ends it with exit 0."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("OPSLOOP_STORE_URI", uri)
    db = open_database()
    set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    hour_ago = now_ms() - HOUR_MS
    log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60, at_ms=hour_ago)
    stopped = evaluate_until_first_round(
        db, "api", ["--follow", "--rule", "drift_share > 0.5 -> alert"]
    )
    assert stopped.evaluation.start_ms == hour_ago - hour_ago % HOUR_MS
    assert stopped.returncode == 0, stopped.output
    assert "1 window(s) evaluated, 1 alert(s) raised" in stopped.output
    assert stopped.output.rstrip().endswith("stopped")


def test_follow_with_a_bad_rule_or_period_stops_at_once_with_exit_2(clock):
    bad_rule = ["monitor", "evaluate", "wine", "--follow", "--rule", "drift_share > 1 -> retrain"]
    result = runner.invoke(app, bad_rule)
    assert result.exit_code == 2 and "retrain needs the option train=..." in result.output
    result = runner.invoke(app, ["monitor", "evaluate", "wine", "--every", "0"])
    assert result.exit_code == 2
    assert "--every: must be a number of seconds > 0, got 0" in result.output


def test_a_window_too_long_to_read_is_a_usage_error_naming_the_option(clock):
    result = runner.invoke(app, ["monitor", "status", "wine", "--window", "9" * 5000 + "d"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: window: at most 32 characters, got 5001 characters"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_misspelled_deployment_or_variant_is_refused_naming_the_known_ones(
    wine_traffic, tmp_path
):
    runner.invoke(app, ["monitor", "evaluate", "wine"])
    page = tmp_path / "wine.html"
    for command in (["status", "wnie"], ["report", "wnie", "--html", str(page)]):
        result = runner.invoke(app, ["monitor", *command])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == "error: unknown deployment 'wnie'; known: wine"
    result = runner.invoke(
        app, ["monitor", "report", "wine", "--variant", "blue", "--html", str(page)]
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: deployment 'wine' has no variant 'blue'; known: default"
    assert not page.exists()
    # Logged and not yet evaluated: known by its events.
    db = open_database()
    log_predictions(db, "iris", pd.DataFrame({"x": [1.0]}), [0], at_ms=T0, variant="green")
    ok = runner.invoke(
        app, ["monitor", "report", "iris", "--variant", "green", "--html", str(page)]
    )
    assert ok.exit_code == 0, ok.output
    # The list is bounded: 25 more deployments show as the first 20 and a count.
    for k in range(25):
        set_reference(db, f"d{k:02d}", wine_traffic.iloc[:5])
    listed = runner.invoke(app, ["monitor", "status", "nope"]).output.strip()
    names = sorted([f"d{k:02d}" for k in range(25)] + ["iris", "wine"])
    assert listed == f"error: unknown deployment 'nope'; known: {', '.join(names[:20])} and 7 more"


def test_a_report_into_a_missing_folder_names_the_option_and_the_folder(wine_traffic, tmp_path):
    missing = tmp_path / "no" / "such"
    result = runner.invoke(app, ["monitor", "report", "wine", "--html", str(missing / "r.html")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: --html: the folder {str(missing)!r} does not exist; create it first"
    )
    assert "Errno" not in result.output and not missing.exists()


def test_a_misspelled_signal_suggests_the_closest_and_lists_every_signal(clock):
    from opsloop.monitoring.policy import ACTIONS, SIGNALS

    result = runner.invoke(
        app, ["monitor", "evaluate", "wine", "--rule", "drift_shar > 0.3 -> alert"]
    )
    assert result.exit_code == 2
    line = result.output.strip()
    assert line == (
        "error: policy 'drift_shar > 0.3 -> alert': unknown signal 'drift_shar'; did you mean "
        f"'drift_share'? (signals: {', '.join(SIGNALS)})"
    )
    assert len(SIGNALS) > 40 and "characters cut" not in line
    result = runner.invoke(
        app, ["monitor", "evaluate", "wine", "--rule", "drift_share > 0.3 -> alrt"]
    )
    assert result.output.strip().endswith(
        f"unknown action 'alrt'; did you mean 'alert'? (available: {', '.join(ACTIONS)})"
    )
