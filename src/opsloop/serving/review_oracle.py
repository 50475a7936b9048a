"""Active learning answered by people: the review queue as an :class:`~opsloop.learn.active.
oracle.Oracle`.

:class:`ReviewOracle` turns each pool row it is asked about into a review item (reason
``active_learning``, one item per row so a reviewer answers one label each), under a
deployment's queue, then waits until every item is answered and returns the labels in the
order asked. It works with any implementation of the queue's contract: the local
:class:`~opsloop.serving.review_queue.ReviewQueue` on a store or
:class:`~opsloop.serving.http_review_queue.HttpReviewQueue` on a server, so the loop may run
in a notebook while reviewers answer in the dashboard or through the API.

>>> import numpy as np
>>> from opsloop.store import Database
>>> from opsloop.serving.review_queue import ReviewQueue
>>> queue = ReviewQueue(Database("sqlite://"), actor="rita")
>>> oracle = ReviewOracle(queue, "loans", ["age", "income"], timeout_s=0.0)
>>> oracle.label(np.array([3]), np.array([[41.0, 52000.0]]))
Traceback (most recent call last):
opsloop.errors.UnavailableError: review queue 'loans': 1 of 1 items not answered within 0.0 s ...
>>> queue.list("loans")[0].records
[{'age': 41.0, 'income': 52000.0}]
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from opsloop.errors import InvalidArgumentError, UnavailableError
from opsloop.serving.review_service import ReviewQueueService


class ReviewOracle:
    """Labels from people through a review queue (see the module).

    ``queue`` is a review queue (local or over HTTP), ``deployment`` the queue the items go
    to, ``columns`` the names of the pool's columns (each row becomes a record of them).
    ``timeout_s`` is how long :meth:`label` waits for the answers before it raises
    :class:`~opsloop.errors.UnavailableError` (the items stay in the queue); ``poll_s`` how
    often it looks. ``n_answered_`` counts the labels received (the labelling cost), and
    ``items_`` the ids of the items made, in order.

    >>> ReviewOracle(None, "loans", ["x"], poll_s=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: poll_s must be a number > 0, got 0
    """

    def __init__(
        self,
        queue: ReviewQueueService,
        deployment: str,
        columns: Sequence[str],
        *,
        timeout_s: float = 24 * 3600.0,
        poll_s: float = 1.0,
    ) -> None:
        if isinstance(poll_s, bool) or not isinstance(poll_s, int | float) or not poll_s > 0:
            raise InvalidArgumentError(f"poll_s must be a number > 0, got {poll_s!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s < 0:
            raise InvalidArgumentError(f"timeout_s must be a number >= 0, got {timeout_s!r}")
        self.queue = queue
        self.deployment = deployment
        self.columns = [str(column) for column in columns]
        self.timeout_s = float(timeout_s)
        self.poll_s = float(poll_s)
        self.n_answered_ = 0
        self.items_: list[int] = []

    def label(self, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Ask people for the labels of ``rows`` (the pool rows at ``indices``) and wait."""
        table = np.asarray(rows)
        if table.ndim != 2 or table.shape[1] != len(self.columns):
            raise InvalidArgumentError(
                f"rows: expected {len(self.columns)} columns ({', '.join(self.columns)}), "
                f"got shape {table.shape}"
            )
        asked = [
            self.queue.submit(self.deployment, [dict(zip(self.columns, row, strict=True))]).id
            for row in table.tolist()
        ]
        self.items_.extend(asked)
        labels: dict[int, object] = {}
        deadline = time.monotonic() + self.timeout_s
        while True:
            for item_id in asked:
                if item_id not in labels:
                    item = self.queue.get(item_id)
                    if item.state == "answered":
                        labels[item_id] = item.label
            if len(labels) == len(asked):
                break
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"review queue {self.deployment!r}: {len(asked) - len(labels)} of "
                    f"{len(asked)} items not answered within {self.timeout_s} s (items "
                    f"{[i for i in asked if i not in labels]} stay in the queue)"
                )
            time.sleep(self.poll_s)  # people answer in seconds to hours; look again later
        self.n_answered_ += len(asked)
        return np.asarray([labels[item_id] for item_id in asked])


__all__ = ["ReviewOracle"]
