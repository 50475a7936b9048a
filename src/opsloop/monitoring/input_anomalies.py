"""The input anomaly rate of a window: how many requests the deployment's input anomaly
detector scored and flagged, read from the prediction events, and how that compares with
the rate the detector states for clean inputs.

The serving runtime scores every answered request with the deployment's detector and counts
the records it flagged in the event's ``assertions`` under ``"input_detector"``
(:mod:`opsloop.serving.input_screening`; 0 when none was, absent when the request was not
scored: no detector, a shadow's answer, a column missing, an event logged from Python or
written before the runtime scored requests). A window keeps four counts
(:class:`InputAnomalyCounts`): requests ``scored`` and ``flagged`` (with a record flagged),
and their records, ``scored_rows`` and ``flagged_rows``. They add up across workers like the
software metrics, so a window read back from several workers' parts has the counts one
worker alone would have.

Evaluated (:func:`input_anomaly_metrics`), a window gives the signals

* ``input_anomaly_rate``: flagged requests per scored request (what
  ``opsloop_input_flagged_total / opsloop_input_screened_total`` says on a data plane's
  ``/metrics``), ``None`` when no request was scored;
* ``input_anomaly_p_value``: how surprising the flagged records are if the inputs are as
  clean as the detector's calibration rows, one-sided (small when too many are flagged).
  The detector's threshold is the ``rank``-th smallest of ``calibration_rows`` held-out
  scores (:mod:`opsloop.learn.robustness.input_anomaly`), so the number flagged among ``m``
  clean records is beta-binomial, ``BetaBin(m, n + 1 - k, k)``, not binomial at the stated
  false-positive rate: the rate one calibration set gives varies around the stated one,
  and a binomial test would call a detector whose realised rate is 5.6% for a stated 5%
  anomalous once windows are large. The p-value is ``scipy.stats.betabinom.sf(flagged - 1,
  m, n + 1 - k, k)``, summed from the probabilities above the mean (where scipy's ``1 -
  cdf`` loses a tail below 1e-16).

The window's ``input_anomaly`` holds the counts, the rates, both p-values (also the binomial
one against the stated ``fpr``, ``scipy.stats.binomtest(flagged, m, fpr,
alternative="greater")``) and the detector they are judged against: the one the deployment
carries when the window is evaluated (its ``revision`` and when it was set, ``set_ms``: a
detector set after the window started scored part of it only). A record with a null in a
feature is counted as scored and cannot be flagged, so its window's p-value errs large.

>>> import numpy as np
>>> marks = event_marks(['{"input_detector": 0}', None, '{"input_detector": 2, "r": 1}'])
>>> marks.tolist()
[0, -1, 2]
>>> counts = InputAnomalyCounts.of(marks, np.array([1, 1, 3]))
>>> counts
InputAnomalyCounts(scored=2, flagged=1, scored_rows=4, flagged_rows=2)
>>> detector = StatedDetector(fpr=0.05, rank=95, calibration_rows=99, revision=1, set_ms=0)
>>> found = input_anomaly_metrics(counts, detector)
>>> found["rate"], found["fpr"], round(found["binomial_p_value"], 8)  # 1 - .95^4 - 4(.05)(.95^3)
(0.5, 0.05, 0.01401875)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database

#: The key of a prediction event's ``assertions`` that counts the records the detector
#: flagged (the serving runtime's ``input_screening.EVENT_KEY``: monitoring reads events
#: without importing serving).
EVENT_KEY = "input_detector"
_QUOTED_KEY = json.dumps(EVENT_KEY)


def _mark(text: str) -> int:
    """The detector's count in one ``assertions_json`` text, ``-1`` without a valid one."""
    try:
        counts = json.loads(text)
    except ValueError:
        return -1
    value = counts.get(EVENT_KEY) if isinstance(counts, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return -1


def event_marks(texts: list) -> np.ndarray:
    """The records the detector flagged in each event, from the events' ``assertions_json``
    texts; ``-1`` for an event it did not score (no text, no key, or a count that is not a
    whole number >= 0).

    >>> event_marks(['{"r": 3}', '{"input_detector": true}', float("nan"), "{"]).tolist()
    [-1, -1, -1, -1]
    """
    # A batch holds few distinct texts (the detector's count, with the rules' counts when
    # the deployment has rules): each is decoded once. NULLs (None or NaN) get code -1.
    codes, distinct = pd.factorize(np.asarray(texts, dtype=object), use_na_sentinel=True)
    if not len(distinct):
        return np.full(len(texts), -1, dtype=np.int64)
    values = np.array(
        [_mark(t) if isinstance(t, str) and _QUOTED_KEY in t else -1 for t in distinct],
        dtype=np.int64,
    )
    return np.where(codes >= 0, values[codes], -1)


@dataclass(frozen=True)
class InputAnomalyCounts:
    """Requests ``scored`` by the input anomaly detector and ``flagged`` by it (one of their
    records flagged), and their records, ``scored_rows`` and ``flagged_rows``."""

    scored: int = 0
    flagged: int = 0
    scored_rows: int = 0
    flagged_rows: int = 0

    @classmethod
    def of(cls, marks: np.ndarray, rows: np.ndarray) -> InputAnomalyCounts:
        """The counts of events with these :func:`event_marks` and these numbers of records.

        >>> InputAnomalyCounts.of(np.array([-1, -1]), np.array([1, 1]))
        InputAnomalyCounts(scored=0, flagged=0, scored_rows=0, flagged_rows=0)
        """
        scored = marks >= 0
        return cls(
            int(np.count_nonzero(scored)),
            int(np.count_nonzero(marks > 0)),
            int(rows[scored].sum()),
            int(marks[scored].sum()),
        )

    def merge(self, other: InputAnomalyCounts) -> InputAnomalyCounts:
        """Both windows' counts added up.

        >>> InputAnomalyCounts(2, 1, 2, 1).merge(InputAnomalyCounts(3, 0, 4, 0))
        InputAnomalyCounts(scored=5, flagged=1, scored_rows=6, flagged_rows=1)
        """
        return InputAnomalyCounts(
            self.scored + other.scored,
            self.flagged + other.flagged,
            self.scored_rows + other.scored_rows,
            self.flagged_rows + other.flagged_rows,
        )

    @property
    def rate(self) -> float | None:
        """Flagged requests per scored request (``None`` when none was scored)."""
        return self.flagged / self.scored if self.scored else None

    def to_dict(self) -> dict[str, int]:
        """A JSON-safe dictionary (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> InputAnomalyCounts:
        """Rebuild from :meth:`to_dict`; a window kept before windows counted anomalies has
        none (``None``): nothing scored.

        >>> InputAnomalyCounts.from_dict(None).scored
        0
        """
        if data is None:
            return cls()
        return cls(*(int(data[name]) for name in cls.__dataclass_fields__))


@dataclass(frozen=True)
class StatedDetector:
    """What a deployment's detector states: its false-positive rate ``fpr``, the ``rank`` of
    its threshold among ``calibration_rows`` held-out scores, the setting's ``revision`` and
    when it was set (``set_ms``)."""

    fpr: float
    rank: int
    calibration_rows: int
    revision: int
    set_ms: int


def stated_detector(db: Database, deployment: str) -> StatedDetector | None:
    """The detector ``deployment`` carries now, ``None`` when it carries none.

    >>> print(stated_detector(Database("sqlite://"), "api"))
    None
    """
    found = tables.deployment_input_detectors
    with db.read() as connection:
        row = connection.execute(
            sa.select(found.c.revision, found.c.detector_json, found.c.updated_ms).where(
                found.c.deployment == deployment
            )
        ).first()
    if row is None or row.detector_json is None:
        return None
    detector = json.loads(row.detector_json)
    return StatedDetector(
        float(detector["fpr"]),
        int(detector["rank"]),
        int(detector["calibration_rows"]),
        int(row.revision),
        int(row.updated_ms),
    )


def input_anomaly_metrics(
    counts: InputAnomalyCounts, detector: StatedDetector | None
) -> dict[str, Any]:
    """A window's ``input_anomaly`` (see the module): the counts, ``rate`` and ``row_rate``,
    and, with a ``detector``, its stated ``fpr``, ``p_value`` (beta-binomial, under the
    detector's calibration) and ``binomial_p_value`` (binomial, at the stated ``fpr``).

    >>> found = input_anomaly_metrics(InputAnomalyCounts(), None)
    >>> found["scored"], found["rate"], found["p_value"]
    (0, None, None)
    """
    found: dict[str, Any] = {
        **counts.to_dict(),
        "rate": counts.rate,
        "row_rate": counts.flagged_rows / counts.scored_rows if counts.scored_rows else None,
        "fpr": None,
        "p_value": None,
        "binomial_p_value": None,
        "detector_revision": None,
        "detector_set_ms": None,
    }
    if detector is None:
        return found
    found["fpr"] = detector.fpr
    found["detector_revision"] = detector.revision
    found["detector_set_ms"] = detector.set_ms
    if counts.scored_rows:
        from scipy.stats import betabinom, binom

        m, k = counts.scored_rows, counts.flagged_rows
        n, r = detector.calibration_rows, detector.rank
        law = betabinom(m, n + 1 - r, r)
        # sf(k - 1) is P(X >= k); k = 0 gives sf(-1) = 1. scipy's beta-binomial sf is
        # 1 - cdf, which reads 0 for a tail below 1e-16: above the mean the tail is summed.
        if k <= law.mean():
            found["p_value"] = float(law.sf(k - 1))
        else:
            found["p_value"] = float(np.sum(law.pmf(np.arange(k, m + 1))))
        found["binomial_p_value"] = float(binom.sf(k - 1, m, detector.fpr))
    return found


__all__ = [
    "EVENT_KEY",
    "InputAnomalyCounts",
    "StatedDetector",
    "event_marks",
    "input_anomaly_metrics",
    "stated_detector",
]
