"""The review queue's contract: its operations, and how each crosses HTTP.

:class:`ReviewQueueService` names what every review queue offers: the local
:class:`~opsloop.serving.review_queue.ReviewQueue` on a store and
:class:`~opsloop.serving.http_review_queue.HttpReviewQueue` on a server both satisfy it
(a test checks their signatures against it). :data:`REVIEW_OPERATIONS` places each
operation on the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`). Reading needs the viewer role, claiming, answering,
submitting and enqueueing (a data plane on another host puts its served requests in the
queue) the editor role; the token's owner acts.

>>> [(op.verb, op.path) for op in REVIEW_OPERATIONS.operations][:2]
[('GET', '/review/items'), ('POST', '/review/items')]
>>> REVIEW_OPERATIONS.body_model(REVIEW_OPERATIONS.operation("submit"))(
...     deployment="loans", records=[])
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for ReviewQueueSubmitIn
records
  Value should have at least 1 item after validation, not 0 ...
...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BeforeValidator, Field

from opsloop.contract.operation import (
    Operation,
    ServiceTable,
    optional_record,
    record,
    records,
)
from opsloop.contract.wire_types import MAX_LIST_LENGTH, Key, Name, OneOf, integral
from opsloop.serving.review_queue import MAX_LISTED, REVIEW_REASONS, REVIEW_STATES, ReviewItem
from opsloop.tracking.limits import INT32_MAX

# Item ids are the store's integer keys (32 bits in PostgreSQL).
ItemId = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]
Records = Annotated[Sequence[dict[str, Any]], Field(min_length=1, max_length=MAX_LIST_LENGTH)]
Limit = Annotated[int, Field(strict=True, ge=1, le=MAX_LISTED), BeforeValidator(integral)]
State = Annotated[str, OneOf((*REVIEW_STATES, "any"))]
Reason = Annotated[str, OneOf(REVIEW_REASONS)]
# A deployment's generation (see opsloop.serving.retired_names), as the events carry it.
Generation = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
RequestId = Annotated[
    str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")
]


def _given(label: Any) -> Any:
    if label is None:
        raise ValueError("give the answer (a JSON value, not null)")
    return label


#: A person's answer: any JSON value but null.
Label = Annotated[Any, AfterValidator(_given), Field(json_schema_extra={"not": {"type": "null"}})]


class ReviewQueueService(Protocol):
    """Requests and rows a person decides (see :mod:`opsloop.serving.review_queue`).
    ``actor`` is the acting user: locally it defaults to the queue's, over HTTP the
    token's owner acts."""

    def list(
        self, deployment: Key | None = None, *, state: State = "open", limit: Limit = 100
    ) -> tuple[ReviewItem, ...]:
        """Items oldest first, of a deployment (default: all) in a state (or ``any``)."""
        ...

    def submit(self, deployment: Key, records: Records, *, actor: str | None = None) -> ReviewItem:
        """Ask people for the labels of ``records`` (active learning); the item made."""
        ...

    def enqueue(
        self,
        deployment: Key,
        records: Records,
        *,
        reason: Reason,
        request_id: RequestId | None = None,
        suggestion: dict[str, Any] | None = None,
        rules: Annotated[Sequence[Name], Field(max_length=MAX_LIST_LENGTH)] = (),
        generation: Generation | None = None,
    ) -> ReviewItem:
        """Put a served request before a person (a data plane's entry, for the reason its
        deployment's automation level or assertions give); the item made. ``generation``
        is that of the definition that answered: a retired one's item is kept, cancelled,
        under the retired deployment's history name."""
        ...

    def claim_next(self, deployment: Key, *, actor: str | None = None) -> ReviewItem | None:
        """Claim the oldest open item of the deployment (null when none is open)."""
        ...

    def get(self, item_id: ItemId) -> ReviewItem:
        """The item."""
        ...

    def claim(self, item_id: ItemId, *, actor: str | None = None) -> ReviewItem:
        """Take the item to answer it (another reviewer's claim is a conflict)."""
        ...

    def answer(self, item_id: ItemId, label: Label, *, actor: str | None = None) -> ReviewItem:
        """Answer the item; a served request's answer becomes its feedback label."""
        ...


_ITEMS = records("items", ReviewItem, title="ReviewItemList")
_NEXT = optional_record("item", ReviewItem, title="ReviewItemClaimed")

#: The review queue on the wire.
REVIEW_OPERATIONS = ServiceTable(
    ReviewQueueService,
    [
        Operation(
            "list", "GET", "/review/items", answer=_ITEMS, query=("deployment", "state", "limit")
        ),
        Operation(
            "submit",
            "POST",
            "/review/items",
            role="editor",
            answer=record(ReviewItem),
            created=True,
        ),
        Operation(
            "enqueue",
            "POST",
            "/review/deployments/{deployment:path}/requests",
            role="editor",
            answer=record(ReviewItem),
            created=True,
        ),
        Operation(
            "claim_next",
            "POST",
            "/review/deployments/{deployment:path}/next",
            role="editor",
            answer=_NEXT,
        ),
        Operation("get", "GET", "/review/items/{item_id}", answer=record(ReviewItem)),
        Operation(
            "claim",
            "POST",
            "/review/items/{item_id}/claim",
            role="editor",
            answer=record(ReviewItem),
        ),
        Operation(
            "answer",
            "POST",
            "/review/items/{item_id}/answer",
            role="editor",
            answer=record(ReviewItem),
        ),
    ],
)

__all__ = ["REVIEW_OPERATIONS", "ReviewQueueService"]
