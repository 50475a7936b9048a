"""The degrees of automation: what a request's client gets, and what a person decides.

A deployment's automation level (the article's scale, :data:`~opsloop.serving.
deployment_records.AUTOMATION_LEVELS`), its confidence threshold and its model assertions
(:mod:`.deployment_settings`, :mod:`.runtime_assertions`) decide each request's
**disposition**:

==================== ============================== ============== =====================
level                the model                      the client     the review queue
==================== ============================== ============== =====================
human_only           is not asked                   ``queued``     the request, no model
                                                                   answer shown
shadow               answers into the log only      ``queued``     the request, no model
                                                                   answer shown
ai_assistance        answers                        ``suggestion`` the request with the
                                                    (the answer)   answer: a person decides
partial_automation   answers                        ``answered``,  the request with the
                                                    or ``queued``  answer, when a record's
                                                    below the      confidence is below the
                                                    threshold      threshold
full_automation      answers                        ``answered``   nothing
==================== ============================== ============== =====================

At every level where the model answers, the assertions run on its answer: ``override``
replaces a record's prediction, ``flag`` marks it (the answer names the rules per record),
and ``review`` sends the request to the queue (``queued``, reason ``assertion``) unless a
person decides it anyway. A request is queued whole: one item per request, answered with
one label (a list for several records). The confidence of a record is its highest class
probability; a model without probabilities has none, so under ``partial_automation`` with a
threshold its every answer is queued. The prediction event records the model's own answer
(before overrides), the disposition and the rules' counts; the label a reviewer gives is
the request's feedback (:mod:`.review_queue`).

>>> import pandas as pd
>>> from opsloop.serving.deployment_settings import DeploymentSettings
>>> from opsloop.serving.loaded_variant import VariantAnswer
>>> oversight = Oversight.of("partial_automation", DeploymentSettings("api", 0.8))
>>> answer = VariantAnswer([1, 0], [[0.1, 0.9], [0.7, 0.3]], [0, 1])
>>> decision = oversight.decide(pd.DataFrame({"x": [1, 2]}), answer)
>>> decision.disposition, decision.reason, decision.answer
('queued', 'low_confidence', None)
>>> Oversight.of("full_automation", DeploymentSettings("api", 0.8)).decide(
...     pd.DataFrame({"x": [1, 2]}), answer).disposition
'answered'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from opsloop.analysis.assertions import Assertion, parse_assertions
from opsloop.serving.deployment_records import AUTOMATION_LEVELS
from opsloop.serving.deployment_settings import DeploymentSettings
from opsloop.serving.loaded_variant import VariantAnswer
from opsloop.serving.record_validation import CheckedRecords
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.runtime_assertions import check_answer
from opsloop.serving.serving_metrics import ServingMetrics

#: What a client can get: the answer, the answer as a suggestion, or the news that the
#: request waits for a person.
DISPOSITIONS = ("answered", "suggestion", "queued")


@dataclass(frozen=True)
class Decision:
    """What one request gets: its ``disposition``, the ``answer`` returned (``None`` when
    queued), the ``reason`` it goes to review (``None`` when it does not), the
    ``suggestion`` a reviewer sees, the rules that fired per record and their ``counts``
    (``actions`` names each rule's action)."""

    disposition: str
    answer: VariantAnswer | None
    reason: str | None
    suggestion: dict[str, Any] | None
    rules: list[list[str]]
    counts: dict[str, int]
    actions: dict[str, str]


@dataclass(frozen=True)
class Oversight:
    """A deployment's automation level, confidence threshold and parsed assertion rules.

    >>> Oversight.of("human_only", DeploymentSettings("api")).runs_model
    False
    """

    automation: str
    confidence_threshold: float | None
    rules: tuple[Assertion, ...]

    @classmethod
    def of(cls, automation: str, settings: DeploymentSettings) -> Oversight:
        """The oversight of a deployment at ``automation`` with ``settings``."""
        if automation not in AUTOMATION_LEVELS:
            raise ValueError(f"automation: unknown level {automation!r}")
        return cls(
            automation, settings.confidence_threshold, tuple(parse_assertions(settings.assertions))
        )

    @property
    def runs_model(self) -> bool:
        """Whether the model is asked at all (not under ``human_only``)."""
        return self.automation != "human_only"

    def decide(
        self, frame: CheckedRecords | pd.DataFrame, answer: VariantAnswer | None
    ) -> Decision:
        """The disposition of the request with records ``frame`` (checked) and the model's
        ``answer`` (``None`` under ``human_only``)."""
        n = len(frame)
        if answer is None:
            return Decision("queued", None, self.automation, None, [[] for _ in range(n)], {}, {})
        # Only rules read the records' fields, so only they have the frame built.
        rows = frame.frame if isinstance(frame, CheckedRecords) and self.rules else frame
        checked = check_answer(self.rules, cast(pd.DataFrame, rows), answer)
        served = checked.answer
        shown = served.to_dict()

        def decision(disposition: str, returned, reason, suggestion) -> Decision:
            return Decision(
                disposition,
                returned,
                reason,
                suggestion,
                checked.rules,
                checked.counts,
                checked.actions_of,
            )

        if self.automation == "ai_assistance":
            return decision("suggestion", served, "ai_assistance", shown)
        if self.automation == "shadow":  # the person decides unprompted; the model is logged
            return decision("queued", None, "shadow", None)
        if checked.review:
            return decision("queued", None, "assertion", shown)
        if self.automation == "partial_automation" and not self._confident(served):
            return decision("queued", None, "low_confidence", shown)
        return decision("answered", served, None, None)

    def _confident(self, answer: VariantAnswer) -> bool:
        if self.confidence_threshold is None:
            return True
        if answer.probabilities is None:
            return False
        confidence = np.asarray(answer.probabilities, dtype=np.float64).max(axis=1)
        return bool((confidence >= self.confidence_threshold).all())


#: A deployment with no settings: no threshold, no rules, no person in the loop.
FULL_AUTOMATION = Oversight("full_automation", None, ())


def oversee(
    decision: Decision,
    *,
    deployment: str,
    request_id: str,
    records: list[dict[str, Any]],
    queue: ReviewQueue,
    metrics: ServingMetrics,
    generation: int | None = None,
) -> int | None:
    """Act on ``decision`` for the request ``request_id``: count the rules' firings and,
    when a person decides, put the request in the review queue; the item's id (``None``
    when nothing was queued). ``generation`` is that of the definition that answered
    (an item of a retired one goes to its history, see :mod:`.review_queue`).

    >>> from opsloop.store import Database
    >>> queue, metrics = ReviewQueue(Database("sqlite://")), ServingMetrics()
    >>> decision = Oversight.of("human_only", DeploymentSettings("api")).decide(
    ...     pd.DataFrame({"x": [1]}), None)
    >>> oversee(decision, deployment="api", request_id="r1", records=[{"x": 1}],
    ...         queue=queue, metrics=metrics)
    1
    >>> queue.get(1).reason, metrics.review_queued.labels("api", "human_only")._value.get()
    ('human_only', 1.0)
    """
    metrics.fired(deployment, decision.counts, decision.actions)
    if decision.reason is None:
        return None
    item = queue.enqueue(
        deployment,
        records,
        reason=decision.reason,
        request_id=request_id,
        suggestion=decision.suggestion,
        rules=sorted({rule for fired in decision.rules for rule in fired}),
        generation=generation,
    )
    metrics.review_queued.labels(deployment, decision.reason).inc()
    return item.id


__all__ = ["DISPOSITIONS", "FULL_AUTOMATION", "Decision", "Oversight", "oversee"]
