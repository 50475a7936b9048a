"""What a gate run found: every check with its numbers, its verdict and why.

>>> check = CheckResult("floor", "auc >= 0.75", False, "auc 0.71 is below 0.75",
...                     statistic=0.71, threshold=0.75)
>>> result = GateResult("gate", 1, None, "m v2", "m@champion", "eval.csv", 100, (check,))
>>> result.passed, [c.name for c in result.failed()]
(False, ['auc >= 0.75'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from opsloop.analysis.gate.checks import NOT_AVAILABLE


@dataclass(frozen=True)
class CheckResult:
    """One check: its kind, a name that says what it asked, the verdict, one line of why,
    and its evidence. ``statistic``, ``p_value`` and ``threshold`` are the headline numbers
    (``None`` where a check has none); ``evidence`` holds every number it used.

    >>> CheckResult("floor", "auc >= 0.75", True, "auc 0.80", statistic=0.8).to_dict()["passed"]
    True
    """

    kind: str
    name: str
    passed: bool
    reason: str
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``"pass"`` or ``"fail"``.

        >>> CheckResult("floor", "auc >= 0.75", False, "low").verdict
        'fail'
        """
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> CheckResult("floor", "x", False, "low").to_dict()["verdict"]
        'fail'
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "verdict": self.verdict,
            "passed": self.passed,
            "reason": self.reason,
            "statistic": _plain(self.statistic),
            "p_value": _plain(self.p_value),
            "threshold": _plain(self.threshold),
            "evidence": _plain(self.evidence),
        }


@dataclass(frozen=True)
class GateResult:
    """A gate run of a candidate against a baseline on one evaluation data set.

    ``gate_sha256`` is the hash of the gate file; ``not_checked`` names what the gate
    cannot check yet (:data:`~opsloop.analysis.gate.spec.NOT_AVAILABLE`).

    >>> GateResult("g", 1, None, "c", "b", "d", 10, ()).to_dict()["passed"]
    True
    """

    gate: str
    gate_version: int
    gate_sha256: str | None
    candidate: str
    baseline: str
    data: str
    n_rows: int
    checks: tuple[CheckResult, ...]
    data_sha256: str | None = None
    not_checked: tuple[str, ...] = NOT_AVAILABLE

    @property
    def passed(self) -> bool:
        """Whether every check passed.

        >>> GateResult("g", 1, None, "c", "b", "d", 10, (CheckResult("x", "y", True, ""),)).passed
        True
        """
        return all(check.passed for check in self.checks)

    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that failed.

        >>> GateResult("g", 1, None, "c", "b", "d", 1, (CheckResult("x", "y", False, ""),)
        ...           ).failed()[0].name
        'y'
        """
        return tuple(check for check in self.checks if not check.passed)

    def headline(self) -> str:
        """One line: the verdict and what failed.

        >>> GateResult("g", 1, None, "m v2", "m@champion", "d", 1, ()).headline()
        'gate g v1: PASSED, m v2 against m@champion on d (1 rows, 0 checks)'
        """
        verdict = "PASSED" if self.passed else "FAILED"
        line = (
            f"gate {self.gate} v{self.gate_version}: {verdict}, {self.candidate} against "
            f"{self.baseline} on {self.data} ({self.n_rows} rows, {len(self.checks)} checks)"
        )
        failed = self.failed()
        if failed:
            line += "; failed: " + "; ".join(check.name for check in failed)
        return line

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> sorted(GateResult("g", 1, None, "c", "b", "d", 1, ()).to_dict())[:4]
        ['baseline', 'candidate', 'checks', 'data']
        """
        return {
            "gate": self.gate,
            "gate_version": self.gate_version,
            "gate_sha256": self.gate_sha256,
            "passed": self.passed,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "data": self.data,
            "data_sha256": self.data_sha256,
            "n_rows": self.n_rows,
            "checks": [check.to_dict() for check in self.checks],
            "not_checked": list(self.not_checked),
        }

    def to_json(self) -> str:
        """The result as indented JSON text.

        >>> GateResult("g", 1, None, "c", "b", "d", 1, ()).to_json()[:14]
        '{\\n  "gate": "g'
        """
        return json.dumps(self.to_dict(), indent=2)

    def to_frame(self) -> pd.DataFrame:
        """One row per check: kind, name, verdict, statistic, p-value, threshold, reason.

        >>> GateResult("g", 1, None, "c", "b", "d", 1, (CheckResult("x", "y", True, "ok"),)
        ...           ).to_frame()["verdict"].tolist()
        ['pass']
        """
        columns = ["kind", "name", "verdict", "statistic", "p_value", "threshold", "reason"]
        rows = [{c: check.to_dict()[c] for c in columns} for check in self.checks]
        return pd.DataFrame(rows, columns=columns)


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, ``nan`` as ``None`` and ``±inf`` as
    text (JSON has no infinities)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value
