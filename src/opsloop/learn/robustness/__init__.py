"""Model security and robustness: attacks that put a number on how a model can be fooled or read.

===============================  =================================================
module                           what it does
===============================  =================================================
:mod:`~.constraints`             what an adversarial tabular row may change
:mod:`~.evasion`                 white-box FGSM and PGD (L∞, L2) for torch models
:mod:`~.membership`              membership inference: threshold and shadow models
:mod:`~.blackbox`                black-box evasion by score-based random search
:mod:`~.decision_based`          black-box evasion from labels only (HopSkipJump)
:mod:`~.inversion`               model inversion: class representatives (white-box)
:mod:`~.extraction`              model extraction: surrogate fidelity against N
:mod:`~.poisoning`               label flipping and confident-learning detection
:mod:`~.backdoor`                backdoor triggers and spectral-signature detection
:mod:`~.adversarial_training`    PGD adversarial training, before and after
:mod:`~.defensive_distillation`  distillation at temperature T, and its break
:mod:`~.output_defences`         rounded, top-k or label-only answers
:mod:`~.private_training`        DP-SGD training (Opacus), ε and advantage
:mod:`~.input_anomaly`           flag unusual inputs at a stated false-positive rate
:mod:`~.portable_detector`       that detector as numbers a deployment can carry
:mod:`~.defence_effect`          a defence's measures before and after
:mod:`~.assessment`              every attack that applies, as one result
:mod:`~.tree_editing`            override a tree's or forest's answer in a region
:mod:`~.torch_classifier`        a torch module seen through predict_proba
===============================  =================================================

:func:`opsloop.reports.robustness.robustness_report` renders :func:`assess_robustness`'s result
as HTML and logs it to a run.

The PyTorch attacks import torch only when called (and private training Opacus).

>>> from opsloop.learn.robustness import FeatureConstraints
>>> FeatureConstraints(2, lower=0, upper=1).lower.tolist()
[0.0, 0.0]
"""

from opsloop.learn.robustness.adversarial_training import adversarial_training
from opsloop.learn.robustness.assessment import RobustnessResult, assess_robustness
from opsloop.learn.robustness.backdoor import (
    BackdoorCurve,
    BackdoorDetection,
    BackdoorTrigger,
    backdoor_curve,
    backdoor_detection,
    poison_backdoor,
    spectral_signature_rows,
)
from opsloop.learn.robustness.blackbox import BlackBoxResult, random_search_attack
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.decision_based import hop_skip_jump_attack
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.defensive_distillation import defensive_distillation
from opsloop.learn.robustness.evasion import (
    AttackCurve,
    accuracy_under_attack,
    fgsm,
    margin_pgd,
    pgd,
)
from opsloop.learn.robustness.extraction import ExtractionCurve, extraction_curve
from opsloop.learn.robustness.input_anomaly import (
    InputAnomalyDetector,
    fit_input_detector,
    input_detection_effect,
)
from opsloop.learn.robustness.inversion import InversionResult, invert_classes
from opsloop.learn.robustness.membership import MembershipResult, shadow_attack, threshold_attack
from opsloop.learn.robustness.output_defences import (
    RestrictedOutput,
    output_defence_effects,
    probability_extraction_curve,
    restrict_probabilities,
)
from opsloop.learn.robustness.poisoning import (
    DetectionResult,
    LabelIssues,
    PoisoningCurve,
    find_label_issues,
    flip_labels,
    label_flip_curve,
    label_flip_detection,
)
from opsloop.learn.robustness.private_training import (
    advantage_bound,
    dp_epsilon,
    private_training,
)
from opsloop.learn.robustness.torch_classifier import TorchClassifier
from opsloop.learn.robustness.tree_editing import (
    TreeEdit,
    TreeRegion,
    leaf_rule,
    override_region,
)

__all__ = [
    "AttackCurve",
    "BackdoorCurve",
    "BackdoorDetection",
    "BackdoorTrigger",
    "BlackBoxResult",
    "DefenceEffect",
    "DetectionResult",
    "ExtractionCurve",
    "FeatureConstraints",
    "InputAnomalyDetector",
    "InversionResult",
    "LabelIssues",
    "MembershipResult",
    "PoisoningCurve",
    "RestrictedOutput",
    "RobustnessResult",
    "TorchClassifier",
    "TreeEdit",
    "TreeRegion",
    "accuracy_under_attack",
    "advantage_bound",
    "adversarial_training",
    "assess_robustness",
    "backdoor_curve",
    "backdoor_detection",
    "defensive_distillation",
    "dp_epsilon",
    "extraction_curve",
    "fgsm",
    "find_label_issues",
    "fit_input_detector",
    "flip_labels",
    "hop_skip_jump_attack",
    "input_detection_effect",
    "invert_classes",
    "label_flip_curve",
    "label_flip_detection",
    "leaf_rule",
    "margin_pgd",
    "output_defence_effects",
    "override_region",
    "pgd",
    "poison_backdoor",
    "private_training",
    "probability_extraction_curve",
    "random_search_attack",
    "restrict_probabilities",
    "shadow_attack",
    "spectral_signature_rows",
    "threshold_attack",
]
