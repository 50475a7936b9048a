"""The error-stream detector of one variant, and which model version's errors it reads.

A variant's error stream is the per-row errors of its labelled answers, in event order. A
detector watches it across windows; which one is the deployment's choice
(:mod:`.stored_policy`, :data:`ERROR_DETECTORS`), each on its preset for error rates
(:mod:`opsloop.detect.presets`):

* ``ADWIN`` (the default), ``"monitoring"`` preset: 0 false alarms in 20,000,000 items of
  a 10% error rate, a mean delay of 118 items for a rise to 30%;
* ``CUSUM``, ``"monitoring"`` preset: 0.005 false alarms per 100,000 items, a mean delay
  of 79 items; its first 1,000 items (after each alarm and restart too) estimate the
  error rate it watches and signal nothing;
* ``PageHinkley``, ``"error_rate"`` preset: 0.015 false alarms per 100,000 items, a mean
  delay of 81 items; its threshold is in the stream's units, set for 0/1 errors near 10%;
* ``DDM``, River's defaults (``warm_start=30``, ``warning_threshold=2``,
  ``drift_threshold=3``), **not calibrated**: no parameters of DDM meet the presets'
  targets, since it compares the error rate since its last detection with the best it
  saw, so its delay grows with the quiet period before a change. On the same streams
  (``benchmarks/RESULTS.md``, "Monitoring presets"): 0.005 false alarms per 100,000 items
  on a long stream but 8.8 per 100,000 in a fresh detector's first 10,000 items (it is
  fresh after each of its alarms and each restart), and a mean delay of 556 items (9%
  found within 200; the targets are at most 0.1 and 200).

CUSUM and ADWIN read any errors (CUSUM standardises the stream, ADWIN's bound follows its
variance). PageHinkley's preset and DDM hold for 0/1 errors only (a classifier's): on a
regression's absolute errors they read nothing, and the window says so (``read`` false,
with the ``reason``); the signal ``error_drift`` is then ``None``.

Whatever the choice, ADWIN also reads the stream: the window it keeps is the error
history that a window's decay is judged against (:mod:`.decay_kind`) and in which an
alarm's change point is estimated. With ADWIN chosen it is one detector.

The errors are those of the model version the variant serves, and a detector's memory of
the error rate is a memory of that version. When the variant starts serving another
version (a promotion, a rollback, a new deploy), the errors after the change come from
another model: fed to the same detector, they make it signal the version change, which
monitoring did itself, as if the data had moved, and a retraining policy would act on it.
So the detectors **start afresh** at the first labelled row of the new version. Each
restart is recorded (its position in the stream, the time of that row, the versions
before and after, and why) in the window's metrics and in the audit log; the decay
judgement of a window compares its errors with the history of the same version only.

When the deployment's choice changes, the chosen detector starts afresh at the first row
of the first window evaluated under the new choice (its ``switch``: the position, the
detectors before and after, how many rows the old one had read, and why). The old
detector's state is dropped, not kept: its alarms stay in the windows it evaluated, and
choosing it again later starts it afresh too. A switch to another detector than ADWIN
leaves ADWIN (the history) reading on; a switch to ADWIN restarts it, and that window's
decay is still judged against the history it held.

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

>>> cusum = read_errors(later.state, later.source, np.zeros(20), [("credit", 2)] * 20,
...                     np.arange(80, 100), detector="CUSUM")
>>> cusum.switch["from"], cusum.switch["to"], cusum.switch["position"], cusum.alarm["offset"]
('ADWIN', 'CUSUM', 80, 80)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.detect import (
    ADWIN,
    CUSUM,
    DDM,
    DetectionResult,
    Detector,
    PageHinkley,
    detector_from_state,
)
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.decay_kind import ErrorHistory

#: The detectors an error stream may be read by, each with its preset for error rates
#: (``None``: River's defaults, no preset meets the targets; see the module docstring).
ERROR_DETECTORS: dict[str, str | None] = {
    "ADWIN": "monitoring",
    "CUSUM": "monitoring",
    "PageHinkley": "error_rate",
    "DDM": None,
}
DEFAULT_ERROR_DETECTOR = "ADWIN"
#: The detectors whose parameters hold for 0/1 errors only.
ZERO_ONE_ONLY = ("PageHinkley", "DDM")
_CLASSES: dict[str, type[Detector]] = {
    "ADWIN": ADWIN,
    "CUSUM": CUSUM,
    "PageHinkley": PageHinkley,
    "DDM": DDM,
}
#: What a choice of DDM is told (the figures of ``benchmarks/RESULTS.md``).
DDM_WARNING = (
    "DDM has no calibrated preset; it runs with River's defaults (warm_start=30, "
    "warning_threshold=2, drift_threshold=3): on a 10% error stream 0.005 false alarms per "
    "100,000 items on a long run but 8.8 per 100,000 in a fresh detector's first 10,000 "
    "items (it is fresh after each alarm and restart), and a mean delay of 556 items for a "
    "rise to 30% (9% found within 200), growing with the quiet period before the change; "
    "the presets' targets are 0.1 and 200. ADWIN, CUSUM and PageHinkley meet them"
)

#: Why a restart happens, as the audit log and the window's metrics say it.
RESTART_REASON = (
    "the variant serves another model version: its errors are another stream, and the "
    "detector's history belongs to the version that produced it"
)
#: Why a change of the deployment's choice starts the detector afresh.
SWITCH_REASON = (
    "the deployment's monitoring policy chose another error-stream detector: it starts "
    "afresh here, and the old detector's state is dropped (its alarms stay in the windows "
    "it evaluated)"
)


def check_error_detector(value: object, field: str = "error_detector") -> str:
    """``value`` as the name of an error-stream detector, or an error naming ``field``,
    the choices and why there are no others.

    >>> check_error_detector("CUSUM")
    'CUSUM'
    >>> check_error_detector("EDDM")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: error_detector: must be one of ADWIN, CUSUM, PageHinkley (calibrated presets for error rates) or DDM (River's defaults, not calibrated), got 'EDDM'; the other detectors have no parameters that meet the presets' targets on error rates (see opsloop.detect.presets)
    """  # noqa: E501 - a doctest's expected output is one line
    if not isinstance(value, str) or value not in ERROR_DETECTORS:
        shown = repr(value) if not isinstance(value, str) else repr(value[:40])
        raise InvalidArgumentError(
            f"{field}: must be one of ADWIN, CUSUM, PageHinkley (calibrated presets for error "
            f"rates) or DDM (River's defaults, not calibrated), got {shown}; the other "
            "detectors have no parameters that meet the presets' targets on error rates "
            "(see opsloop.detect.presets)"
        )
    return value


def error_detector(name: str) -> Detector:
    """A fresh error-stream detector ``name`` on its preset (DDM: River's defaults).

    >>> error_detector("PageHinkley").threshold, error_detector("DDM").drift_threshold
    (11.0, 3.0)
    """
    preset = ERROR_DETECTORS[check_error_detector(name)]
    return _CLASSES[name]() if preset is None else _CLASSES[name].preset(preset)


def detector_warning(name: str) -> str | None:
    """What a choice of ``name`` must be told (``None`` for a calibrated one).

    >>> detector_warning("ADWIN") is None, detector_warning("DDM")[:30]
    (True, 'DDM has no calibrated preset; ')
    """
    return DDM_WARNING if name == "DDM" else None


@dataclass(frozen=True)
class StreamSegment:
    """Rows ``begin:end`` of a window that one version answered: ADWIN's ``state_before``
    them (the history's), the chosen detector's ``result`` on them (``None`` where it reads
    nothing) and ``position``, the stream position of row ``begin``."""

    begin: int
    end: int
    version: tuple[str, int]
    state_before: dict[str, Any]
    result: DetectionResult | None
    position: int


@dataclass(frozen=True)
class ErrorStreamRead:
    """A window's errors read into the variant's detectors: the stream position of the
    window's first row (``start``), the chosen detector's alarms' stream ``positions``, the
    ``segments``, the ``restarts``, ADWIN's ``state`` after and its ``source`` (the version it
    watches and the stream position it started at), the ``history`` of the last segment's
    version before it (``None`` when ADWIN had read none of it), whose rows begin at
    ``history_begin`` in the window; the chosen ``detector``, its saved ``alarm`` (``None``
    for ADWIN, which is the history itself: ``{"detector", "offset", "state"}``), the
    ``switch`` to it when the choice changed here, and the ``reason`` it read nothing
    (``None`` when it read the window)."""

    start: int
    positions: list[int]
    segments: list[StreamSegment]
    restarts: list[dict[str, Any]]
    state: dict[str, Any]
    source: dict[str, Any] | None
    history: ErrorHistory | None
    history_begin: int = 0
    detector: str = DEFAULT_ERROR_DETECTOR
    alarm: dict[str, Any] | None = None
    switch: dict[str, Any] | None = None
    reason: str | None = None


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
    *,
    detector: str = DEFAULT_ERROR_DETECTOR,
    alarm: dict[str, Any] | None = None,
    zero_one: bool = True,
) -> ErrorStreamRead:
    """Read a window's ``errors`` (with the ``versions`` that answered each row, as
    ``(model, version)``, and their ``times``) into ADWIN saved as ``state``, which watches
    ``source`` (``None`` for a detector saved before versions were kept: it adopts the first
    version it reads), and into the chosen ``detector`` saved as ``alarm`` (``None`` when it
    was ADWIN); ``zero_one`` says whether the errors are 0/1 (a classifier's). See the
    module docstring."""
    choice = check_error_detector(detector)
    adwin = ADWIN.preset("monitoring") if state is None else detector_from_state(state)
    watched = None if source is None else (source["model"], int(source["version"]))
    offset = 0 if source is None else int(source["offset"])
    start = offset + adwin.n_seen
    history, history_begin = _history(adwin), 0
    read_of_version = adwin.n_seen
    errors = np.asarray(errors, dtype=float)
    versions = [(str(m), int(v)) for m, v in versions]
    before = DEFAULT_ERROR_DETECTOR if alarm is None else str(alarm["detector"])
    chosen, chosen_offset, switch = None, offset, None
    if before != choice:
        rows_read = adwin.n_seen if alarm is None else int(alarm["state"]["n_seen"])
        # A stream read by nothing yet (a new variant) starts with the choice: no switch.
        if rows_read or adwin.n_seen:
            switch = {
                "position": start,
                "at_ms": int(times[0]) if len(times) else None,
                "from": before,
                "to": choice,
                "rows_read": int(rows_read),
                "reason": SWITCH_REASON,
            }
        if choice == DEFAULT_ERROR_DETECTOR:
            adwin, offset = ADWIN.preset("monitoring"), start
        else:
            chosen, chosen_offset = error_detector(choice), start
    elif alarm is not None:
        chosen, chosen_offset = detector_from_state(alarm["state"]), int(alarm["offset"])
    skip = None
    if choice in ZERO_ONE_ONLY and not zero_one:
        skip = (
            f"{choice} reads 0/1 errors (a classifier's); this window's errors are absolute "
            "errors, on which its parameters were not calibrated"
        )
    begins = [i for i in range(len(versions)) if i == 0 or versions[i] != versions[i - 1]]
    ends = [*begins[1:], len(versions)] if begins else []
    segments, restarts, positions = [], [], []
    for begin, end in zip(begins, ends, strict=True):
        version = versions[begin]
        if watched is not None and version != watched and read_of_version:
            restarts.append(
                {
                    "position": start + begin,
                    "at_ms": int(times[begin]),
                    "from": {"model": watched[0], "version": watched[1]},
                    "to": {"model": version[0], "version": version[1]},
                    "rows_read": int(read_of_version),
                    "reason": RESTART_REASON,
                }
            )
            adwin, offset = ADWIN.preset("monitoring"), start + begin
            if chosen is not None:
                chosen, chosen_offset = error_detector(choice), start + begin
            history, history_begin = None, begin
        watched = version
        state_before = adwin.to_state()
        rows = errors[begin:end]
        result: DetectionResult | None = adwin.update_many(rows)
        read_of_version = adwin.n_seen
        at = offset
        if chosen is not None:
            # The history read the rows; the chosen detector reads them unless they are not
            # errors its parameters hold for.
            result, at = None if skip else chosen.update_many(rows), chosen_offset
            if skip:
                # Its positions count the rows it read: after a gap it starts afresh past
                # the rows it did not read, so that its alarms keep their stream positions.
                chosen, chosen_offset = error_detector(choice), start + end
        if result is not None:
            positions += [at + int(p) for p in result.stream_positions()]
        segments.append(StreamSegment(begin, end, version, state_before, result, start + begin))
    kept = None
    if watched is not None:
        kept = {"model": watched[0], "version": watched[1], "offset": offset}
    saved = None
    if chosen is not None:
        saved = {"detector": choice, "offset": chosen_offset, "state": chosen.to_state()}
    return ErrorStreamRead(
        start,
        positions,
        segments,
        restarts,
        adwin.to_state(),
        kept,
        history,
        history_begin,
        choice,
        saved,
        switch,
        skip,
    )
