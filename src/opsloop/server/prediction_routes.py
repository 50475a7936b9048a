"""The records endpoints of the data plane: predict and feedback, under /v1/deployments/.

``POST /v1/deployments/{name}/predict`` takes records, either bare (``[{"age": 41}]``) or
as ``{"records": [...], "routing_key": "user-17"}``; the routing key may also come in the
``X-Routing-Key`` header. It answers the predictions (and the probabilities with their
classes where the model has them), the variant and model version that answered, and a
``request_id`` for feedback, with the ``status`` the deployment's automation level gives
it (``queued`` for review: no predictions, a ``review_item``; see
:mod:`opsloop.serving.automation`). ``POST /v1/deployments/{name}/feedback`` takes
``{"request_id", "label"}`` and/or ``"reward"``; an id the deployment never answered is a
404, a second label for an answer a 409 (labels are joined as the monitoring's
``log_labels`` joins them). Both need the viewer role (see :mod:`.data_plane`).

Predict runs the model on the event loop, as a plain FastAPI ``async def`` endpoint does:
on a busy machine the hop to the thread pool and back can cost more than a small model's
whole answer (see :mod:`.identity` on the same choice). A deployment whose settings turn
micro-batching on answers concurrent requests with one model call
(:mod:`opsloop.serving.micro_batching`); the data plane counts the prediction requests
under way, records and inference protocol alike (:class:`PredictArrivals`), so that a batch
waits only while others may join it.
Feedback waits for the event writer, so it runs in the thread pool.

>>> sorted(route.path for route in router.routes)
['/v1/deployments/{name}/feedback', '/v1/deployments/{name}/predict']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from opsloop.errors import InvalidArgumentError
from opsloop.server.error_responses import error_responses
from opsloop.server.identity import Viewer
from opsloop.store.label_values import checked_label

router = APIRouter(prefix="/v1/deployments", tags=["predictions"])

#: How long feedback waits for the answer's event to reach the store (it is written off
#: the request path, so feedback sent right after an answer can arrive first).
FEEDBACK_WAIT_S = 5.0


#: The ends of the paths that answer with a model: the records' ``/predict`` and the
#: inference protocol's ``/infer``.
_ANSWERING = ("/predict", "/infer")


class PredictArrivals:
    """ASGI middleware: count each prediction request (records or inference protocol)
    among the runtime's arrivals from the moment the app sees it until it joins a batch
    or ends (see :class:`~opsloop.serving.micro_batching.Arrivals`)."""

    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith(_ANSWERING)
        ):
            await self.app(scope, receive, send)
            return
        arrival = self.runtime.arrivals.start()
        scope.setdefault("state", {})["arrival"] = arrival
        try:
            await self.app(scope, receive, send)
        finally:
            arrival.done()


class PredictionRequest(BaseModel):
    """Records to answer, with an optional routing key (same key, same variant)."""

    records: list[dict[str, Any]] = Field(description="one object of field values per row")
    routing_key: str | None = Field(default=None, max_length=1000)


class PredictionAnswer(BaseModel):
    """What a deployment answered."""

    request_id: str
    deployment: str
    variant: str
    model: str
    version: int
    predictions: list | None = Field(description="null while the request waits for review")
    probabilities: list[list[float]] | None = None
    classes: list | None = None
    status: str = Field(description="answered, suggestion (a person decides) or queued")
    review_item: int | None = Field(default=None, description="the review queue's item")
    rules: list[list[str]] | None = Field(
        default=None, description="the model assertions that fired, per record"
    )


class FeedbackRequest(BaseModel):
    """The outcome of an answered request: its label, a reward, or both. A label is one
    scalar (a finite number, a bool, a short text) for an answer to one record, a list of
    one per record for an answer to several (:mod:`opsloop.store.label_values`)."""

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")
    label: Any = Field(
        default=None,
        description="one value per record: a scalar for one record, else a list of them",
    )
    reward: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("label")
    @classmethod
    def _label_shape(cls, label: Any) -> Any:
        # Its shape here, as a 422 naming the field; its count against the answer's
        # records once the answer is found (record_feedback).
        if label is None:
            return None
        try:
            return checked_label(label)
        except InvalidArgumentError as error:
            raise ValueError(str(error)) from None


@router.post(
    "/{name}/predict",
    response_model=None,
    responses={200: {"model": PredictionAnswer}},
)
async def predict(
    name: str,
    request: Request,
    user: Viewer,
    body: Annotated[list[dict[str, Any]] | PredictionRequest, Body()],
    x_routing_key: Annotated[str | None, Header(max_length=1000)] = None,
) -> JSONResponse:
    """Answer the records with the deployment's current definition."""
    if isinstance(body, PredictionRequest):
        records, key = body.records, body.routing_key
    else:
        records, key = body, None
    answer = await request.app.state.runtime.predict_async(
        name,
        records,
        routing_key=x_routing_key if x_routing_key is not None else key,
        revision=getattr(request.state, "audit_revision", None),
        arrival=getattr(request.state, "arrival", None),
    )
    return JSONResponse(answer.to_dict())


class FeedbackAnswer(BaseModel):
    """Feedback kept: whether it was joined to its recorded answer or waits for it."""

    deployment: str
    request_id: str
    status: Literal["joined", "waiting"] | None = Field(
        default=None,
        description="joined: to its recorded answer; waiting: for its answer's event, "
        "joined when it is written (or counted an unknown id when not in time); a data "
        "plane answers the status its control plane gives (null only from a control plane "
        "too old to give one)",
    )


@router.post(
    "/{name}/feedback",
    status_code=201,
    response_model=FeedbackAnswer,
    responses=error_responses(404, 409, 429),
)
def feedback(name: str, request: Request, user: Viewer, body: FeedbackRequest) -> dict:
    """Keep the label and/or reward of the answer ``request_id``.

    201: kept, ``status`` ``joined`` to its recorded answer, or ``waiting`` for it when its
    answer's event is not in the store yet (a worker writes events in batches) and a
    deployment of the name stands or stood; it is joined when the event is written.
    404: no deployment of the name stands or stood. 409: the answer has a reward already,
    or feedback of the same part (label, reward) waits for it already. 413: the body is
    over the server's bound. 422: a field breaks its rule; a label that waits is at most
    16 KiB of JSON (:data:`opsloop.store.waiting_feedback.MAX_WAITING_LABEL_BYTES`), the
    message names ``label``. 429: 1,000 feedback of the caller at this deployment, 5,000
    of the caller across all deployments, or 10,000 in all at this deployment wait for
    their answers already; the message names the bound, and Retry-After says when the
    oldest ends its wait (see :mod:`opsloop.store.waiting_feedback`); a data plane on a
    control plane passes the control plane's on. Any reader of predictions may send
    feedback: a data plane's clients do, with a viewer's token; the bound per user keeps
    one from taking the room of others."""
    status = request.app.state.runtime.feedback(
        name,
        body.request_id,
        label=body.label,
        reward=body.reward,
        actor=user.name,
        wait_s=FEEDBACK_WAIT_S,
    )
    return {"deployment": name, "request_id": body.request_id, "status": status}
