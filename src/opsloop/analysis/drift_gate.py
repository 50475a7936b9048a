r"""A canary gate on drift: the candidate's inputs against the primary's, looked at often.

The rows one arm of a canary answered are compared with the other arm's, column by column
(:func:`opsloop.data.drift.compare`: the two-sample Kolmogorov-Smirnov test for numbers,
chi-square for categories, p-values adjusted by Holm's method over the columns). When the
routing sends each arm the same traffic the two samples come from one distribution; a
candidate whose traffic differs (a segment routed to it by key, a client sending it other
inputs) drifts from the primary's.

A fixed-horizon test read after every request would raise false alarms far above its
level, so the gate looks on a schedule and spends its level over the looks: look
:math:`k = 0, 1, 2, \dots` happens once the candidate has answered
:math:`\text{min\_rows} \cdot 2^k` rows, at level :math:`\alpha_k = \alpha / 2^{k+1}`. The
levels sum to :math:`\alpha`, so the chance that a candidate drawn from the primary's
distribution is ever failed is at most ``alpha`` however long the gate runs (the union
bound; a look skipped, because no one asked between two doublings, spends nothing). A look
judges every row seen so far, so the gate keeps its power as rows accumulate.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> primary = pd.DataFrame({"x": rng.normal(size=400)})
>>> gate = DriftGate(min_rows=50)
>>> gate.look(pd.DataFrame({"x": rng.normal(size=40)}), primary)["verdict"]
'continue'
>>> d = gate.look(pd.DataFrame({"x": rng.normal(1.0, size=120)}), primary)
>>> d["verdict"], d["look"], d["fail_threshold"], d["feature"], d["n_candidate"]
('fail', 1, 0.0125, 'x', 120)
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from opsloop.data.drift import compare
from opsloop.errors import InvalidArgumentError


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


class DriftGate:
    """Fails a candidate whose inputs drift from the primary's (see the module).

    Parameters
    ----------
    alpha
        Bound on the chance of ever failing a candidate whose inputs follow the primary's
        distribution, spent over the looks.
    min_rows
        The candidate's rows at the first look; look ``k`` comes at ``min_rows * 2**k``.

    >>> DriftGate(alpha=1.5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: alpha must lie strictly between 0 and 1, got 1.5
    """

    test = "drift_spending"

    def __init__(self, *, alpha: float = 0.05, min_rows: int = 50) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise InvalidArgumentError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
        if isinstance(min_rows, bool) or not isinstance(min_rows, int | float):
            raise InvalidArgumentError(f"min_rows must be an integer >= 2, got {min_rows!r}")
        if min_rows != int(min_rows) or min_rows < 2:
            raise InvalidArgumentError(f"min_rows must be an integer >= 2, got {min_rows!r}")
        self.alpha = float(alpha)
        self.min_rows = int(min_rows)
        self.looks = -1  # the last look's index (-1: none yet)
        self.verdict = "continue"
        self.last: dict[str, Any] | None = None

    def level(self, look: int) -> float:
        """The level spent at look ``look``: ``alpha / 2**(look + 1)``.

        >>> DriftGate(alpha=0.05).level(2)
        0.00625
        """
        return self.alpha / 2.0 ** (look + 1)

    def due(self, n_candidate: int) -> int | None:
        """The look that ``n_candidate`` rows open, or ``None`` when none is due (too few
        rows, or that look was taken).

        >>> gate = DriftGate(min_rows=50)
        >>> gate.due(49), gate.due(50), gate.due(399)
        (None, 0, 2)
        """
        if n_candidate < self.min_rows or self.verdict != "continue":
            return None
        look = math.floor(math.log2(n_candidate / self.min_rows))
        # Guard the float log at exact powers of two.
        while self.min_rows * 2 ** (look + 1) <= n_candidate:
            look += 1
        while look > 0 and self.min_rows * 2**look > n_candidate:
            look -= 1
        return look if look > self.looks else None

    def look(self, candidate: pd.DataFrame, primary: pd.DataFrame) -> dict[str, Any]:
        """Judge the candidate's rows against the primary's when a look is due; the
        decision (see :meth:`decision`).

        >>> DriftGate().look(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [1.0]}))["look"]
        """
        look = self.due(len(candidate))
        if look is None or len(primary) < 2:
            return self.decision()
        level = self.level(look)
        result = compare(primary, candidate, alpha=level, plots=False)
        self.looks = look
        if not result.compared:
            return self.decision()
        features = {
            c.column: {
                "test": c.test,
                "statistic": _finite(c.statistic),
                "p_value": _finite(c.p_value),
                "p_adjusted": _finite(c.p_adjusted),
                "drifted": bool(c.drifted),
            }
            for c in result.columns
        }
        worst = min(
            result.columns,
            key=lambda c: math.inf if c.p_adjusted is None else float(c.p_adjusted),
        )
        self.last = {
            "look": look,
            "fail_threshold": level,
            "feature": worst.column,
            "statistic": _finite(worst.statistic),
            "p_value": _finite(worst.p_adjusted),
            "n_candidate": len(candidate),
            "n_primary": len(primary),
            "features": features,
        }
        if result.drifted:
            self.verdict = "fail"
        return self.decision()

    def decision(self) -> dict[str, Any]:
        """The verdict with its evidence: the last look's index and level
        (``fail_threshold``: the adjusted p-value at or below which it fails), the feature
        with the smallest adjusted p-value, its ``statistic`` and ``p_value``, the rows of
        each arm and every feature's test.

        >>> DriftGate().decision()["verdict"]
        'continue'
        """
        last = self.last or {}
        return {
            "verdict": self.verdict,
            "test": self.test,
            "look": last.get("look"),
            "fail_threshold": last.get("fail_threshold", self.level(0)),
            "feature": last.get("feature"),
            "statistic": last.get("statistic"),
            "p_value": last.get("p_value"),
            "n_candidate": last.get("n_candidate", 0),
            "n_primary": last.get("n_primary", 0),
            "features": last.get("features", {}),
        }

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> DriftGate(min_rows=80).get_params()
        {'alpha': 0.05, 'min_rows': 80}
        """
        return {"alpha": self.alpha, "min_rows": self.min_rows}

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-ready values (what the store keeps).

        >>> DriftGate().to_dict()["state"]
        {'looks': -1, 'verdict': 'continue', 'last': None}
        """
        return {
            "test": self.test,
            "params": self.get_params(),
            "state": {"looks": self.looks, "verdict": self.verdict, "last": self.last},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftGate:
        """The gate ``to_dict`` wrote.

        >>> gate = DriftGate(min_rows=10)
        >>> gate.looks = 2
        >>> DriftGate.from_dict(gate.to_dict()).due(40)
        >>> DriftGate.from_dict(gate.to_dict()).due(80)
        3
        """
        if data.get("test") != cls.test:
            raise InvalidArgumentError(f"test must be {cls.test!r}, got {data.get('test')!r}")
        gate = cls(**data["params"])
        for name, value in data["state"].items():
            setattr(gate, name, value)
        return gate
