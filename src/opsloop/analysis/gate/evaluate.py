"""Run a gate's checks on two loaded models and one labelled evaluation frame.

Each model predicts the frame once (its labels, and for a binary classifier the probability
of the positive class when a check needs scores); every check then works on those arrays.
The models' inputs are their ``feature_names_in_``, else the columns of their recorded
input signature, else every column but the label. A mistake in the inputs (a missing
column, a metric that does not fit the task, a fairness bound the analysis does not
compute) raises ``ValueError`` naming it; a check that runs gives a verdict.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from opsloop.analysis.gate import parse_gate
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"x": rng.normal(size=400)})
>>> frame["y"] = (frame["x"] + rng.normal(size=400) > 0).astype(int)
>>> model = LogisticRegression().fit(frame[["x"]], frame["y"])
>>> gate = parse_gate({"version": 1, "label": "y", "checks": [
...     {"kind": "non_inferiority", "metric": "auc", "margin": 0.01},
...     {"kind": "floor", "metric": "auc", "min": 0.75}]})
>>> result = evaluate_gate(gate, model, model, frame)
>>> result.passed, [round(c.statistic, 4) for c in result.checks]
(True, [inf, 0.8417])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from opsloop.analysis.calibration_error import expected_calibration_error
from opsloop.analysis.comparison import compare_models
from opsloop.analysis.fairness import fairness
from opsloop.analysis.gate.attack_checks import as_gate_model, privacy_result, robustness_result
from opsloop.analysis.gate.checks import (
    BudgetCheck,
    CalibrationCheck,
    FairnessCheck,
    FloorCheck,
    HumanLevelCheck,
    NonInferiorityCheck,
    PrivacyCheck,
    RobustnessCheck,
    SlicesCheck,
)
from opsloop.analysis.gate.contract import data_contract_result, input_schema
from opsloop.analysis.gate.metrics import METRICS
from opsloop.analysis.gate.result import CheckResult, GateResult
from opsloop.analysis.gate.spec import GateSpec
from opsloop.analysis.paired_tests import (
    PairedTest,
    delong_test,
    mcnemar_noninferiority_test,
    paired_bootstrap_test,
)
from opsloop.analysis.prediction import prediction_function

# At most this many slices are kept as a check's evidence.
_MAX_ROWS = 20


class _Scored:
    """One model's predictions of the frame, made once and shared by the checks."""

    def __init__(self, model: Any, frame: pd.DataFrame, inputs: list[str], name: str) -> None:
        self.model, self.name = model, name
        self.X = frame[inputs]
        try:
            self.labels = np.asarray(model.predict(self.X))
        except Exception as error:  # the model's own code: report it, naming the model
            raise ValueError(f"{name}: predict failed ({type(error).__name__}: {error})") from None
        self._scores: np.ndarray | None = None
        self._matrix: np.ndarray | None = None

    def scores(self, positive: Any) -> np.ndarray:
        if self._scores is None:
            try:
                self._scores = prediction_function(self.model, positive)(self.X)
            except Exception as error:  # as above: the model's code
                raise ValueError(
                    f"{self.name}: scoring failed ({type(error).__name__}: {error})"
                ) from None
        return self._scores

    def probabilities(self) -> np.ndarray:
        """One column per class (in ``classes_`` order): ``predict_proba``, else
        ``decision_function``."""
        if self._matrix is None:
            method = "predict_proba" if hasattr(self.model, "predict_proba") else None
            method = method or (
                "decision_function" if hasattr(self.model, "decision_function") else None
            )
            if method is None:
                raise ValueError(
                    f"{self.name} has neither predict_proba nor decision_function, so no "
                    "class scores"
                )
            try:
                self._matrix = np.asarray(getattr(self.model, method)(self.X), dtype=np.float64)
            except Exception as error:  # as above: the model's code
                raise ValueError(
                    f"{self.name}: {method} failed ({type(error).__name__}: {error})"
                ) from None
        return self._matrix


