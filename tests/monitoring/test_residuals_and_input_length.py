"""Residuals and input length as monitored metrics.

Residuals: a linear regression fitted on scikit-learn's bundled diabetes data answers the
rest of it over three hourly windows, logged from Python; the labels arrive with
``log_labels``, in the last two windows shifted by +40 (the model now predicts too low).
Each window's residual moments and quantiles are numpy's over the same rows, the interval of
the mean and the t-test are scipy's, a rule on ``residual_mean`` fires on the second shifted
window, and the status, the command line, the HTML report, the gauges and the REST
evaluations show them.

Input length: a hand-built frame of short comments, requests of 1, 2 and 3 records; the
lengths, the records per request and the Kolmogorov-Smirnov statistic are derived by hand.
Windows and evaluations kept before either was computed still fold and read as ``None``.
"""

from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from tests.server.exposition import metric_value
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.monitor_report import monitor_report, monitor_status
from opsloop.monitoring.monitoring_gauges import MonitoringGauges, gauge_readings
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.residuals import residual_summary
from opsloop.monitoring.window_metrics import window_metrics
from opsloop.monitoring.window_part import WindowPart
from opsloop.monitoring.window_store import read_window
from opsloop.monitoring.windowing import Windowing
from opsloop.server import create_app
from opsloop.serving.prediction_events import EventRecorder, PredictionEvent, StoreEventSink
from opsloop.store import ArtifactStore, tables

from .conftest import HOUR_MS, T0

RULE = "residual_mean > 5 for 2 windows -> alert"
SHIFT = 40.0


