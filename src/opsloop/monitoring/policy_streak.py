"""A rule's streak: the windows, oldest first, in which its condition held since it last
failed, with the windows between them where its signal was undefined.

A window where the condition holds extends the streak; one where the signal is defined and
the condition fails breaks it; one where the signal is undefined (``Policy.verdict`` is
``None``: no labels for a signal judged on labels, a sample expired...) neither extends nor
breaks it, and is kept in the streak as skipped, ``{"start_ms": ..., "skipped": True}``,
so that the evidence can say which windows were passed over. A streak starts at a window
that holds: an undefined window before any is not kept. The rule fires when the windows
that held reach its count, at a window that held, once; again only after the streak
breaks.

**What is kept.** A streak is saved with the monitor's state at every window, so it is
bounded whatever the windows: ``{"windows": [...], "held": H, "skipped": S}`` keeps the
first ``N`` windows that held for a rule ``for N windows`` (the alert's evidence, and its
change point, the start of the first), and the windows without a verdict listed only
before the ``N``-th of them, at most :data:`MAX_LISTED_SKIPPED`; ``H`` and ``S`` count
all the windows that held and all those passed over since the streak began. So a rule
that keeps holding, or a year of hourly windows without labels after it fired, keeps the
saved streak the same size. A streak saved as a plain list of windows, as before the
counts were kept, loads as the same streak (:func:`load`).

>>> from opsloop.monitoring.policy import Policy
>>> rule = Policy.parse("concept_drift > 0 for 2 windows -> alert")
>>> streak, fired = [], []
>>> for start, (drift, labelled) in enumerate([(1, 9), (None, 0), (1, 9), (None, 0)]):
...     streak, now = advance(rule, streak, {"concept_drift": drift, "labelled": labelled},
...                           start)
...     fired.append(now)
>>> fired, [w["start_ms"] for w in held(streak)], skipped(streak)
([False, False, True, False], [0, 2], [1])
>>> streak["held"], streak["skipped"]  # the window after the fire counted, not listed
(2, 2)
"""

from __future__ import annotations

from typing import Any

from opsloop.monitoring.policy import Policy

#: The most windows without a verdict a streak lists; it counts them all.
MAX_LISTED_SKIPPED = 100


def _windows(streak: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    return streak["windows"] if isinstance(streak, dict) else streak


def _empty() -> dict[str, Any]:
    return {"windows": [], "held": 0, "skipped": 0}


def load(stored: list[dict[str, Any]] | dict[str, Any], windows: int) -> dict[str, Any]:
    """A saved streak of a rule ``for windows windows`` in the bounded form (see the module
    docstring): a plain list of windows, as saved before the counts were kept, is counted
    and cut to what the bounded form keeps.

    >>> old = [{"start_ms": 0, "value": 1}, {"start_ms": 1, "skipped": True},
    ...        {"start_ms": 2, "value": 1}, {"start_ms": 3, "value": 1}]
    >>> streak = load(old, 2)
    >>> [w["start_ms"] for w in streak["windows"]], streak["held"], streak["skipped"]
    ([0, 1, 2], 3, 1)
    """
    if isinstance(stored, dict):
        return stored
    streak = _empty()
    for window in stored:
        if window.get("skipped"):
            streak["skipped"] += 1
        else:
            streak["held"] += 1
        if _keeps(streak["windows"], windows, bool(window.get("skipped"))):
            streak["windows"].append(window)
    return streak


def _keeps(kept: list[dict[str, Any]], windows: int, undefined: bool) -> bool:
    """Whether a streak that keeps ``kept`` keeps one more window."""
    if len(held(kept)) >= windows:
        return False
    return not undefined or len(kept) - len(held(kept)) < MAX_LISTED_SKIPPED


def held(streak: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    """The windows of ``streak`` kept in which the condition held, oldest first.

    >>> held([{"start_ms": 0, "value": 1}, {"start_ms": 5, "skipped": True}])
    [{'start_ms': 0, 'value': 1}]
    """
    return [w for w in _windows(streak) if not w.get("skipped")]


def skipped(streak: list[dict[str, Any]] | dict[str, Any], *, trailing: bool = True) -> list[int]:
    """The starts of the windows listed in ``streak`` where the signal was undefined,
    oldest first; without ``trailing``, only those between two windows that held.

    >>> streak = [{"start_ms": 0, "value": 1}, {"start_ms": 5, "skipped": True}]
    >>> skipped(streak), skipped(streak, trailing=False)
    ([5], [])
    """
    windows = _windows(streak)
    last = max((i for i, w in enumerate(windows) if not w.get("skipped")), default=-1)
    return [
        int(w["start_ms"])
        for i, w in enumerate(windows)
        if w.get("skipped") and (trailing or i < last)
    ]


def advance(
    rule: Policy,
    streak: list[dict[str, Any]] | dict[str, Any],
    metrics: dict[str, Any],
    start_ms: int,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """``streak`` after the window starting at ``start_ms`` with these ``metrics``, and
    whether the rule fires at it (see the module docstring). A window that holds is kept
    with the signal's ``value`` and ``extra``.

    >>> rule = Policy.parse("drift_share > 0.3 for 2 windows -> alert")
    >>> streak, _ = advance(rule, [], {"drift_share": 0.5}, 0)
    >>> advance(rule, streak, {"drift_share": 0.1}, 1)
    ({'windows': [], 'held': 0, 'skipped': 0}, False)
    """
    current = load(streak, rule.windows)
    verdict = rule.verdict(metrics)
    if verdict is None:
        if not current["held"]:
            return _empty(), False
        kept = current["windows"]
        if _keeps(kept, rule.windows, undefined=True):
            kept = [*kept, {"start_ms": start_ms, "skipped": True}]
        return {**current, "windows": kept, "skipped": current["skipped"] + 1}, False
    if not verdict:
        return _empty(), False
    kept = current["windows"]
    if _keeps(kept, rule.windows, undefined=False):
        window = {"start_ms": start_ms, "value": rule.value(metrics), **(extra or {})}
        kept = [*kept, window]
    count = current["held"] + 1
    return {**current, "windows": kept, "held": count}, count == rule.windows


__all__ = ["MAX_LISTED_SKIPPED", "advance", "held", "load", "skipped"]
