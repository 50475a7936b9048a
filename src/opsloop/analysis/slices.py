"""Any scikit-learn metric per slice and per intersection of two tags, with counts, bootstrap
intervals and small slices flagged.

The rows of each slice are gathered once (one stable ``argsort`` of the group codes, then
``np.split``), so the metric is called once per slice rather than through a pandas
``groupby.apply``; the values equal Fairlearn's ``MetricFrame.by_group`` on the same data. The
interval is the percentile bootstrap: ``n_boot`` resamples of the slice's rows with
replacement, drawn from one generator seeded by ``seed``, so reruns give the same bounds.
For accuracy, zero-one loss, mean absolute error and mean squared error (scikit-learn's
functions, called with their defaults) all resamples of a slice are scored in one array
operation, with the values scikit-learn's per-resample calls give; any other metric is called
once per resample.

>>> from sklearn.metrics import accuracy_score
>>> table = slice_metrics([1, 0, 1, 1], [1, 0, 0, 1], {"g": list("aabb")}, accuracy_score,
...                       n_boot=0, min_size=1)
>>> [(r.value, r.value_of_metric) for r in table.rows]
[('(all)', 0.75), ('a', 1.0), ('b', 0.5)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn.metrics

from opsloop.analysis.labels import as_labels
from opsloop.analysis.tags import Grouping, tag_groupings

#: The tag and value names of the row that covers all the data.
ALL = "(all)"

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class SliceMetric:
    """One metric on one slice: its value, row count and bootstrap interval.

    >>> from sklearn.metrics import recall_score
    >>> slice_metrics([1, 1], [1, 0], {"g": ["a", "a"]}, recall_score, n_boot=0).rows[1].n
    2
    """

    tag: str
    value: str
    metric: str
    n: int
    value_of_metric: float | None
    ci_low: float | None
    ci_high: float | None
    small: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> SliceMetric("g", "a", "acc", 3, 1.0, None, None, True).to_dict()["n"]
        3
        """
        return asdict(self)


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics per slice; the first row of each metric covers all the data (tag ``(all)``).

    >>> from sklearn.metrics import accuracy_score
    >>> t = slice_metrics([1, 0], [1, 1], {"g": ["a", "b"]}, accuracy_score, n_boot=0)
    >>> t.to_frame().set_index(["tag", "value"])["value_of_metric"].tolist()
    [0.5, 1.0, 0.0]
    """

    rows: tuple[SliceMetric, ...]
    confidence: float
    n_boot: int
    min_size: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, rows as a list of dicts.

        >>> from sklearn.metrics import accuracy_score
        >>> slice_metrics([1], [1], {"g": ["a"]}, accuracy_score, n_boot=0).to_dict()["n_boot"]
        0
        """
        return {
            "confidence": float(self.confidence),
            "n_boot": int(self.n_boot),
            "min_size": int(self.min_size),
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per slice and metric.

        >>> from sklearn.metrics import accuracy_score
        >>> slice_metrics([1], [1], {"g": ["a"]}, accuracy_score, n_boot=0).to_frame().shape
        (2, 8)
        """
        columns = list(SliceMetric.__dataclass_fields__)
        return pd.DataFrame([row.to_dict() for row in self.rows], columns=columns)


def resolve_metrics(metrics: Any) -> dict[str, Metric]:
    """``metrics`` (a callable, a scikit-learn metric name, or a list or mapping of them) as a
    mapping of name to ``metric(y_true, y_pred)``.

    >>> list(resolve_metrics(["accuracy_score", "f1_score"]))
    ['accuracy_score', 'f1_score']
    """
    if isinstance(metrics, Mapping):
        items = [(str(name), metric) for name, metric in metrics.items()]
    elif isinstance(metrics, str) or callable(metrics):
        items = [(None, metrics)]
    elif isinstance(metrics, Sequence):
        items = [(None, metric) for metric in metrics]
    else:
        raise TypeError(
            f"metrics must be a callable, a name or a list/mapping of them, got "
            f"{type(metrics).__name__}"
        )
    if not items:
        raise ValueError("metrics must name at least one metric")
    resolved: dict[str, Metric] = {}
    for name, metric in items:
        if isinstance(metric, str):
            function = getattr(sklearn.metrics, metric, None)
            if not metric.endswith(("_score", "_error", "_loss")) or not callable(function):
                raise ValueError(
                    f"metrics: {metric!r} is not a scikit-learn metric function "
                    "(a name in sklearn.metrics ending in _score, _error or _loss)"
                )
            resolved[name or metric] = function
        elif callable(metric):
            resolved[name or getattr(metric, "__name__", repr(metric))] = metric
        else:
            raise TypeError(f"metrics: {metric!r} is neither a callable nor a metric name")
    return resolved


def slice_metrics(
    y_true: Any,
    y_pred: Any,
    tags: Any,
    metrics: Any,
    *,
    intersections: bool | Sequence[tuple[str, str]] = False,
    bins: int = 5,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    min_size: int = 30,
) -> SliceMetrics:
    """``metrics`` on all the data, on every tag value and, when asked, on intersections of
    two tags (``intersections``: ``True`` for every pair, or a list of column pairs).

    Each metric is called as ``metric(y_true_slice, y_pred_slice)``; bind extra arguments
    with ``functools.partial``. ``n_boot = 0`` skips the intervals. A metric that raises or
    is undefined on a bootstrap resample (one class only) leaves that resample out.

    >>> from sklearn.metrics import accuracy_score
    >>> t = slice_metrics([1, 0, 1, 0], [1, 0, 0, 0], {"g": list("abab"), "d": list("xxyy")},
    ...                   accuracy_score, n_boot=0, intersections=True)
    >>> [r.value for r in t.rows]
    ['(all)', 'a', 'b', 'x', 'y', 'a × x', 'a × y', 'b × x', 'b × y']
    """
    truth = as_labels(y_true, "y_true")
    predicted = as_labels(y_pred, "y_pred", len(truth))
    resolved = resolve_metrics(metrics)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    everything = Grouping(ALL, np.zeros(len(truth), dtype=np.int64), np.array([ALL], dtype=object))
    groupings = [
        everything,
        *tag_groupings(tags, len(truth), bins=bins, intersections=intersections),
    ]
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    rows: list[SliceMetric] = []
    for name, metric in resolved.items():
        for grouping in groupings:
            order = np.argsort(grouping.codes, kind="stable")
            bounds = np.cumsum(grouping.counts())[:-1]
            for label, members in zip(grouping.labels, np.split(order, bounds), strict=True):
                value = _call(metric, truth[members], predicted[members])
                low = high = None
                if n_boot and len(members):
                    draws = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
                    values = _resampled(metric, truth, predicted, draws, value)
                    values = values[~np.isnan(values)]
                    if len(values):
                        low, high = (float(q) for q in np.quantile(values, [tail, 1.0 - tail]))
                rows.append(
                    SliceMetric(
                        grouping.tag,
                        str(label),
                        name,
                        len(members),
                        None if np.isnan(value) else value,
                        low,
                        high,
                        len(members) < min_size,
                    )
                )
    return SliceMetrics(tuple(rows), float(confidence), int(n_boot), int(min_size))


def _resampled(
    metric: Metric, truth: np.ndarray, predicted: np.ndarray, draws: np.ndarray, value: float
) -> np.ndarray:
    """``metric`` on each row of ``draws`` (row indices of one resample each)."""
    if not np.isnan(value):  # the metric accepted these labels on the whole slice
        if metric is sklearn.metrics.accuracy_score:
            return (truth[draws] == predicted[draws]).mean(axis=1)
        if metric is sklearn.metrics.zero_one_loss:
            return 1 - (truth[draws] == predicted[draws]).mean(axis=1)
        if metric is sklearn.metrics.mean_absolute_error:
            return np.abs(predicted[draws] - truth[draws]).mean(axis=1)
        if metric is sklearn.metrics.mean_squared_error:
            return ((truth[draws] - predicted[draws]) ** 2).mean(axis=1)
    return np.array([_call(metric, truth[d], predicted[d]) for d in draws], dtype=np.float64)


def _call(metric: Metric, truth: np.ndarray, predicted: np.ndarray) -> float:
    if len(truth) == 0:
        return float("nan")
    try:
        value = metric(truth, predicted)
    except ValueError:
        # e.g. roc_auc_score on a slice with one class: undefined there, not an input error
        return float("nan")
    return float(value)
