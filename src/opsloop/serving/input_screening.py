"""Score every served request with its deployment's input anomaly detector.

A deployment may carry a detector (:mod:`.input_detector_settings`). The runtime reads it
with the definition (so a change is followed as a definition change is) and, for each
answered request, scores its checked records (:class:`~.record_validation.CheckedRecords`)
here: the detector's feature columns are picked out of the request's matrix by positions
computed once per column order, and scored with one matrix product
(:meth:`~opsloop.learn.robustness.portable_detector.PortableInputDetector.score`). A
request is **flagged** when one of its records scores above the detector's threshold; a
record with a null in a feature cannot be scored and is not flagged.

What follows a flagged request:

- ``opsloop_input_screened_total{deployment, variant}`` counts the requests scored and
  ``opsloop_input_flagged_total{deployment, variant}`` those flagged, so the flagged rate
  per variant is their ratio;
- ``opsloop_input_unscored_total{deployment, variant}`` counts the requests it could not
  score because the answering version's records lack one of its features. Every change
  that sets a deployment's versions refuses one its detector cannot score (a definition,
  an alias move, the detector itself), but a rollback is not refused (it is the way back
  from a failing version) and may restore a version from before the detector was set:
  its requests are answered, counted here, and their events carry no detector count;
- its prediction event counts the flagged records under ``assertions["input_detector"]``
  (0 when none was), so monitoring reads the rate from the events;
- a ramping canary with an ``input_detector`` gate counts it for the arm that answered;
- with the action ``review`` (:func:`screened_decision`), the request goes to the review
  queue (reason ``input_anomaly``) instead of being answered, unless a person decides it
  anyway (``human_only``, ``shadow``, ``ai_assistance``).

>>> import numpy as np
>>> from prometheus_client import CollectorRegistry
>>> from opsloop.learn.robustness.portable_detector import PortableInputDetector
>>> from opsloop.serving.input_detector_settings import InputDetectorSetting
>>> from opsloop.serving.record_validation import CheckedRecords
>>> detector = PortableInputDetector(("x",), (0.0,), ((1.0,),), 4.0, 0.05, 19, 19)
>>> screen = InputScreen(InputDetectorSetting("api", detector))
>>> screen.flagged_records(CheckedRecords(("y", "x"), matrix=np.array([[9.0, 1.0], [0.0, 3.0]])))
1
>>> screening = InputScreening(CollectorRegistry())
>>> screening.screen("api", "stable", screen, CheckedRecords(("x",), matrix=np.array([[3.0]])))
1
>>> screening.flagged.labels("api", "stable")._value.get()
1.0
>>> screening.screen("api", "old", screen, CheckedRecords(("y",), matrix=np.array([[3.0]])))
>>> screening.unscored.labels("api", "old")._value.get()
1.0
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from opsloop.serving.automation import Decision
from opsloop.serving.deployment_settings import DETECTOR_COUNT
from opsloop.serving.input_detector_settings import InputDetectorSetting
from opsloop.serving.record_validation import CheckedRecords

#: The key of a prediction event's ``assertions`` that counts the records the detector flagged.
#: No model assertion rule may take this name (:mod:`.deployment_settings`).
EVENT_KEY = DETECTOR_COUNT
#: The review queue's reason for a request sent there by the detector.
REVIEW_REASON = "input_anomaly"


class InputScreen:
    """A deployment's detector and action, ready to score its requests (see the module)."""

    def __init__(self, setting: InputDetectorSetting) -> None:
        if setting.detector is None:
            raise ValueError(f"deployment {setting.deployment!r} has no input detector")
        self.detector = setting.detector
        self.action = setting.action
        self._features = list(setting.detector.features)
        self._columns: dict[tuple[str, ...], Any] = {}

    def _columns_in(self, names: tuple[str, ...]) -> tuple[np.ndarray | None, bool] | None:
        """Where the detector's features are among ``names`` (``None`` when one is absent),
        and whether they are all of ``names`` in order (then no copy picks them)."""
        found = self._columns.get(names, False)
        if found is False:
            index = {name: i for i, name in enumerate(names)}
            found = None
            if all(feature in index for feature in self._features):
                positions = np.array([index[f] for f in self._features], dtype=np.intp)
                found = (positions, list(names) == self._features)
            self._columns[names] = found  # one assignment: threads see all of it or none
        return found

    def flagged_records(self, checked: CheckedRecords) -> int | None:
        """How many of the request's records the detector flags; ``None`` when the
        request's columns lack one of its features (a variant whose signature changed)."""
        columns = self._columns_in(tuple(checked.names))
        if columns is None:
            return None
        if checked.matrix is not None:
            positions, whole = columns
            rows = checked.matrix if whole else checked.matrix.take(positions, axis=1)
        else:
            frame = checked.frame[self._features]
            try:
                rows = frame.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):  # a column the signature allows but holds text
                return None
        # A NaN score (a null in a feature) compares False: such a record is not flagged.
        return int(np.count_nonzero(self.detector.score(rows) > self.detector.threshold))


