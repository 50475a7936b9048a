"""What is computed for one window against the deployment's reference.

* **Software:** requests, rows, errors and their rate, latency mean and p50/p95 (bucket
  bounds of the histogram), and the throughput ``requests_per_second`` (the requests over
  the window's length; ``None`` when the length is not given).
* **Inputs:** ``missing_share``, the share of the reference's feature values that are null or
  absent, from the window's profile (exact, over every row); ``out_of_schema_rate``, the share
  of feature values in the window's sample that break the reference's schema
  (:func:`opsloop.data.schema.validate`: type mismatches, non-finite numbers, values out of
  range, unknown categories).
* **Drift per feature:** :func:`opsloop.data.drift.compare` between the reference's sample and
  the window's reservoir sample: the exact two-sample Kolmogorov-Smirnov test for numbers
  (``scipy.stats.ks_2samp``'s statistic and p-value, exact below 10,000 rows a side),
  Pearson's chi-square test for categories, p-values adjusted by Holm's method over the
  features; ``drift_share`` is the share of compared features that drift at ``alpha``.
* **Outputs:** the same test on the prediction column, when the reference has predictions.
* **Drift against the previous window:** the same tests between the previous window's sample
  and this one's, per feature (``previous_drift``, with ``previous_drift_share``), beside
  the drift against the reference: a slow drift shows against the reference, a sudden one
  against both, and a change that settled shows against the reference only. ``None`` for a
  variant's first window and when either sample has expired.
* **Input length** (:mod:`.input_length`): ``input_length``, each text feature's length in
  characters (count, mean, min, max, median and 95th percentile, against the reference's
  lengths by a Kolmogorov-Smirnov test) and the records per request; the signals
  ``text_length_drift_share``, ``records_per_request_mean`` and ``records_per_request_max``.
* **Task metric,** once labels arrive: accuracy when labels and predictions are classes
  (integers, text, booleans), mean absolute error otherwise; the per-row error stream (0/1
  misclassification, or absolute error) in event order feeds the detectors.
* **Residuals** of a regression, once labels arrive (:mod:`.residuals`): ``residuals``
  (``label - prediction``: mean, standard deviation, quantiles, the t-interval of the mean
  at ``1 - alpha`` and the t-test of a zero mean); the signals ``residual_mean``,
  ``residual_std``, ``residual_mean_low``, ``residual_mean_high`` and
  ``residual_p_value`` (``None`` for a classifier and without labels).

>>> import pandas as pd
>>> from opsloop.monitoring.reference import set_reference
>>> from opsloop.monitoring.window_part import parts_of_events
>>> from opsloop.monitoring.windowing import Windowing
>>> ref = set_reference(db, "api", pd.DataFrame({"x": [float(i) for i in range(50)]}))
>>> events = pd.DataFrame({"variant": ["a"] * 40, "request_id": [f"r{i}" for i in range(40)],
...     "inputs_json": [f'[{{"x": {100 + i}}}]' for i in range(40)],
...     "output_json": ['{"predictions": [1]}'] * 40, "error": [None] * 40,
...     "latency_ms": [3.0] * 40, "at_ms": [0] * 40})
>>> window = parts_of_events(events, Windowing())[("a", 0)]
>>> metrics, errors = window_metrics(window, ref, None)
>>> metrics["drift_share"], metrics["drift"]["x"]["test"], metrics["out_of_schema_rate"]
(1.0, 'ks', 1.0)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.drift import ReferenceProfile, compare
from opsloop.data.schema import validate
from opsloop.monitoring.input_length import input_length_metrics
from opsloop.monitoring.reference import Reference
from opsloop.monitoring.residuals import residual_summary
from opsloop.monitoring.window_part import PREDICTION_COLUMN, WindowPart

#: The residual figures a window holds at the top of its metrics, as policy signals.
RESIDUAL_SIGNALS = (
    "residual_mean",
    "residual_std",
    "residual_mean_low",
    "residual_mean_high",
    "residual_p_value",
)
#: Anomaly kinds that make a value out of schema (column-level kinds are not per value).
VALUE_ANOMALIES = ("type_mismatch", "non_finite", "out_of_range", "unknown_category")


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _column_drift(result, name: str) -> dict[str, Any]:
    column = result[name]
    return {
        "test": column.test,
        "statistic": _finite(column.statistic),
        "p_value": _finite(column.p_value),
        "p_adjusted": _finite(column.p_adjusted),
        "drifted": bool(column.drifted),
        "n_reference": column.n_reference,
        "n_current": column.n_current,
    }


def _software(window: WindowPart, window_ms: int | None) -> dict[str, Any]:
    software = window.software
    return {
        "requests": software.requests,
        "requests_per_second": None if window_ms is None else software.requests / (window_ms / 1e3),
        "rows": software.rows,
        "errors": software.errors,
        "error_rate": software.error_rate,
        "latency_mean_ms": software.latency_sum_ms / software.requests
        if software.requests
        else None,
        "latency_p50_ms": _finite(software.latency_quantile(0.5)),
        "latency_p95_ms": _finite(software.latency_quantile(0.95)),
    }


def _missing_share(window: WindowPart, features: tuple[str, ...]) -> float | None:
    if window.profile is None or window.profile.n_rows == 0:
        return None
    n = window.profile.n_rows
    nulls = sum(window.profile[f].null_count if f in window.profile else n for f in features)
    return nulls / (n * len(features))


def _out_of_schema(sample: pd.DataFrame, reference: Reference) -> float | None:
    present = [f for f in reference.features if f in sample.columns]
    if sample.empty or not present:
        return None
    result = validate(sample[present], reference.schema)
    broken = sum(a.count for a in result if a.kind in VALUE_ANOMALIES)
    return broken / (len(sample) * len(present))


def task_errors(labelled: pd.DataFrame) -> tuple[str, float, np.ndarray]:
    """The task metric of rows with a ``prediction`` and a ``label``: ``("accuracy", value,
    0/1 errors)`` for classes, ``("mae", value, absolute errors)`` for numbers.

    >>> import pandas as pd
    >>> task_errors(pd.DataFrame({"prediction": [1, 0, 1], "label": [1, 1, 1]}))[:2]
    ('accuracy', 0.6666666666666666)
    >>> task_errors(pd.DataFrame({"prediction": [1.5, 2.0], "label": [1.0, 3.0]}))[:2]
    ('mae', 0.75)
    """
    predictions, labels = labelled["prediction"].tolist(), labelled["label"].tolist()

    def is_class(v: object) -> bool:
        return isinstance(v, int | str | bool) or (isinstance(v, float) and v.is_integer())

    classes = all(isinstance(v, int | str | bool) for v in labels) and all(
        is_class(v) for v in predictions
    )
    if classes:
        wrong = np.array([p != y for p, y in zip(predictions, labels, strict=True)], dtype=float)
        return "accuracy", float((wrong.size - wrong.sum()) / wrong.size), wrong
    errors = np.abs(np.asarray(predictions, dtype=float) - np.asarray(labels, dtype=float))
    return "mae", float(errors.mean()), errors


def _feature_drift(
    before: pd.DataFrame | ReferenceProfile,
    after: pd.DataFrame,
    features: tuple[str, ...],
    alpha: float,
) -> tuple[dict[str, Any], float | None]:
    """Drift per feature of ``after`` against ``before`` (rows, or the reference's
    summary of its rows) and the share that drifted (``({}, None)`` when no feature could
    be compared)."""
    if isinstance(before, ReferenceProfile):
        present = [f for f in features if f in before and f in after.columns]
    else:
        present = [f for f in features if f in before.columns and f in after.columns]
        if before.empty:
            return {}, None
    if not present or after.empty:
        return {}, None
    base = before if isinstance(before, ReferenceProfile) else before[present]
    result = compare(base, after[present], columns=present, alpha=alpha, plots=False)
    if not result.compared:
        return {}, None
    return {c.column: _column_drift(result, c.column) for c in result.columns}, (
        result.share_drifted
    )


def _durations_as_seconds(sample: pd.DataFrame, durations: list[str]) -> pd.DataFrame:
    """``sample`` with each of the ``durations`` columns read as seconds, as the reference
    summarised them: a window's inputs come back from the events' JSON as text
    (``'0 days 00:08:38.27'``, ISO 8601 ``'PT8M38.27S'``). Text that is no duration is kept
    as it is, so that drift counts it invalid."""
    if not durations:
        return sample
    sample = sample.copy()
    for name in durations:
        if name not in sample.columns:
            continue
        column = sample[name]
        if column.dtype.kind == "m":
            sample[name] = column.dt.total_seconds()
            continue
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue  # already numbers: read as seconds by the reference's kind
        text = column.astype(object).where(column.notna(), None)
        parsed = pd.to_timedelta(
            text.map(lambda v: v if isinstance(v, str) else None), errors="coerce"
        )
        seconds = parsed.dt.total_seconds()
        read = parsed.notna().to_numpy()
        kept = text.copy()
        kept[read] = seconds[read].to_numpy()
        sample[name] = kept
    return sample


def _duration_features(reference: Reference) -> list[str]:
    """The reference's features that were durations (timedelta64 in its sample)."""
    if not len(reference.sample):
        return []
    frame = reference.sample.frame()
    return [f for f in reference.features if f in frame.columns and frame[f].dtype.kind == "m"]


