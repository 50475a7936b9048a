"""What a person reads about a deployment's monitoring: :func:`monitor_status` (the latest
windows, label counts, alerts) and :func:`monitor_report` (the standalone HTML report of
:mod:`opsloop.reports.monitoring`: drift, metrics, the throughput of each variant, the
label-free estimate against the realised accuracy, the serving workers' memory and CPU,
the input anomaly rate, the input length, the residuals with their mean's interval, alerts
and actions), both from the evaluations in the store.

>>> import pandas as pd
>>> from opsloop.monitoring.evaluation import evaluate
>>> from opsloop.monitoring.event_log import log_predictions
>>> from opsloop.monitoring.reference import set_reference
>>> db.clock = lambda: 7_200_000
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> _ = log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60,
...                     at_ms=60_000)
>>> _ = evaluate(db, "api", policies=["drift_share > 0.5 -> alert"])
>>> status = monitor_status(db, "api")
>>> status["windows"][0]["drift_share"], status["alerts"][0]["rule"], status["reference"]
(1.0, 'drift_share > 0.5 -> alert', 'set explicitly')
>>> report = monitor_report(db, "api")
>>> report.drift[["window", "feature", "drifted"]].values.tolist()
[['1970-01-01 00:00', 'x', True]]
>>> report.throughput.values.tolist()  # 60 requests in an hour's window
[['1970-01-01 00:00', 'default', 0.016666666666666666]]
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsloop.errors import NotFoundError
from opsloop.monitoring.estimate_check import estimate_check
from opsloop.monitoring.evaluation import read_alerts, read_evaluations
from opsloop.monitoring.event_log import label_counts
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import reference_origin
from opsloop.monitoring.windowing import Windowing
from opsloop.reports.monitoring import MonitoringReport

#: The per-window metrics shown in the status and plotted over time.
SHOWN_METRICS = (
    "requests",
    "error_rate",
    "latency_p95_ms",
    "missing_share",
    "out_of_schema_rate",
    "drift_share",
    "previous_drift_share",
    "task_metric",
    "estimated_accuracy",
    "input_anomaly_rate",
    "records_per_request_mean",
    "text_length_drift_share",
    "residual_mean",
    "residual_std",
    "error_drift",
    "feature_alarms",
)


def window_label(start_ms: int) -> str:
    """A window's start as UTC text.

    >>> window_label(3_600_000)
    '1970-01-01 01:00'
    """
    return pd.Timestamp(start_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def monitor_status(
    db, deployment: str, windowing: Windowing | None = None, *, last: int = 10
) -> dict[str, Any]:
    """The ``last`` evaluated windows (per variant, with :data:`SHOWN_METRICS`, the
    throughput ``requests_per_second``, the requests the input anomaly detector scored and
    flagged, the interval of the mean residual and the most records of one request), the
    label counts, the alerts of ``deployment`` and where its reference comes from now
    (``reference``: ``"set explicitly"``, ``"registered with MODEL vN"``, or ``None``
    without one), as a JSON-safe dict."""
    windowing = windowing or Windowing()
    try:
        origin = reference_origin(db, deployment)
    except NotFoundError:
        origin = None
    # The newest ``last`` rows alone: a page asking for the label counts reads one window,
    # not every window's metrics.
    evaluations = read_evaluations(db, deployment, windowing, last=last)
    alerts = read_alerts(db, deployment)
    return {
        "deployment": deployment,
        "window_ms": windowing.window_ms,
        "reference": origin,
        "windows": [
            {
                "variant": e.variant,
                "window": window_label(e.start_ms),
                "start_ms": e.start_ms,
                **{name: e.metrics.get(name) for name in SHOWN_METRICS},
                "requests_per_second": e.metrics.get("requests_per_second"),
                "input_scored": e.metrics.get("input_scored"),
                "input_flagged": e.metrics.get("input_flagged"),
                "residual_mean_low": e.metrics.get("residual_mean_low"),
                "residual_mean_high": e.metrics.get("residual_mean_high"),
                "records_per_request_max": e.metrics.get("records_per_request_max"),
                # Which features' detectors signalled, and where in their streams.
                "feature_alarm_list": [
                    {k: alarm[k] for k in ("feature", "detector", "position", "change_point")}
                    for alarm in (e.metrics.get("feature_stream") or {}).get("alarms", [])
                ],
            }
            for e in evaluations
        ],
        "labels": label_counts(db, deployment),
        "alerts": [
            {
                "variant": row["variant"],
                "rule": row["rule"],
                "action": row["action"],
                "window": None if row["start_ms"] is None else window_label(row["start_ms"]),
                "at_ms": int(row["at_ms"]),
            }
            for row in alerts.to_dict("records")
        ],
    }


def monitor_report(
    db, deployment: str, windowing: Windowing | None = None, *, variant: str | None = None
) -> MonitoringReport:
    """The HTML report's tables for ``deployment`` (one ``variant``, or every variant's
    windows with the variant in the window's label when there are several)."""
    windowing = windowing or Windowing()
    evaluations = [
        e
        for e in read_evaluations(db, deployment, windowing)
        if variant is None or e.variant == variant
    ]
    several = len({e.variant for e in evaluations}) > 1

    def label(e) -> str:
        text = window_label(e.start_ms)
        return f"{text} {e.variant}" if several else text

    drift = pd.DataFrame(
        [
            {
                "window": label(e),
                "feature": feature,
                "p_adjusted": values["p_adjusted"],
                "drifted": values["drifted"],
            }
            for e in evaluations
            for feature, values in e.metrics.get("drift", {}).items()
        ],
        columns=["window", "feature", "p_adjusted", "drifted"],
    )
    metrics = pd.DataFrame(
        [{"window": label(e), **{n: e.metrics.get(n) for n in SHOWN_METRICS}} for e in evaluations],
        columns=["window", *SHOWN_METRICS],
    )
    for name in SHOWN_METRICS:
        metrics[name] = pd.to_numeric(metrics[name], errors="coerce")
    alarms = [label(e) for e in evaluations if e.metrics.get("error_drift")]
    # The heatmap's cells (window, feature) where that feature's detector signalled.
    feature_alarms = sorted(
        {
            (label(e), alarm["feature"])
            for e in evaluations
            for alarm in (e.metrics.get("feature_stream") or {}).get("alarms", [])
        }
    )
    restarts = [label(e) for e in evaluations if e.metrics.get("error_stream_restarts")]
    alerts = read_alerts(db, deployment)
    if variant is not None:
        alerts = alerts[alerts["variant"] == variant]
    alerts = alerts.assign(
        window=[None if s is None else window_label(int(s)) for s in alerts["start_ms"]]
    )
    labels = {(e.variant, e.start_ms): label(e) for e in evaluations}
    # The windows whose policies fired an action other than an alert.
    acted = list(
        dict.fromkeys(
            labels[(a["variant"], int(a["start_ms"]))]
            for a in alerts.to_dict("records")
            if a["action"] != "alert"
            and a["start_ms"] is not None
            and (a["variant"], int(a["start_ms"])) in labels
        )
    )
    return MonitoringReport(
        deployment,
        str(windowing.window),
        drift,
        metrics,
        alarms,
        alerts,
        estimate=_estimates(db, deployment, windowing, labels),
        process=_processes(evaluations, labels),
        acted=acted,
        actions=_actions(db, deployment, windowing, variant),
        restarts=restarts,
        residuals=_residuals(evaluations, labels),
        text_lengths=_text_lengths(evaluations, labels),
        feature_alarms=feature_alarms,
        throughput=_throughput(evaluations),
    )


