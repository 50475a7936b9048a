"""The review queue as active learning's Oracle: a loop whose labels come from a reviewer
answering the queue over HTTP learns exactly what it learns from the true labels."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server

from opsloop.errors import UnavailableError
from opsloop.learn.active import Oracle, SimulatedOracle, active_learning
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.serving.http_review_queue import HttpReviewQueue
from opsloop.serving.review_oracle import ReviewOracle
from opsloop.serving.review_queue import ReviewQueue

COLUMNS = [f"x{i}" for i in range(5)]


def _reviewer(queue, truth: dict, stop: threading.Event, answered: list) -> None:
    """A person at the queue: claims the oldest open item and answers its true label."""
    while not stop.is_set():
        item = queue.claim_next("pool")
        if item is None:
            stop.wait(0.01)
            continue
        record = item.records[0]
        label = truth[tuple(record[c] for c in COLUMNS)]
        queue.answer(item.id, label)
        answered.append(item.id)


def test_an_active_learning_loop_answered_from_the_queue(registry):
    X, y = make_classification(120, n_features=5, n_informative=3, random_state=0)
    X_pool, y_pool, X_test, y_test = X[:80], y[:80], X[80:], y[80:]
    truth = {tuple(row): int(label) for row, label in zip(X_pool.tolist(), y_pool, strict=True)}
    _, asker = add_user(registry.db, "ana", "editor")
    _, reviewer = add_user(registry.db, "rita", "editor")
    settings = dict(budget=30, batch_size=5, initial=10, random_state=0)
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        reviewer_queue = HttpReviewQueue(url, token=reviewer)
        stop, answered = threading.Event(), []
        person = threading.Thread(
            target=_reviewer, args=(reviewer_queue, truth, stop, answered), daemon=True
        )
        person.start()
        try:
            oracle = ReviewOracle(
                HttpReviewQueue(url, token=asker), "pool", COLUMNS, timeout_s=60, poll_s=0.01
            )
            assert isinstance(oracle, Oracle)
            learned = active_learning(
                LogisticRegression(), X_pool, oracle, X_test=X_test, y_test=y_test, **settings
            )
        finally:
            stop.set()
            person.join(timeout=30)
        reviewer_queue.close()
    reference = active_learning(
        LogisticRegression(),
        X_pool,
        SimulatedOracle(y_pool),
        X_test=X_test,
        y_test=y_test,
        **settings,
    )
    assert learned.queried == reference.queried
    assert learned.accuracy == reference.accuracy
    assert oracle.n_answered_ == 30 == len(answered)
    items = ReviewQueue(registry.db).list("pool", state="any")
    assert [item.id for item in items] == oracle.items_
    assert {(item.reason, item.state, item.answered_by) for item in items} == {
        ("active_learning", "answered", "rita")
    }
    asked = np.asarray([[item.records[0][c] for c in COLUMNS] for item in items])
    np.testing.assert_array_equal(asked, X_pool[list(learned.queried)])


def test_unanswered_items_stop_the_oracle_at_its_deadline_and_stay_queued(registry):
    queue = ReviewQueue(registry.db, actor="ana")
    oracle = ReviewOracle(queue, "pool", ["a", "b"], timeout_s=0.0, poll_s=0.01)
    with pytest.raises(UnavailableError, match="2 of 2 items not answered"):
        oracle.label(np.array([4, 7]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert [item.records for item in queue.list("pool")] == [
        [{"a": 1.0, "b": 2.0}],
        [{"a": 3.0, "b": 4.0}],
    ]
    with pytest.raises(Exception, match="expected 2 columns"):
        oracle.label(np.array([1]), np.array([[1.0, 2.0, 3.0]]))
