"""Declarative monitoring rules: ``when <signal> <op> <number> [for N windows] then <action>``.

A rule is parsed by a regular expression, never evaluated as code. ``when`` is optional and
``->`` or ``→`` may stand for ``then``; ``for N windows`` (default 1) asks the condition to hold
in N consecutive windows. A window where the signal has no value (no labels yet, a sample
expired) breaks the streak.

Signals (per window, see :mod:`.window_metrics`): ``drift_share``, ``missing_share``,
``out_of_schema_rate``, ``error_rate``, ``task_metric``, ``latency_p50_ms``,
``latency_p95_ms``, ``requests``, ``output_drift_p_value``, ``output_drift_statistic`` and
``error_drift`` (how many times the error-stream detector signalled in the window).

Actions: ``alert`` (record the alert with its evidence). ``rollback``, ``promote``,
``retrain`` and ``webhook`` are not available yet and are refused by name.

>>> rule = Policy.parse("drift_share > 0.3 for 2 windows -> alert")
>>> rule.signal, rule.op, rule.threshold, rule.windows, rule.action
('drift_share', '>', 0.3, 2, 'alert')
>>> rule.holds({"drift_share": 0.5}), rule.holds({"drift_share": None})
(True, False)
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgumentError

SIGNALS = (
    "drift_share",
    "missing_share",
    "out_of_schema_rate",
    "error_rate",
    "task_metric",
    "latency_p50_ms",
    "latency_p95_ms",
    "requests",
    "output_drift_p_value",
    "output_drift_statistic",
    "error_drift",
)
ACTIONS = ("alert",)
#: Actions the rules will name once the monitoring can act on deployments and training.
LATER_ACTIONS = ("rollback", "promote", "retrain", "webhook")
_OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RULE = re.compile(
    r"^\s*(?:when\s+)?(?P<signal>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?:\s+for\s+(?P<windows>\d+)\s+windows?)?\s*(?:->|→|\bthen\b)\s*"
    r"(?P<action>[A-Za-z_]+)\s*$"
)


@dataclass(frozen=True)
class Policy:
    """One parsed rule; ``text`` is the rule as written."""

    signal: str
    op: str
    threshold: float
    windows: int
    action: str
    text: str

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Parse a rule, naming what is wrong when it is not one.

        >>> Policy.parse("error_rate > 0.1 then retrain")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy 'error_rate > 0.1 then retrain': action 'retrain' is not available yet (available: alert)
        >>> Policy.parse("__import__('os') -> alert")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy "__import__('os') -> alert": expected 'when <signal> <op> <number> [for N windows] then <action>'
        """  # noqa: E501 - a doctest's expected output is one line
        if not isinstance(text, str):
            raise InvalidArgumentError(f"policy: a rule as text, got {type(text).__name__}")
        match = _RULE.match(text)
        if match is None:
            raise InvalidArgumentError(
                f"policy {text!r}: expected 'when <signal> <op> <number> [for N windows] "
                "then <action>'"
            )
        signal, action = match.group("signal"), match.group("action")
        if signal not in SIGNALS:
            raise InvalidArgumentError(
                f"policy {text!r}: unknown signal {signal!r} (signals: {', '.join(SIGNALS)})"
            )
        if action in LATER_ACTIONS:
            raise InvalidArgumentError(
                f"policy {text!r}: action {action!r} is not available yet "
                f"(available: {', '.join(ACTIONS)})"
            )
        if action not in ACTIONS:
            raise InvalidArgumentError(
                f"policy {text!r}: unknown action {action!r} (available: {', '.join(ACTIONS)})"
            )
        windows = int(match.group("windows") or 1)
        if windows < 1:
            raise InvalidArgumentError(f"policy {text!r}: 'for N windows' needs N >= 1")
        return cls(
            signal, match.group("op"), float(match.group("threshold")), windows, action, text
        )

    def value(self, metrics: dict[str, Any]) -> float | None:
        """The rule's signal in a window's metrics (``None`` when the window has none).

        >>> Policy.parse("output_drift_p_value < 0.01 -> alert").value(
        ...     {"output_drift": {"p_value": 0.002}})
        0.002
        """
        if self.signal.startswith("output_drift_"):
            output = metrics.get("output_drift")
            return None if output is None else output.get(self.signal.removeprefix("output_drift_"))
        return metrics.get(self.signal)

    def holds(self, metrics: dict[str, Any]) -> bool:
        """Whether the condition holds in a window with these metrics."""
        value = self.value(metrics)
        return value is not None and bool(_OPERATORS[self.op](float(value), self.threshold))