def screen_for(deployments: Any, name: str) -> InputScreen | None:
    """Deployment ``name``'s :class:`InputScreen`, ``None`` when it carries no detector."""
    setting = deployments.input_detector(name)
    return None if setting.detector is None else InputScreen(setting)


class InputScreening:
    """The counters of the requests screened and flagged, in ``registry`` (a data plane's
    Prometheus registry), and the scoring of one request."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("deployment", "variant")
        self.screened = Counter(
            "opsloop_input_screened",
            "Requests scored by their deployment's input anomaly detector.",
            labels,
            registry=registry,
        )
        self.flagged = Counter(
            "opsloop_input_flagged",
            "Requests with a record the input anomaly detector flagged.",
            labels,
            registry=registry,
        )
        self.unscored = Counter(
            "opsloop_input_unscored",
            "Requests the input anomaly detector could not score: the answering version's "
            "records lack one of its features.",
            labels,
            registry=registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def screen(
        self, deployment: str, variant: str, screen: InputScreen | None, checked: CheckedRecords
    ) -> int | None:
        """Score the request ``variant`` of ``deployment`` answered and count it; the
        number of records flagged (``None`` when it was not scored)."""
        if screen is None:
            return None
        count = screen.flagged_records(checked)
        if count is None:
            self.unscored.labels(deployment, variant).inc()
            return None
        children = self._children.get((deployment, variant))
        if children is None:  # labels() costs a few microseconds a call: looked up once
            children = (
                self.screened.labels(deployment, variant),
                self.flagged.labels(deployment, variant),
            )
            self._children[(deployment, variant)] = children
        children[0].inc()
        if count:
            children[1].inc()
        return count


def screened_decision(decision: Decision, flagged: int | None, screen: Any) -> Decision:
    """``decision`` with, under the ``review`` action, a flagged request that would have
    been answered sent to review instead (the model's answer is the reviewer's suggestion).

    >>> from opsloop.serving.loaded_variant import VariantAnswer
    >>> answered = Decision("answered", VariantAnswer([1]), None, None, [[]], {}, {})
    >>> class Review: action = "review"
    >>> queued = screened_decision(answered, 1, Review())
    >>> queued.disposition, queued.reason, queued.answer, queued.suggestion
    ('queued', 'input_anomaly', None, {'predictions': [1], 'probabilities': None, 'classes': None})
    >>> screened_decision(answered, 0, Review()).disposition
    'answered'
    """
    if flagged and screen.action == "review" and decision.disposition == "answered":
        shown = None if decision.answer is None else decision.answer.to_dict()
        return replace(
            decision, disposition="queued", answer=None, reason=REVIEW_REASON, suggestion=shown
        )
    return decision


def marked(decision: Decision, flagged: int | None) -> Decision:
    """``decision`` with the records the detector flagged counted under :data:`EVENT_KEY`
    (what the prediction event keeps; the assertion metrics never see it).

    >>> marked(Decision("answered", None, None, None, [[]], {"r": 1}, {}), 0).counts
    {'r': 1, 'input_detector': 0}
    """
    if flagged is None:
        return decision
    return replace(decision, counts={**decision.counts, EVENT_KEY: flagged})


__all__ = [
    "EVENT_KEY",
    "REVIEW_REASON",
    "InputScreen",
    "InputScreening",
    "marked",
    "screen_for",
    "screened_decision",
]
