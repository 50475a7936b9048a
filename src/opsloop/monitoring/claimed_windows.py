"""The training windows of live retrain claims, kept in this process, so that a follower
paging through a claim's rows (:func:`.retrain_queue.retrain_rows`) has the window built
once, at its claim, rather than once a page.

A claim's window is the one its claim audited (range, counts and sha256). A process that
did not build it (another server worker, or one that let it go to make room) builds it
again from the store, and the follower's sha256 check on every page says whether the rows
changed since the claim. At most :data:`MAX_WINDOWS` windows are kept, the most recently
used; a report ends its claim and lets its window go.

>>> import pandas as pd
>>> from opsloop.monitoring.training_window import TrainingWindow
>>> window = TrainingWindow(pd.DataFrame({"x": [1.0]}), 0, 10, 1, 0, "ab")
>>> keep_window("sqlite://", "api", 1, "token", window)
>>> kept_window("sqlite://", "api", 1, "token") is window, kept_window("sqlite://", "api", 1, "x")
(True, None)
>>> forget_window("sqlite://", "api", 1, "token")
>>> kept_window("sqlite://", "api", 1, "token") is None
True
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opsloop.monitoring.training_window import TrainingWindow

#: The most windows kept at once (a window holds every row a retraining reads).
MAX_WINDOWS = 4

_kept: OrderedDict[tuple, TrainingWindow] = OrderedDict()
_lock = threading.Lock()


def keep_window(
    store: str, deployment: str, request_id: int, claim: str, window: TrainingWindow
) -> None:
    """Keep the ``window`` of request ``request_id`` under ``claim`` (the store's URI
    tells stores apart), letting the least recently used go past :data:`MAX_WINDOWS`."""
    with _lock:
        _kept[(store, deployment, request_id, claim)] = window
        _kept.move_to_end((store, deployment, request_id, claim))
        while len(_kept) > MAX_WINDOWS:
            _kept.popitem(last=False)


def kept_window(store: str, deployment: str, request_id: int, claim: str) -> TrainingWindow | None:
    """The window kept for ``claim``, or ``None``."""
    with _lock:
        window = _kept.get((store, deployment, request_id, claim))
        if window is not None:
            _kept.move_to_end((store, deployment, request_id, claim))
        return window


def forget_window(store: str, deployment: str, request_id: int, claim: str) -> None:
    """Let the window kept for ``claim`` go (none kept is fine)."""
    with _lock:
        _kept.pop((store, deployment, request_id, claim), None)
