"""The A/B report of a deployment: per arm, what it answered and the outcomes it earned, and
each arm against the primary with the difference, its interval, a p-value and the sample
size each arm needs for the effect observed.

The arms are the deployment's live variants (every role but ``shadow``), the primary first
as arm A. A request counts for the arm that answered it (its ``primary``-role prediction
event); its outcome is the feedback recorded for its request id, the newest when there are
several (:mod:`.prediction_feedback`). The outcome is one of

* ``reward``: the feedback's reward;
* ``label``: the feedback's label, which must be a number (a 0/1 conversion, a revenue);
* ``correct``: whether the label equals the arm's prediction (1 or 0).

A feedback without a label (or a NaN one) gives no ``label`` nor ``correct`` outcome. Where
a client reused a request id, its newest answer's variant and prediction count.

The report reads per-arm sums kept as of the rows it saw last and brought up to date with
the rows written since (:mod:`.ab_arm_sums`): after a deployment's first report, its cost
grows with the feedback and answers that arrived in between, not with the history. Labels
that are not numbers (text) and outcomes that are not finite are read row by row, the way
the report names them in its error.

Outcomes that are all 0 or 1 are compared as proportions, others as means, by
:mod:`opsloop.analysis.ab_test` (pooled z-test and Newcombe's interval for proportions,
Welch for means; each checked there against statsmodels).

:meth:`opsloop.serving.Deployments.ab_report` gives it by the deployment's name, locally or
through a server.

>>> from opsloop.store import Database
>>> from opsloop.serving.deployment_records import Deployment, Variant
>>> api = Deployment("api", "ab", "full_automation", (Variant("a", "m", version=1),), None,
...                  0, "ana", {"a": 1})
>>> ab_report(Database("sqlite://"), api, outcome="clicks")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: outcome must be one of reward, label, correct, got 'clicks'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.ab_test import (
    ABTestResult,
    compare_mean_summaries,
    compare_means,
    compare_proportions,
)
from opsloop.errors import InvalidArgumentError
from opsloop.serving.ab_arm_sums import ArmSums, OutcomeSums, arm_sums
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.prediction_feedback import read_feedback
from opsloop.store.database import Database

#: What an outcome can be (see the module).
OUTCOMES = ("reward", "label", "correct")


@dataclass(frozen=True)
class ArmSummary:
    """One arm: the variant and the version it served, the requests it answered, the
    outcomes recorded for them and their mean (a rate for 0/1 outcomes) and sample
    standard deviation (``nan`` below two outcomes)."""

    variant: str
    role: str
    model: str
    version: int | None
    requests: int
    outcomes: int
    mean: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        """The arm as plain values."""
        return asdict(self)


@dataclass(frozen=True)
class ABReport:
    """An A/B report (see the module): the deployment and its strategy, the outcome and
    how it is compared (``proportion`` or ``mean``), the arms, each other arm against arm A
    (``comparisons`` maps its variant name to the result), and ``notes`` on comparisons
    that could not be made.

    >>> ABReport("api", "ab", "reward", "proportion", (), {}, ()).to_dict()["arms"]
    []
    """

    deployment: str
    strategy: str
    outcome: str
    kind: str
    arms: tuple[ArmSummary, ...]
    comparisons: dict[str, ABTestResult]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (``inf`` and ``nan`` stay floats)."""
        return {
            "deployment": self.deployment,
            "strategy": self.strategy,
            "outcome": self.outcome,
            "kind": self.kind,
            "arms": [arm.to_dict() for arm in self.arms],
            "comparisons": {name: result.to_dict() for name, result in self.comparisons.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ABReport:
        """The report :meth:`to_dict` wrote.

        >>> report = ABReport("api", "ab", "reward", "mean", (ArmSummary(
        ...     "a", "primary", "m", 1, 3, 1, 0.5, math.nan),), {}, ("a note",))
        >>> ABReport.from_dict(report.to_dict()).arms[0].outcomes
        1
        """
        return cls(
            document["deployment"],
            document["strategy"],
            document["outcome"],
            document["kind"],
            tuple(ArmSummary(**arm) for arm in document["arms"]),
            {name: ABTestResult(**result) for name, result in document["comparisons"].items()},
            tuple(document["notes"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per arm: its counts and mean, and against arm A the difference, the
        interval, the p-value and the sample size per arm needed."""
        rows = []
        for arm in self.arms:
            result = self.comparisons.get(arm.variant)
            rows.append(
                {
                    **arm.to_dict(),
                    "difference": None if result is None else result.difference,
                    "ci_low": None if result is None else result.ci_low,
                    "ci_high": None if result is None else result.ci_high,
                    "p_value": None if result is None else result.p_value,
                    "required_per_arm": None if result is None else result.required_per_arm,
                }
            )
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class _ArmOutcomes:
    """What an arm's outcomes come to: their count, mean and sample variance (``nan`` where
    undefined), how many are 1 (where all are 0 or 1, else ``None``), and the values
    themselves where they were read (the frame's path)."""

    n: int
    mean: float
    var: float
    successes: int | None
    values: np.ndarray | None = None


def _outcome_values(feedback: pd.DataFrame, outcome: str) -> pd.Series:
    """Each feedback row's outcome as a number (NaN where the row has none)."""
    if outcome == "reward":
        return pd.to_numeric(feedback["reward"], errors="coerce").astype(float)
    labels = feedback["label"]
    if outcome == "correct":
        predicted = [
            None if output is None else output.get("predictions", [None])[0]
            for output in feedback["output"]
        ]
        # A feedback without a label (or with a NaN one) has no such outcome; in a column
        # of numbers pandas holds the missing label as NaN.
        return pd.Series(
            [
                math.nan
                if label is None or (isinstance(label, float) and math.isnan(label))
                else float(label == guess)
                for label, guess in zip(labels, predicted, strict=True)
            ],
            index=feedback.index,
        )
    numbers = []
    for label in labels:
        if label is None:
            numbers.append(math.nan)
        elif isinstance(label, bool | int | float):
            numbers.append(float(label))
        else:
            raise InvalidArgumentError(
                f"outcome 'label': labels must be numbers to compare arms, got {label!r}; "
                "use outcome 'correct' to compare how often each arm was right"
            )
    return pd.Series(numbers, index=feedback.index, dtype=float)


def _outcomes_from_frame(
    db: Database, deployment: str, outcome: str | None, live: list[str]
) -> tuple[str, dict[str, _ArmOutcomes]]:
    """The outcome (``outcome``, or the default) and each live arm's outcomes, from every
    feedback row of the deployment read into a frame."""
    feedback = read_feedback(db, deployment)
    # The newest outcome of a request stands (a corrected label replaces the first).
    feedback = feedback.drop_duplicates("request_id", keep="last").reset_index(drop=True)
    if outcome is None:
        outcome = "reward" if feedback["reward"].notna().any() else "label"
    values = _outcome_values(feedback, outcome)
    arms = {}
    for name in live:
        x = values[(feedback["variant"] == name).to_numpy()].dropna().to_numpy()
        arms[name] = _ArmOutcomes(
            n=len(x),
            mean=float(x.mean()) if len(x) else math.nan,
            var=float(x.var(ddof=1)) if len(x) > 1 else math.nan,
            successes=int(x.sum()) if np.isin(x, (0.0, 1.0)).all() else None,
            values=x,
        )
    return outcome, arms


def _outcomes_from_sums(
    sums: ArmSums, outcome: str | None, live: list[str]
) -> tuple[str, dict[str, _ArmOutcomes]] | None:
    """What :func:`_outcomes_from_frame` gives, from the arms' sums
    (:mod:`.ab_arm_sums`), or ``None`` where the frame's path must answer: a label that is
    not a number (the frame's path names it in its error) or an outcome that is not finite."""
    if outcome is None:
        has_reward = any(arm.n for arm in sums.outcomes["reward"].values())
        outcome = "reward" if has_reward else "label"
    if outcome == "label" and sums.not_number:
        return None
    arms = {}
    for name in live:
        arm = sums.outcomes[outcome].get(name, OutcomeSums())
        if arm.infinite:
            return None
        successes = arm.ones if arm.other == 0 else None
        arms[name] = _ArmOutcomes(arm.n, arm.mean(), arm.var(), successes)
    return outcome, arms


def ab_report(
    db: Database,
    definition: Deployment,
    *,
    outcome: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ABReport:
    """The A/B report of the deployment ``definition`` (as defined now, see the module);
    ``outcome`` defaults to ``reward`` when any feedback carries one, else ``label``.
    ``alpha`` sets the test's level and the interval's confidence (``1 - alpha``),
    ``power`` the sample size's.

    >>> from opsloop.store import Database
    >>> from opsloop.serving.deployment_records import Deployment, Variant
    >>> one = Deployment("api", "single", "full_automation", (Variant("a", "m", version=1),),
    ...                  None, 0, "ana", {"a": 1})
    >>> ab_report(Database("sqlite://"), one)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: deployment 'api' has 1 live variant(s); an A/B report...
    """
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidArgumentError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    deployment = definition.name
    live = sorted(
        (v for v in definition.variants if v.role != "shadow"), key=lambda v: v.role != "primary"
    )
    if len(live) < 2:
        raise InvalidArgumentError(
            f"deployment {deployment!r} has {len(live)} live variant(s); an A/B report "
            "compares two or more"
        )
    names = [variant.name for variant in live]
    sums = arm_sums(db, deployment)
    found = _outcomes_from_sums(sums, outcome, names)
    outcome, by_arm = found or _outcomes_from_frame(db, deployment, outcome, names)
    kind = "proportion" if all(arm.successes is not None for arm in by_arm.values()) else "mean"
    answered = sums.requests
    arms = tuple(
        ArmSummary(
            variant=variant.name,
            role=variant.role,
            model=variant.model,
            version=definition.serving.get(variant.name),
            requests=answered.get(variant.name, 0),
            outcomes=by_arm[variant.name].n,
            mean=by_arm[variant.name].mean,
            std=math.sqrt(by_arm[variant.name].var) if by_arm[variant.name].n > 1 else math.nan,
        )
        for variant in live
    )
    comparisons, notes = {}, []
    first = arms[0]
    least = 1 if kind == "proportion" else 2
    for arm in arms[1:]:
        if min(first.outcomes, arm.outcomes) < least:
            notes.append(
                f"{arm.variant} against {first.variant}: needs at least {least} outcome(s) "
                f"per arm, got {first.outcomes} and {arm.outcomes}"
            )
            continue
        a, b = by_arm[first.variant], by_arm[arm.variant]
        if kind == "proportion":
            assert a.successes is not None and b.successes is not None
            comparisons[arm.variant] = compare_proportions(
                a.successes, a.n, b.successes, b.n, alpha=alpha, power=power
            )
        elif a.values is not None and b.values is not None:
            comparisons[arm.variant] = compare_means(a.values, b.values, alpha=alpha, power=power)
        else:
            comparisons[arm.variant] = compare_mean_summaries(
                a.n, a.mean, a.var, b.n, b.mean, b.var, alpha=alpha, power=power
            )
    return ABReport(deployment, definition.strategy, outcome, kind, arms, comparisons, tuple(notes))
