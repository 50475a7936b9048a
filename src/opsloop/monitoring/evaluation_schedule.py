"""Evaluate a deployment again at each window close, so an alert fires in the round right
after the window holding the data that caused it closes (within one window of that data),
with no cron job.

:func:`evaluate_on_schedule` runs ``evaluate_round`` (any callable: the local
:func:`~opsloop.monitoring.evaluation.evaluate`, or a server's ``evaluate`` operation), then
sleeps until the next window closes (by ``clock``, plus ``margin_ms`` for events the other
workers write just before the close and for a server's clock running behind ours), or for
``every_s`` seconds when given, and runs it again, until interrupted (or after ``rounds``).
An error in one round (a store or server briefly unavailable) goes to ``on_error`` and the
next round runs; errors of the ``fatal`` kinds (a bad rule, by default) end the loop, since
no later round would fix them.

>>> clock = iter([1_800_000, 3_601_000, 7_201_000]).__next__
>>> slept = []
>>> evaluate_on_schedule(lambda: "evaluated", window_ms=3_600_000, clock=clock,
...                      sleep=slept.append, rounds=3)
['evaluated', 'evaluated', 'evaluated']
>>> slept  # to 1 s past each window close: 1:00:01, then 2:00:01
[1801.0, 3600.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from opsloop.errors import InvalidArgumentError

T = TypeVar("T")

#: How long after a window's close its round runs, in milliseconds.
DEFAULT_MARGIN_MS = 1_000


def wall_clock_ms() -> int:
    """The time now, in milliseconds since the epoch.

    >>> wall_clock_ms() > 1_700_000_000_000
    True
    """
    return time.time_ns() // 1_000_000


def next_close_ms(now_ms: int, window_ms: int) -> int:
    """When the window holding ``now_ms`` closes (windows start at multiples of their
    length, :class:`~opsloop.monitoring.windowing.Windowing`).

    >>> next_close_ms(5_400_000, 3_600_000), next_close_ms(3_600_000, 3_600_000)
    (7200000, 7200000)
    """
    return now_ms - now_ms % window_ms + window_ms


def evaluate_on_schedule(
    evaluate_round: Callable[[], T],
    *,
    window_ms: int,
    every_s: float | None = None,
    margin_ms: int = DEFAULT_MARGIN_MS,
    clock: Callable[[], int] = wall_clock_ms,
    sleep: Callable[[float], Any] = time.sleep,
    on_result: Callable[[T], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    fatal: tuple[type[BaseException], ...] = (InvalidArgumentError,),
    rounds: int | None = None,
) -> list[T]:
    """Run ``evaluate_round`` now and after each window close (see the module docstring);
    each result goes to ``on_result``, each error to ``on_error``. Returns the results
    after ``rounds`` rounds (never, when ``None``: it ends only by an exception, such as
    :class:`KeyboardInterrupt`).

    >>> def failing():
    ...     raise ConnectionError("store unavailable")
    >>> evaluate_on_schedule(failing, window_ms=1000, every_s=0.5, sleep=lambda s: None,
    ...                      on_error=lambda e: print("error:", e), rounds=2)
    error: store unavailable
    error: store unavailable
    []
    >>> evaluate_on_schedule(lambda: 1, window_ms=1000, every_s=0, rounds=1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: every_s: must be a number > 0, got 0
    """
    if every_s is not None and not every_s > 0:  # NaN included
        raise InvalidArgumentError(f"every_s: must be a number > 0, got {every_s:g}")
    if not (isinstance(window_ms, int) and window_ms > 0):
        raise InvalidArgumentError(f"window_ms: must be an integer > 0, got {window_ms!r}")
    results: list[T] = []
    done = 0
    while True:
        try:
            result = evaluate_round()
        except fatal:
            raise
        except Exception as error:  # one bad round must not end the loop
            if on_error is None:
                raise
            on_error(error)
        else:
            results.append(result)
            if on_result is not None:
                on_result(result)
        done += 1
        if rounds is not None and done >= rounds:
            return results
        if every_s is not None:
            sleep(every_s)
        else:
            now = clock()
            sleep((next_close_ms(now, window_ms) + margin_ms - now) / 1000)
