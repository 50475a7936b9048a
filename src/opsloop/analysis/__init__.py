"""Model analysis: where a model errs, against what baseline, and why it predicts what it does.

* error analysis by tag against human-level performance: :func:`hlp`, :func:`error_analysis`;
* slices: :func:`slice_metrics` (any scikit-learn metric per slice and intersection),
  :func:`error_tree`, :func:`sliceline`, :func:`compare_models` (McNemar per slice);
* is a candidate model not worse than its baseline: :func:`delong_test` (AUC),
  :func:`mcnemar_noninferiority_test` (accuracy), :func:`paired_bootstrap_test` (any metric);
  the AUC of more than two classes: :func:`ovr_auc`, :func:`ovo_auc` (Hand & Till);
* are its probabilities calibrated: :func:`expected_calibration_error`;
* how well does it do on a window whose labels have not arrived: :class:`PerformanceEstimator`
  (confidence-based performance estimation), :func:`estimate_performance`;
* regression residuals: :func:`residual_analysis`;
* do we need more data: :func:`learning_curve` (with the fitted gain of more data),
  :func:`represents_population`;
* fairness through Fairlearn: :func:`fairness`;
* explanations: :func:`explain` and the methods it picks from (:func:`ale`,
  :func:`partial_dependence`, :func:`shapley_values`, :func:`permutation_importance`,
  :func:`grouped_permutation_importance`, :func:`linear_coefficients`,
  :func:`tree_importances`, :func:`global_surrogate`, :func:`local_surrogate`).

The explanation functions import ``shap`` (a few seconds) on first use, not on import.

>>> from opsloop.analysis import error_analysis
>>> error_analysis([1, 0], [1, 1], {"g": ["a", "b"]}, hlp=0.0).rows[0].value
'b'
"""

from __future__ import annotations

from typing import Any

from opsloop.analysis.ale import AccumulatedLocalEffects, ale
from opsloop.analysis.baseline import HumanLevel, SliceRate, hlp
from opsloop.analysis.calibration_error import CalibrationError, expected_calibration_error
from opsloop.analysis.comparison import ModelComparison, SliceChange, compare_models
from opsloop.analysis.errors import ErrorAnalysis, TagErrors, error_analysis
from opsloop.analysis.errortree import ErrorLeaf, ErrorTree, error_tree
from opsloop.analysis.fairness import Fairness, fairness
from opsloop.analysis.importance import (
    Coefficient,
    Importance,
    grouped_permutation_importance,
    linear_coefficients,
    permutation_importance,
    tree_importances,
)
from opsloop.analysis.intervals import wilson_interval
from opsloop.analysis.learning import (
    LearningCurve,
    PowerLawFit,
    fit_power_law,
    learning_curve,
    represents_population,
)
from opsloop.analysis.multiclass_auc import ovo_auc, ovr_auc
from opsloop.analysis.paired_tests import (
    McNemar,
    PairedTest,
    delong_test,
    mcnemar_noninferiority_test,
    mcnemar_test,
    paired_bootstrap_test,
)
from opsloop.analysis.performance_estimation import (
    PerformanceEstimate,
    PerformanceEstimator,
    estimate_performance,
    expected_confusion,
)
from opsloop.analysis.residuals import ResidualAnalysis, durbin_watson_test, residual_analysis
from opsloop.analysis.sliceline import SliceLineResult, sliceline
from opsloop.analysis.slices import SliceMetrics, slice_metrics
from opsloop.analysis.surrogate import (
    GlobalSurrogate,
    LocalSurrogate,
    global_surrogate,
    local_surrogate,
)

# these modules import shap, which takes seconds: loaded when first asked for
_LAZY = {
    "explain": "opsloop.analysis.explanation",
    "Explanation": "opsloop.analysis.explanation",
    "shapley_values": "opsloop.analysis.shapley",
    "ShapleyValues": "opsloop.analysis.shapley",
    "partial_dependence": "opsloop.analysis.dependence",
    "PartialDependence": "opsloop.analysis.dependence",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opsloop.analysis' has no attribute {name!r}")


__all__ = [
    "AccumulatedLocalEffects",
    "CalibrationError",
    "Coefficient",
    "ErrorAnalysis",
    "ErrorLeaf",
    "ErrorTree",
    "Explanation",
    "Fairness",
    "GlobalSurrogate",
    "HumanLevel",
    "Importance",
    "LearningCurve",
    "LocalSurrogate",
    "McNemar",
    "ModelComparison",
    "PairedTest",
    "PartialDependence",
    "PerformanceEstimate",
    "PerformanceEstimator",
    "PowerLawFit",
    "ResidualAnalysis",
    "ShapleyValues",
    "SliceChange",
    "SliceLineResult",
    "SliceMetrics",
    "SliceRate",
    "TagErrors",
    "ale",
    "compare_models",
    "delong_test",
    "durbin_watson_test",
    "error_analysis",
    "error_tree",
    "estimate_performance",
    "expected_calibration_error",
    "expected_confusion",
    "explain",
    "fairness",
    "fit_power_law",
    "global_surrogate",
    "grouped_permutation_importance",
    "hlp",
    "learning_curve",
    "linear_coefficients",
    "local_surrogate",
    "mcnemar_noninferiority_test",
    "mcnemar_test",
    "ovo_auc",
    "ovr_auc",
    "paired_bootstrap_test",
    "partial_dependence",
    "permutation_importance",
    "represents_population",
    "residual_analysis",
    "shapley_values",
    "slice_metrics",
    "sliceline",
    "tree_importances",
    "wilson_interval",
]
