"""An operation table: each method of a service's Protocol, as it crosses HTTP.

A service (deployments, the registry, tracking) names its operations once, in a
``typing.Protocol`` whose parameters carry the wire's bounded types
(:mod:`opsloop.contract.wire_types`). Its :class:`ServiceTable` adds, for each method, the
verb, the path, the role a caller needs and how the answer is written (:class:`Answer`).
Everything else is derived from the Protocol's signature: the parameters in the path's
``{braces}`` travel in the path, those listed in ``query`` in the query string, the rest in
a JSON body whose model (:meth:`ServiceTable.body_model`) is built from the annotations and
defaults, and ``actor`` is never sent (the token's owner acts). The server's routes
(:mod:`opsloop.server.operation_routes`) and the HTTP client (:func:`~opsloop.contract.
http_client.over_http`) are both generated from the table, so adding a parameter to an
operation is one edit, in the Protocol (and the local implementation that satisfies it).

Written here rather than taken from a library: FastAPI generates routes from functions and
OpenAPI generators generate clients from documents, but nothing generates both from one
Python signature while keeping the library's own records as the answers.

>>> from typing import Protocol
>>> from opsloop.contract.wire_types import Name
>>> class Greeter(Protocol):
...     def greet(self, name: Name, greeting: str = "hello") -> str:
...         '''A greeting for ``name``.'''
>>> table = ServiceTable(Greeter, [
...     Operation("greet", "POST", "/greetings/{name}", answer=wrapped("text", str))])
>>> parts = table.parameters(table.operations[0])
>>> parts.path, parts.query, parts.body, parts.acting
(('name',), (), ('greeting',), False)
>>> table.body_model(table.operations[0])(greeting="hi").model_dump()
{'greeting': 'hi'}
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from opsloop.errors import InvalidArgumentError

VERBS = ("GET", "PUT", "POST", "DELETE", "PATCH")
#: The least roles an operation may ask of its caller at the route (the function checks
#: again, and may ask more: an approval needs an approver).
ROLES = ("viewer", "editor", "admin")
#: The parameter that names the acting user: set from the caller's token, never sent.
ACTOR = "actor"
_PATH_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def _passed(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Answer:
    """How an operation's result crosses the wire: the response model that documents it,
    ``encode`` from the library's result to the JSON document, ``decode`` back.

    ``model=None`` is an answer without a body (HTTP 204). ``bodiless_as_none``: a server
    that answers this operation without a body (one older than its document, which did the
    work all the same) is read as ``decode(None)``; for every other answer an empty body is
    an error, as a proxy's truncated answer must be.

    >>> from opsloop.serving.deployment_records import Variant
    >>> answer = record(Variant)
    >>> answer.decode(answer.encode(Variant("a", "m", version=2))) == Variant("a", "m", version=2)
    True
    """

    model: Any
    encode: Callable[[Any], Any] = _passed
    decode: Callable[[Any], Any] = _passed
    bodiless_as_none: bool = False


#: The answer of an operation that returns nothing.
NO_CONTENT = Answer(None)


def record(kind: Any) -> Answer:
    """The answer for a result record with ``to_dict``/``from_dict`` (a frozen dataclass whose
    fields are its document's, so the dataclass itself is the response model).

    >>> from opsloop.serving.deployment_records import Variant
    >>> record(Variant).encode(Variant("a", "m", alias="prod"))["alias"]
    'prod'
    """
    return Answer(kind, kind.to_dict, kind.from_dict)


def wrapped(
    key: str,
    kind: Any,
    encode: Callable[[Any], Any] = _passed,
    decode: Callable[[Any], Any] = _passed,
    *,
    title: str | None = None,
) -> Answer:
    """The answer ``{key: value}``: a result wrapped in an object under one key, so the
    document can grow fields later without breaking its readers.

    >>> answer = wrapped("approvals", int, title="ApprovalCount")
    >>> answer.encode(2), answer.decode({"approvals": 2})
    ({'approvals': 2}, 2)
    >>> answer.model.model_json_schema()["required"], answer.model(approvals="two")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ApprovalCount
    ...
    """
    title = title or f"{key.title().replace('_', '')}Answer"
    model = create_model(title, **{key: (kind, ...)})  # type: ignore[call-overload]
    return Answer(model, lambda result: {key: encode(result)}, lambda doc: decode(doc[key]))


def records(key: str, kind: Any, *, model: Any = None, title: str | None = None) -> Answer:
    """The answer ``{key: [document, ...]}`` for a tuple of result records (``kind`` with
    ``to_dict``/``from_dict``); ``model`` documents one document when it is not ``kind``.

    >>> from opsloop.serving.deployment_records import Variant
    >>> answer = records("variants", Variant, title="Variants")
    >>> found = (Variant("a", "m", version=1), Variant("b", "m", alias="prod"))
    >>> answer.decode(answer.encode(found)) == found
    True
    """
    document: Any = model if model is not None else kind
    return wrapped(
        key,
        list[document],
        lambda found: [entry.to_dict() for entry in found],
        lambda rows: tuple(kind.from_dict(row) for row in rows),
        title=title,
    )


def optional_record(key: str, kind: Any, *, title: str | None = None) -> Answer:
    """The answer ``{key: document | null}`` for a result record that may be absent.

    >>> from opsloop.serving.deployment_records import Variant
    >>> answer = optional_record("variant", Variant, title="MaybeVariant")
    >>> answer.encode(None), answer.decode(answer.encode(Variant("a", "m", version=1))).ref
    ({'variant': None}, 'm/1')
    """
    return wrapped(
        key,
        kind | None,
        lambda found: None if found is None else found.to_dict(),
        lambda document: None if document is None else kind.from_dict(document),
        title=title,
    )


@dataclass(frozen=True)
class Operation:
    """One method of a service on the wire.

    ``method`` is the Protocol's method, ``verb`` and ``path`` (under ``/api/v1``; a
    ``{name}`` or ``{name:path}`` part is the parameter of that name) where it is served,
    ``role`` the least role that may call it (the library checks finer rules itself),
    ``query`` the parameters sent in the query string, ``answer`` how the result is written,
    and ``check`` an optional check the client runs on the arguments before sending, so
    that a broken argument is named without a round trip (the server checks again).
    ``created`` answers 201 instead of 200 (the operation makes something). ``reads_only``
    marks a ``POST`` that changes nothing (a search whose question is too long for a query
    string), so a server that lets requests without a token read lets them call it as it
    lets them ``GET``; it names no acting user. ``caller`` is
    the parameter the server sets to the caller's name and the client never sends
    (``actor`` unless the method names it otherwise, such as a run's ``user``).
    ``whole_body`` names the one body parameter whose document is the whole JSON body,
    rather than a field of it. ``secret`` marks an answer that carries a secret (a new
    token): the server tells every cache not to keep it (``Cache-Control: no-store``).

    Where a method's Python form and its wire form differ otherwise: ``local_only``
    parameters never travel (a model object; the server's method gets their default),
    ``wire`` gives the wire's annotation of a body parameter whose Python annotation is
    wider, and ``renamed`` gives a query parameter its name on the wire.

    >>> Operation("get", "GET", "/things/{name}", answer=wrapped("size", int)).status
    200
    >>> Operation("drop", "DELETE", "/things/{name}").status
    204
    >>> Operation("add", "POST", "/things", answer=wrapped("id", int), created=True).status
    201
    >>> Operation("get", "FETCH", "/things/{name}")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: verb: must be one of GET, PUT, POST, DELETE, PATCH, got...
    >>> Operation("find", "POST", "/things/search", reads_only=True).reads
    True
    >>> Operation("get", "GET", "/things/{name}").reads, Operation("drop", "DELETE", "/t").reads
    (True, False)
    >>> Operation("drop", "DELETE", "/things/{name}", reads_only=True)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: reads_only: only a POST may be marked (a GET reads ...
    """

    method: str
    verb: str
    path: str
    role: str = "viewer"
    answer: Answer = NO_CONTENT
    query: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    created: bool = False
    reads_only: bool = False
    caller: str = ACTOR
    whole_body: str | None = None
    local_only: tuple[str, ...] = ()
    wire: Mapping[str, Any] = field(default_factory=dict, compare=False)
    renamed: Mapping[str, str] = field(default_factory=dict)
    secret: bool = False

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise InvalidArgumentError(
                f"verb: must be one of {', '.join(VERBS)}, got {self.verb!r}"
            )
        if self.role not in ROLES:
            raise InvalidArgumentError(
                f"role: must be one of {', '.join(ROLES)}, got {self.role!r}"
            )
        if not self.path.startswith("/"):
            raise InvalidArgumentError(f"path: must start with '/', got {self.path!r}")
        if self.reads_only and self.verb != "POST":
            raise InvalidArgumentError(
                f"reads_only: only a POST may be marked (a GET reads already, a {self.verb} "
                "changes)"
            )

    @property
    def reads(self) -> bool:
        """Whether the operation only reads: a ``GET``, or a ``POST`` marked ``reads_only``."""
        return self.verb == "GET" or self.reads_only

    @property
    def status(self) -> int:
        """The success status: 204 for an answer without a body, else 201 for an operation
        that creates, else 200."""
        if self.answer.model is None:
            return 204
        return 201 if self.created else 200

    def wire_name(self, parameter: str) -> str:
        """The name ``parameter`` has on the wire.

        >>> Operation("audit", "GET", "/audit", query=("name",),
        ...           renamed={"name": "model"}).wire_name("name")
        'model'
        """
        return self.renamed.get(parameter, parameter)

    def path_parameters(self) -> tuple[str, ...]:
        """The parameters named in the path, in order.

        >>> Operation("x", "GET", "/a/{name:path}/b/{version}").path_parameters()
        ('name', 'version')
        """
        return tuple(_PATH_PARAMETER.findall(self.path))


@dataclass(frozen=True)
class Parameters:
    """Where each parameter of an operation travels (see :meth:`ServiceTable.parameters`)."""

    path: tuple[str, ...]
    query: tuple[str, ...]
    body: tuple[str, ...]
    acting: bool
    signature: inspect.Signature
    hints: Mapping[str, Any]
    caller: str = ACTOR


class ServiceTable:
    """A service's Protocol and its operations, checked against each other.

    Every public method of the Protocol must have exactly one operation, and every
    operation's path and query parameters must be parameters of its method, so the table
    cannot silently leave a method off the wire.

    ``composed`` names the methods whose client is written by hand on top of the wire
    (splitting, retrying, streaming bytes, verifying hashes):
    :func:`~opsloop.contract.http_client.over_http` leaves them to the client class and
    checks that it defines them. A composed method may still have an operation (its route
    is generated) or none (it uses routes outside the table).

    >>> from typing import Protocol
    >>> class Things(Protocol):
    ...     def get(self, name: str) -> str: ...
    ...     def drop(self, name: str) -> None: ...
    >>> ServiceTable(Things, [Operation("get", "GET", "/things/{name}")])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: Things: methods without an operation: drop
    >>> ServiceTable(Things, [Operation("get", "GET", "/things/{name}")], composed=["drop"])
    ServiceTable(Things, 1 operations)

    An operation marked ``reads_only`` may not name an acting user:

    >>> class Finder(Protocol):
    ...     def find(self, text: str, *, actor: str | None = None) -> str: ...
    >>> ServiceTable(Finder, [Operation("find", "POST", "/find", reads_only=True)])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: Finder.find: reads_only, but it names the acting user...
    """

    def __init__(
        self, protocol: type, operations: Iterable[Operation], *, composed: Iterable[str] = ()
    ) -> None:
        self.protocol = protocol
        self.operations = tuple(operations)
        self.composed = frozenset(composed)
        self.name = protocol.__name__
        methods = {
            name
            for name, value in vars(protocol).items()
            if callable(value) and not name.startswith("_")
        }
        given = [operation.method for operation in self.operations]
        twice = sorted({name for name in given if given.count(name) > 1})
        if twice:
            raise InvalidArgumentError(f"{self.name}: operations given twice: {', '.join(twice)}")
        if strange := sorted(self.composed - methods):
            raise InvalidArgumentError(
                f"{self.name}: composed names that are not methods: {', '.join(strange)}"
            )
        if missing := sorted(methods - set(given) - self.composed):
            raise InvalidArgumentError(
                f"{self.name}: methods without an operation: {', '.join(missing)}"
            )
        if unknown := sorted(set(given) - methods):
            raise InvalidArgumentError(
                f"{self.name}: operations that are not methods: {', '.join(unknown)}"
            )
        for operation in self.operations:
            # Refuses a path or query name the method lacks.
            parts = self.parameters(operation)
            if operation.reads_only and parts.acting:
                raise InvalidArgumentError(
                    f"{self.name}.{operation.method}: reads_only, but it names the acting user "
                    f"({operation.caller!r}), as a change does"
                )

    def __repr__(self) -> str:
        return f"ServiceTable({self.name}, {len(self.operations)} operations)"

    def operation(self, method: str) -> Operation:
        """The operation of ``method``.

        >>> from typing import Protocol
        >>> class Things(Protocol):
        ...     def get(self, name: str) -> str: ...
        >>> ServiceTable(Things, [Operation("get", "GET", "/things/{name}")]).operation(
        ...     "get").verb
        'GET'
        """
        for operation in self.operations:
            if operation.method == method:
                return operation
        raise InvalidArgumentError(f"{self.name}: no operation {method!r}")

    @cached_property
    def _hints(self) -> dict[str, dict[str, Any]]:
        return {
            operation.method: typing.get_type_hints(
                getattr(self.protocol, operation.method), include_extras=True
            )
            for operation in self.operations
        }

    def parameters(self, operation: Operation) -> Parameters:
        """Where each parameter of ``operation`` travels: path, query or body.

        >>> from typing import Protocol
        >>> class Things(Protocol):
        ...     def put(self, name: str, size: int, *, actor: str | None = None) -> None: ...
        >>> table = ServiceTable(Things, [Operation("put", "PUT", "/things/{name}")])
        >>> parts = table.parameters(table.operations[0])
        >>> parts.path, parts.body, parts.acting
        (('name',), ('size',), True)
        """
        signature = inspect.signature(getattr(self.protocol, operation.method))
        names = [name for name in signature.parameters if name != "self"]
        path = operation.path_parameters()
        for name in (*path, *operation.query, *operation.local_only):
            if name not in names or name == operation.caller:
                raise InvalidArgumentError(
                    f"{self.name}.{operation.method}: {name!r} is not a parameter it may send"
                )
        elsewhere = (*path, *operation.query, *operation.local_only)
        body = tuple(name for name in names if name not in elsewhere)
        acting = operation.caller in body
        body = tuple(name for name in body if name != operation.caller)
        if operation.whole_body is not None and body != (operation.whole_body,):
            raise InvalidArgumentError(
                f"{self.name}.{operation.method}: whole_body {operation.whole_body!r} must be "
                f"the only parameter in the body, which holds {', '.join(body) or 'none'}"
            )
        return Parameters(
            path=path,
            query=operation.query,
            body=body,
            acting=acting,
            signature=signature,
            hints=self._hints[operation.method],
            caller=operation.caller,
        )

    @cached_property
    def _body_models(self) -> dict[str, type[BaseModel] | None]:
        return {operation.method: self._make_body(operation) for operation in self.operations}

    def body_model(self, operation: Operation) -> type[BaseModel] | None:
        """The request body's model (``None`` when nothing travels in the body, or when the
        body is the ``whole_body`` parameter's own document): one field per body parameter,
        with the Protocol's annotation and default; unknown fields are refused, since a
        misspelt field is a client's mistake that should be seen."""
        return self._body_models[operation.method]

    def _make_body(self, operation: Operation) -> type[BaseModel] | None:
        parts = self.parameters(operation)
        if not parts.body or operation.whole_body is not None:
            return None
        fields: dict[str, Any] = {}
        for name in parts.body:
            parameter = parts.signature.parameters[name]
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[name] = (operation.wire.get(name, parts.hints.get(name, Any)), default)
        title = self.name.removesuffix("Service") + operation.method.title().replace("_", "")
        method = getattr(self.protocol, operation.method)
        model = create_model(f"{title}In", __config__=ConfigDict(extra="forbid"), **fields)
        model.__doc__ = (inspect.getdoc(method) or "").split("\n\n")[0]
        return model
