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
