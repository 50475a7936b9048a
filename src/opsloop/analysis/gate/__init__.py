"""Release gates: a candidate model version checked against a baseline before it ships.

A gate is a declarative, versioned file (``gate.yaml``, :mod:`.spec`) of checks
(:mod:`.checks`): the task
metric not worse than the baseline's by more than a margin, judged by a paired test
(:mod:`opsloop.analysis.paired_tests`); absolute floors; no slice significantly worse
(:func:`opsloop.analysis.compare_models`, Benjamini-Hochberg across slices); fairness
disparities within bounds (:func:`opsloop.analysis.fairness`); accuracy not below people's
(a second labeller's labels, paired); size, latency and memory budgets (measured by the
registry's part in a fresh process); the expected calibration
error of the candidate's probabilities within a bound; accuracy under an evasion attack
and the advantage of a membership-inference attack (:mod:`.attack_checks`, with
:mod:`opsloop.learn.robustness`); and the data contract (the
candidate's signature compatible with the baseline's, :mod:`.contract`, and the evaluation
data valid against its input schema). :func:`evaluate_gate` runs them on two loaded models
and a frame and returns a :class:`GateResult` whose every check carries its numbers. Loading
the versions a reference names and recording the result on the candidate is the registry's
part (:func:`opsloop.registry.release_gate.run_gate`).

>>> gate = parse_gate({"version": 1, "label": "y", "checks": [
...     {"kind": "non_inferiority", "metric": "accuracy", "margin": 0.02}]})
>>> gate.checks[0].test, gate.baseline
('mcnemar', 'champion')
"""

from opsloop.analysis.gate.checks import (
    CHECK_KINDS,
    NOT_AVAILABLE,
    BudgetCheck,
    CalibrationCheck,
    DataContractCheck,
    FairnessCheck,
    FloorCheck,
    HumanLevelCheck,
    NonInferiorityCheck,
    PrivacyCheck,
    RobustnessCheck,
    SlicesCheck,
)
from opsloop.analysis.gate.contract import SignatureBreak, signature_breaks
from opsloop.analysis.gate.evaluate import evaluate_gate, model_inputs
from opsloop.analysis.gate.metrics import METRICS, GateMetric
from opsloop.analysis.gate.result import CheckResult, GateResult
from opsloop.analysis.gate.spec import GateSpec, GateSpecError, load_gate, parse_gate

__all__ = [
    "CHECK_KINDS",
    "METRICS",
    "NOT_AVAILABLE",
    "BudgetCheck",
    "CalibrationCheck",
    "CheckResult",
    "DataContractCheck",
    "FairnessCheck",
    "FloorCheck",
    "GateMetric",
    "GateResult",
    "GateSpec",
    "GateSpecError",
    "HumanLevelCheck",
    "NonInferiorityCheck",
    "PrivacyCheck",
    "RobustnessCheck",
    "SignatureBreak",
    "SlicesCheck",
    "evaluate_gate",
    "load_gate",
    "model_inputs",
    "parse_gate",
    "signature_breaks",
]