@pytest.fixture
def diabetes_windows(db, clock):
    """The diabetes deployment's three evaluated windows and, per window, the residuals
    ``label - prediction`` computed here from the model."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    train, live = slice(0, 250), slice(250, 442)
    model = LinearRegression().fit(X.iloc[train], y.iloc[train])
    set_reference(db, "diabetes", X.iloc[train], predictions=model.predict(X.iloc[train]))
    rows = X.iloc[live].reset_index(drop=True)
    predicted = model.predict(rows)
    labels = y.iloc[live].to_numpy()
    # 192 live rows: 64 per window.
    window_of = np.arange(len(rows)) // 64
    labels = labels + np.where(window_of >= 1, SHIFT, 0.0)
    ids = [f"d{i}" for i in range(len(rows))]
    log_predictions(
        db,
        "diabetes",
        rows,
        predicted,
        request_ids=ids,
        at_ms=T0 + window_of * HOUR_MS + np.arange(len(rows)),
        sample_process=False,
    )
    log_labels(db, "diabetes", ids, labels)
    clock.advance(3 * HOUR_MS)
    evaluations = evaluate(db, "diabetes", policies=[RULE])
    expected = [labels[window_of == k] - predicted[window_of == k] for k in range(3)]
    return evaluations, expected


def test_residual_moments_are_numpys_and_the_interval_is_scipys(diabetes_windows):
    evaluations, expected = diabetes_windows
    assert [e.start_ms for e in evaluations] == [T0, T0 + HOUR_MS, T0 + 2 * HOUR_MS]
    for evaluation, residuals in zip(evaluations, expected, strict=True):
        found = evaluation.metrics["residuals"]
        assert found["n"] == residuals.size == 64
        assert found["mean"] == pytest.approx(residuals.mean(), rel=1e-12)
        assert found["std"] == pytest.approx(residuals.std(ddof=1), rel=1e-12)
        assert (found["min"], found["max"]) == (residuals.min(), residuals.max())
        quantiles = np.quantile(residuals, [0.05, 0.25, 0.5, 0.75, 0.95])
        for name, value in zip(("p05", "p25", "p50", "p75", "p95"), quantiles, strict=True):
            assert found[name] == pytest.approx(value, rel=1e-12)
        test = stats.ttest_1samp(residuals, 0.0)
        low, high = test.confidence_interval(0.95)
        assert found["mean_low"] == pytest.approx(low, rel=1e-12, abs=1e-12)
        assert found["mean_high"] == pytest.approx(high, rel=1e-12, abs=1e-12)
        interval = stats.t.interval(
            0.95, residuals.size - 1, loc=residuals.mean(), scale=stats.sem(residuals)
        )
        assert (found["mean_low"], found["mean_high"]) == pytest.approx(interval, rel=1e-12)
        assert found["t_statistic"] == pytest.approx(test.statistic, rel=1e-12)
        assert found["p_value"] == pytest.approx(test.pvalue, rel=1e-9)
        # The signals at the top of the metrics are the summary's.
        assert evaluation.metrics["residual_mean"] == found["mean"]
        assert evaluation.metrics["residual_mean_low"] == found["mean_low"]
        assert evaluation.metrics["task"] == "mae"
    # Unshifted, the interval covers zero; shifted by +40, it lies above it.
    first, second, third = (e.metrics for e in evaluations)
    assert first["residual_mean_low"] < 0 < first["residual_mean_high"]
    assert second["residual_mean_low"] > 0 and third["residual_mean_low"] > 0


def test_a_rule_on_the_mean_residual_fires_and_every_surface_shows_it(
    db, diabetes_windows, store_path, monkeypatch, tmp_path
):
    evaluations, _ = diabetes_windows
    assert [e.alerts for e in evaluations] == [(), (), (RULE,)]
    (alert,) = read_alerts(db, "diabetes").to_dict("records")
    assert [w["value"] for w in alert["evidence"]["windows"]] == [
        evaluations[1].metrics["residual_mean"],
        evaluations[2].metrics["residual_mean"],
    ]
    means = [e.metrics["residual_mean"] for e in evaluations]

    status = monitor_status(db, "diabetes")
    assert [w["residual_mean"] for w in status["windows"]] == means
    assert [w["residual_mean_high"] for w in status["windows"]] == [
        e.metrics["residual_mean_high"] for e in evaluations
    ]
    monkeypatch.setenv("OPSLOOP_STORE_URI", f"sqlite:///{store_path}")
    shown = CliRunner().invoke(cli, ["monitor", "status", "diabetes", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [w["residual_mean"] for w in json.loads(shown.output)["windows"]] == means
    table = CliRunner().invoke(cli, ["monitor", "status", "diabetes"], terminal_width=400)
    assert table.exit_code == 0, table.output
    # The mean residual with its interval beside it.
    intervals = re.findall(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", table.output)
    assert len(intervals) == 3
    # Shown to four significant digits: the shifted windows' lower bounds above zero.
    assert [float(low) > 0 for _, low, _ in intervals] == [False, True, True]

    report = monitor_report(db, "diabetes")
    assert report.metrics["residual_mean"].tolist() == means
    assert report.residuals["low"].tolist() == [e.metrics["residual_mean_low"] for e in evaluations]
    html = report.to_html(plotly="beside")
    assert 'id="monitoring-residuals"' in html

    registry = CollectorRegistry()
    registry.register(MonitoringGauges(db))
    text = generate_latest(registry).decode()
    labels = {"deployment": "diabetes", "variant": "default", "window": "1h"}
    assert metric_value(text, "opsloop_monitoring_residual_mean", labels) == means[2]
    assert (
        metric_value(text, "opsloop_monitoring_residual_std", labels)
        == (evaluations[2].metrics["residual_std"])
    )

    with running_server(create_app(db, ArtifactStore(tmp_path / "artifacts"))) as url:
        remote = HttpMonitoring(url, token="")
        over_http = remote.evaluations("diabetes")
        gauges = remote.gauges(deployment="diabetes")
        remote.close()
    assert [e.metrics["residuals"] for e in over_http] == [
        e.metrics["residuals"] for e in evaluations
    ]
    (latest,) = gauges["windows"]
    assert latest["metrics"]["residual_mean_low"] == evaluations[2].metrics["residual_mean_low"]


def test_a_classifier_has_no_residuals():
    rows = pd.DataFrame({"prediction": [1, 0, 1], "label": [1, 1, 0]})
    assert residual_summary(rows) is None
    one = residual_summary(pd.DataFrame({"prediction": [2.5], "label": [4.0]}))
    assert (one["mean"], one["std"], one["mean_low"]) == (1.5, None, None)


def _event(request_id: str, at_ms: int, inputs: list[dict]) -> PredictionEvent:
    return PredictionEvent(
        "texts", "stable", "primary", "m", 1, request_id, None, inputs,
        {"predictions": [0] * len(inputs)}, None, 1.0, at_ms, "answered", None,
    )  # fmt: skip


#: Requests of 1, 2 and 3 records; the comments' lengths are 1; 5, 3; 8, (null), 2.
REQUESTS = [
    [{"comment": "a", "x": 1.0}],
    [{"comment": "hello", "x": 2.0}, {"comment": "hey", "x": 3.0}],
    [{"comment": "abcdefgh", "x": 4.0}, {"comment": None, "x": 5.0}, {"comment": "xy", "x": 6.0}],
]


@pytest.fixture
def text_windows(db, clock):
    # The reference's comments are 2, 4 and 6 characters long, ten of each: mean 4.
    set_reference(
        db,
        "texts",
        pd.DataFrame({"comment": ["ab", "abcd", "abcdef"] * 10, "x": np.arange(30.0)}),
    )
    recorder = EventRecorder(StoreEventSink(db))
    for i, inputs in enumerate(REQUESTS):
        recorder.record(_event(f"t{i}", T0 + i, inputs))
    # The second window: 30 comments of 40 characters, one per request.
    for i in range(30):
        recorder.record(_event(f"u{i}", T0 + HOUR_MS + i, [{"comment": "z" * 40, "x": 1.0}]))
    assert recorder.flush(5.0)
    recorder.close()
    clock.advance(2 * HOUR_MS)
    rules = ["records_per_request_max >= 3 -> alert", "text_length_drift_share > 0.5 -> alert"]
    return evaluate(db, "texts", policies=rules)


def test_text_lengths_and_records_per_request_are_the_hand_derived_ones(text_windows):
    first, second = text_windows
    comment = first.metrics["input_length"]["text"]["comment"]
    # Lengths 1, 5, 3, 8, 2 (the null has none): 19 / 5.
    assert (comment["count"], comment["mean"], comment["min"], comment["max"]) == (5, 3.8, 1, 8)
    assert comment["p50"] == 3.0
    assert comment["reference_mean"] == 4.0
    # ECDFs: the reference's steps 1/3 at 2, 2/3 at 4, 1 at 6; the window's 0.2 per value.
    # The largest gap is at 3: 0.6 - 1/3 = 4/15.
    assert comment["ks_statistic"] == pytest.approx(4 / 15, rel=1e-12)
    base, current = np.repeat([2, 4, 6], 10), np.array([1, 5, 3, 8, 2])
    assert comment["p_value"] == stats.ks_2samp(base, current).pvalue
    assert comment["drifted"] is False and first.metrics["text_length_drift_share"] == 0.0
    # No numeric feature has a length.
    assert set(first.metrics["input_length"]["text"]) == {"comment"}
    per_request = first.metrics["input_length"]["records_per_request"]
    assert (per_request["count"], per_request["mean"], per_request["min"]) == (3, 2.0, 1)
    assert per_request["max"] == first.metrics["records_per_request_max"] == 3
    assert first.metrics["records_per_request_mean"] == 2.0

    long = second.metrics["input_length"]["text"]["comment"]
    assert (long["mean"], long["min"], long["max"]) == (40.0, 40, 40)
    # Every window length (40) above every reference length (6): the statistic is 1.
    assert long["ks_statistic"] == 1.0 and long["drifted"] is True
    assert second.metrics["text_length_drift_share"] == 1.0
    assert second.metrics["records_per_request_max"] == 1
    assert first.alerts == ("records_per_request_max >= 3 -> alert",)
    assert second.alerts == ("text_length_drift_share > 0.5 -> alert",)


def test_status_report_and_gauges_show_the_input_length(db, text_windows):
    status = monitor_status(db, "texts")
    assert [w["records_per_request_mean"] for w in status["windows"]] == [2.0, 1.0]
    assert [w["records_per_request_max"] for w in status["windows"]] == [3, 1]
    report = monitor_report(db, "texts")
    assert report.text_lengths[["feature", "mean", "reference_mean"]].values.tolist() == [
        ["comment", 3.8, 4.0],
        ["comment", 40.0, 4.0],
    ]
    assert 'id="monitoring-text-length"' in report.to_html(plotly="beside")
    readings = gauge_readings(db, names=["texts"])
    (latest,) = readings["windows"]
    assert latest["metrics"]["text_length_drift_share"] == 1.0
    assert latest["metrics"]["records_per_request_mean"] == 1.0


def test_parts_and_evaluations_kept_before_read_as_none(db, text_windows):
    windowing = Windowing("1h")
    window = read_window(db, "texts", "stable", windowing, T0)
    state = json.loads(zlib.decompress(window.state_bytes()))
    del state["batch_sizes"]
    old = WindowPart.from_bytes(zlib.compress(json.dumps(state).encode()), None)
    assert old.batch_sizes is None
    # Merged with a part that has them, the merge has none: it would not cover every request.
    assert old.merge(window).batch_sizes is None
    assert window.merge(window).batch_sizes.count == 6
    metrics, _ = window_metrics(old, get_reference(db, "texts"), None)
    assert metrics["records_per_request_mean"] is None
    assert metrics["residual_mean"] is None and metrics["residuals"] is None

    # An evaluation written before either was computed.
    evaluations = tables.monitoring_evaluations
    new_keys = ("input_length", "text_length_drift_share", "records_per_request_mean",
                "records_per_request_max", "residuals", "residual_mean", "residual_std",
                "residual_mean_low", "residual_mean_high", "residual_p_value")  # fmt: skip
    with db.write() as connection:
        for row_id, metrics_json in connection.execute(
            sa.select(evaluations.c.id, evaluations.c.metrics_json).where(
                evaluations.c.deployment == "texts"
            )
        ).all():
            kept = {k: v for k, v in json.loads(metrics_json).items() if k not in new_keys}
            connection.execute(
                evaluations.update()
                .where(evaluations.c.id == row_id)
                .values(metrics_json=json.dumps(kept))
            )
    status = monitor_status(db, "texts")
    assert [w["records_per_request_mean"] for w in status["windows"]] == [None, None]
    report = monitor_report(db, "texts")
    assert report.text_lengths.empty and report.residuals.empty
    assert "No window has residuals" in report.to_html(plotly="beside")
    (latest,) = gauge_readings(db, names=["texts"])["windows"]
    assert latest["metrics"]["residual_mean"] is None
