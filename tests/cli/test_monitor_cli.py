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


@pytest.fixture
def cancer_answers():
    """Breast cancer: 150 rows of four features, a depth-2 tree's answers, one per minute
    from T0, with their labels."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    data = load_breast_cancer(as_frame=True)
    inputs = data.data[["mean radius", "mean texture", "worst area", "worst smoothness"]]
    inputs = inputs.iloc[:150].reset_index(drop=True)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(inputs, data.target[:150])
    frame = inputs.assign(
        prediction=tree.predict(inputs),
        request_id=[f"r{i:04d}" for i in range(150)],
        at=pd.to_datetime(T0 + np.arange(150) * 60_000, unit="ms", utc=True).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        label=data.target[:150].to_numpy(),
    )
    return frame


def test_monitor_log_records_what_log_predictions_records(clock, cancer_answers, tmp_path):
    from opsloop.monitoring.event_log import label_counts, log_labels
    from opsloop.serving.prediction_events import read_prediction_events

    path = tmp_path / "answers.csv"
    cancer_answers.to_csv(path, index=False)
    options = ["--request-id", "request_id", "--time", "at", "--labels", "label"]
    result = runner.invoke(app, ["monitor", "log", "from-file", str(path), *options])
    assert result.exit_code == 0, result.output
    assert "150 prediction(s) logged to from-file (default)" in result.output
    db = open_database()
    inputs = cancer_answers.drop(columns=["prediction", "request_id", "at", "label"])
    ids = log_predictions(
        db,
        "from-python",
        inputs,
        cancer_answers["prediction"].to_numpy(),
        request_ids=cancer_answers["request_id"].tolist(),
        at_ms=T0 + np.arange(150) * 60_000,
    )
    receipt = log_labels(db, "from-python", ids, cancer_answers["label"].to_numpy())
    assert label_counts(db, "from-file") == label_counts(db, "from-python")
    assert (receipt.accepted, receipt.unknown) == (150, 0)
    fields = ["variant", "role", "model", "version", "request_id", "inputs", "output", "at_ms"]
    from_file = read_prediction_events(db, "from-file")[fields]
    from_python = read_prediction_events(db, "from-python")[fields]
    pd.testing.assert_frame_equal(from_file, from_python)
    assert from_file["at_ms"].iloc[-1] == T0 + 149 * 60_000
    assert from_file["inputs"].iloc[3] == [inputs.iloc[3].to_dict()]


def test_monitor_log_labels_alone_and_errors_naming_the_column_and_row(
    clock, cancer_answers, tmp_path
):
    from opsloop.monitoring.event_log import label_counts

    answers, labels = tmp_path / "answers.parquet", tmp_path / "labels.csv"
    cancer_answers.drop(columns=["label"]).to_parquet(answers)
    cancer_answers[["request_id", "label"]].iloc[:100].to_csv(labels, index=False)
    logged = runner.invoke(app, ["monitor", "log", "api", str(answers), "--request-id",
                                 "request_id", "--time", "at", "--json"])  # fmt: skip
    assert logged.exit_code == 0, logged.output
    assert json.loads(logged.output) == {"predictions": 150, "labels": None}
    clock.now_ms = T0 + 2 * HOUR_MS + 30 * 60_000
    joined = runner.invoke(app, ["monitor", "log", "api", str(labels), "--request-id",
                                 "request_id", "--labels", "label"])  # fmt: skip
    assert joined.exit_code == 0, joined.output
    # T0 + 2 h 30 min: the answers of the first two hours' windows have closed.
    late = int(((T0 + np.arange(100) * 60_000) < T0 + 2 * HOUR_MS).sum())
    assert label_counts(open_database(), "api") == {
        "accepted": 100, "late": late, "duplicate": 0, "unknown": 0
    }  # fmt: skip
    assert "labels: 100 accepted" in joined.output

    def refused(frame: pd.DataFrame, *options: str) -> str:
        path = tmp_path / "bad.csv"
        frame.to_csv(path, index=False)
        result = runner.invoke(app, ["monitor", "log", "api", str(path), *options])
        assert result.exit_code == 2, result.output
        return result.output.strip()

    bad = cancer_answers.copy()
    bad.loc[41, "at"] = "yesterday"
    assert refused(bad, "--time", "at") == (
        "error: column 'at', row 42: milliseconds since the epoch or a date and time, "
        "got 'yesterday'"
    )
    bad = cancer_answers.copy()
    bad.loc[7, "request_id"] = "r0002"
    assert refused(bad, "--request-id", "request_id") == (
        "error: column 'request_id', row 8: request id 'r0002' repeats row 3's"
    )
    bad = cancer_answers.astype({"prediction": float})
    bad.loc[9, "prediction"] = np.nan
    assert refused(bad) == "error: column 'prediction', row 10: a prediction is missing"
    bad = cancer_answers.astype({"label": float})
    bad.loc[12, "label"] = np.inf
    assert refused(bad, "--labels", "label") == (
        "error: column 'label', row 13: must be finite, got inf"
    )
    # A label's kind is checked against the answer it joins: text for a number.
    bad = cancer_answers.assign(label=[None] * 12 + ["benign"] + [None] * 137)
    options = ["--request-id", "request_id", "--labels", "label"]
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path)
    result = runner.invoke(app, ["monitor", "log", "other", str(path), *options])
    assert result.output.strip() == (
        "error: column 'label', row 13: the model answers numbers; give a number, got the "
        "text 'benign'"
    )
    assert refused(cancer_answers, "--prediction", "answer") == (
        "error: no column 'answer' (the predictions), and no label column to log alone; "
        "columns: mean radius, mean texture, worst area, worst smoothness, prediction, "
        "request_id, at, label"
    )


def test_monitor_log_refuses_more_rows_than_its_bound(clock, cancer_answers, tmp_path, monkeypatch):
    from opsloop.monitoring import prediction_table

    monkeypatch.setattr(prediction_table, "MAX_ROWS", 100)
    path = tmp_path / "answers.parquet"
    cancer_answers.to_parquet(path)
    result = runner.invoke(app, ["monitor", "log", "api", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: at most 100 rows in one table, got 150; split it"
    assert runner.invoke(app, ["monitor", "status", "api"]).exit_code == 2  # nothing logged


def _logged_events(deployment: str) -> int:
    from opsloop.serving.prediction_events import read_prediction_events

    return len(read_prediction_events(open_database(), deployment))


def test_monitor_log_checks_every_label_against_its_row_before_logging_anything(
    clock, cancer_answers, tmp_path
):
    path = tmp_path / "answers.csv"
    options = ["--request-id", "request_id", "--labels", "label"]
    # One text among numbers: the CSV column reads as text, "1" and "0" included.
    bad = cancer_answers.astype({"label": object})
    bad.loc[12, "label"] = "benign"
    bad.to_csv(path, index=False)
    result = runner.invoke(app, ["monitor", "log", "api", str(path), *options])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: column 'label', row 13: the model answers numbers; give a number, got the "
        "text 'benign'"
    )
    assert _logged_events("api") == 0
    cancer_answers.to_csv(path, index=False)
    result = runner.invoke(app, ["monitor", "log", "api", str(path), *options, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["labels"]["accepted"] == 150
    # The same file again: refused by its ids, not logged twice.
    again = runner.invoke(app, ["monitor", "log", "api", str(path), *options])
    assert again.exit_code == 2
    assert again.output.strip().startswith(
        "error: column 'request_id', row 1: request id 'r0000' is already logged for 'api' "
        "(150 of the table's ids are); nothing was logged."
    )
    assert _logged_events("api") == 150
    # Another deployment's ids are its own.
    other = runner.invoke(app, ["monitor", "log", "other", str(path), "--request-id", "request_id"])
    assert other.exit_code == 0, other.output


def test_monitor_log_names_its_options_in_errors(clock, cancer_answers, tmp_path):
    path = tmp_path / "answers.csv"
    cancer_answers.to_csv(path, index=False)
    result = runner.invoke(app, ["monitor", "log", "api", str(path), "--request-id", "id"])
    assert result.output.strip().startswith(
        "error: --request-id: no column 'id' in answers.csv; columns: mean radius"
    )
    cancer_answers[["request_id", "label"]].to_csv(path, index=False)
    result = runner.invoke(app, ["monitor", "log", "api", str(path), "--labels", "label"])
    assert result.output.strip() == (
        "error: labels alone (no column 'prediction', see --prediction) are joined by "
        "request id: give --request-id"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1e30, "1e+30"), (9.3e18, "9.3e+18"), ("1800-01-01", "'1800-01-01'"),
     ("99999999999999999999", "'99999999999999999999'"), ("1500-01-01", "'1500-01-01'"),
     (pd.Timestamp("1500-01-01").as_unit("ms"), "Timestamp('1500-01-01 00:00:00')")],
)  # fmt: skip
def test_monitor_log_refuses_a_time_outside_1970_to_9999(
    clock, cancer_answers, tmp_path, value, shown
):
    # Texts join the fixture's ISO times; numbers replace them with T0; a date before 1677
    # goes into a datetime64[ms] column, which holds it where nanoseconds cannot.
    if isinstance(value, str):
        bad = cancer_answers.copy()
    elif isinstance(value, pd.Timestamp):
        at = pd.to_datetime(cancer_answers["at"]).dt.as_unit("ms").dt.tz_localize(None)
        bad = cancer_answers.assign(at=at)
    else:
        bad = cancer_answers.assign(at=float(T0))
    bad.loc[4, "at"] = value
    path = tmp_path / "answers.parquet"
    bad.to_parquet(path)
    result = runner.invoke(app, ["monitor", "log", "api", str(path), "--time", "at"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: column 'at', row 5: a time from 1970 to 9999 (whole milliseconds since the "
        f"epoch, 0 to 253402300799999, or a date and time), got {shown}"
    )
    assert _logged_events("api") == 0


def test_monitor_log_reads_a_date_past_2262_in_milliseconds(clock, cancer_answers, tmp_path):
    import datetime

    from opsloop.serving.prediction_events import read_prediction_events

    year_3000 = (datetime.date(3000, 1, 1) - datetime.date(1970, 1, 1)).days * 86_400_000
    text = cancer_answers.iloc[:3].copy()
    text.loc[2, "at"] = "3000-01-01T00:00:00Z"
    column = cancer_answers.iloc[3:6].copy()
    column["at"] = pd.Series(
        ["2024-01-01", "2024-01-02", "3000-01-01"], dtype="datetime64[ms]", index=column.index
    )
    for part, name in ((text, "text.csv"), (column, "column.parquet")):
        path = tmp_path / name
        part.to_csv(path, index=False) if name.endswith(".csv") else part.to_parquet(path)
        result = runner.invoke(app, ["monitor", "log", "api", str(path), "--time", "at"])
        assert result.exit_code == 0, result.output
    times = sorted(read_prediction_events(open_database(), "api")["at_ms"])
    assert times[-2:] == [year_3000, year_3000]


def test_monitor_log_bounds_a_csv_before_reading_it_whole(
    clock, cancer_answers, tmp_path, monkeypatch
):
    import gzip

    from opsloop.cli import monitor
    from opsloop.monitoring import prediction_table

    monkeypatch.setattr(prediction_table, "MAX_ROWS", 100)
    path = tmp_path / "answers.csv.gz"
    text = cancer_answers.to_csv(index=False)
    # Row 120 is broken: read whole, the file would be refused for it; it is never reached.
    lines = text.splitlines()
    lines[120] += ",1,2,3"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = runner.invoke(app, ["monitor", "log", "api", str(path)])
    assert result.output.strip() == "error: at most 100 rows in one table, got more; split it"
    monkeypatch.setattr(prediction_table, "MAX_ROWS", 1_000)
    monkeypatch.setattr(monitor, "MAX_LOG_DECODED_BYTES", 4_096)
    path.write_bytes(gzip.compress(text.encode()))
    assert len(text) > 4_096
    result = runner.invoke(app, ["monitor", "log", "api", str(path)])
    assert result.output.strip() == (
        f"error: {path}: at most 3.8147e-06 GiB once decompressed; split it"
    )
    assert _logged_events("api") == 0
