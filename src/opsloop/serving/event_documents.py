"""A prediction event as a document, and the one check every kept event passes.

A data plane on a control plane sends its events as :class:`EventDocument` (the wire's
type: what each field may be, its range and length), and a caller of
:meth:`~opsloop.serving.Deployments.record_events` from Python gives documents or
:class:`~.prediction_events.PredictionEvent` objects. :func:`checked_events` holds both
to the same type, so a field out of its range is refused the same way wherever the event
comes from: an :class:`~opsloop.errors.InvalidArgumentError` naming the event and its field
(``events[0].latency_ms``), the rule and the value given. The HTTP client runs it before
sending, so its caller reads the same message as a local caller; a server's body that
breaks the type is a 422 naming the same field and rule.

A call is checked whole before anything is kept: one bad event refuses the call, and the
events kept by earlier calls stay as they are.

>>> event = {"deployment": "api", "variant": "a", "role": "primary", "model": "m",
...          "version": 1, "request_id": "r1", "inputs": [{"x": 1}], "latency_ms": -1.0,
...          "at_ms": 1000}
>>> checked_events([event])
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: events[0].latency_ms: Input should be greater than or equal to 0, got -1.0
>>> [e.request_id for e in checked_events([{**event, "latency_ms": 0.5}])]
['r1']
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from functools import cache
from typing import Annotated, Any, Required

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import to_jsonable_python
from typing_extensions import TypedDict

from opsloop.contract.wire_types import Key, Name, OneOf, Text, TimeMs, Version, integral
from opsloop.data.excerpt import excerpt
from opsloop.errors import InvalidArgumentError
from opsloop.serving.automation import DISPOSITIONS
from opsloop.serving.prediction_events import PredictionEvent
from opsloop.serving.record_validation import MAX_RECORDS
from opsloop.tracking.limits import INT32_MAX

#: The most prediction events one ``record_events`` call sends over HTTP (a data plane's
#: batch); a local call may keep more in its one transaction.
MAX_EVENTS = 500
#: The most problems one refusal names.
MAX_PROBLEMS = 10

RequestId = Annotated[
    str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")
]
Count = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
#: A canary candidate's share of the traffic, strictly between 0 and 1.
Share = Annotated[float, Field(strict=True, gt=0, lt=1)]


@with_config(ConfigDict(extra="forbid"))
class EventDocument(TypedDict, total=False):
    """A prediction event on the wire (see
    :class:`~opsloop.serving.prediction_events.PredictionEvent`). Its ``inputs`` hold at
    most :data:`~.record_validation.MAX_RECORDS` records, the most one request may carry."""

    deployment: Required[Key]
    variant: Required[Key]
    role: Required[Annotated[str, OneOf(("primary", "shadow"))]]
    model: Required[Name]
    version: Required[Version]
    request_id: Required[RequestId]
    routing_key: Annotated[Text, Field(max_length=1000)] | None
    inputs: Required[Annotated[list[dict[Name, Any]], Field(max_length=MAX_RECORDS)]]
    output: dict[Name, Any] | None
    error: Text | None
    latency_ms: Required[Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]]
    at_ms: Required[TimeMs]
    disposition: Annotated[str, OneOf(DISPOSITIONS)] | None
    assertions: dict[Name, Count] | None
    generation: Count | None
    # The candidate's share a canary's split routed the request at (none otherwise).
    routed_share: Share | None
    # False where the split did not route the request (its variant named); left out
    # where it did or where unknown (see PredictionEvent.to_document).
    routed: Annotated[bool, Field(strict=True)] | None


#: A data plane's batch of events on the wire.
Events = Annotated[Sequence[EventDocument], Field(max_length=MAX_EVENTS)]

#: What an event's document may leave out.
_UNSAID = {"routing_key": None, "output": None, "error": None}


@cache
def _documents() -> TypeAdapter:
    return TypeAdapter(list[EventDocument])


def _where(location: Sequence[int | str]) -> str:
    """A validation error's location as a caller names the field: ``events[0].inputs[2]``.

    >>> _where((0, "assertions", "rule", "[key]"))
    'events[0].assertions.rule.[key]'
    """
    return "events" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location)


def _problem(error: Mapping[str, Any]) -> str:
    said = f"{_where(error['loc'])}: {error['msg']}"
    if error["type"] == "missing":
        return said
    return f"{said}, got {excerpt(error.get('input'))}"


def _json_value(value: Any) -> Any:
    """What JSON writes for a value pydantic does not know: a numpy number as the number
    it holds, an array as its list, anything else as its text (as the store keeps it).

    >>> _json_value(np.int64(3)), _json_value(np.array([0.5])), _json_value(object)
    (3, [0.5], "<class 'object'>")
    """
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def _said(event: PredictionEvent | Mapping[str, Any]) -> Any:
    """The document of ``event``: the fields of a :class:`PredictionEvent` that say
    something (all of them, ``routed`` too, as kept here); a mapping as given."""
    if isinstance(event, PredictionEvent):
        said = {f.name: getattr(event, f.name) for f in fields(event)}
        return {name: value for name, value in said.items() if value is not None}
    return event


def checked_events(events: Sequence[PredictionEvent | Mapping[str, Any]]) -> list[PredictionEvent]:
    """``events`` (prediction events, or their documents) as prediction events, each held
    to :class:`EventDocument` as a body that crossed HTTP is (numpy values and tuples read
    as the JSON values they write); an :class:`~opsloop.errors.InvalidArgumentError`
    naming each broken field (the first :data:`MAX_PROBLEMS`), its rule and the value
    given, before any is kept. A :class:`PredictionEvent` is kept as given.

    >>> checked_events([{"deployment": "api", "variant": "a"}])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: events[0].role: Field required; events[0].model: Field required; ...
    >>> checked_events([PredictionEvent("api", "s", "primary", "m", 1, "r", None, [], None,
    ...                                 None, 1.0, 5, routed_share=1.5)])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: events[0].routed_share: Input should be less than 1, got 1.5
    """  # noqa: E501 - a doctest's expected output is one line
    if isinstance(events, Mapping | PredictionEvent) or not isinstance(events, Sequence):
        raise InvalidArgumentError(
            f"events: give a list of prediction events, got {type(events).__name__}"
        )
    said = [_said(event) for event in events]
    try:
        documents = _documents().validate_python(to_jsonable_python(said, fallback=_json_value))
    except ValidationError as error:
        problems = [_problem(e) for e in error.errors(include_url=False)]
        more = len(problems) - MAX_PROBLEMS
        shown = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise InvalidArgumentError(shown) from None
    return [
        event if isinstance(event, PredictionEvent) else PredictionEvent(**{**_UNSAID, **document})
        for event, document in zip(events, documents, strict=True)
    ]


def check_event_arguments(arguments: Mapping[str, Any]) -> None:
    """The HTTP client's check of ``record_events``' arguments before sending them
    (:func:`checked_events`), so that its caller reads the local refusal.

    >>> check_event_arguments({"events": [{"deployment": "api"}]})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: events[0].variant: Field required; ...
    >>> check_event_arguments({"events": [{}] * 501})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: events: at most 500 events a call (the server's bound), got 501
    """  # noqa: E501 - a doctest's expected output is one line
    events = arguments["events"]
    # The server's bound of one call (Events), read here before anything is sent.
    if isinstance(events, Sequence) and len(events) > MAX_EVENTS:
        raise InvalidArgumentError(
            f"events: at most {MAX_EVENTS} events a call (the server's bound), got {len(events)}"
        )
    checked_events(events)


__all__ = [
    "MAX_EVENTS",
    "Count",
    "EventDocument",
    "Events",
    "RequestId",
    "Share",
    "check_event_arguments",
    "checked_events",
]
