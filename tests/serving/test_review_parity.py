"""The review queue's contract: the local queue and the HTTP client give the same answers
for every operation of the table, and both have the Protocol's signatures; conflicts and
bad arguments are the same errors on both sides."""

from __future__ import annotations

import inspect

import pytest
from tests.server.running import running_server

from opsloop.contract.operation import ACTOR
from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.serving.http_review_queue import HttpReviewQueue
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.review_service import REVIEW_OPERATIONS, ReviewQueueService

ROWS = [{"age": 17, "income": 1000.0}, {"age": 52, "income": 88000.5}]

#: Each operation, called as a reviewer would; ``first`` is the id of the item submitted
#: first on that side (the two sides share one store, so ids differ).
SCENARIO = [
    ("submit", lambda q, n, first: q.submit(n, ROWS)),
    ("submit", lambda q, n, first: q.submit(n, ROWS[:1])),
    ("list", lambda q, n, first: q.list(n)),
    ("get", lambda q, n, first: q.get(first)),
    ("claim", lambda q, n, first: q.claim(first)),
    ("claim", lambda q, n, first: q.claim(first)),
    ("list", lambda q, n, first: q.list(n, state="claimed", limit=5)),
    ("answer", lambda q, n, first: q.answer(first, ["decline", "approve"])),
    # A data plane on another host puts a served request before a person.
    (
        "enqueue",
        lambda q, n, first: q.enqueue(
            n,
            ROWS[:1],
            reason="low_confidence",
            request_id="r-17",
            suggestion={"predictions": ["approve"], "probabilities": [[0.4, 0.6]]},
            rules=["unsure"],
        ),
    ),
    ("claim_next", lambda q, n, first: q.claim_next(n)),
    ("claim_next", lambda q, n, first: q.claim_next(n)),
    ("list", lambda q, n, first: q.list(n, state="any")),
]


def test_every_operation_has_a_parity_case():
    assert {method for method, _ in SCENARIO} == {
        operation.method for operation in REVIEW_OPERATIONS.operations
    }


def _plain(value, first: int):
    """A result as plain data, without the times and with ids relative to the side's first
    item."""
    if isinstance(value, tuple):
        return [_plain(item, first) for item in value]
    if value is None:
        return None
    document = value.to_dict()
    document["id"] -= first
    return {key: item for key, item in document.items() if not key.endswith("_ms")}


def test_local_and_http_give_the_same_answers(registry):
    _, token = add_user(registry.db, "rita", "editor")
    local = ReviewQueue(registry.db, actor="rita")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpReviewQueue(url, token=token)
        firsts = {}
        for method, call in SCENARIO:
            answers = []
            for side, queue in (("local", local), ("http", remote)):
                name = f"loans-{side}"
                result = call(queue, name, firsts.get(side, 0))
                if side not in firsts:
                    firsts[side] = result.id
                answers.append(_plain(result, firsts[side]))
            mine, theirs = answers
            assert _renamed(mine) == _renamed(theirs), method
        answered = remote.get(firsts["http"])
        assert (answered.state, answered.label) == ("answered", ["decline", "approve"])
        assert (answered.claimed_by, answered.answered_by) == ("rita", "rita")
        assert answered.records == ROWS
        remote.close()


def _renamed(value):
    if isinstance(value, dict):
        return {key: _renamed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    if isinstance(value, str):
        return value.replace("loans-local", "NAME").replace("loans-http", "NAME")
    return value


def test_a_second_reviewer_and_a_second_answer_conflict_on_both_sides(registry):
    _, rita = add_user(registry.db, "rita", "editor")
    _, omar = add_user(registry.db, "omar", "editor")
    _, vera = add_user(registry.db, "vera", "viewer")
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        sides = [
            (ReviewQueue(registry.db, actor="rita"), ReviewQueue(registry.db, actor="omar")),
            (HttpReviewQueue(url, token=rita), HttpReviewQueue(url, token=omar)),
        ]
        for first, second in sides:
            item = first.submit("loans", ROWS)
            first.claim(item.id)
            with pytest.raises(ConflictError, match="is claimed by 'rita'"):
                second.claim(item.id)
            with pytest.raises(ConflictError, match="is claimed by 'rita'"):
                second.answer(item.id, "approve")
            first.answer(item.id, ["decline", "decline"])
            with pytest.raises(ConflictError, match=r"answered already \(by 'rita'\)"):
                first.answer(item.id, "approve")
            with pytest.raises(NotFoundError, match="no review item 999"):
                first.get(999)
            with pytest.raises(InvalidArgumentError, match="state"):
                first.list(state="lost")
        with pytest.raises(Exception, match="editor") as refused:
            HttpReviewQueue(url, token=vera).submit("loans", ROWS)
        assert type(refused.value).__name__ == "PermissionDenied"
        for _, client in sides[1:]:
            client.close()


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [(n, p.kind, p.default) for n, p in signature.parameters.items()]


@pytest.mark.parametrize("implementation", [ReviewQueue, HttpReviewQueue])
def test_implementations_have_the_protocols_signatures(implementation):
    for operation in REVIEW_OPERATIONS.operations:
        wanted = getattr(ReviewQueueService, operation.method)
        found = getattr(implementation, operation.method)
        assert _parameters(found) == _parameters(wanted), operation.method
        if ACTOR in inspect.signature(wanted).parameters:
            assert inspect.signature(found).parameters[ACTOR].default is None
