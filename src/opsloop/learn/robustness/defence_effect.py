"""What a defence changed: each attack's number before and after it, and the clean-accuracy cost.

Every defence of this package (:mod:`~.adversarial_training`, :mod:`~.defensive_distillation`,
:mod:`~.output_defences`, :mod:`~.private_training`) reports one :class:`DefenceEffect`: a
small table of measures, each with its value on the undefended model and on the defended one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def slug(text: str) -> str:
    """``text`` as a metric-name part: lower case, runs of other characters as one ``_``.

    >>> slug("Accuracy under PGD (inf, eps 0.1)")
    'accuracy_under_pgd_inf_eps_0.1'
    """
    return re.sub(r"[^a-z0-9.]+", "_", text.lower()).strip("_")


@dataclass(frozen=True)
class DefenceEffect:
    """One defence's measures before and after, with the settings it ran with.

    ``measures[i]`` is measured as ``before[i]`` on the undefended model and ``after[i]`` on the
    defended one; ``clean_accuracy`` names the measure whose drop is the defence's cost.
    ``note`` says what the numbers do not (a known break of the defence). ``model`` is the
    defended model, for further use.

    >>> effect = DefenceEffect("rounding", (("decimals", 1),), ("clean accuracy",), (0.9,), (0.9,))
    >>> effect.to_frame().to_dict(orient="records")
    [{'measure': 'clean accuracy', 'before': 0.9, 'after': 0.9, 'change': 0.0}]
    >>> effect.metrics()
    {'defence/rounding/clean_accuracy/before': 0.9, 'defence/rounding/clean_accuracy/after': 0.9}
    """

    defence: str
    settings: tuple[tuple[str, Any], ...]
    measures: tuple[str, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]
    clean_accuracy: str = "clean accuracy"
    note: str = ""
    model: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not len(self.measures) == len(self.before) == len(self.after):
            raise ValueError("measures, before and after must have the same length")

    def value(self, measure: str, when: str = "after") -> float:
        """The ``before`` or ``after`` value of ``measure``; a KeyError names an unknown one."""
        if measure not in self.measures:
            raise KeyError(f"{measure!r} is not one of the measures {self.measures}")
        values = self.before if when == "before" else self.after
        return values[self.measures.index(measure)]

    @property
    def cost(self) -> float | None:
        """Clean accuracy lost to the defence (``before - after``); ``None`` if not measured."""
        if self.clean_accuracy not in self.measures:
            return None
        return self.value(self.clean_accuracy, "before") - self.value(self.clean_accuracy)

    def to_frame(self) -> pd.DataFrame:
        """One row per measure: ``measure``, ``before``, ``after``, ``change``."""
        return pd.DataFrame(
            {
                "measure": self.measures,
                "before": self.before,
                "after": self.after,
                "change": [a - b for a, b in zip(self.after, self.before, strict=True)],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the defended model left out)."""
        return {
            "defence": self.defence,
            "settings": dict(self.settings),
            "cost": self.cost,
            "note": self.note,
            "measures": self.to_frame().to_dict(orient="records"),
        }

    def metrics(self) -> dict[str, float]:
        """``defence/<defence>/<measure>/before`` and ``/after``, flat, as a run logs them."""
        out: dict[str, float] = {}
        name = slug(self.defence)
        for measure, before, after in zip(self.measures, self.before, self.after, strict=True):
            out[f"defence/{name}/{slug(measure)}/before"] = before
            out[f"defence/{name}/{slug(measure)}/after"] = after
        return out

    def _repr_html_(self) -> str:
        return f"<p>{self.defence}</p>" + self.to_frame().to_html(index=False)
