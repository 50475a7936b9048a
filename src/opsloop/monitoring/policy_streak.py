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

>>> from opsloop.monitoring.policy import Policy
>>> rule = Policy.parse("concept_drift > 0 for 2 windows -> alert")
>>> streak, fired = [], []
>>> for start, (drift, labelled) in enumerate([(1, 9), (None, 0), (1, 9), (None, 0)]):
...     streak, now = advance(rule, streak, {"concept_drift": drift, "labelled": labelled},
...                           start)
...     fired.append(now)
>>> fired, [w["start_ms"] for w in held(streak)], skipped(streak, trailing=False)
([False, False, True, False], [0, 2], [1])
>>> skipped(streak)  # and the one after the last that held, while the streak lasts
[1, 3]
"""

from __future__ import annotations

from typing import Any

from opsloop.monitoring.policy import Policy


def held(streak: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The windows of ``streak`` in which the condition held, oldest first.

    >>> held([{"start_ms": 0, "value": 1}, {"start_ms": 5, "skipped": True}])
    [{'start_ms': 0, 'value': 1}]
    """
    return [w for w in streak if not w.get("skipped")]


def skipped(streak: list[dict[str, Any]], *, trailing: bool = True) -> list[int]:
    """The starts of the windows of ``streak`` where the signal was undefined, oldest
    first; without ``trailing``, only those between two windows that held.

    >>> streak = [{"start_ms": 0, "value": 1}, {"start_ms": 5, "skipped": True}]
    >>> skipped(streak), skipped(streak, trailing=False)
    ([5], [])
    """
    last = max((i for i, w in enumerate(streak) if not w.get("skipped")), default=-1)
    return [
        int(w["start_ms"])
        for i, w in enumerate(streak)
        if w.get("skipped") and (trailing or i < last)
    ]


def advance(
    rule: Policy,
    streak: list[dict[str, Any]],
    metrics: dict[str, Any],
    start_ms: int,
    extra: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """``streak`` after the window starting at ``start_ms`` with these ``metrics``, and
    whether the rule fires at it (see the module docstring). A window that holds is kept
    with the signal's ``value`` and ``extra``.

    >>> rule = Policy.parse("drift_share > 0.3 for 2 windows -> alert")
    >>> streak, _ = advance(rule, [], {"drift_share": 0.5}, 0)
    >>> advance(rule, streak, {"drift_share": 0.1}, 1)
    ([], False)
    """
    verdict = rule.verdict(metrics)
    if verdict is None:
        return ([*streak, {"start_ms": start_ms, "skipped": True}] if held(streak) else []), False
    if not verdict:
        return [], False
    window = {"start_ms": start_ms, "value": rule.value(metrics), **(extra or {})}
    streak = [*streak, window]
    return streak, len(held(streak)) == rule.windows


__all__ = ["advance", "held", "skipped"]
