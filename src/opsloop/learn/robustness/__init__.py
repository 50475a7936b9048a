"""Model security and robustness: attacks that put a number on how a model can be fooled or read.

=================================================  =========================================
module                                             what it does
=================================================  =========================================
:mod:`~opsloop.learn.robustness.constraints`       what an adversarial tabular row may change
:mod:`~opsloop.learn.robustness.evasion`           white-box FGSM and PGD (L∞, L2) for torch models
:mod:`~opsloop.learn.robustness.membership`        membership inference: threshold and shadow models
:mod:`~opsloop.learn.robustness.blackbox`          black-box evasion by score-based random search
:mod:`~opsloop.learn.robustness.extraction`        model extraction: surrogate fidelity against N
:mod:`~opsloop.learn.robustness.poisoning`         label flipping and confident-learning detection
:mod:`~opsloop.learn.robustness.assessment`        every attack that applies, as one result
:mod:`~opsloop.learn.robustness.torch_classifier`  a torch module seen through predict_proba
=================================================  =========================================

:func:`opsloop.reports.robustness.robustness_report` renders :func:`assess_robustness`'s result
as HTML and logs it to a run.

The PyTorch attacks import torch only when called.

>>> from opsloop.learn.robustness import FeatureConstraints
>>> FeatureConstraints(2, lower=0, upper=1).lower.tolist()
[0.0, 0.0]
"""

from opsloop.learn.robustness.assessment import RobustnessResult, assess_robustness
from opsloop.learn.robustness.blackbox import BlackBoxResult, random_search_attack
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.evasion import AttackCurve, accuracy_under_attack, fgsm, pgd
from opsloop.learn.robustness.extraction import ExtractionCurve, extraction_curve
from opsloop.learn.robustness.membership import MembershipResult, shadow_attack, threshold_attack
from opsloop.learn.robustness.poisoning import (
    DetectionResult,
    LabelIssues,
    PoisoningCurve,
    find_label_issues,
    flip_labels,
    label_flip_curve,
    label_flip_detection,
)
from opsloop.learn.robustness.torch_classifier import TorchClassifier

__all__ = [
    "AttackCurve",
    "BlackBoxResult",
    "DetectionResult",
    "ExtractionCurve",
    "FeatureConstraints",
    "LabelIssues",
    "MembershipResult",
    "PoisoningCurve",
    "RobustnessResult",
    "TorchClassifier",
    "accuracy_under_attack",
    "assess_robustness",
    "extraction_curve",
    "fgsm",
    "find_label_issues",
    "flip_labels",
    "label_flip_curve",
    "label_flip_detection",
    "pgd",
    "random_search_attack",
    "shadow_attack",
    "threshold_attack",
]
