"""Model security and robustness: attacks that put a number on how a model can be fooled or read.

=============================================  =============================================
module                                         what it does
=============================================  =============================================
:mod:`~opsloop.learn.robustness.constraints`   what an adversarial tabular row may change
:mod:`~opsloop.learn.robustness.evasion`       white-box FGSM and PGD (L∞, L2) for torch models
:mod:`~opsloop.learn.robustness.membership`    membership inference: threshold and shadow models
=============================================  =============================================

The PyTorch attacks import torch only when called.

>>> from opsloop.learn.robustness import FeatureConstraints
>>> FeatureConstraints(2, lower=0, upper=1).lower.tolist()
[0.0, 0.0]
"""

from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.evasion import AttackCurve, accuracy_under_attack, fgsm, pgd
from opsloop.learn.robustness.membership import MembershipResult, shadow_attack, threshold_attack

__all__ = [
    "AttackCurve",
    "FeatureConstraints",
    "MembershipResult",
    "accuracy_under_attack",
    "fgsm",
    "pgd",
    "shadow_attack",
    "threshold_attack",
]