def _throughput(evaluations) -> pd.DataFrame:
    """One row per window and variant: the window's start (without the variant: the chart
    draws a line per variant) and its requests per second (its requests over its length)."""
    rows = [
        {
            "window": window_label(e.start_ms),
            "variant": e.variant,
            "requests_per_second": e.metrics.get("requests_per_second"),
        }
        for e in evaluations
    ]
    frame = pd.DataFrame(rows, columns=["window", "variant", "requests_per_second"])
    return frame.astype({"requests_per_second": float})


def _residuals(evaluations, labels: dict) -> pd.DataFrame:
    """One row per window with residuals: the mean with its interval, p05 and p95."""
    columns = ["window", "mean", "low", "high", "p05", "p95"]
    rows = [
        {
            "window": labels[(e.variant, e.start_ms)],
            "mean": found["mean"],
            "low": found["mean_low"],
            "high": found["mean_high"],
            "p05": found["p05"],
            "p95": found["p95"],
        }
        for e in evaluations
        if (found := e.metrics.get("residuals")) is not None
    ]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]})


def _text_lengths(evaluations, labels: dict) -> pd.DataFrame:
    """One row per window and text feature: its mean length and the reference's."""
    rows = [
        {
            "window": labels[(e.variant, e.start_ms)],
            "feature": feature,
            "mean": found["mean"],
            "reference_mean": found["reference_mean"],
        }
        for e in evaluations
        for feature, found in ((e.metrics.get("input_length") or {}).get("text") or {}).items()
    ]
    return pd.DataFrame(rows, columns=["window", "feature", "mean", "reference_mean"])


