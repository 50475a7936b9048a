"""Monitoring state as Prometheus metrics, read from the store when they are scraped.

:class:`MonitoringGauges` is a ``prometheus_client`` collector: registered in a registry
(the data plane's, :mod:`opsloop.serving.serving_metrics`), it answers each scrape with the
latest evaluated window of every deployment, variant and window length, so that every
worker of a data plane shows the same numbers, the evaluator's, without receiving them:

* ``opsloop_monitoring_drift_share{deployment, variant, window}``: the share of features
  that drift against the reference;
* ``opsloop_monitoring_previous_drift_share{deployment, variant, window}``: the same against
  the variant's previous window;
* ``opsloop_monitoring_task_metric{deployment, variant, window, task}``: the task metric of
  the window's labelled rows (``task`` is ``accuracy`` or ``mae``);
* ``opsloop_monitoring_estimated_metric{deployment, variant, window, metric}``, with
  ``_low`` and ``_high``: the metrics estimated from the model's confidence before the
  labels arrive (:mod:`.window_estimate`) and their interval;
* ``opsloop_monitoring_process_rss_bytes{deployment, variant, window}`` and
  ``opsloop_monitoring_process_cpu_seconds{...}``: the serving workers' resident memory
  (the sum of their largest) and CPU seconds in that window (:mod:`.process_metrics`);
* ``opsloop_monitoring_input_anomaly_rate{deployment, variant, window}``: the share of the
  requests scored by the deployment's input anomaly detector that it flagged, with
  ``opsloop_monitoring_input_scored_requests{...}`` and
  ``opsloop_monitoring_input_flagged_requests{...}``, the counts behind it
  (:mod:`.input_anomalies`; the rate is left out of a window where none was scored);
* ``opsloop_monitoring_residual_mean{deployment, variant, window}``, with ``_low`` and
  ``_high`` (the bounds of its t-interval) and ``opsloop_monitoring_residual_std{...}``: the
  residuals (``label - prediction``) of a regression's labelled rows (:mod:`.residuals`);
* ``opsloop_monitoring_records_per_request_mean{deployment, variant, window}`` and
  ``opsloop_monitoring_text_length_drift_share{...}``: the input length
  (:mod:`.input_length`);
* ``opsloop_monitoring_missing_share{deployment, variant, window}`` and
  ``opsloop_monitoring_out_of_schema_rate{...}``: the share of feature values null or absent,
  and the share that break the reference's schema (:mod:`.window_metrics`);
* ``opsloop_monitoring_requests_per_second{deployment, variant, window}``: the throughput
  (the window's requests over its length);
* ``opsloop_monitoring_feature_drift_statistic{deployment, variant, window, feature}`` and
  ``opsloop_monitoring_feature_drift_p_value{...}``: each feature's drift test against the
  reference (its statistic, and its Holm-adjusted p-value, the one compared with alpha);
  ``feature`` takes the reference's features only, so its values stay bounded;
* ``opsloop_monitoring_output_drift_statistic{deployment, variant, window}`` and
  ``opsloop_monitoring_output_drift_p_value{...}``: the same test on the predictions, when
  the reference has them;
* ``opsloop_monitoring_decay{deployment, variant, window, kind}``: the decay verdict of a
  labelled window (:mod:`.decay_kind`), 1 for its kind and 0 for the other kinds;
* ``opsloop_monitoring_window_start_seconds{deployment, variant, window}``: when that window
  started (how fresh the numbers are);
* ``opsloop_monitoring_alerts_total{deployment, variant}``: alerts the policies raised;
* ``opsloop_monitoring_labels_total{deployment, outcome}``: labels received per outcome
  (``accepted``, of which ``late``, and ``duplicate`` and ``unknown``, not kept;
  :mod:`.event_log`), counted per deployment.

A gauge is left out when the latest window has no value for it (no labels yet, a sample
expired). What the gauges show is read by :func:`gauge_readings` (JSON-ready, so the
control plane's monitoring serves it as an operation) and written as metrics by
:func:`gauge_families`; a data plane on a control plane's URL shows the same gauges, read
through that operation (:mod:`.remote_gauges`). ``window`` is the window length as text
(``1h``, ``5min``). Labels come from the store's names only, so their number stays
bounded; ``names`` limits them to the deployments a data plane serves.

>>> import pandas as pd
>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from opsloop.monitoring import evaluate, log_predictions, set_reference
>>> db.clock = lambda: 7_200_000
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> _ = log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60,
...                     at_ms=60_000)
>>> _ = evaluate(db, "api", policies=["drift_share > 0.5 -> alert"])
>>> registry = CollectorRegistry()
>>> registry.register(MonitoringGauges(db))
>>> text = generate_latest(registry).decode()
>>> 'opsloop_monitoring_drift_share{deployment="api",variant="default",window="1h"} 1.0' in text
True
>>> 'opsloop_monitoring_alerts_total{deployment="api",variant="default"} 1.0' in text
True
>>> [len(family.samples) for family in MonitoringGauges(db, names=["other"]).collect()]
[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from opsloop.monitoring.decay_kind import KINDS
from opsloop.monitoring.event_log import LABEL_COUNTS
from opsloop.store import tables
from opsloop.store.database import Database

_evaluations, _alerts = tables.monitoring_evaluations, tables.monitoring_alerts
_state = tables.monitoring_state
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000))


def window_text(window_ms: int) -> str:
    """A window length as the largest whole unit that writes it (``Windowing`` reads it).

    >>> window_text(3_600_000), window_text(300_000), window_text(90_000), window_text(250)
    ('1h', '5min', '90s', '250')
    """
    for unit, size in _UNITS:
        if window_ms % size == 0:
            return f"{window_ms // size}{unit}"
    return str(window_ms)


#: The metrics of an evaluated window that the gauges show.
GAUGE_METRICS = (
    "drift_share",
    "previous_drift_share",
    "task",
    "task_metric",
    "process_rss_bytes",
    "process_cpu_seconds",
    "input_anomaly_rate",
    "input_scored",
    "input_flagged",
    "residual_mean",
    "residual_mean_low",
    "residual_mean_high",
    "residual_std",
    "records_per_request_mean",
    "text_length_drift_share",
    "missing_share",
    "out_of_schema_rate",
    "requests_per_second",
)
#: The gauges of plain per-window metrics after the input anomaly ones: name -> help text.
_LATER_GAUGES = {
    "residual_mean": "Mean residual (label - prediction) of the latest window's labels.",
    "residual_mean_low": "Lower bound of the mean residual's t-interval, latest window.",
    "residual_mean_high": "Upper bound of the mean residual's t-interval, latest window.",
    "residual_std": "Standard deviation of the residuals of the latest window's labels.",
    "records_per_request_mean": "Mean records per request in the latest evaluated window.",
    "text_length_drift_share": "Share of text features whose lengths drift, latest window.",
    "missing_share": "Share of feature values null or absent in the latest evaluated window.",
    "out_of_schema_rate": "Share of sampled feature values that break the reference's schema.",
    "requests_per_second": "Requests per second (requests over window length), latest window.",
}
#: The figures of a drift test the gauges show: gauge name suffix -> key of the test.
_DRIFT_FIGURES = {"statistic": "statistic", "p_value": "p_adjusted"}


def _latest(connection, names: tuple[str, ...] | None) -> list:
    newest = (
        sa.select(
            _evaluations.c.deployment,
            _evaluations.c.variant,
            _evaluations.c.window_ms,
            sa.func.max(_evaluations.c.start_ms).label("start_ms"),
        )
        .group_by(_evaluations.c.deployment, _evaluations.c.variant, _evaluations.c.window_ms)
        .subquery()
    )
    query = (
        sa.select(
            _evaluations.c.deployment,
            _evaluations.c.variant,
            _evaluations.c.window_ms,
            _evaluations.c.start_ms,
            _evaluations.c.metrics_json,
        )
        .join(
            newest,
            sa.and_(
                newest.c.deployment == _evaluations.c.deployment,
                newest.c.variant == _evaluations.c.variant,
                newest.c.window_ms == _evaluations.c.window_ms,
                newest.c.start_ms == _evaluations.c.start_ms,
            ),
        )
        .order_by(_evaluations.c.deployment, _evaluations.c.variant, _evaluations.c.window_ms)
    )
    if names is not None:
        query = query.where(_evaluations.c.deployment.in_(names))
    return connection.execute(query).all()


def _alert_counts(connection, names: tuple[str, ...] | None) -> list:
    query = (
        sa.select(_alerts.c.deployment, _alerts.c.variant, sa.func.count())
        .group_by(_alerts.c.deployment, _alerts.c.variant)
        .order_by(_alerts.c.deployment, _alerts.c.variant)
    )
    if names is not None:
        query = query.where(_alerts.c.deployment.in_(names))
    return connection.execute(query).all()


def _label_counts(connection, names: tuple[str, ...] | None) -> list:
    query = (
        sa.select(_state.c.deployment, _state.c.state_json)
        .where(_state.c.name == "labels")
        .order_by(_state.c.deployment)
    )
    if names is not None:
        query = query.where(_state.c.deployment.in_(names))
    return connection.execute(query).all()


def _drift_figures(drift: dict | None) -> dict | None:
    if not drift:
        return None
    return {name: drift.get(key) for name, key in _DRIFT_FIGURES.items()}


def gauge_readings(db: Database, names: Iterable[str] | None = None) -> dict[str, list]:
    """What the gauges show, JSON-ready: per deployment, variant and window length the
    latest evaluated window (``windows``: its ``start_ms`` and the metrics the gauges show,
    :data:`GAUGE_METRICS`, the ``estimate``, each feature's drift test ``feature_drift``, the
    predictions' ``output_drift`` and the ``decay`` kind), the ``alerts`` counted per
    deployment and variant, and the ``labels`` counted per deployment and outcome; of the
    deployments ``names``, or of all.

    >>> import pandas as pd
    >>> from opsloop.monitoring import evaluate, log_predictions, set_reference
    >>> db.clock = lambda: 7_200_000
    >>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    >>> _ = log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60,
    ...                     at_ms=60_000)
    >>> _ = evaluate(db, "api", policies=["drift_share > 0.5 -> alert"])
    >>> readings = gauge_readings(db, names=["api"])
    >>> readings["windows"][0]["window_ms"], readings["windows"][0]["metrics"]["drift_share"]
    (3600000, 1.0)
    >>> readings["alerts"]
    [{'deployment': 'api', 'variant': 'default', 'count': 1}]
    >>> readings["windows"][0]["metrics"]["feature_drift"]["x"]["p_value"] < 1e-9
    True
    >>> gauge_families(readings)[0].samples[0].value
    1.0
    """
    names = None if names is None else tuple(names)
    with db.read() as connection:
        latest = _latest(connection, names)
        counts = _alert_counts(connection, names)
        labels = _label_counts(connection, names)
    windows = []
    for deployment, variant, window_ms, start_ms, metrics_json in latest:
        metrics = json.loads(metrics_json)
        shown = {name: metrics.get(name) for name in GAUGE_METRICS}
        estimate = metrics.get("estimate") or {}
        shown["estimate"] = {
            name: {key: found.get(key) for key in ("value", "low", "high")}
            for name, found in estimate.get("metrics", {}).items()
        }
        shown["feature_drift"] = {
            feature: _drift_figures(drift)
            for feature, drift in (metrics.get("drift") or {}).items()
        }
        shown["output_drift"] = _drift_figures(metrics.get("output_drift"))
        shown["decay"] = (metrics.get("decay") or {}).get("kind")
        windows.append(
            {
                "deployment": deployment,
                "variant": variant,
                "window_ms": int(window_ms),
                "start_ms": int(start_ms),
                "metrics": shown,
            }
        )
    alerts = [
        {"deployment": deployment, "variant": variant, "count": int(count)}
        for deployment, variant, count in counts
    ]
    received = []
    for deployment, state_json in labels:
        state = json.loads(state_json)
        received.append(
            {"deployment": deployment, **{name: int(state.get(name, 0)) for name in LABEL_COUNTS}}
        )
    return {"windows": windows, "alerts": alerts, "labels": received}


def _families() -> tuple[GaugeMetricFamily, ...]:
    window = ("deployment", "variant", "window")
    return (
        GaugeMetricFamily(
            "opsloop_monitoring_drift_share",
            "Share of features drifting against the reference, latest evaluated window.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_previous_drift_share",
            "Share of features drifting against the previous window, latest window.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_task_metric",
            "Task metric (accuracy or mean absolute error) of the latest window's labels.",
            labels=(*window, "task"),
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_estimated_metric",
            "Metric estimated from the model's confidence, latest evaluated window.",
            labels=(*window, "metric"),
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_estimated_metric_low",
            "Lower bound of the estimated metric's interval, latest evaluated window.",
            labels=(*window, "metric"),
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_estimated_metric_high",
            "Upper bound of the estimated metric's interval, latest evaluated window.",
            labels=(*window, "metric"),
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_process_rss_bytes",
            "Resident memory of the serving workers (sum of their largest), latest window.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_process_cpu_seconds",
            "CPU seconds the serving workers spent in the latest evaluated window.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_input_anomaly_rate",
            "Share of the requests the input anomaly detector scored that it flagged.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_input_scored_requests",
            "Requests the input anomaly detector scored in the latest evaluated window.",
            labels=window,
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_input_flagged_requests",
            "Requests the input anomaly detector flagged in the latest evaluated window.",
            labels=window,
        ),
        *(
            GaugeMetricFamily(f"opsloop_monitoring_{name}", text, labels=window)
            for name, text in _LATER_GAUGES.items()
        ),
        *(
            GaugeMetricFamily(
                f"opsloop_monitoring_feature_drift_{name}",
                f"Drift test {name} of each feature against the reference, latest window.",
                labels=(*window, "feature"),
            )
            for name in _DRIFT_FIGURES
        ),
        *(
            GaugeMetricFamily(
                f"opsloop_monitoring_output_drift_{name}",
                f"Drift test {name} of the predictions against the reference, latest window.",
                labels=window,
            )
            for name in _DRIFT_FIGURES
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_decay",
            "Decay verdict of the latest labelled window: 1 for its kind, 0 for the others.",
            labels=(*window, "kind"),
        ),
        GaugeMetricFamily(
            "opsloop_monitoring_window_start_seconds",
            "Start of the latest evaluated window, in seconds since the epoch.",
            labels=window,
        ),
        CounterMetricFamily(
            "opsloop_monitoring_alerts",
            "Alerts raised by monitoring policies, per deployment and variant.",
            labels=("deployment", "variant"),
        ),
        CounterMetricFamily(
            "opsloop_monitoring_labels",
            "Labels received per outcome (accepted, of which late; duplicate, unknown).",
            labels=("deployment", "outcome"),
        ),
    )


def gauge_families(readings: dict[str, list] | None) -> tuple[Metric, ...]:
    """The metric families of ``readings`` (as :func:`gauge_readings` gives them; ``None``:
    the families with no samples).

    >>> [f.name for f in gauge_families(None)][:2]
    ['opsloop_monitoring_drift_share', 'opsloop_monitoring_previous_drift_share']
    >>> window = {"deployment": "api", "variant": "a", "window_ms": 300_000, "start_ms": 0,
    ...           "metrics": {"drift_share": 0.25}}
    >>> drift = gauge_families({"windows": [window], "alerts": []})[0].samples[0]
    >>> drift.labels, drift.value
    ({'deployment': 'api', 'variant': 'a', 'window': '5min'}, 0.25)
    """
    families = _families()
    drift, previous, task, estimated, low, high, rss, cpu, rate, scored, flagged = families[:11]
    end = 11 + len(_LATER_GAUGES)
    later = families[11:end]
    feature_drift = families[end : end + len(_DRIFT_FIGURES)]
    output_drift = families[end + len(_DRIFT_FIGURES) : end + 2 * len(_DRIFT_FIGURES)]
    decay, start, alerts, received = families[end + 2 * len(_DRIFT_FIGURES) :]
    readings = readings or {"windows": [], "alerts": []}
    for window in readings["windows"]:
        metrics = window["metrics"]
        labels = [window["deployment"], window["variant"], window_text(window["window_ms"])]
        start.add_metric(labels, window["start_ms"] / 1000.0)
        if metrics.get("drift_share") is not None:
            drift.add_metric(labels, metrics["drift_share"])
        if metrics.get("previous_drift_share") is not None:
            previous.add_metric(labels, metrics["previous_drift_share"])
        if metrics.get("task_metric") is not None:
            task.add_metric([*labels, str(metrics["task"])], metrics["task_metric"])
        shown = (
            (rss, "process_rss_bytes"),
            (cpu, "process_cpu_seconds"),
            (rate, "input_anomaly_rate"),
            (scored, "input_scored"),
            (flagged, "input_flagged"),
            *zip(later, _LATER_GAUGES, strict=True),
        )
        for family, name in shown:
            if metrics.get(name) is not None:
                family.add_metric(labels, metrics[name])
        for name, found in (metrics.get("estimate") or {}).items():
            for family, key in ((estimated, "value"), (low, "low"), (high, "high")):
                if found.get(key) is not None:
                    family.add_metric([*labels, name], found[key])
        for feature, test in (metrics.get("feature_drift") or {}).items():
            for family, key in zip(feature_drift, _DRIFT_FIGURES, strict=True):
                if test is not None and test.get(key) is not None:
                    family.add_metric([*labels, feature], test[key])
        for family, key in zip(output_drift, _DRIFT_FIGURES, strict=True):
            if (metrics.get("output_drift") or {}).get(key) is not None:
                family.add_metric(labels, metrics["output_drift"][key])
        if metrics.get("decay") is not None:
            for kind in KINDS:
                decay.add_metric([*labels, kind], float(kind == metrics["decay"]))
    for counted in readings["alerts"]:
        alerts.add_metric([counted["deployment"], counted["variant"]], counted["count"])
    # A control plane from before label counts were read sends none.
    for counted in readings.get("labels", []):
        for outcome in LABEL_COUNTS:
            received.add_metric([counted["deployment"], outcome], counted[outcome])
    return families


class MonitoringGauges(Collector):
    """The collector of the monitoring state of ``db`` (of the deployments ``names``, or of
    all); see the module docstring."""

    def __init__(self, db: Database, names: Iterable[str] | None = None) -> None:
        self.db = db
        self.names = None if names is None else tuple(names)

    def describe(self) -> list[Metric]:
        # Names only, so that registering reads nothing from the store.
        return list(gauge_families(None))

    def collect(self) -> Iterator[Metric]:
        yield from gauge_families(gauge_readings(self.db, self.names))
