import json

import numpy as np
import pandas as pd
import pytest

from opsloop.analysis.assertions import (
    Assertion,
    AssertionRuleError,
    apply_assertions,
    parse_assertions,
)
from opsloop.datasets import credit

BUSINESS_RULES = [
    {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"},
    {"name": "large loan", "when": "loan > 50000", "action": "review"},
    {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"},
    {"name": "odd purpose", "when": "purpose in ['boat', 'art']", "action": "flag"},
]


def _applications():
    X = pd.DataFrame(
        {
            "age": [16, 30, 45, 17, 60, 33],
            "loan": [1000.0, 60000.0, 2000.0, 70000.0, 500.0, 50000.0],
            "purpose": ["car", "boat", "house", "car", "art", "car"],
        }
    )
    probabilities = np.array([0.9, 0.2, 0.5, 0.8, 0.1, 0.55])
    predictions = np.array(["approve", "approve", "approve", "approve", "decline", "approve"])
    return X, predictions, probabilities


def test_business_rules_by_hand():
    X, predictions, probabilities = _applications()
    result = apply_assertions(BUSINESS_RULES, X, predictions, probabilities)
    # Row 0: minor -> override. Row 1: large loan (review) and odd purpose (flag) -> review.
    # Row 2: probability 0.5 -> review. Row 3: minor and large loan -> review, value decline.
    # Row 4: odd purpose -> flag. Row 5: loan 50000 is not above 50000; 0.55 is unsure.
    assert result.actions.tolist() == ["override", "review", "review", "review", "flag", "review"]
    assert result.predictions.tolist() == [
        "decline",
        "approve",
        "approve",
        "decline",
        "decline",
        "approve",
    ]
    assert result.counts == {"minor": 2, "large loan": 2, "unsure": 2, "odd purpose": 2}
    assert result.fired.loc[3].tolist() == [True, True, False, False]
    assert result.to_frame()["rules"][1] == ["large loan", "odd purpose"]
    assert result.to_dict() == {
        "rules": {"minor": 2, "large loan": 2, "unsure": 2, "odd purpose": 2},
        "actions": {"flag": 1, "override": 1, "review": 4},
        "rows": 6,
    }


def test_dict_form_gives_the_same_result_as_text():
    X, predictions, probabilities = _applications()
    structured = [
        {
            "name": "minor",
            "when": {"field": "age", "op": "<", "value": 18},
            "action": "override",
            "value": "decline",
        },
        {
            "name": "large loan",
            "when": {"field": "loan", "op": ">", "value": 50000},
            "action": "review",
        },
        {
            "name": "unsure",
            "when": {"field": "probability", "op": "between", "value": [0.45, 0.55]},
            "action": "review",
        },
        {
            "name": "odd purpose",
            "when": {"field": "purpose", "op": "in", "value": ["boat", "art"]},
            "action": "flag",
        },
    ]
    text = apply_assertions(BUSINESS_RULES, X, predictions, probabilities)
    data = apply_assertions(structured, X, predictions, probabilities)
    assert data.actions.tolist() == text.actions.tolist()
    assert data.predictions.tolist() == text.predictions.tolist()
    assert data.counts == text.counts
    parsed = parse_assertions(structured)
    assert [Assertion.from_dict(json.loads(json.dumps(r.to_dict()))) for r in parsed] == parsed


def test_against_pandas_masks_on_generated_applications():
    df = credit(5000, seed=3)
    predictions = np.where(df["default"].to_numpy() == 1, "decline", "approve")
    rng = np.random.default_rng(3)
    probabilities = rng.random(len(df))
    rules = [
        {
            "name": "a",
            "when": "age < 25 and (loan_amount > 3 * salary or not device == 'mobile')",
            "action": "flag",
        },
        {
            "name": "b",
            "when": "region not in ['rural', 'coast'] and house_years >= 10",
            "action": "flag",
        },
        {"name": "c", "when": "prediction == 'approve' and probability < 0.1", "action": "review"},
        {
            "name": "d",
            "when": {
                "any": [
                    {"field": "commission", "op": ">", "value": 5000},
                    {"not": {"field": "gender", "op": "==", "value": "female"}},
                ]
            },
            "action": "flag",
        },
        {"name": "e", "when": "-salary / 12 + commission > -1000", "action": "flag"},
    ]
    result = apply_assertions(rules, df, predictions, probabilities)
    device = df["device"].astype(str)
    expected = {
        "a": (df.age < 25) & ((df.loan_amount > 3 * df.salary) | ~(device == "mobile")),
        "b": ~df.region.astype(str).isin(["rural", "coast"]) & (df.house_years >= 10),
        "c": (predictions == "approve") & (probabilities < 0.1),
        "d": (df.commission > 5000) | ~(df.gender.astype(str) == "female"),
        "e": -df.salary / 12 + df.commission > -1000,
    }
    for name, mask in expected.items():
        np.testing.assert_array_equal(result.fired[name].to_numpy(), np.asarray(mask), err_msg=name)
        assert 0 < result.counts[name] < len(df), name


def test_missing_values_make_a_comparison_false():
    X = pd.DataFrame(
        {
            "age": pd.array([16, None, 40], dtype="Int64"),
            "score": [np.nan, 0.2, 0.9],
            "city": ["x", None, "y"],
        }
    )
    rules = [
        {"name": "young", "when": "age < 18", "action": "flag"},
        {"name": "not young", "when": "age >= 18", "action": "flag"},
        {"name": "other city", "when": "city != 'x'", "action": "flag"},
        {"name": "low", "when": "score < 0.5", "action": "flag"},
    ]
    fired = apply_assertions(rules, X, [0, 0, 0]).fired
    assert fired["young"].tolist() == [True, False, False]
    assert fired["not young"].tolist() == [False, False, True]
    assert fired["other city"].tolist() == [False, False, True]
    assert fired["low"].tolist() == [False, True, False]


def test_first_override_wins_and_review_outranks_it():
    X = pd.DataFrame({"x": [1, 2, 3]})
    rules = [
        {"name": "one", "when": "x >= 2", "action": "override", "value": "A"},
        {"name": "two", "when": "x >= 1", "action": "override", "value": "B"},
        {"name": "three", "when": "x == 3", "action": "review"},
    ]
    result = apply_assertions(rules, X, ["p", "p", "p"])
    assert result.predictions.tolist() == ["B", "A", "A"]
    assert result.actions.tolist() == ["override", "override", "review"]


def test_backticks_booleans_and_negative_lists():
    X = pd.DataFrame({"monthly income": [100.0, 5000.0], "vip": [True, False], "t": [-2, 3]})
    rules = [
        {"name": "r1", "when": "`monthly income` < 1000 and vip == true", "action": "flag"},
        {"name": "r2", "when": "t in [-2, 7]", "action": "flag"},
    ]
    result = apply_assertions(rules, X, [1, 1])
    assert result.counts == {"r1": 1, "r2": 1}
    assert result.fired["r2"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "r", "when": "__import__('os').system('true')", "action": "flag"},
            "rule 'r': unexpected character '.' at position 16",
        ),
        (
            {"name": "r", "when": "open('x') == 1", "action": "flag"},
            r"rule 'r': unexpected '\(' at position 4",
        ),
        ({"name": "r", "when": "age < ", "action": "flag"}, "rule 'r': unexpected end"),
        (
            {"name": "r", "when": "age < 18;", "action": "flag"},
            "rule 'r': unexpected character ';' at position 8",
        ),
        ({"name": "r", "when": "age < 18", "action": "deny"}, "action must be one of"),
        ({"name": "r", "when": "age < 18", "action": "override"}, "'override' needs a 'value'"),
        (
            {"name": "r", "when": {"field": "age", "op": "~", "value": 1}, "action": "flag"},
            "rule 'r': field 'age': op must be one of",
        ),
        (
            {"name": "r", "when": {"field": "age", "op": "between", "value": 3}, "action": "flag"},
            "rule 'r': field 'age': 'between' needs",
        ),
        (
            {"name": "r", "when": "age", "action": "flag"},
            "rule 'r': 'and', 'or' and 'not' join conditions",
        ),
        (
            {"name": "r", "when": "agee < 18", "action": "flag"},
            r"rule 'r': unknown field 'agee'; fields are \['age', 'city', 'prediction'\]",
        ),
        (
            {"name": "r", "when": "city > 3", "action": "flag"},
            "rule 'r': field 'city' cannot be compared with '>'",
        ),
        (
            {"name": "r", "when": "age < 18", "action": "flag", "severity": 2},
            r"rule 'r': unknown keys \['severity'\]",
        ),
        # Python refuses int() of 4,300 digits or more: a 500 over HTTP before.
        (
            {"name": "r", "when": "age < " + "9" * 9999, "action": "flag"},
            r"rule 'r': a number has at most 400 characters at position 6 of 'age < 999.*"
            r"\(10,005 characters\)$",
        ),
    ],
)
def test_bad_rules_name_the_rule_and_field(rule, message):
    X = pd.DataFrame({"age": [1, 2], "city": ["a", "b"]})
    with pytest.raises(AssertionRuleError, match=message):
        apply_assertions([rule], X, [0, 0])


def test_duplicate_names_and_misshapen_inputs_are_refused():
    rule = {"name": "r", "when": "age < 18", "action": "flag"}
    with pytest.raises(AssertionRuleError, match=r"repeated: \['r'\]"):
        parse_assertions([rule, rule])
    X = pd.DataFrame({"age": [1, 2]})
    with pytest.raises(ValueError, match="predictions must have one value per row of X"):
        apply_assertions([rule], X, [0])
    with pytest.raises(ValueError, match="probabilities must have one value per row"):
        apply_assertions([rule], X, [0, 1], probabilities=[[0.1, 0.9], [0.2, 0.8]])
