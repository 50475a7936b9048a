"""The task metrics a gate can judge: what each is computed from, which way is better, and
which paired tests apply.

A metric is computed from the models' labels (``predict``), from their scores (the
probability of the positive class, as :func:`~opsloop.analysis.prediction.prediction_function`
gives it), or for more than two classes from their matrix of class probabilities
(``predict_proba``, else ``decision_function``; one column per class, in the candidate's
order of classes). AUC is judged by DeLong's test and accuracy by McNemar's (with a margin,
Tango's score test); every metric can be judged by the paired bootstrap, which is the test
of the multiclass AUCs: ``auc_ovr`` (one-vs-rest, macro) and ``auc_ovo`` (one-vs-one, Hand &
Till), see :mod:`opsloop.analysis.multiclass_auc`.

>>> METRICS["auc"].tests, METRICS["mae"].higher_is_better
(('delong', 'bootstrap'), False)
>>> METRICS["auc_ovo"].tests, METRICS["auc_ovo"].tasks
(('bootstrap',), ('multiclass',))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as skm

from opsloop.analysis.multiclass_auc import ovo_auc, ovr_auc


@dataclass(frozen=True)
class GateMetric:
    """One metric: ``function(y_true, values)``, the ``values`` it needs (``"labels"``,
    ``"scores"`` or ``"probabilities"``, with ``y_true`` as column indices), its direction,
    its paired tests (the first is the default) and the tasks it applies to.

    >>> METRICS["accuracy"].function([1, 0], [1, 1])
    0.5
    """

    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    needs: Literal["labels", "scores", "probabilities"]
    higher_is_better: bool
    tests: tuple[str, ...]
    tasks: tuple[str, ...]


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(skm.root_mean_squared_error(y_true, y_pred))


# The gate passes each row's class as its column's index, and every column is a class: a
# resample that lacks one has no AUC (a ValueError, left out by the bootstrap).
def _auc_ovr(codes: np.ndarray, probabilities: np.ndarray) -> float:
    return ovr_auc(codes, probabilities, labels=range(probabilities.shape[1]))


def _auc_ovo(codes: np.ndarray, probabilities: np.ndarray) -> float:
    return ovo_auc(codes, probabilities, labels=range(probabilities.shape[1]))


METRICS: dict[str, GateMetric] = {
    m.name: m
    for m in (
        GateMetric("auc", skm.roc_auc_score, "scores", True, ("delong", "bootstrap"), ("binary",)),
        GateMetric("auc_ovr", _auc_ovr, "probabilities", True, ("bootstrap",), ("multiclass",)),
        GateMetric("auc_ovo", _auc_ovo, "probabilities", True, ("bootstrap",), ("multiclass",)),
        GateMetric(
            "accuracy",
            skm.accuracy_score,
            "labels",
            True,
            ("mcnemar", "bootstrap"),
            ("binary", "multiclass"),
        ),
        GateMetric(
            "balanced_accuracy",
            skm.balanced_accuracy_score,
            "labels",
            True,
            ("bootstrap",),
            ("binary", "multiclass"),
        ),
        GateMetric("f1", skm.f1_score, "labels", True, ("bootstrap",), ("binary",)),
        GateMetric("brier", skm.brier_score_loss, "scores", False, ("bootstrap",), ("binary",)),
        GateMetric(
            "mae", skm.mean_absolute_error, "labels", False, ("bootstrap",), ("regression",)
        ),
        GateMetric("rmse", _rmse, "labels", False, ("bootstrap",), ("regression",)),
        GateMetric("r2", skm.r2_score, "labels", True, ("bootstrap",), ("regression",)),
    )
}
