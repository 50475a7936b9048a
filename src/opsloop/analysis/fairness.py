"""Group fairness through Fairlearn, per sensitive column, for binary, multiclass and
regression models, joined to the error analysis.

Fairlearn's ``MetricFrame`` computes the per-group metrics (and, with ``n_boot``, its
bootstrap intervals), and its ``demographic_parity_*`` and ``equalized_odds_*`` functions the
summary disparities; nothing of that is rewritten here. What is added:

* sensitive columns are encoded exactly like error-analysis tags (integer codes such as an
  occupation 1..6, at most 20 distinct whole numbers, are groups as they are, as Fairlearn
  takes them; other numbers with more than ``bins`` values are cut into the same quantile
  bins, listed in :attr:`Fairness.binned`; missing values as ``<missing>``), so
  :meth:`Fairness.to_frame` can put a group's fairness metrics and its error-analysis row
  (share of errors, room for improvement) side by side;
* multiclass: per-class selection and true positive rates, and the demographic parity and
  equalized odds differences of each class one-vs-rest (the summary is their maximum);
* regression: count, mean prediction, mean residual, MAE and RMSE per group, with the
  between-group difference of each.

>>> result = fairness([1, 0, 1, 0], [1, 0, 0, 0], {"g": ["a", "a", "b", "b"]})
>>> result.summary_value("g", "demographic_parity_difference")
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    mean_prediction,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error

from opsloop.analysis.errors import ErrorAnalysis
from opsloop.analysis.labels import as_labels
from opsloop.analysis.tags import as_tag_frame, binned_tags, encode_tag
from opsloop.data.label_task import infer_task

Task = Literal["auto", "binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Fairness:
    """Per-group metrics (long format) and summary disparities, per sensitive column.

    ``groups`` rows are ``(feature, group, metric, value, ci_low, ci_high)``; ``summary``
    rows are ``(feature, name, value)``.

    >>> r = fairness([1, 0], [1, 1], {"g": ["a", "b"]})
    >>> r.group_value("g", "b", "selection_rate")
    1.0
    """

    task: str
    groups: tuple[tuple[str, str, str, float | None, float | None, float | None], ...]
    summary: tuple[tuple[str, str, float | None], ...]
    n_boot: int
    #: ``(feature, bins)`` of each numeric sensitive column cut into quantile bins.
    binned: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def group_value(self, feature: str, group: str, metric: str) -> float | None:
        """One metric of one group.

        >>> fairness([1, 1], [1, 0], {"g": ["a", "a"]}).group_value("g", "a", "count")
        2.0
        """
        for f, g, m, value, _, _ in self.groups:
            if (f, g, m) == (feature, group, metric):
                return value
        raise KeyError(f"no metric {metric!r} for group {group!r} of {feature!r}")

    def summary_value(self, feature: str, name: str) -> float | None:
        """One summary disparity of one sensitive column.

        >>> fairness([1, 1], [1, 0], {"g": ["a", "b"]}).summary_value("g", "accuracy_difference")
        1.0
        """
        for f, n, value in self.summary:
            if (f, n) == (feature, name):
                return value
        raise KeyError(f"no summary {name!r} for {feature!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> fairness([1, 1], [1, 0], {"g": ["a", "b"]}).to_dict()["task"]
        'binary'
        """
        keys = ("feature", "group", "metric", "value", "ci_low", "ci_high")
        return {
            "task": self.task,
            "n_boot": int(self.n_boot),
            "groups": [dict(zip(keys, row, strict=True)) for row in self.groups],
            "summary": [{"feature": f, "name": n, "value": v} for f, n, v in self.summary],
            "binned": {feature: list(bins) for feature, bins in self.binned},
        }

    def to_frame(self, errors: ErrorAnalysis | None = None) -> pd.DataFrame:
        """One row per (feature, group), one column per metric; with ``errors``, the error
        analysis columns of the same tag value joined on.

        >>> fairness([1, 0], [1, 1], {"g": ["a", "b"]}).to_frame()["selection_rate"].tolist()
        [1.0, 1.0]
        """
        long = pd.DataFrame(
            list(self.groups), columns=["feature", "group", "metric", "value", "low", "high"]
        )
        wide = long.pivot(index=["feature", "group"], columns="metric", values="value")
        order = list(dict.fromkeys(long["metric"]))
        wide = wide[order].reset_index()
        wide.columns.name = None
        if errors is None:
            return wide
        table = errors.to_frame()[
            ["tag", "value", "share_of_errors", "error_rate", "share_of_data", "room", "small"]
        ].rename(columns={"tag": "feature", "value": "group", "error_rate": "error_rate_in_group"})
        return wide.merge(table, on=["feature", "group"], how="left")


def fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    task: Task = "auto",
    pos_label: Any = 1,
    bins: int = 5,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> Fairness:
    """Group fairness of ``y_pred`` for each column of ``sensitive``.

    ``task`` ``"auto"`` picks regression where :func:`opsloop.data.label_task.infer_task`
    calls ``y_true`` a regression target (floats with a fractional part or more than 20
    distinct whole-valued floats; integer labels are classes however many), else binary for
    two label values and multiclass for more. ``pos_label``
    is the positive class of a binary task. ``n_boot > 0`` adds Fairlearn's bootstrap
    intervals to the group metrics. Numeric sensitive columns are grouped as
    :mod:`opsloop.analysis.tags` says (integer codes as they are; other numbers with more
    than ``bins`` values in quantile bins, listed in ``binned``).

    >>> r = fairness([0, 1, 1, 1], [0, 1, 0, 1], {"g": list("aabb")})
    >>> r.group_value("g", "b", "true_positive_rate")
    0.5
    >>> r.summary_value("g", "equalized_odds_difference")
    0.5
    """
    truth = as_labels(y_true, "y_true")
    predicted = as_labels(y_pred, "y_pred", len(truth))
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    task = _task(task, truth, predicted)
    if task == "binary":
        _check_pos_label(pos_label, truth, predicted)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    frame = as_tag_frame(sensitive, len(truth), name="sensitive")
    tail = (1.0 - confidence) / 2.0
    groups: list[tuple] = []
    summary: list[tuple] = []
    encoded = []
    for column in frame.columns:
        grouping = encode_tag(frame[column], bins)
        encoded.append(grouping)
        labels = grouping.labels[grouping.codes].astype(str)
        metrics, y_t, y_p = _metrics(task, truth, predicted, pos_label)
        options = {"n_boot": n_boot, "ci_quantiles": [tail, 1 - tail], "random_state": seed}
        mf = MetricFrame(
            metrics=metrics,
            y_true=y_t,
            y_pred=y_p,
            sensitive_features=pd.Series(labels, name=column),
            **(options if n_boot else {}),
        )
        low = high = None
        if n_boot:
            low, high = mf.by_group_ci
        for group, values in mf.by_group.iterrows():
            for metric, value in values.items():
                groups.append(
                    (
                        column,
                        str(group),
                        str(metric),
                        _plain(value),
                        None if low is None else _plain(low.loc[group, metric]),
                        None if high is None else _plain(high.loc[group, metric]),
                    )
                )
        summary.extend((column, f"{m}_difference", _plain(v)) for m, v in mf.difference().items())
        summary.extend(_disparities(task, column, truth, predicted, labels, pos_label))
    return Fairness(task, tuple(groups), tuple(summary), int(n_boot), binned_tags(encoded))


def _task(task: str, truth: np.ndarray, predicted: np.ndarray) -> str:
    if task not in ("auto", "binary", "multiclass", "regression"):
        raise ValueError(
            f"task must be 'auto', 'binary', 'multiclass' or 'regression', got {task!r}"
        )
    if task != "auto":
        return task
    if infer_task(truth, "y_true") == "regression":
        return "regression"
    values = np.unique(np.concatenate([truth, predicted]).astype(object).astype(str))
    return "binary" if len(values) <= 2 else "multiclass"


def _check_pos_label(pos_label: Any, truth: np.ndarray, predicted: np.ndarray) -> None:
    # A positive class that is not among two label values makes every row negative: the rates
    # would all be 0 and every disparity 0, a fair-looking answer to the wrong question.
    values = list(dict.fromkeys(np.concatenate([truth, predicted]).tolist()))
    if len(values) == 2 and not any(v == pos_label for v in values):
        raise ValueError(
            f"pos_label {pos_label!r} is not one of the labels {sorted(map(str, values))}; "
            "pass the positive class as pos_label"
        )


def _metrics(task: str, truth: np.ndarray, predicted: np.ndarray, pos_label: Any):
    if task == "binary":
        metrics = {
            "count": count,
            "accuracy": accuracy_score,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
        }
        return metrics, (truth == pos_label).astype(int), (predicted == pos_label).astype(int)
    if task == "regression":
        metrics = {
            "count": count,
            "mean_prediction": mean_prediction,
            "mean_residual": _mean_residual,
            "mean_absolute_error": mean_absolute_error,
            "root_mean_squared_error": root_mean_squared_error,
        }
        return metrics, truth.astype(np.float64), predicted.astype(np.float64)
    metrics: dict[str, Any] = {"count": count, "accuracy": accuracy_score}
    for cls in np.unique(np.concatenate([truth, predicted])):
        metrics[f"selection_rate[{cls}]"] = _selection_rate_of(cls)
        metrics[f"recall[{cls}]"] = _recall_of(cls)
    return metrics, truth, predicted


def _disparities(task, column, truth, predicted, labels, pos_label) -> list[tuple]:
    if task == "regression":
        return []
    if task == "binary":
        pairs = [("", (truth == pos_label).astype(int), (predicted == pos_label).astype(int))]
    else:
        classes = np.unique(np.concatenate([truth, predicted]))
        pairs = [
            (f"[{c}]", (truth == c).astype(int), (predicted == c).astype(int)) for c in classes
        ]
    functions = {
        "demographic_parity_difference": demographic_parity_difference,
        "demographic_parity_ratio": demographic_parity_ratio,
        "equalized_odds_difference": equalized_odds_difference,
        "equalized_odds_ratio": equalized_odds_ratio,
    }
    rows: list[tuple] = []
    for name, function in functions.items():
        values = [
            (suffix, float(function(t, p, sensitive_features=labels))) for suffix, t, p in pairs
        ]
        rows.extend((column, name + suffix, _plain(v)) for suffix, v in values if suffix)
        worst = [v for _, v in values if not np.isnan(v)]
        pick = max if name.endswith("difference") else min
        rows.append((column, name, _plain(pick(worst)) if worst else None))
    return rows


def _mean_residual(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) - np.asarray(y_pred)))


def _selection_rate_of(cls: Any):
    def rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.mean(np.asarray(y_pred) == cls))

    return rate


def _recall_of(cls: Any):
    def recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        actual = np.asarray(y_true) == cls
        return float(np.mean(np.asarray(y_pred)[actual] == cls)) if actual.any() else float("nan")

    return recall


def _plain(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