def evaluate_gate(
    gate: GateSpec,
    candidate: Any,
    baseline: Any,
    frame: pd.DataFrame,
    *,
    candidate_signature: Mapping[str, Any] | None = None,
    baseline_signature: Mapping[str, Any] | None = None,
    candidate_name: str = "candidate",
    baseline_name: str = "baseline",
    data_name: str = "data",
    data_sha256: str | None = None,
    serving_cost: Mapping[str, float] | None = None,
    members: pd.DataFrame | None = None,
    members_source: Mapping[str, Any] | None = None,
) -> GateResult:
    """Every check of ``gate`` on ``candidate`` against ``baseline`` (fitted models with
    scikit-learn's ``predict``) on ``frame``, which holds the gate's label column.

    ``candidate_signature`` and ``baseline_signature`` are the registry's recorded
    signatures (``{"inputs": ..., "output": ...}``); the data contract check needs them.
    ``serving_cost`` is the candidate's measured cost (``size_bytes``, ``p99_ms``,
    ``peak_rss_mb``, as :func:`opsloop.registry.budget_probe.measure_serving_cost` gives it),
    which a budget check needs. ``members`` are the candidate's training rows (with the
    label column), which a privacy check needs; ``members_source`` says where they came from
    (kept in the check's evidence). A torch module (logits out) is taken as a classifier of
    the classes ``0..k-1``.

    >>> import pandas as pd
    >>> from opsloop.analysis.gate import parse_gate
    >>> gate = parse_gate({"version": 1, "label": "y", "checks": [{"kind": "data_contract"}]})
    >>> evaluate_gate(gate, None, None, pd.DataFrame({"x": [1]}), data_name="eval.csv")
    Traceback (most recent call last):
    ...
    ValueError: eval.csv has no label column 'y' (the gate's label)
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if gate.label not in frame.columns:
        raise ValueError(f"{data_name} has no label column {gate.label!r} (the gate's label)")
    needed = [c for check in gate.checks for c in _columns_of(check)]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise ValueError(f"{data_name} has no column {missing[0]!r}, which the gate's checks use")
    if frame[gate.label].isna().any():
        raise ValueError(f"{data_name}: the label column {gate.label!r} holds missing values")
    candidate, baseline = as_gate_model(candidate), as_gate_model(baseline)
    cand = _Scored(
        candidate,
        frame,
        model_inputs(candidate, candidate_signature, frame, gate.label, data_name, candidate_name),
        candidate_name,
    )
    base = _Scored(
        baseline,
        frame,
        model_inputs(baseline, baseline_signature, frame, gate.label, data_name, baseline_name),
        baseline_name,
    )
    task = _task(candidate, baseline, candidate_name, baseline_name)
    truth = frame[gate.label].to_numpy()
    context = _Context(gate, task, truth, cand, base, frame)
    results = []
    for index, check in enumerate(gate.checks):
        where = f"checks[{index}]"
        if isinstance(check, NonInferiorityCheck):
            results.append(context.non_inferiority(check, where))
        elif isinstance(check, FloorCheck):
            results.append(context.floor(check, where))
        elif isinstance(check, SlicesCheck):
            results.append(context.slices(check, where))
        elif isinstance(check, FairnessCheck):
            results.append(context.fairness(check, where))
        elif isinstance(check, HumanLevelCheck):
            results.append(context.human_level(check, where))
        elif isinstance(check, CalibrationCheck):
            results.append(context.calibration(check, where))
        elif isinstance(check, BudgetCheck):
            results.append(_budget(check, serving_cost, where))
        elif isinstance(check, RobustnessCheck):
            results.append(
                context.robustness(check, where, candidate_signature, baseline_signature)
            )
        elif isinstance(check, PrivacyCheck):
            if task == "regression":
                raise ValueError(
                    f"{where}: membership attacks read class probabilities; this is a regressor"
                )
            results.append(
                privacy_result(
                    check,
                    cand.model,
                    list(cand.X.columns),
                    members,
                    frame,
                    gate.label,
                    where,
                    members_source,
                )
            )
        else:
            results.append(
                data_contract_result(check, frame, candidate_signature, baseline_signature)
            )
    return GateResult(
        gate=gate.name or "gate",
        gate_version=gate.version,
        gate_sha256=gate.sha256,
        candidate=candidate_name,
        baseline=baseline_name,
        data=data_name,
        n_rows=len(frame),
        checks=tuple(results),
        data_sha256=data_sha256,
    )


class _Context:
    def __init__(self, gate, task, truth, cand: _Scored, base: _Scored, frame) -> None:
        self.gate, self.task, self.truth = gate, task, truth
        self.cand, self.base, self.frame = cand, base, frame
        self.positive = gate.positive_label
        if task == "binary":
            classes = list(getattr(cand.model, "classes_", []))
            if self.positive not in classes:
                raise ValueError(
                    f"positive_label {self.positive!r} is not one of the candidate's classes "
                    f"{[c.item() if hasattr(c, 'item') else c for c in classes]}: set "
                    "positive_label in the gate file"
                )

    def values(self, metric: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Truth, candidate values and baseline values, as ``metric`` takes them."""
        spec = METRICS[metric]
        if self.task not in spec.tasks:
            hint = (
                "; for more than two classes use auc_ovr or auc_ovo"
                if metric == "auc" and self.task == "multiclass"
                else ""
            )
            raise ValueError(
                f"{where}.metric: {metric} applies to {' or '.join(spec.tasks)} models, and "
                f"the candidate is a {self.task} model{hint}"
            )
        if spec.needs == "probabilities":
            return self.class_scores()
        if self.task != "binary":
            return self.truth, self.cand.labels, self.base.labels
        truth = (self.truth == self.positive).astype(np.int64)
        if spec.needs == "scores":
            return truth, self.cand.scores(self.positive), self.base.scores(self.positive)
        as_binary = [(s.labels == self.positive).astype(np.int64) for s in (self.cand, self.base)]
        return truth, as_binary[0], as_binary[1]

    def class_scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's class as its index in the candidate's classes, and both models' class
        scores with their columns in that order."""
        mine = list(self.cand.model.classes_)
        theirs = list(self.base.model.classes_)
        order = pd.Index(theirs).get_indexer(mine)
        if len(mine) != len(theirs) or (order < 0).any():
            raise ValueError(
                f"{self.cand.name} predicts the classes {_plain(mine)} and {self.base.name} "
                f"{_plain(theirs)}: class scores compare models of the same classes"
            )
        codes = pd.Index(mine).get_indexer(self.truth)
        if (codes < 0).any():
            unknown = _plain([self.truth[codes < 0][0]])[0]
            raise ValueError(
                f"the label column {self.gate.label!r} holds {unknown!r}, which is not one of "
                f"{self.cand.name}'s classes {_plain(mine)}"
            )
        matrices = [scored.probabilities() for scored in (self.cand, self.base)]
        for scored, matrix in zip((self.cand, self.base), matrices, strict=True):
            if matrix.shape != (len(self.truth), len(mine)):
                raise ValueError(
                    f"{scored.name}'s class scores have shape {matrix.shape}, not one column "
                    f"per class ({len(mine)})"
                )
        return codes, matrices[0], matrices[1][:, order]

    def non_inferiority(self, check: NonInferiorityCheck, where: str) -> CheckResult:
        truth, c, b = self.values(check.metric, where)
        spec = METRICS[check.metric]
        if check.test == "delong":
            test = delong_test(truth, c, b, margin=check.margin, level=check.level)
        elif check.test == "mcnemar":
            test = mcnemar_noninferiority_test(truth, c, b, margin=check.margin, level=check.level)
        else:
            test = paired_bootstrap_test(
                truth,
                c,
                b,
                spec.function,
                higher_is_better=spec.higher_is_better,
                margin=check.margin,
                level=check.level,
                n_boot=check.n_boot,
                seed=check.seed,
                name=check.metric,
            )
        return CheckResult(
            kind="non_inferiority",
            name=f"{check.metric} non-inferiority ({check.test})",
            passed=test.non_inferior,
            reason=_why(test),
            statistic=test.statistic,
            p_value=test.p_value,
            threshold=check.margin,
            evidence=test.to_dict(),
        )

    def floor(self, check: FloorCheck, where: str) -> CheckResult:
        truth, c, b = self.values(check.metric, where)
        function = METRICS[check.metric].function
        value, baseline = float(function(truth, c)), float(function(truth, b))
        low_ok = check.min is None or value >= check.min
        high_ok = check.max is None or value <= check.max
        threshold = check.min if not low_ok or check.max is None else check.max
        if low_ok and high_ok:
            reason = f"{check.metric} {value:.4g} meets {check.describe()}"
        elif not low_ok:
            reason = f"{check.metric} {value:.4g} is below the floor {check.min:g}"
        else:
            reason = f"{check.metric} {value:.4g} is above the ceiling {check.max:g}"
        return CheckResult(
            kind="floor",
            name=check.describe(),
            passed=low_ok and high_ok,
            reason=reason,
            statistic=value,
            threshold=threshold,
            evidence={
                "metric": check.metric,
                "candidate": value,
                "baseline": baseline,
                "min": check.min,
                "max": check.max,
            },
        )

    def robustness(
        self, check: RobustnessCheck, where: str, candidate_signature, baseline_signature
    ) -> CheckResult:
        if self.task == "regression":
            raise ValueError(
                f"{where}: a robustness check counts rows still classified right; this is a "
                "regressor"
            )
        return robustness_result(
            check,
            (self.cand.model, self.base.model),
            (list(self.cand.X.columns), list(self.base.X.columns)),
            (candidate_signature, baseline_signature),
            (self.cand.name, self.base.name),
            self.frame,
            self.truth,
            where,
        )

    def slices(self, check: SlicesCheck, where: str) -> CheckResult:
        if self.task == "regression":
            raise ValueError(f"{where}: slices compare classifiers' errors; this is a regressor")
        comparison = compare_models(
            self.truth,
            self.base.labels,
            self.cand.labels,
            self.frame[list(check.tags)],
            intersections=check.intersections,
            alpha=check.level,
            min_size=check.min_size,
        )
        rows = [row for row in comparison.rows if row.tag != "(all)"]
        worse = [
            row
            for row in rows
            if row.verdict == "worse"
            and row.error_rate_after - row.error_rate_before > check.margin
        ]
        worse.sort(key=lambda r: r.p_adjusted)
        if worse:
            named = ", ".join(
                f"{r.tag} = {r.value} (error rate {r.error_rate_before:.2%} -> "
                f"{r.error_rate_after:.2%}, adjusted p {r.p_adjusted:.2g})"
                for r in worse[:3]
            )
            more = f" and {len(worse) - 3} more" if len(worse) > 3 else ""
            reason = f"{len(worse)} slice(s) worse by more than {check.margin:g}: {named}{more}"
        else:
            reason = (
                f"no slice of {len(rows)} significantly worse by more than {check.margin:g} "
                f"(Benjamini-Hochberg at {check.level:g})"
            )
        headline = worse[0] if worse else min(rows, key=lambda r: r.p_adjusted, default=None)
        return CheckResult(
            kind="slices",
            name=check.describe(),
            passed=not worse,
            reason=reason,
            statistic=None
            if headline is None
            else headline.error_rate_after - headline.error_rate_before,
            p_value=None if headline is None else headline.p_adjusted,
            threshold=check.margin,
            evidence={
                "slices_tested": len(rows),
                "failing": [r.to_dict() for r in worse[:_MAX_ROWS]],
                "worse_within_margin": [
                    r.to_dict() for r in rows if r.verdict == "worse" and r not in worse
                ][:_MAX_ROWS],
            },
        )

    def human_level(self, check: HumanLevelCheck, where: str) -> CheckResult:
        if self.task == "regression":
            raise ValueError(f"{where}: human_level compares labels; this is a regressor")
        people = self.frame[check.human_labels]
        if people.isna().any():
            raise ValueError(
                f"{where}.human_labels: column {check.human_labels!r} has missing labels"
            )
        test = mcnemar_noninferiority_test(
            self.truth, self.cand.labels, people.to_numpy(), margin=check.margin, level=check.level
        )
        return CheckResult(
            kind="human_level",
            name=check.describe(),
            passed=test.non_inferior,
            reason=_why(test).replace(" vs ", " vs people's ", 1),
            statistic=test.statistic,
            p_value=test.p_value,
            threshold=check.margin,
            evidence=test.to_dict(),
        )

    def calibration(self, check: CalibrationCheck, where: str) -> CheckResult:
        if self.task != "binary":
            raise ValueError(f"{where}: calibration applies to binary classifiers, not {self.task}")
        if not hasattr(self.cand.model, "predict_proba"):
            raise ValueError(
                f"{where}: {self.cand.name} has no predict_proba, so no probabilities to calibrate"
            )
        truth = (self.truth == self.positive).astype(np.int64)
        mine = expected_calibration_error(truth, self.cand.scores(self.positive), bins=check.bins)
        passed = mine.ece <= check.max_ece
        verdict = "within" if passed else "above"
        return CheckResult(
            kind="calibration",
            name=check.describe(),
            passed=passed,
            reason=f"expected calibration error {mine.ece:.4g} is {verdict} the bound "
            f"{check.max_ece:g} (largest bin gap {mine.max_gap:.4g})",
            statistic=mine.ece,
            threshold=check.max_ece,
            evidence=mine.to_dict(),
        )

    def fairness(self, check: FairnessCheck, where: str) -> CheckResult:
        sensitive = self.frame[list(check.sensitive)]
        options = {"task": self.task, "pos_label": self.positive}
        # The candidate's disparities only: the fairness analysis (Fairlearn's MetricFrame)
        # is most of a gate's time, and the bounds are absolute, not relative to the baseline.
        mine = fairness(self.truth, self.cand.labels, sensitive, **options)
        rows = []
        for side, bounds in (("max", check.max), ("min", check.min)):
            for name, bound in bounds.items():
                for column in check.sensitive:
                    try:
                        value = mine.summary_value(column, name)
                    except KeyError:
                        raise ValueError(
                            f"{where}.{side}.{name}: not a disparity the fairness analysis "
                            f"computes for a {self.task} model"
                        ) from None
                    if value is None:
                        ok, slack = False, -np.inf
                    else:
                        slack = bound - value if side == "max" else value - bound
                        ok = slack >= 0
                    rows.append(
                        {
                            "sensitive": column,
                            "disparity": name,
                            "bound": bound,
                            "side": side,
                            "candidate": value,
                            "passed": ok,
                            "slack": slack,
                        }
                    )
        worst = min(rows, key=lambda r: r["slack"])
        failing = [r for r in rows if not r["passed"]]
        if failing:
            reason = "; ".join(
                f"{r['disparity']} across {r['sensitive']} is "
                + ("undefined" if r["candidate"] is None else f"{r['candidate']:.4g}")
                + f", bound {'<=' if r['side'] == 'max' else '>='} {r['bound']:g}"
                for r in failing
            )
        else:
            reason = (
                f"every disparity within its bound (closest: {worst['disparity']} across "
                f"{worst['sensitive']} {worst['candidate']:.4g}, bound {worst['bound']:g})"
            )
        return CheckResult(
            kind="fairness",
            name=check.describe(),
            passed=not failing,
            reason=reason,
            statistic=worst["candidate"],
            threshold=worst["bound"],
            evidence={"disparities": [{k: v for k, v in r.items() if k != "slack"} for r in rows]},
        )


def _budget(check: BudgetCheck, cost: Mapping[str, float] | None, where: str) -> CheckResult:
    if cost is None:
        raise ValueError(
            f"{where}: a budget is measured on a registered version in a fresh process; run "
            "the gate through opsloop.registry.release_gate.run_gate (opsloop gate run)"
        )
    measured = {
        "size": (cost["size_bytes"] / 1e6, check.max_size_mb, "MB", "artifact"),
        "p99": (cost["p99_ms"], check.max_p99_ms, "ms", "p99 single-row predict"),
        "peak": (cost["peak_rss_mb"], check.max_peak_mb, "MB", "peak memory"),
    }
    over = [
        f"{label} {value:.4g} {unit} is above {bound:g} {unit}"
        for value, bound, unit, label in measured.values()
        if bound is not None and value > bound
    ]
    within = [
        f"{label} {value:.4g} {unit}"
        for value, bound, unit, label in measured.values()
        if bound is not None and value <= bound
    ]
    # The headline is the measure nearest its bound (the worst one over it, if any).
    first = max((v for v in measured.values() if v[1] is not None), key=lambda v: v[0] / v[1])
    return CheckResult(
        kind="budget",
        name=check.describe(),
        passed=not over,
        reason="; ".join(over) if over else "within budget: " + ", ".join(within),
        statistic=first[0],
        threshold=first[1],
        evidence={
            **cost,
            "max_size_mb": check.max_size_mb,
            "max_p99_ms": check.max_p99_ms,
            "max_peak_mb": check.max_peak_mb,
        },
    )


def _why(test: PairedTest) -> str:
    """One line: the two values, the interval of the difference and the decision."""
    change = "drop" if test.higher_is_better else "rise"
    interval = f"{1 - 2 * test.level:.0%} interval [{test.ci_low:.4g}, {test.ci_high:.4g}]"
    values = (
        f"{test.metric} {test.candidate:.4g} vs {test.baseline:.4g} "
        f"(difference {test.difference:+.4g}, {interval})"
    )
    if test.non_inferior:
        return f"{values}: not worse by {test.margin:g} or more (p = {test.p_value:.3g})"
    return (
        f"{values}: a {change} of {test.margin:g} or more is not ruled out "
        f"(p = {test.p_value:.3g} >= {test.level:g})"
    )


def _plain(values: list[Any]) -> list[Any]:
    """Class labels as plain Python values (numpy scalars print as ``np.int64(1)``)."""
    return [value.item() if hasattr(value, "item") else value for value in values]


def _columns_of(check: Any) -> tuple[str, ...]:
    if isinstance(check, SlicesCheck):
        return check.tags
    if isinstance(check, FairnessCheck):
        return check.sensitive
    if isinstance(check, HumanLevelCheck):
        return (check.human_labels,)
    return ()


def model_inputs(
    model: Any,
    signature: Mapping[str, Any] | None,
    frame: pd.DataFrame,
    label: str,
    data_name: str,
    model_name: str,
) -> list[str]:
    """The columns of ``frame`` the model reads: its ``feature_names_in_``, else its
    signature's input columns, else every column but the label.

    >>> import pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> model_inputs(DummyClassifier(), None, pd.DataFrame({"a": [1], "y": [0]}), "y", "d", "m")
    ['a']
    """
    if not hasattr(model, "predict"):
        raise TypeError(f"{model_name} has no predict method ({type(model).__name__})")
    inputs = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if not inputs:
        schema = input_schema(signature)
        inputs = list(schema.names) if schema is not None else []
    if not inputs:
        inputs = [c for c in frame.columns if c != label]
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"{data_name} lacks {model_name}'s input columns {missing[:5]}")
    return inputs


def _task(candidate: Any, baseline: Any, candidate_name: str, baseline_name: str) -> str:
    tasks = []
    for model in (candidate, baseline):
        if is_classifier(model):
            tasks.append("binary" if len(getattr(model, "classes_", ())) == 2 else "multiclass")
        else:
            tasks.append("regression")
    if tasks[0] != tasks[1]:
        raise ValueError(
            f"{candidate_name} is a {tasks[0]} model and {baseline_name} a {tasks[1]} model: "
            "a gate compares models of one task"
        )
    return tasks[0]
