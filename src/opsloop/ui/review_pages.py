"""The review queue: items waiting for a person, with the model's suggestion and its
confidence; claiming one and answering it.

Reading is the review queue service's ``list``; the deployments to choose from are read a
page at a time through the deployments service (:mod:`.row_pages`), so the page costs the
same with ten deployments or ten thousand. Claiming and answering are its ``claim``
and ``answer``, called as the REST API calls them (editor role, the signed-in user acting),
so an answer to a served request becomes that request's feedback label in the same
transaction. The forms are plain HTML, checked as every change is (:mod:`.form_posts`).
The items are also a fragment of their own (``/review/items``) that the page refetches in
place while it is open, keeping an answer being typed; without JavaScript it is the same
page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.errors import InvalidArgumentError, NotFoundError, OpsloopError
from opsloop.registry import User
from opsloop.serving.review_queue import REVIEW_STATES
from opsloop.serving.review_service import REVIEW_OPERATIONS
from opsloop.tracking.limits import INT32_MAX, MAX_NAME_LENGTH, checked_name
from opsloop.ui.form_posts import FormProblem, posted_form, require_operation_role
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import (
    DEFAULT_REFRESH_S,
    Refresh,
    kept_refresh,
    posted_refresh,
    with_refresh,
)
from opsloop.ui.rendering import render
from opsloop.ui.row_pages import PageNumber, RowPage, row_page
from opsloop.ui.session_check import page_user, session_secret

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
# Item ids are the store's integer keys (32 bits in PostgreSQL).
ItemId = Annotated[int, Path(ge=1, le=INT32_MAX)]
#: The most items the page lists (oldest first, as the queue hands them out).
ITEMS_SHOWN = 100
#: The longest listing state the items fragment reads (the states are short words).
MAX_STATE_LENGTH = 20
#: How the answer field's text becomes the label.
LABEL_KINDS = ("text", "number", "json")
DONE = {
    "claimed": "The item is yours to answer.",
    "answered": "The answer is recorded; for a served request it is now its label.",
}
#: The form that claims the oldest open item of a deployment.
CLAIM_NEXT_FORM = "claim-next"


def posted_label(text: str, kind: str) -> Any:
    """The label the answer form gives: ``text`` as text, a number, or any JSON value.

    >>> posted_label(" approve ", "text"), posted_label("0.25", "number")
    ('approve', 0.25)
    >>> posted_label('{"amount": 3}', "json")
    {'amount': 3}
    >>> posted_label("3 apples", "number")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: must be a number, got '3 apples'
    """
    if kind not in LABEL_KINDS:
        raise InvalidArgumentError(f"kind: must be one of {', '.join(LABEL_KINDS)}, got {kind!r}")
    text = text.strip()
    if not text:
        raise InvalidArgumentError("label: give the answer")
    if kind == "text":
        return text
    if kind == "number":
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgumentError(f"label: must be a number, got {text[:40]!r}")
        return value
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidArgumentError(f"label: not JSON ({error})") from None


def suggested(suggestion: dict | None) -> list[dict]:
    """The model's suggestion per record: its prediction and, for a classifier, its
    confidence (the largest class probability).

    >>> suggested({"predictions": ["no", "yes"], "probabilities": [[0.8, 0.2], [0.4, 0.6]],
    ...            "classes": ["no", "yes"]})
    [{'prediction': 'no', 'confidence': 0.8}, {'prediction': 'yes', 'confidence': 0.6}]
    >>> suggested(None)
    []
    """
    if not suggestion:
        return []
    probabilities = suggestion.get("probabilities") or []
    return [
        {
            "prediction": prediction,
            "confidence": max(probabilities[i]) if i < len(probabilities) else None,
        }
        for i, prediction in enumerate(suggestion.get("predictions") or [])
    ]


def _kind_of(item, queue) -> str:
    """The form's default kind for ``item``'s answer: the model's own answer's (its recorded
    answer, so a shadow-level item with no suggestion shown is read as the model answers),
    else the suggestion's first prediction's; text when neither says."""
    kind = queue.label_kind(item)
    if kind is not None:
        return "text" if kind == "text" else "number"
    shown = suggested(item.suggestion)
    if shown and isinstance(shown[0]["prediction"], int | float):
        return "number"
    return "text"


def claimed_notice(done: str | None, claimed: int | None, deployment: str | None) -> str | None:
    """The sentence the page shows after a change (``done``): for a claim of the next item,
    which item was claimed, or that none was open.

    >>> claimed_notice("claimed-next", 7, "loans")
    'Item 7, the oldest open item of loans, is yours to answer.'
    >>> claimed_notice("none-open", None, "loans")
    'No item of loans is open: nothing was claimed.'
    >>> claimed_notice("answered", None, None)
    'The answer is recorded; for a served request it is now its label.'
    """
    if done == "claimed-next" and claimed is not None:
        return f"Item {claimed}, the oldest open item of {deployment}, is yours to answer."
    if done == "none-open":
        return f"No item of {deployment} is open: nothing was claimed."
    return DONE.get(done or "")


@router.get("/review")
def review_page(
    request: Request,
    user: Viewer,
    deployment: str | None = None,
    state: str = "open",
    done: str | None = None,
    item: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    names: PageNumber = 1,
    refresh: Refresh = DEFAULT_REFRESH_S,
) -> Response:
    """The review queue: items of a deployment (default: all) in a state, oldest first;
    ``done`` and ``item`` say what the last change did; ``names`` is the page of deployment
    names (50 a page) the deployment choosers offer. The items and the form that claims
    the next item are refreshed in place every ``refresh`` seconds (0: never) from
    :func:`items_fragment`; a ``refresh`` other than the default is kept by the page's
    links and forms, by the fragment's, and by the page a form's post leads back to
    (:mod:`.refresh_query`)."""
    notice = claimed_notice(done, item, deployment)
    return review_view(
        request,
        deployment or None,
        state,
        notice=notice,
        names=names,
        refresh=refresh,
        kept=kept_refresh(refresh),
    )


@router.get("/review/items")
def items_fragment(
    request: Request,
    user: Viewer,
    deployment: Annotated[str, Query(max_length=MAX_NAME_LENGTH)] = "",
    state: Annotated[str, Query(max_length=MAX_STATE_LENGTH)] = "open",
    names: PageNumber = 1,
    refresh: Refresh | None = None,
) -> Response:
    """The review page's items alone (of ``deployment``, default all, in ``state``), and
    the form that claims the next item (offering the deployments of the page ``names`` of
    names and of the items), for its refresh: the same rows and forms the page shows.
    ``refresh``: the page's own, which the fragment's forms keep."""
    checked_name("deployment", deployment)
    return render(
        request,
        "review_items.html.j2",
        **items_context(request.app.state.review_queue, deployment or None, state),
        **claim_context(request, deployment or None, names, refreshing=True),
        problem=None,
        kept_refresh=kept_refresh(refresh),
    )


def items_address(
    deployment: str | None, state: str, names: int = 1, kept: int | None = None
) -> str:
    """The address of the review page's items fragment for a listing (and its page of
    deployment names, and the ``kept`` refresh of :mod:`.refresh_query`).

    >>> items_address("loans", "open"), items_address(None, "any", 2, 30)
    ('/review/items?state=open&deployment=loans', '/review/items?state=any&names=2&refresh=30')
    """
    query: dict[str, Any] = {"state": state, **({"deployment": deployment} if deployment else {})}
    if names != 1:
        query["names"] = names
    return with_refresh(f"/review/items?{urlencode(query)}", kept)


def items_context(queue, deployment: str | None, state: str) -> dict[str, Any]:
    """What the review page's items show: the oldest :data:`ITEMS_SHOWN` items of
    ``deployment`` (all where ``None``) in ``state``, each with the model's suggestion and
    the kind its answer is read as by default.

    >>> from opsloop.serving.review_queue import ReviewQueue
    >>> from opsloop.store import Database
    >>> queue = ReviewQueue(Database("sqlite://"), actor="ana")
    >>> _ = queue.submit("loans", [{"age": 30}])
    >>> shown = items_context(queue, "loans", "open")
    >>> [(row["item"].id, row["kind"]) for row in shown["items"]], shown["deployment"]
    ([(1, 'text')], 'loans')
    """
    items = queue.list(deployment, state=state, limit=ITEMS_SHOWN)
    return {
        "items": [
            {"item": item, "suggested": suggested(item.suggestion), "kind": _kind_of(item, queue)}
            for item in items
        ],
        "deployment": deployment or "",
        "state": state,
        "kinds": LABEL_KINDS,
    }


def names_link(state: str, deployment: str | None, names: int, kept: int | None = None) -> str:
    """The address of the review page showing page ``names`` of the deployment names,
    keeping the listing's state and deployment, and the ``kept`` refresh.

    >>> names_link("open", "loans", 2)
    '/review?state=open&deployment=loans&names=2'
    >>> names_link("any", None, 1, 0)
    '/review?state=any&names=1&refresh=0'
    """
    query = {"state": state, **({"deployment": deployment} if deployment else {}), "names": names}
    return with_refresh(f"/review?{urlencode(query)}", kept)


def claim_context(
    request: Request, deployment: str | None, names: int, *, refreshing: bool = False
) -> dict[str, Any]:
    """What the form that claims the next item offers: the deployments of page ``names``
    of the names, those of the items listed and the chosen ``deployment``; and that page of
    names, for the choosers. ``refreshing``: for the items' refresh, where a page of names
    that emptied since the review page was opened gives the first page, not a 404."""
    queue = request.app.state.review_queue
    try:
        chooser = deployment_names(request.app.state.deployments, names)
    except NotFoundError:
        if not refreshing:
            raise
        # The page of names the review page was opened on can empty while it refreshes
        # (deployments retired): its items still refresh, offering the first page's names.
        chooser = deployment_names(request.app.state.deployments, 1)
    offered = [row["name"] for row in chooser.rows]
    items = queue.list(deployment, state="open", limit=ITEMS_SHOWN)
    return {
        "names": chooser,
        "offered": offered,
        # Items may wait for a deployment no longer defined (or one only submitted to).
        "claimable": sorted(
            {*offered, *(i.deployment for i in items), *([deployment] if deployment else [])}
        ),
    }


def deployment_names(deployments, names: int) -> RowPage:
    """Page ``names`` of the defined deployments' names (50 a page, by name), read through
    the deployments service a page at a time; a 404 naming ``names`` past the last page.

    >>> from opsloop.serving import Deployments
    >>> from opsloop.store import Database
    >>> deployments = Deployments(Database("sqlite://"))
    >>> deployment_names(deployments, 1)
    RowPage(rows=[], number=1, more=False)
    >>> deployment_names(deployments, 2)
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: names: there is no page 2
    """
    return row_page(
        lambda limit, offset: deployments.list(limit=limit, offset=offset)[["name"]],
        names,
        field="names",
    )


def review_view(
    request: Request,
    deployment: str | None,
    state: str,
    *,
    problem: FormProblem | None = None,
    notice: str | None = None,
    names: int = 1,
    refresh: int = 0,
    kept: int | None = None,
) -> Response:
    """The review page, with an item form's ``problem`` shown beside it (and its status);
    the choosers offer page ``names`` of the deployments' names; its links and forms keep
    the refresh ``kept`` (:mod:`.refresh_query`). A page showing a problem is not
    refreshed: its form keeps what was posted and the field marked."""
    shown = items_context(request.app.state.review_queue, deployment, state)
    claims = claim_context(request, deployment, names)
    chooser = claims["names"]
    return render(
        request,
        "review.html.j2",
        status=200 if problem is None else problem.status,
        **shown,
        **claims,
        # The chosen deployment stays choosable on every page of names.
        deployments=sorted({*claims["offered"], *([deployment] if deployment else [])}),
        earlier_names=names_link(state, deployment, names - 1, kept) if names > 1 else None,
        later_names=names_link(state, deployment, names + 1, kept) if chooser.more else None,
        states=(*REVIEW_STATES, "any"),
        shown=ITEMS_SHOWN,
        problem=problem,
        notice=notice,
        refresh=refresh if problem is None and refresh else None,
        kept_refresh=kept,
        items_url=items_address(deployment, state, names, kept),
    )


def _back(fields: dict) -> tuple[str | None, str]:
    """The listing the form was posted from (its deployment and state)."""
    return fields.get("deployment") or None, fields.get("state") or "open"


def _location(fields: dict, done: str, kept: int | None) -> str:
    deployment, state = _back(fields)
    query = {"state": state, **({"deployment": deployment} if deployment else {}), "done": done}
    return with_refresh(f"/review?{urlencode(query)}", kept)


async def _post(request: Request, user: User, item_id: int, method: str, change) -> Response:
    fields = await posted_form(request, session_secret(request))
    require_operation_role(user, REVIEW_OPERATIONS, method)
    kept = posted_refresh(fields)
    queue = request.app.state.review_queue
    try:
        await run_in_threadpool(change, queue, fields)
    except OpsloopError as error:
        field = "label" if str(error).startswith(("label:", "label[", "kind:")) else None
        problem = FormProblem.of(f"item-{item_id}", error, fields, field)
        deployment, state = _back(fields)
        try:
            return await run_in_threadpool(
                review_view, request, deployment, state, problem=problem, kept=kept
            )
        except OpsloopError:
            # The listing it came from cannot be shown again (a broken state): the default.
            return await run_in_threadpool(
                review_view, request, None, "open", problem=problem, kept=kept
            )
    done = "claimed" if method == "claim" else "answered"
    return RedirectResponse(_location(fields, done, kept), status_code=303)


@router.post("/review/next")
async def claim_next_form(request: Request, user: Viewer) -> Response:
    """Claim the oldest open item of the chosen deployment (the review service's
    ``claim_next``); the page then shows that item claimed, or says none was open."""
    fields = await posted_form(request, session_secret(request))
    require_operation_role(user, REVIEW_OPERATIONS, "claim_next")
    kept = posted_refresh(fields)
    chosen = fields.get("deployment", "")
    queue = request.app.state.review_queue
    try:
        if not chosen:
            raise InvalidArgumentError("deployment: choose the deployment whose next item to claim")
        item = await run_in_threadpool(queue.claim_next, chosen, actor=user.name)
    except OpsloopError as error:
        field = "deployment" if str(error).startswith("deployment") else None
        problem = FormProblem.of(CLAIM_NEXT_FORM, error, fields, field)
        listing = fields.get("listing") or None
        return await run_in_threadpool(
            review_view, request, listing, fields.get("state") or "open", problem=problem, kept=kept
        )
    if item is None:
        query = {"state": fields.get("state") or "open", "deployment": chosen, "done": "none-open"}
        return RedirectResponse(with_refresh(f"/review?{urlencode(query)}", kept), status_code=303)
    query = {"state": "claimed", "deployment": chosen, "done": "claimed-next", "item": item.id}
    address = with_refresh(f"/review?{urlencode(query)}#item-{item.id}", kept)
    return RedirectResponse(address, status_code=303)


@router.post("/review/{item_id}/claim")
async def claim_form(request: Request, user: Viewer, item_id: ItemId) -> Response:
    """Take an item to answer it (another reviewer's claim is refused, 409)."""
    return await _post(
        request, user, item_id, "claim", lambda queue, _: queue.claim(item_id, actor=user.name)
    )


@router.post("/review/{item_id}/answer")
async def answer_form(request: Request, user: Viewer, item_id: ItemId) -> Response:
    """Answer an item: its label, as text, a number or JSON."""

    def answer(queue, fields: dict) -> None:
        label = posted_label(fields.get("label", ""), fields.get("kind", "text"))
        queue.answer(item_id, label, actor=user.name)

    return await _post(request, user, item_id, "answer", answer)