def _estimates(db, deployment: str, windowing: Windowing, labels: dict) -> pd.DataFrame:
    """Each window's estimated accuracy and interval, and the accuracy realised with the
    labels joined now (:func:`~opsloop.monitoring.estimate_check.estimate_check`)."""
    check = estimate_check(db, deployment, windowing)
    rows = [
        {
            "window": labels[(r["variant"], int(r["start_ms"]))],
            "estimated": r["estimated_accuracy"],
            "low": r["low"],
            "high": r["high"],
            "realised": r["realised_accuracy"],
            "labelled": r["labelled"],
            "rows": r["rows"],
        }
        for r in check.to_dict("records")
        if (r["variant"], int(r["start_ms"])) in labels
    ]
    columns = ["window", "estimated", "low", "high", "realised", "labelled", "rows"]
    return pd.DataFrame(rows, columns=columns)


def _processes(evaluations, labels: dict) -> pd.DataFrame:
    """One row per window and serving worker: its largest resident memory and its CPU
    time in the window (:mod:`.process_metrics`)."""
    rows = [
        {
            "window": labels[(e.variant, e.start_ms)],
            "worker": worker,
            "rss_bytes": values["rss_bytes_max"],
            "cpu_seconds": values["cpu_seconds"],
        }
        for e in evaluations
        for worker, values in ((e.metrics.get("process") or {}).get("workers") or {}).items()
    ]
    return pd.DataFrame(rows, columns=["window", "worker", "rss_bytes", "cpu_seconds"])


#: The most action outcomes the report lists (the newest).
MAX_ACTIONS = 1000


def _actions(db, deployment: str, windowing: Windowing, variant: str | None) -> pd.DataFrame:
    """The actions' outcomes, oldest first, with the policy's evidence in words and what
    each action reported (:func:`~opsloop.monitoring.policy_record.read_actions`)."""
    found = read_actions(db, deployment, windowing, variant=variant, last=MAX_ACTIONS)
    rows = [
        {
            "at": pd.Timestamp(o["at_ms"], unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S"),
            "variant": o["variant"],
            "action": o["action"],
            "status": o["status"],
            "reason": o["reason"],
            "why": o["why"],
            "evidence": o["evidence"],
        }
        for o in reversed(found["outcomes"])
    ]
    columns = ["at", "variant", "action", "status", "reason", "why", "evidence"]
    return pd.DataFrame(rows, columns=columns)
