"""The error-stream detector of one variant, and which model version's errors it reads.

A variant's error stream is the per-row errors of its labelled answers, in event order;
ADWIN (:mod:`opsloop.detect.adwin`, ``"monitoring"`` preset) watches it across windows. The
errors are those of the model version the variant serves, and the detector's memory of the
error rate is a memory of that version. When the variant starts serving another version (a
promotion, a rollback, a new deploy), the errors after the change come from another model:
fed to the same detector, they make it signal the version change, which monitoring did
itself, as if the data had moved, and a retraining policy would act on it. So the detector
**starts afresh** at the first labelled row of the new version. Each restart is recorded
(its position in the stream, the time of that row, the versions before and after, and why)
in the window's metrics and in the audit log; the decay judgement of a window
(:mod:`.decay_kind`) compares its errors with the history of the same version only.

Positions stay those of the variant's whole error stream (every labelled row since its
first window, whatever version answered), so alarms before and after a restart are on one
axis. Rows of two versions interleaved (workers that follow a change at slightly
different times) restart the detector at each switch; each restart is recorded.

>>> import numpy as np
>>> read = read_errors(None, None, np.zeros(50), [("credit", 1)] * 50, np.arange(50))
>>> read.start, read.restarts, read.source
(0, [], {'model': 'credit', 'version': 1, 'offset': 0})
>>> later = read_errors(read.state, read.source, np.ones(30), [("credit", 2)] * 30,
...                     np.arange(50, 80))
>>> later.start, later.positions, later.source["offset"]
(50, [], 50)
>>> [(r["position"], r["from"]["version"], r["to"]["version"]) for r in later.restarts]
[(50, 1, 2)]

Without the restart, ADWIN would read the second version's errors after the first's and
signal a change where the version changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.detect import ADWIN, DetectionResult, detector_from_state
from opsloop.monitoring.decay_kind import ErrorHistory

#: Why a restart happens, as the audit log and the window's metrics say it.
RESTART_REASON = (
    "the variant serves another model version: its errors are another stream, and the "
    "detector's history belongs to the version that produced it"
)


@dataclass(frozen=True)
class StreamSegment:
    """Rows ``begin:end`` of a window that one version answered, read by one detector:
    its ``state_before`` them, its ``result`` (positions counted from the detector's first
    item) and ``offset``, the stream position of the detector's first item."""

    begin: int
    end: int
    version: tuple[str, int]
    state_before: dict[str, Any]
    result: DetectionResult
    offset: int


@dataclass(frozen=True)
class ErrorStreamRead:
    """A window's errors read into the variant's detector: the stream position of the
    window's first row (``start``), the alarms' stream ``positions``, the ``segments``, the
    ``restarts``, the detector's ``state`` after and its ``source`` (the version it watches
    and the stream position it started at), and the ``history`` of the last segment's
    version before it (``None`` when the detector had read none of it), whose rows begin at
    ``history_begin`` in the window."""

    start: int
    positions: list[int]
    segments: list[StreamSegment]
    restarts: list[dict[str, Any]]
    state: dict[str, Any]
    source: dict[str, Any] | None
    history: ErrorHistory | None
    history_begin: int = 0


def _history(detector) -> ErrorHistory | None:
    if detector.width == 0:
        return None
    return ErrorHistory(detector.estimation, detector.width, detector.variance)


def read_errors(
    state: dict[str, Any] | None,
    source: dict[str, Any] | None,
    errors: np.ndarray,
    versions: Sequence[tuple[str, int]],
    times: Sequence[int],
) -> ErrorStreamRead:
    """Read a window's ``errors`` (with the ``versions`` that answered each row, as
    ``(model, version)``, and their ``times``) into the detector saved as ``state``, which
    watches ``source`` (``None`` for a detector saved before versions were kept: it adopts
    the first version it reads); see the module docstring."""
    detector = ADWIN.preset("monitoring") if state is None else detector_from_state(state)
    watched = None if source is None else (source["model"], int(source["version"]))
    offset = 0 if source is None else int(source["offset"])
    start = offset + detector.n_seen
    history, history_begin = _history(detector), 0
    errors = np.asarray(errors, dtype=float)
    versions = [(str(m), int(v)) for m, v in versions]
    begins = [i for i in range(len(versions)) if i == 0 or versions[i] != versions[i - 1]]
    ends = [*begins[1:], len(versions)] if begins else []
    segments, restarts, positions = [], [], []
    for begin, end in zip(begins, ends, strict=True):
        version = versions[begin]
        if watched is not None and version != watched and detector.n_seen:
            restarts.append(
                {
                    "position": start + begin,
                    "at_ms": int(times[begin]),
                    "from": {"model": watched[0], "version": watched[1]},
                    "to": {"model": version[0], "version": version[1]},
                    "rows_read": int(detector.n_seen),
                    "reason": RESTART_REASON,
                }
            )
            detector, offset = ADWIN.preset("monitoring"), start + begin
        watched = version
        history, history_begin = _history(detector), begin
        before = detector.to_state()
        result = detector.update_many(errors[begin:end])
        positions += [offset + int(p) for p in result.stream_positions()]
        segments.append(StreamSegment(begin, end, version, before, result, offset))
    kept = None
    if watched is not None:
        kept = {"model": watched[0], "version": watched[1], "offset": offset}
    return ErrorStreamRead(
        start, positions, segments, restarts, detector.to_state(), kept, history, history_begin
    )
