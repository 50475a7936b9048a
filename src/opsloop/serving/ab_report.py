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

The database aggregates ``reward`` and ``label`` outcomes, one row per arm whatever the
history's length; ``correct``, and labels it cannot take as numbers (text, infinities),
are read row by row.

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
import sqlalchemy as sa

from opsloop.analysis.ab_test import (
    ABTestResult,
    compare_mean_summaries,
    compare_means,
    compare_proportions,
)
from opsloop.errors import InvalidArgumentError
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.prediction_feedback import read_feedback
from opsloop.store import tables
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


def _answered(db: Database, deployment: str) -> dict[str, int]:
    events = tables.prediction_events
    query = (
        sa.select(events.c.variant, sa.func.count(sa.distinct(events.c.request_id)))
        .where(
            events.c.deployment == deployment,
            events.c.role == "primary",
            # A request whose model failed is recorded too, with its error: not an answer.
            events.c.error.is_(None),
        )
        .group_by(events.c.variant)
    )
    with db.read() as connection:
        return {variant: int(count) for variant, count in connection.execute(query)}


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
        return pd.Series(
            [
                math.nan if label is None else float(label == guess)
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


# The largest finite double: a value beyond it (or PostgreSQL's NaN, which sorts above every
# number) is not finite.
_LARGEST = float(np.finfo(np.float64).max)


def _label_number(label: sa.ColumnElement) -> sa.ColumnElement:
    """A feedback's label (JSON text, as json.dumps writes it) as the number the frame's path
    makes of it; null for no label, JSON null or NaN (the frame drops them), for infinities
    and for labels that are not numbers (both counted apart)."""
    return sa.case(
        (label.in_(("null", "NaN", "Infinity", "-Infinity")), sa.null()),
        (label == "true", 1.0),
        (label == "false", 0.0),
        (sa.func.substr(label, 1, 1).in_(('"', "[", "{")), sa.null()),
        else_=sa.cast(label, sa.Float(precision=53)),
    )


def _outcomes_in_sql(
    db: Database, deployment: str, outcome: str | None, live: list[str]
) -> tuple[str, dict[str, _ArmOutcomes]] | None:
    """What :func:`_outcomes_from_frame` gives for the outcome ``reward`` or ``label``,
    aggregated by the database (one row per arm, whatever the feedback's length), or
    ``None`` where the frame's path must answer: a label that is not a number (the frame's
    path names it in its error) or an outcome that is not finite.

    The newest feedback of a request stands, as in the frame (where two answers share a
    request id, the newest answer's variant counts). Per arm the database sums the deviations from
    the arm's mean and their squares (the corrected two-pass form, stable where the
    spread is small against the mean), and counts the outcomes that are not 0 or 1.
    """
    f, e = tables.prediction_feedback, tables.prediction_events
    # Per request its newest feedback and its newest answer (a client may reuse an id).
    newest = (
        sa.select(sa.func.max(f.c.id).label("feedback"), sa.func.max(e.c.id).label("answer"))
        .select_from(
            f.join(
                e,
                sa.and_(
                    e.c.request_id == f.c.request_id,
                    e.c.deployment == f.c.deployment,
                    e.c.role == "primary",
                ),
            )
        )
        .where(f.c.deployment == deployment)
        .group_by(f.c.request_id)
        .subquery("newest")
    )
    label = f.c.label_json
    kinds = ("reward", "label") if outcome is None else (outcome,)
    vals = sa.select(
        e.c.variant,
        f.c.reward.label("reward"),
        _label_number(label).label("label"),
        sa.case((f.c.reward.is_not(None), 1), else_=0).label("has_reward"),
        sa.case((sa.func.substr(label, 1, 1).in_(('"', "[", "{")), 1), else_=0).label("not_number"),
        sa.case((label.in_(("Infinity", "-Infinity")), 1), else_=0).label("infinite_label"),
    ).select_from(newest.join(f, f.c.id == newest.c.feedback).join(e, e.c.id == newest.c.answer))
    vals_cte = vals.cte("vals")
    centre = (
        sa.select(
            vals_cte.c.variant,
            *(sa.func.avg(vals_cte.c[kind]).label(f"{kind}_centre") for kind in kinds),
        )
        .group_by(vals_cte.c.variant)
        .cte("centre")
    )
    columns: list[sa.ColumnElement] = [
        vals_cte.c.variant,
        sa.func.sum(vals_cte.c.has_reward).label("has_reward"),
        sa.func.sum(vals_cte.c.not_number).label("not_number"),
        sa.func.sum(vals_cte.c.infinite_label).label("infinite_label"),
    ]
    for kind in kinds:
        value, mid = vals_cte.c[kind], sa.func.max(centre.c[f"{kind}_centre"])
        deviation = value - centre.c[f"{kind}_centre"]
        columns += [
            sa.func.count(value).label(f"{kind}_n"),
            mid.label(f"{kind}_centre"),
            sa.func.sum(deviation).label(f"{kind}_deviation"),
            sa.func.sum(deviation * deviation).label(f"{kind}_square"),
            sa.func.sum(sa.case((value == 1.0, 1), else_=0)).label(f"{kind}_ones"),
            sa.func.sum(sa.case((value.is_(None), 0), (value.in_((0.0, 1.0)), 0), else_=1)).label(
                f"{kind}_other"
            ),
            sa.func.sum(sa.case((value > _LARGEST, 1), (value < -_LARGEST, 1), else_=0)).label(
                f"{kind}_infinite"
            ),
        ]
    query = (
        sa.select(*columns)
        .select_from(vals_cte.join(centre, vals_cte.c.variant == centre.c.variant))
        .group_by(vals_cte.c.variant)
    )
    with db.read() as connection:
        rows = {row.variant: row._mapping for row in connection.execute(query)}
    if outcome is None:
        outcome = "reward" if any(int(r["has_reward"]) > 0 for r in rows.values()) else "label"
    if outcome == "label" and any(int(r["not_number"]) > 0 for r in rows.values()):
        return None
    arms = {}
    for name in live:
        row = rows.get(name)
        if row is not None and (
            int(row[f"{outcome}_infinite"]) or (outcome == "label" and int(row["infinite_label"]))
        ):
            return None
        arms[name] = _summarised(row, outcome)
    return outcome, arms


def _summarised(row: Any, outcome: str) -> _ArmOutcomes:
    """An arm's outcomes from its row of :func:`_outcomes_in_sql` (``None``: no feedback)."""
    n = 0 if row is None else int(row[f"{outcome}_n"])
    if n == 0:
        return _ArmOutcomes(0, math.nan, math.nan, 0)
    if int(row[f"{outcome}_other"]) == 0:
        # 0/1 outcomes: the mean is the count of ones over n, as exact as numpy's sum of
        # them; the squared deviations from it are k of (1 - mean)² and n - k of mean².
        ones = int(row[f"{outcome}_ones"])
        mean = ones / n
        square = ones * (1.0 - mean) ** 2 + (n - ones) * mean**2
        return _ArmOutcomes(n, mean, square / (n - 1) if n > 1 else math.nan, ones)
    centre = float(row[f"{outcome}_centre"])
    deviation, square = float(row[f"{outcome}_deviation"]), float(row[f"{outcome}_square"])
    # The corrected two-pass form: the first pass's rounding in the centre is taken back
    # by the deviations' sum (Chan, Golub and LeVeque 1983).
    mean = centre + deviation / n
    var = max(square - deviation * deviation / n, 0.0) / (n - 1) if n > 1 else math.nan
    return _ArmOutcomes(n, mean, var, None)


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
    # ``correct`` compares a label with a prediction as Python's == does (True == 1 == 1.0,
    # lists and dicts deep, NaN never equal), which SQL's JSON functions do not on both
    # databases (and PostgreSQL refuses the NaN json.dumps writes): its rows are read.
    found = None if outcome == "correct" else _outcomes_in_sql(db, deployment, outcome, names)
    outcome, by_arm = found or _outcomes_from_frame(db, deployment, outcome, names)
    kind = "proportion" if all(arm.successes is not None for arm in by_arm.values()) else "mean"
    answered = _answered(db, deployment)
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