def window_metrics(
    window: WindowPart,
    reference: Reference,
    labelled: pd.DataFrame | None,
    *,
    alpha: float = 0.05,
    previous: WindowPart | None = None,
    window_ms: int | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """The metrics of ``window`` (a JSON-safe dict, see the module docstring) and its error
    stream (empty without labels). ``labelled`` holds the window's labelled rows, in event
    order, with ``prediction`` and ``label`` columns; ``previous`` is the variant's window
    before this one (``None`` for its first); ``window_ms``, the window's length, gives the
    throughput.

    >>> import pandas as pd
    >>> from opsloop.monitoring.reference import set_reference
    >>> from opsloop.monitoring.window_part import parts_of_events
    >>> from opsloop.monitoring.windowing import Windowing
    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [float(i) for i in range(60)]}))
    >>> def window(offset):
    ...     events = pd.DataFrame({"variant": ["a"] * 40,
    ...         "request_id": [f"r{offset}-{i}" for i in range(40)],
    ...         "inputs_json": [f'[{{"x": {offset + i}}}]' for i in range(40)],
    ...         "output_json": ['{"predictions": [1]}'] * 40, "error": [None] * 40,
    ...         "latency_ms": [3.0] * 40, "at_ms": [0] * 40})
    ...     return parts_of_events(events, Windowing())[("a", 0)]
    >>> metrics, _ = window_metrics(window(10), ref, None, previous=window(200), window_ms=8_000)
    >>> metrics["drift_share"], metrics["previous_drift_share"], metrics["requests_per_second"]
    (0.0, 1.0, 5.0)
    >>> window_metrics(window(10), ref, None)[0]["previous_drift"] is None
    True
    """
    metrics: dict[str, Any] = _software(window, window_ms)
    features = reference.features
    metrics["missing_share"] = _missing_share(window, features)
    sample = None if window.sample is None else window.sample.frame()
    metrics["sample_rows"] = None if sample is None else len(sample)
    metrics["out_of_schema_rate"] = None if sample is None else _out_of_schema(sample, reference)
    metrics["drift"], metrics["drift_share"], metrics["output_drift"] = {}, None, None
    durations = _duration_features(reference) if sample is not None else []
    if sample is not None and len(sample) and len(reference.sample):
        # The reference's columns summarised once per reference, not once per window.
        summary = reference.drift_profile
        metrics["drift"], metrics["drift_share"] = _feature_drift(
            summary, _durations_as_seconds(sample, durations), features, alpha
        )
        if reference.has_predictions and sample[PREDICTION_COLUMN].notna().any():
            output = compare(
                summary,
                sample[[PREDICTION_COLUMN]],
                columns=[PREDICTION_COLUMN],
                alpha=alpha,
                plots=False,
            )
            if output.compared:
                metrics["output_drift"] = _column_drift(output, PREDICTION_COLUMN)
    metrics["previous_drift"], metrics["previous_drift_share"] = None, None
    if sample is not None and previous is not None and previous.sample is not None:
        metrics["previous_drift"], metrics["previous_drift_share"] = _feature_drift(
            _durations_as_seconds(previous.sample.frame(), durations),
            _durations_as_seconds(sample, durations),
            features,
            alpha,
        )
    lengths = input_length_metrics(window, reference, sample, alpha=alpha)
    metrics["input_length"] = lengths
    metrics["text_length_drift_share"] = lengths["length_drift_share"]
    per_request = lengths["records_per_request"]
    for name in ("mean", "max"):
        metrics[f"records_per_request_{name}"] = None if per_request is None else per_request[name]
    errors = np.array([], dtype=float)
    metrics["labelled"] = 0 if labelled is None else len(labelled)
    metrics["task"], metrics["task_metric"] = None, None
    if labelled is not None and len(labelled):
        metrics["task"], metrics["task_metric"], errors = task_errors(labelled)
    residuals = None
    if labelled is not None and len(labelled):
        residuals = residual_summary(labelled, confidence=1 - alpha)
    metrics["residuals"] = residuals
    for name in RESIDUAL_SIGNALS:
        key = name.removeprefix("residual_")
        metrics[name] = None if residuals is None else residuals[key]
    return metrics, errors
