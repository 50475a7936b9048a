"""Policy rules with actions and options: parsed by rule, refused with the option named."""

from __future__ import annotations

import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.policy import (
    MAX_PROMOTE_WINDOWS,
    MAX_RULE_LENGTH,
    MAX_RULE_WINDOWS,
    Policy,
)
from opsloop.monitoring.policy_streak import MAX_LISTED_HELD


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
        (
            "error_rate > 0.1 -> webhook(url=http://x, retries=6)",
            "retries: a whole number from 0 to 5, got '6'",
        ),
        ("error_rate > 0.1 -> webhook(url=http://x, retries=1000000000)", "from 0 to 5"),
        ("error_rate > 0.1 -> webhook(url=http://x, retries=-1)", "from 0 to 5"),
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


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        ("0", "'0'"),
        ("00", "'00'"),
        ("10001", "'10001'"),
        ("000010001", "'000010001'"),
        ("99999999999999999999", "'99999999999999999999'"),
        # Past the digits Python converts (4,300), within the longest rule: not converted.
        ("9" * 950, repr("9" * 24 + "…")),
    ],
)
def test_the_windows_of_a_rule_are_bounded(count, shown):
    text = f"drift_share > 0.3 for {count} windows -> alert"
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert str(refused.value) == (
        f"policy {text!r}: for N windows: N must be between 1 and 10000, got {shown}"
    )


@pytest.mark.parametrize("count", ["-1", "1.5", "1e3", "+2", "٣"])
def test_a_windows_count_that_is_no_whole_number_names_the_rule(count):
    text = f"drift_share > 0.3 for {count} windows -> alert"
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert str(refused.value) == (
        f"policy {text!r}: for N windows: N must be a whole number between 1 and 10000, "
        f"got {count!r}; {FORMS}"
    )


def test_the_bounds_themselves_are_rules():
    assert MAX_RULE_WINDOWS == 10_000
    for count in ("1", "01", "10000", "0010000"):
        rule = Policy.parse(f"drift_share > 0.3 for {count} windows -> alert")
        assert rule.windows == int(count)
    # A promote rule compares each window of its streak with the primary's: as many as a
    # streak lists.
    assert MAX_PROMOTE_WINDOWS == MAX_LISTED_HELD == 100
    assert Policy.parse("task_metric > 0.9 for 100 windows -> promote").windows == 100
    text = "task_metric > 0.9 for 101 windows -> promote"
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert str(refused.value) == (
        f"policy {text!r}: for N windows: a promote rule's N must be between 1 and 100 (each "
        "window of its streak is compared with the primary's, and a streak lists the latest "
        "100), got 101"
    )


def test_a_rule_of_thousands_of_digits_is_refused_by_its_length():
    """A 10,000-digit count, or threshold, is refused by the rule's length before any
    number is read; a threshold past a float's range is refused by name."""
    for text in (
        f"drift_share > 0.3 for {'1' * 10_000} windows -> alert",
        f"drift_share > {'1' * 10_000} x alert",
        "drift_share > 0.3 -> alert" + " " * 10_000 + "x",
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            Policy.parse(text)
        assert str(refused.value) == (
            f"policy {text[:24] + '…'!r}: at most {MAX_RULE_LENGTH} characters, got {len(text)}"
        )
    assert Policy.parse("requests > " + "9" * 300 + " -> alert").threshold == float("9" * 300)
    for number in ("9" * 400, "1e999"):
        text = f"requests > {number} -> alert"
        with pytest.raises(InvalidArgumentError) as refused:
            Policy.parse(text)
        shown = number if len(number) <= 24 else number[:24] + "…"
        assert str(refused.value) == (
            f"policy {text!r}: the number {shown!r} is out of range: a finite number"
        )


@pytest.mark.parametrize(
    "number",
    [
        "٠٫٥",  # Arabic-Indic zero, decimal separator, five
        "٠.٥",  # Arabic-Indic digits with a full stop, which float() reads as 0.5
        "０.５",  # full-width digits
        "१",  # Devanagari one
        "1٥",  # an ASCII digit then another script's
        "-٥e٣",
    ],
)
def test_a_threshold_in_digits_other_than_0_to_9_is_refused_as_a_count_is(number):
    text = f"drift_share > {number} -> alert"
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert str(refused.value) == (
        f"policy {text!r}: the number after '>': written in the digits 0-9, got {number!r}; {FORMS}"
    )
    # The same number in 0-9 is a rule; a count in these digits is refused alike.
    assert Policy.parse("drift_share > 0.5 -> alert").threshold == 0.5
    with pytest.raises(InvalidArgumentError, match="for N windows: N must be a whole number"):
        Policy.parse("drift_share > 0.5 for ٣ windows -> alert")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("min_rows=٣", "retrain option min_rows: a whole number >= 0 in the digits 0-9, got '٣'"),
        ("holdout=０.５", "retrain option holdout: a fraction in (0, 1) in the digits 0-9, "
         "got '０.５'"),
        ("min_rows=1__000", "retrain option min_rows: a whole number >= 0, got '1__000'"),
        ("reference_share=nan", "retrain option reference_share: a share in [0, 1], got 'nan'"),
    ],
)  # fmt: skip
def test_an_option_number_is_written_in_0_to_9_too(option, message):
    text = f"error_rate > 0.1 -> retrain(train=m:f, {option})"
    with pytest.raises(InvalidArgumentError) as refused:
        Policy.parse(text)
    assert str(refused.value) == f"policy {text!r}: {message}"
    rule = Policy.parse("error_rate > 0.1 -> retrain(train=m:f, holdout=.25, min_rows=+3)")
    assert (rule.option("holdout"), rule.option("min_rows")) == (0.25, 3)
    # Underscores between digits were always read, and stored policies keep parsing.
    rule = Policy.parse("error_rate > 0.1 -> retrain(train=m:f, holdout=0.2_5, min_rows=1_000)")
    assert (rule.option("holdout"), rule.option("min_rows")) == (0.25, 1000)
