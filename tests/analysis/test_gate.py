"""Release gates on scikit-learn's breast cancer data (569 tumours, 30 measurements)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.analysis.gate import GateSpecError, evaluate_gate, load_gate, parse_gate
from opsloop.analysis.paired_tests import delong_test
from opsloop.data.schema import infer_schema

FEATURES = list(load_breast_cancer().feature_names)
WEAK = ["mean symmetry", "mean fractal dimension"]


def _logistic(C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


@pytest.fixture(scope="module")
def cancer():
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = pd.qcut(frame["mean radius"], 3, labels=["small", "medium", "large"]).astype(
        str
    )
    # a sensitive attribute nobody measured: drawn at random, so a fair model treats both alike
    frame["group"] = np.random.default_rng(0).choice(["a", "b"], len(frame))
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["target"])
    baseline = _logistic().fit(train[FEATURES], train["target"])
    good = _logistic(C=0.3).fit(train[FEATURES], train["target"])
    weak = _logistic().fit(train[WEAK], train["target"])
    shuffled = _logistic().fit(
        train[FEATURES], np.random.default_rng(1).permutation(train["target"].to_numpy())
    )
    signature = {"inputs": infer_schema(train[FEATURES]).to_dict(), "output": "int"}
    return {
        "train": train,
        "test": test.reset_index(drop=True),
        "baseline": baseline,
        "good": good,
        "weak": weak,
        "shuffled": shuffled,
        "signature": signature,
    }


GATE = {
    "version": 1,
    "name": "cancer",
    "label": "target",
    "checks": [
        {"kind": "non_inferiority", "metric": "auc", "margin": 0.02, "level": 0.05},
        {"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05},
        {"kind": "floor", "metric": "auc", "min": 0.9},
        {"kind": "slices", "tags": ["size"], "margin": 0.05},
        {
            "kind": "fairness",
            "sensitive": ["group"],
            "max": {"demographic_parity_difference": 0.2},
        },
        {"kind": "data_contract", "ignore": ["out_of_range"]},
    ],
}


def _run(cancer, candidate, gate=GATE, signature=None, frame=None):
    return evaluate_gate(
        parse_gate(gate),
        cancer[candidate],
        cancer["baseline"],
        cancer["test"] if frame is None else frame,
        candidate_signature=signature or cancer["signature"],
        baseline_signature=cancer["signature"],
        candidate_name=candidate,
        baseline_name="baseline",
    )


def test_a_good_candidate_passes_every_check(cancer):
    result = _run(cancer, "good")
    assert result.passed, result.to_frame().to_string()
    assert [c.verdict for c in result.checks] == ["pass"] * 6
    test = cancer["test"]
    auc = result.checks[0]
    reference = delong_test(
        test["target"],
        cancer["good"].predict_proba(test[FEATURES])[:, 1],
        cancer["baseline"].predict_proba(test[FEATURES])[:, 1],
        margin=0.02,
    )
    sklearn_auc = roc_auc_score(test["target"], cancer["good"].predict_proba(test[FEATURES])[:, 1])
    assert auc.evidence["candidate"] == pytest.approx(sklearn_auc, abs=1e-12)
    assert (auc.statistic, auc.p_value) == (reference.statistic, reference.p_value)
    floor = result.checks[2]
    assert floor.statistic == sklearn_auc and floor.threshold == 0.9
    accuracy = result.checks[1].evidence
    assert accuracy["candidate"] == accuracy_score(
        test["target"], cancer["good"].predict(test[FEATURES])
    )
    # JSON-safe all the way down
    assert json.loads(result.to_json())["passed"] is True


def test_a_candidate_on_two_weak_features_fails_naming_the_checks(cancer):
    gate = {**GATE, "checks": GATE["checks"][:4]}
    result = _run(cancer, "weak", gate)
    assert not result.passed
    failed = {c.name: c for c in result.failed()}
    assert "auc non-inferiority (delong)" in failed
    assert "accuracy non-inferiority (mcnemar)" in failed
    assert "auc >= 0.9" in failed
    auc = failed["auc non-inferiority (delong)"]
    assert auc.p_value > 0.05 and auc.evidence["ci_low"] < -0.02
    assert "auc 0.706" in auc.reason and "not ruled out" in auc.reason
    assert "is below the floor 0.9" in failed["auc >= 0.9"].reason
    assert "FAILED" in result.headline() and "auc >= 0.9" in result.headline()


def test_a_candidate_trained_on_shuffled_labels_fails(cancer):
    result = _run(cancer, "shuffled", {**GATE, "checks": GATE["checks"][:1]})
    (auc,) = result.checks
    assert not auc.passed
    assert auc.evidence["candidate"] < 0.8 < auc.evidence["baseline"]


class _BrokenOnSlice(ClassifierMixin, BaseEstimator):
    """A fitted model whose answers are flipped on the large tumours."""

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y):
        return self

    @property
    def classes_(self):
        return self.model.classes_

    @property
    def feature_names_in_(self):
        return self.model.feature_names_in_

    def predict(self, X):
        predicted = self.model.predict(X)
        large = X["mean radius"].to_numpy() > 15.0
        return np.where(large, 1 - predicted, predicted)

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def test_a_candidate_worse_on_one_slice_fails_on_that_slice(cancer):
    cancer = {**cancer, "sliced": _BrokenOnSlice(cancer["good"])}
    result = _run(cancer, "sliced", {**GATE, "checks": [GATE["checks"][3]]})
    (slices,) = result.checks
    assert not slices.passed
    failing = slices.evidence["failing"]
    assert [(r["tag"], r["value"]) for r in failing] == [("size", "large")]
    assert "size = large" in slices.reason
    assert failing[0]["broken"] > failing[0]["fixed"]


def test_a_fairness_breach_fails(cancer):
    train = cancer["train"].copy()
    # taught to refuse group b: every b in training is labelled 0
    train.loc[train["group"] == "b", "target"] = 0
    columns = [*FEATURES, "is_b"]
    train["is_b"] = (train["group"] == "b").astype(float)
    test = cancer["test"].copy()
    test["is_b"] = (test["group"] == "b").astype(float)
    unfair = _logistic().fit(train[columns], train["target"])
    cancer = {**cancer, "unfair": unfair}
    result = _run(cancer, "unfair", {**GATE, "checks": [GATE["checks"][4]]}, frame=test)
    (check,) = result.checks
    assert not check.passed
    (row,) = check.evidence["disparities"]
    predicted = unfair.predict(test[columns])
    rates = [predicted[test["group"] == g].mean() for g in ("a", "b")]
    assert row["candidate"] == pytest.approx(abs(rates[0] - rates[1]), abs=1e-12)
    assert row["candidate"] > 0.2 and (row["bound"], row["passed"]) == (0.2, False)
    assert "demographic_parity_difference across group" in check.reason


def test_a_badly_calibrated_candidate_fails_the_calibration_check(cancer):
    from opsloop.analysis.calibration_error import expected_calibration_error

    squashed = _logistic(C=0.001).fit(cancer["train"][FEATURES], cancer["train"]["target"])
    cancer = {**cancer, "squashed": squashed}
    gate = {**GATE, "checks": [{"kind": "calibration", "max_ece": 0.05}]}
    (good,) = _run(cancer, "good", gate).checks
    (bad,) = _run(cancer, "squashed", gate).checks
    test = cancer["test"]
    for check, model in ((good, cancer["good"]), (bad, squashed)):
        probability = model.predict_proba(test[FEATURES])[:, 1]
        assert check.statistic == expected_calibration_error(test["target"], probability).ece
    assert good.passed and good.statistic < 0.05
    assert not bad.passed and bad.statistic > 0.2
    assert "expected calibration error 0.2394 is above the bound 0.05" in bad.reason


def test_human_level_is_a_paired_test_against_a_second_labeller(cancer):
    from opsloop.analysis.paired_tests import mcnemar_noninferiority_test

    test = cancer["test"].copy()
    # a reviewer who gets 8% of the tumours wrong
    wrong = np.random.default_rng(5).random(len(test)) < 0.08
    test["reviewer"] = np.where(wrong, 1 - test["target"], test["target"])
    gate = {
        **GATE,
        "checks": [{"kind": "human_level", "human_labels": "reviewer", "margin": 0.01}],
    }
    (good,) = _run(cancer, "good", gate, frame=test).checks
    (weak,) = _run(cancer, "weak", gate, frame=test).checks
    reference = mcnemar_noninferiority_test(
        test["target"], cancer["good"].predict(test[FEATURES]), test["reviewer"], margin=0.01
    )
    assert good.evidence == reference.to_dict()
    assert good.passed and good.evidence["baseline"] == 1 - wrong.mean()
    assert not weak.passed and f"vs people's {1 - wrong.mean():.4g}" in weak.reason


def test_an_incompatible_signature_fails(cancer):
    schema = infer_schema(cancer["train"][FEATURES]).to_dict()
    schema["columns"]["mean radius"]["type"] = "int"
    schema["columns"]["new score"] = {"type": "float"}
    result = _run(
        cancer,
        "good",
        {**GATE, "checks": [{"kind": "data_contract", "schema": False}]},
        signature={"inputs": schema, "output": "int"},
    )
    (check,) = result.checks
    assert not check.passed
    kinds = [(b["kind"], b["column"]) for b in check.evidence["signature_breaks"]]
    assert kinds == [("narrowed_type", "mean radius"), ("new_required_column", "new score")]
    assert "narrowed_type of mean radius (float -> int)" in check.reason


def test_evaluation_data_that_breaks_the_schema_fails(cancer):
    test = cancer["test"].copy()
    test["mean radius"] = test["mean radius"] * 100  # beyond the margin of the range
    gate = {**GATE, "checks": [{"kind": "data_contract", "signature": False}]}
    (before,) = _run(cancer, "good", gate).checks
    (after,) = _run(cancer, "good", gate, frame=test).checks
    found = [(a["column"], a["kind"]) for a in after.evidence["anomalies"]]
    assert ("mean radius", "out_of_range") in found
    assert ("mean radius", "out_of_range") not in [
        (a["column"], a["kind"]) for a in before.evidence["anomalies"]
    ]
    assert not after.passed and "mean radius: out_of_range in 228 rows" in after.reason


def test_the_same_model_as_candidate_and_baseline_passes_with_a_margin(cancer):
    result = evaluate_gate(
        parse_gate(GATE),
        cancer["baseline"],
        cancer["baseline"],
        cancer["test"],
        candidate_signature=cancer["signature"],
        baseline_signature=cancer["signature"],
    )
    assert result.passed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"label": "y", "checks": [{"kind": "floor"}]}, "gate: version is missing"),
        ({"version": 0, "label": "y", "checks": []}, "gate: version must be an integer >= 1"),
        ({"version": 1, "checks": [{"kind": "floor"}]}, "gate: label is missing"),
        ({"version": 1, "label": "y", "checks": {}}, "gate: checks must be a list"),
        ({"version": 1, "label": "y", "checks": [], "extra": 1}, "gate: unknown field 'extra'"),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "speed"}]},
            "gate: checks[0].kind: 'speed' is not one of non_inferiority, floor",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "floor", "metric": "auroc"}]},
            "gate: checks[0].metric: unknown metric 'auroc'",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "non_inferiority", "metric": "auc", "test": "mcnemar"}],
            },
            "gate: checks[0].test: 'mcnemar' does not judge auc; use delong or bootstrap",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [
                    {"kind": "floor", "metric": "auc", "min": 0.7},
                    {"kind": "non_inferiority", "metric": "auc", "margin": -0.1},
                ],
            },
            "gate: checks[1].margin must be a number >= 0, got -0.1",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "non_inferiority", "metric": "auc", "level": 0.5}],
            },
            "gate: checks[0].level must be a number strictly between 0 and 0.5, got 0.5",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "non_inferiority", "metric": "auc", "n_boot": 500}],
            },
            "gate: checks[0].n_boot applies to test: bootstrap only",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "slices", "tags": "g", "alpha": 1}]},
            "gate: checks[0]: unknown field 'alpha'; allowed: kind, tags",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "fairness", "sensitive": ["g"], "max": {"parity": 0.1}}],
            },
            "gate: checks[0].max: 'parity' is not a disparity ending in _difference",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "budget", "rows": 5}]},
            "gate: checks[0]: give max_size_mb, max_p99_ms or max_peak_mb",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "budget", "max_p99_ms": 0}]},
            "gate: checks[0].max_p99_ms must be a number > 0, got 0",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "calibration", "bins": 5}]},
            "gate: checks[0].max_ece is missing",
        ),
        (
            {"version": 1, "label": "y", "checks": [{"kind": "calibration", "max_ece": 2}]},
            "gate: checks[0].max_ece must be a number in [0, 1], got 2",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "data_contract", "ignore": ["drift"]}],
            },
            "gate: checks[0].ignore: 'drift' is not an anomaly kind",
        ),
        (
            {
                "version": 1,
                "label": "y",
                "checks": [{"kind": "floor", "metric": "auc", "min": 2, "max": 1}],
            },
            "gate: checks[0].min 2 is above max 1",
        ),
    ],
)
def test_a_bad_gate_names_the_field_and_the_rule(document, message):
    with pytest.raises(GateSpecError) as raised:
        parse_gate(document)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_gate_file_is_read_safely_and_hashed(tmp_path):
    import hashlib

    path = tmp_path / "gate.yaml"
    text = "version: 2\nlabel: target\nchecks:\n  - kind: floor\n    metric: auc\n    min: 0.8\n"
    path.write_text(text)
    gate = load_gate(path)
    assert gate.version == 2 and gate.sha256 == hashlib.sha256(text.encode()).hexdigest()
    path.write_text("version: 1\nlabel: !!python/object/apply:os.system ['true']\nchecks: []\n")
    with pytest.raises(GateSpecError, match=r"gate\.yaml: not valid YAML"):
        load_gate(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(GateSpecError, match=r"gate\.yaml: expected a mapping of fields, got list"):
        load_gate(path)


def test_a_budget_needs_a_measured_version(cancer):
    gate = {**GATE, "checks": [{"kind": "budget", "max_p99_ms": 5}]}
    with pytest.raises(ValueError, match=r"checks\[0\]: a budget is measured on a registered"):
        _run(cancer, "good", gate)


def test_a_metric_that_does_not_fit_the_task_names_the_check(cancer):
    gate = {**GATE, "checks": [{"kind": "floor", "metric": "mae", "max": 1.0}]}
    with pytest.raises(ValueError, match=r"checks\[0\]\.metric: mae applies to regression"):
        _run(cancer, "good", gate)


def test_the_documented_gate_file_parses():
    import textwrap

    import yaml

    from opsloop.analysis.gate import spec

    block = spec.__doc__.split(".. code-block:: yaml")[1].split(">>>")[0]
    gate = parse_gate(yaml.safe_load(textwrap.dedent(block)))
    assert [type(c).__name__ for c in gate.checks] == [
        "NonInferiorityCheck",
        "NonInferiorityCheck",
        "FloorCheck",
        "SlicesCheck",
        "FairnessCheck",
        "HumanLevelCheck",
        "BudgetCheck",
        "CalibrationCheck",
        "DataContractCheck",
        "RobustnessCheck",
        "PrivacyCheck",
        "PrivacyCheck",
    ]
    assert (gate.version, gate.baseline, gate.checks[1].n_boot) == (3, "champion", 2000)


def test_the_gate_file_in_the_readme_parses():
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Release gates", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.DOTALL).group(1)
    gate = parse_gate(yaml.safe_load(block))
    assert [type(c).__name__ for c in gate.checks] == [
        "NonInferiorityCheck",
        "FloorCheck",
        "SlicesCheck",
        "FairnessCheck",
        "HumanLevelCheck",
        "CalibrationCheck",
        "DataContractCheck",
    ]
