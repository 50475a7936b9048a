"""Policy rules with actions and options: parsed by rule, refused with the option named."""

from __future__ import annotations

import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.policy import Policy


def test_actions_take_their_options_with_defaults():
    rule = Policy.parse(
        "when concept_drift >= 1 for 2 windows then "
        "retrain(train=pkg.training:fit, reference_share=0.25, min_rows=80)"
    )
    assert (rule.signal, rule.windows, rule.action) == ("concept_drift", 2, "retrain")
    assert dict(rule.options) == {
        "train": "pkg.training:fit",
        "reference_share": 0.25,
        "holdout": 0.3,
        "min_rows": 80,
        "window": "since_change_point",
        "since": "",
        "neighbours": 5,
        "tolerance": 3.0,
    }
    hook = Policy.parse("error_rate > 0.1 → webhook(url=https://h.example/x?a=1, retries=0)")
    assert (hook.option("url"), hook.option("retries"), hook.option("timeout_s")) == (
        "https://h.example/x?a=1",
        0,
        5.0,
    )
    assert Policy.parse("error_rate > 0.1 -> rollback").option("to") == ""
    assert Policy.parse("error_rate > 0.1 -> rollback(to=champion)").option("to") == "champion"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("error_rate > 0.1 -> webhook", "webhook needs the option url=..."),
        ("error_rate > 0.1 -> webhook(url=ftp://x)", "webhook option url: an http://"),
        ("error_rate > 0.1 -> webhook(url=http://x, timeout_s=600)", "seconds in (0, 60]"),
        ("error_rate > 0.1 -> rollback(to=a b)", "rollback option to: an alias name"),
        ("error_rate > 0.1 -> rollback(version=3)", "rollback takes key=value options (to)"),
        ("error_rate > 0.1 -> alert(x=1)", "alert takes key=value options (none)"),
        ("error_rate > 0.1 -> retrain(train=os.system)", "a Python entry point"),
        ("error_rate > 0.1 -> retrain(train=m:f, reference_share=2)", "a share in [0, 1]"),
        ("error_rate > 0.1 -> retrain(train=m:f, min_rows=-1)", "a whole number >= 0"),
    ],
)
def test_a_bad_option_is_refused_naming_it(text, message):
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert message in str(refused.value)


FORMS = (
    "a rule reads '<signal> <op> <number> [for N windows] -> <action>[(key=value, ...)]' "
    "or 'when <signal> <op> <number> [for N windows] then <action>[(...)]'"
)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("drift_share > abc -> alert", "expected a number after '>', found 'abc'"),
        ("drift_share 0.3 -> alert", "expected an operator (>, >=, <, <=, ==, !=) after "
         "'drift_share', found '0.3'"),
        ("drift_share > 0.3 for 2 -> alert", "expected 'for N windows' (N whole) after '0.3', "
         "found 'for'"),
        ("drift_share > 0.3 alert", "expected '->' (or 'then') before the action after '0.3', "
         "found 'alert'"),
        ("when drift_share > 0.3 then", "expected an action name after 'then', found the end "
         "of the rule"),
        ("drift_share > 0.3 -> alert(x=1) now", "expected the end of the rule (options in one "
         "pair of parentheses) after '(x=1)', found 'now'"),
        ("> 0.3 -> alert", "expected a signal name, found '>'"),
    ],
)  # fmt: skip
def test_a_malformed_rule_says_what_part_failed_and_both_forms(text, what):
    with pytest.raises(InvalidArgumentError) as raised:
        Policy.parse(text)
    assert str(raised.value) == f"policy {text!r}: {what}; {FORMS}"
    # Both forms it shows are rules.
    assert Policy.parse("drift_share > 0.3 for 2 windows -> alert").windows == 2
    assert Policy.parse("when drift_share > 0.3 for 2 windows then alert").windows == 2
