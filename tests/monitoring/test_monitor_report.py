"""The HTML report's newer parts on breast cancer traffic whose labels come back late: the
label-free estimate with its interval against the accuracy realised on the same rows
(scikit-learn's), each serving worker's memory and CPU time per window (derived by hand
from the samples they wrote), and the actions the policies took with their evidence."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score

from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.monitor_report import monitor_report, window_label
from opsloop.registry import ModelRegistry
from opsloop.reports.monitoring import _estimate_figure, _process_figures
from opsloop.serving import Deployments, Variant
from opsloop.serving.process_samples import ProcessSampler
from opsloop.store import ArtifactStore, tables

from .conftest import HOUR_MS, T0
from .test_window_estimate import WINDOWING, ScoredTraffic, _set_reference

MIB = 2**20
RULE = "estimated_accuracy < 0.92 for 2 windows -> rollback"


def _samples(db, k):
    """Worker ``a`` samples twice in every window, 10 and 40 minutes in, its CPU time
    growing by one second a sample and its memory by one MiB a window; worker ``b`` only
    from window 2, once, 30 minutes in, half a second a sample, at 50 MiB."""
    rows = []
    for n, minutes in enumerate((10, 40)):
        a = ProcessSampler(worker="a", read=lambda n=n: ((100 + k) * MIB, 2.0 * k + n + 1))
        rows += a.rows(["cancer"], at_ms=T0 + k * HOUR_MS + minutes * 60_000)
    if k >= 2:
        b = ProcessSampler(worker="b", read=lambda: (50 * MIB, 0.5 * (k - 1)))
        rows += b.rows(["cancer"], at_ms=T0 + k * HOUR_MS + 30 * 60_000)
    with db.write() as connection:
        connection.execute(tables.process_samples.insert(), rows)


def test_the_report_plots_the_estimate_the_processes_and_the_actions(db, clock, cancer, tmp_path):
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
    deployments = Deployments(db)
    for number in (1, 2):
        registry.register("credit", b"\x08\x01", flavor="onnx")
        deployments.deploy("cancer", [Variant("live", "credit", version=number)])
    traffic = ScoredTraffic(cancer)
    _set_reference(db, traffic)
    logged = []
    for k in range(6):
        inputs, probabilities, predictions, labels, times, ids = traffic.window(k)
        log_predictions(
            db, "cancer", inputs, predictions, probabilities=probabilities, at_ms=times,
            request_ids=ids, sample_process=False,  # the samples are the test's own
        )  # fmt: skip
        _samples(db, k)
        logged.append((predictions, labels, ids))
    clock.now_ms = T0 + 6 * HOUR_MS
    evaluations = evaluate(db, "cancer", windowing=WINDOWING, policies=[RULE])
    # Every label of windows 0 to 4 comes back after the evaluation; none of window 5's.
    for _, labels, ids in logged[:5]:
        log_labels(db, "cancer", ids, labels, windowing=WINDOWING)
    report = monitor_report(db, "cancer", WINDOWING)
    windows = [window_label(T0 + k * HOUR_MS) for k in range(6)]

    # The estimate, as evaluated, against the realised accuracy of the same rows.
    estimate = report.estimate
    assert estimate["window"].tolist() == windows
    assert estimate["estimated"].tolist() == [e.metrics["estimated_accuracy"] for e in evaluations]
    intervals = [e.metrics["estimate"]["metrics"]["accuracy"] for e in evaluations]
    assert estimate["low"].tolist() == [i["low"] for i in intervals]
    assert estimate["high"].tolist() == [i["high"] for i in intervals]
    realised = [accuracy_score(labels, predictions) for predictions, labels, _ in logged[:5]]
    assert estimate["realised"].tolist()[:5] == realised
    assert math.isnan(estimate["realised"].iloc[5]) and estimate["labelled"].tolist()[5] == 0
    figure = _estimate_figure(estimate)
    assert figure.data[3].y.tolist()[:5] == realised and math.isnan(figure.data[3].y[5])
    # The estimate fell with the shift toward the hard cases, and the rule acted on it.
    assert max(estimate["estimated"][3:]) < 0.92 < min(estimate["estimated"][:3])

    # Memory: the window's largest sample; CPU: the last sample less the one before the
    # window (the first window's own first sample for a worker just started).
    process = report.process
    a, b = process[process["worker"] == "a"], process[process["worker"] == "b"]
    assert a["window"].tolist() == windows
    assert a["rss_bytes"].tolist() == [(100 + k) * MIB for k in range(6)]
    assert a["cpu_seconds"].tolist() == [1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert b["window"].tolist() == windows[2:]
    assert b["rss_bytes"].tolist() == [50 * MIB] * 4
    assert b["cpu_seconds"].tolist() == [0.0, 0.5, 0.5, 0.5]
    rss, cpu = _process_figures(process)
    assert [trace.name for trace in rss.data] == ["a", "b"]
    assert rss.data[0].y.tolist() == [100.0 + k for k in range(6)]
    assert cpu.data[1].y.tolist() == [0.0, 0.5, 0.5, 0.5]

    # The rule held in windows 3 and 4: one rollback, marked on the metrics over time.
    fired = [e.start_ms for e in evaluations if e.alerts]
    assert fired == [T0 + 4 * HOUR_MS]
    assert report.acted == [windows[4]]
    (action,) = report.actions.to_dict("records")
    assert (action["action"], action["status"]) == ("rollback", "done")
    held = [evaluations[k].metrics["estimated_accuracy"] for k in (3, 4)]
    assert action["why"] == (
        f"policy {RULE!r} held: estimated_accuracy {held[0]:.4g} in the window from "
        f"2027-01-15T11:00:00Z, estimated_accuracy {held[1]:.4g} in the window from "
        "2027-01-15T12:00:00Z"  # T0 + 3 h and T0 + 4 h
    )
    assert action["evidence"]["from"] == {"live": 2} and action["evidence"]["to"] == {"live": 1}
    assert deployments.get("cancer").serving == {"live": 1}

    html = report.to_html(plotly="beside")
    for part in ('id="monitoring-estimate"', 'id="monitoring-process-0"',
                 'id="monitoring-process-1"', "<h2>Actions</h2>"):  # fmt: skip
        assert part in html
    assert "<td>rollback</td><td>done</td>" in html
    assert html.count("line_color") == 0 and "#1b7f3b" in html
    assert np.isclose(report.metrics["estimated_accuracy"], estimate["estimated"]).all()
