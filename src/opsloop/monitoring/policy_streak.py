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
bounded whatever the windows: ``{"windows": [...], "held": H, "skipped": S, "since_ms": F}``
lists the *latest* windows that held, as many as the rule counts (``for N windows``) and at
most :data:`MAX_LISTED_HELD` (an alert's evidence lists the windows that made it fire, and
the standing the windows that hold now), and the windows without a verdict between them,
at most :data:`MAX_LISTED_SKIPPED`, listed only while the streak is short of its count
(after it fired, the count of them grows, not the list); ``H`` and ``S`` count all the
windows that held and all those passed over since the streak began, and ``F`` is the start
of its first window that held (the change point of the alert's evidence). So a rule that
keeps holding, or a year of hourly windows without labels after it fired, keeps the saved
streak the same size.

Saved streaks of earlier versions load (:func:`load`): a plain list of windows, as saved
before the counts were kept, is counted and cut to the latest windows; a streak with counts
and no ``since_ms`` listed its *first* windows that held, so its first listed window is its
start, and newer windows that hold replace its listed ones oldest first. Until they have
all been replaced, such a streak that held in more windows than it lists says how many of
its listed windows, the oldest, are those first ones (``"first_listed": K``): they are not
known to be its latest until K more windows hold (:func:`first_listed`).

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
>>> streak, _ = advance(rule, streak, {"concept_drift": 1, "labelled": 9}, 4)
>>> [w["start_ms"] for w in held(streak)], streak["held"], streak["since_ms"]  # the latest 2
([2, 4], 3, 0)
"""

from __future__ import annotations

from typing import Any

from opsloop.monitoring.policy import Policy

#: The most windows without a verdict a streak lists; it counts them all.
MAX_LISTED_SKIPPED = 100
#: The most windows that held a streak lists (the latest); it counts them all. A ``promote``
#: rule compares each one with the primary, so it asks for at most as many
#: (:data:`.policy.MAX_PROMOTE_WINDOWS`).
MAX_LISTED_HELD = 100


def _windows(streak: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    return streak["windows"] if isinstance(streak, dict) else streak


def _empty() -> dict[str, Any]:
    return {"windows": [], "held": 0, "skipped": 0}


def _latest(kept: list[dict[str, Any]], windows: int) -> list[dict[str, Any]]:
    """``kept`` from its oldest window that held among the latest ``windows`` of them
    (:data:`MAX_LISTED_HELD` at most): the older ones, and those without a verdict before
    it, are counted, not listed.

    >>> _latest([{"start_ms": 0}, {"start_ms": 1, "skipped": True}, {"start_ms": 2}], 1)
    [{'start_ms': 2}]
    """
    positions = [i for i, w in enumerate(kept) if not w.get("skipped")]
    listed = min(windows, MAX_LISTED_HELD)
    return kept if len(positions) <= listed else kept[positions[len(positions) - listed] :]


def _step(streak: dict[str, Any], window: dict[str, Any], windows: int) -> dict[str, Any]:
    """``streak`` of a rule ``for windows windows`` after one more ``window``: one that held,
    or one without a verdict (``skipped``) after one that held."""
    kept = streak["windows"]
    if window.get("skipped"):
        listed = len(kept) - len(held(kept))
        if streak["held"] < windows and listed < MAX_LISTED_SKIPPED:
            kept = [*kept, window]
        return {**streak, "windows": kept, "skipped": streak["skipped"] + 1}
    since = streak.get("since_ms", window["start_ms"]) if streak["held"] else window["start_ms"]
    after = _latest([*kept, window], windows)
    stepped = {**streak, "windows": after, "held": streak["held"] + 1, "since_ms": since}
    # The first windows an earlier version listed are the oldest listed: those the cut
    # dropped are no longer among them.
    first = stepped.pop("first_listed", 0) - (len(held(kept)) + 1 - len(held(after)))
    return {**stepped, "first_listed": first} if first > 0 else stepped


def load(stored: list[dict[str, Any]] | dict[str, Any], windows: int) -> dict[str, Any]:
    """A saved streak of a rule ``for windows windows`` in the bounded form (see the module
    docstring): a plain list of windows, as saved before the counts were kept, is counted
    and cut to what the bounded form keeps; a streak with counts saved before its start was
    kept starts at its first listed window that held.

    >>> old = [{"start_ms": 0, "value": 1}, {"start_ms": 1, "skipped": True},
    ...        {"start_ms": 2, "value": 1}, {"start_ms": 3, "value": 1}]
    >>> streak = load(old, 2)
    >>> [w["start_ms"] for w in streak["windows"]], streak["held"], streak["skipped"]
    ([2, 3], 3, 1)
    >>> streak["since_ms"], load({"windows": old[:1], "held": 1, "skipped": 0}, 2)["since_ms"]
    (0, 0)
    >>> load({"windows": [old[0], old[2]], "held": 3, "skipped": 1}, 2)["first_listed"]
    2
    """
    if isinstance(stored, dict):
        first = held(stored)
        if "since_ms" in stored or not first:
            return stored
        loaded = {**stored, "since_ms": first[0]["start_ms"]}
        # It listed its first windows: when more held, the listed are not known to be the
        # latest (all of them when every window that held is listed).
        return {**loaded, "first_listed": len(first)} if stored["held"] > len(first) else loaded
    streak = _empty()
    for window in stored:
        if streak["held"] or not window.get("skipped"):  # a streak starts at one that held
            streak = _step(streak, window, windows)
    return streak


def held(streak: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    """The windows of ``streak`` kept in which the condition held, oldest first.

    >>> held([{"start_ms": 0, "value": 1}, {"start_ms": 5, "skipped": True}])
    [{'start_ms': 0, 'value': 1}]
    """
    return [w for w in _windows(streak) if not w.get("skipped")]


def first_listed(streak: list[dict[str, Any]] | dict[str, Any]) -> int:
    """How many of the windows that held listed in ``streak``, the oldest, are the first
    windows of a streak an earlier version saved, not known to be its latest until as many
    more hold (see the module docstring); 0 for a streak that lists its latest.

    >>> saved = {"windows": [{"start_ms": 0, "value": 1}, {"start_ms": 1, "value": 1}],
    ...          "held": 5, "skipped": 0}
    >>> rule = Policy.parse("drift_share > 0.3 for 2 windows -> alert")
    >>> streak, _ = advance(rule, saved, {"drift_share": 0.5}, 9)
    >>> [w["start_ms"] for w in held(streak)], first_listed(load(saved, 2)), first_listed(streak)
    ([1, 9], 2, 1)
    """
    return 0 if isinstance(streak, list) else int(streak.get("first_listed", 0))


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
        return _step(current, {"start_ms": start_ms, "skipped": True}, rule.windows), False
    if not verdict:
        return _empty(), False
    window = {"start_ms": start_ms, "value": rule.value(metrics), **(extra or {})}
    after = _step(current, window, rule.windows)
    return after, after["held"] == rule.windows


__all__ = [
    "MAX_LISTED_HELD",
    "MAX_LISTED_SKIPPED",
    "advance",
    "first_listed",
    "held",
    "load",
    "skipped",
]
