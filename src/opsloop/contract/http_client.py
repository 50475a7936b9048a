"""The HTTP client of a service, generated from its operation table.

:func:`over_http` gives a client class one method per operation of a
:class:`~opsloop.contract.operation.ServiceTable`, with the Protocol's signature and
docstring: the call's arguments are bound to that signature, the path's parameters are
escaped into the path, the query's sent as the query string, the rest as the JSON body,
and the answer decoded into the library's own record. ``actor=`` is refused (over HTTP the
token's owner acts). The class supplies ``_call(verb, path, **httpx_arguments)``, which
sends one request and raises an error answer as the library's exception.

>>> path_segment("team/credit model"), path_segment("..")
('team/credit%20model', '%2E%2E')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic_core import to_jsonable_python

from opsloop.contract.operation import Operation, ServiceTable
from opsloop.errors import InvalidArgumentError

_PATH_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
Client = TypeVar("Client", bound=type)


def path_segment(text: str) -> str:
    """``text`` as a URL path (names may hold ``/``; ``.`` and ``..`` parts are escaped).

    >>> path_segment("a/./b")
    'a/%2E/b'
    """
    # "/" stays: the server matches names as paths. "." and ".." would be folded away by
    # URL normalisation, so they travel percent-encoded.
    parts = quote(text, safe="/").split("/")
    return "/".join("%2E" * len(part) if part in (".", "..") else part for part in parts)


def refuse_actor(actor: str | None) -> None:
    """Refuse ``actor=`` for a server, where the API token decides who acts.

    >>> refuse_actor("ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner of the API...
    """
    if actor is not None:
        raise InvalidArgumentError(
            "actor: over HTTP the acting user is the owner of the API token; open the registry "
            f"with that user's token instead of passing actor={actor!r}"
        )


def request_path(operation: Operation, arguments: dict[str, Any]) -> str:
    """``operation``'s path with its parameters' values escaped into it.

    >>> request_path(Operation("x", "GET", "/d/{name:path}/at"), {"name": "a b"})
    '/d/a%20b/at'
    """
    return _PATH_PARAMETER.sub(
        lambda found: path_segment(str(arguments[found.group(1)])), operation.path
    )


def answered_document(response: Any, *, bodiless_as_none: bool) -> Any:
    """The JSON document of ``response``. With ``bodiless_as_none``, ``None`` for an answer
    without a body (204, or an empty body): a server older than the operation's answer,
    which answered nothing, did the work all the same, so its answer must not fail the
    caller after the fact. Otherwise an empty body fails to decode, as it always did.

    >>> import httpx
    >>> answered_document(httpx.Response(204), bodiless_as_none=True)
    >>> answered_document(httpx.Response(200, json=[1]), bodiless_as_none=False)
    [1]
    >>> answered_document(httpx.Response(200), bodiless_as_none=False)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
    """
    if bodiless_as_none and (response.status_code == 204 or not response.content):
        return None
    return response.json()


def _calling(table: ServiceTable, operation: Operation) -> Callable[..., Any]:
    parts = table.parameters(operation)
    method = getattr(table.protocol, operation.method)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        bound = parts.signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self")
        if parts.acting:
            refuse_actor(arguments.pop(parts.caller))
        if operation.check is not None:
            operation.check(arguments)
        request: dict[str, Any] = {}
        query = {
            operation.wire_name(name): to_jsonable_python(arguments[name])
            for name in parts.query
            if arguments[name] is not None
        }
        if query:
            request["params"] = query
        if operation.whole_body is not None:
            request["json"] = to_jsonable_python(arguments[operation.whole_body])
        elif parts.body:
            request["json"] = {name: to_jsonable_python(arguments[name]) for name in parts.body}
        response = self._call(operation.verb, request_path(operation, arguments), **request)
        if operation.answer.model is None:
            return None
        answer = operation.answer
        return answer.decode(answered_document(response, bodiless_as_none=answer.bodiless_as_none))

    call.__name__ = operation.method
    call.__doc__ = method.__doc__
    call.__signature__ = parts.signature  # type: ignore[attr-defined]
    return call


def operation_call(table: ServiceTable, method: str) -> Callable[..., Any]:
    """The generated call of ``method``'s operation, for a composed method to build on
    (assigned to a private name of the client class).

    >>> from typing import Protocol
    >>> from opsloop.contract.operation import wrapped
    >>> class Sizes(Protocol):
    ...     def size(self, name: str) -> int: ...
    >>> table = ServiceTable(Sizes, [
    ...     Operation("size", "GET", "/sizes/{name}", answer=wrapped("size", int))],
    ...     composed=["size"])
    >>> import httpx
    >>> class Client:
    ...     _size = operation_call(table, "size")
    ...     def size(self, name):
    ...         return self._size(name.lower())
    ...     def _call(self, verb, path, **request):
    ...         return httpx.Response(200, json={"size": len(path)})
    >>> Client().size("ABC")
    10
    """
    return _calling(table, table.operation(method))


def over_http(table: ServiceTable) -> Callable[[Client], Client]:
    """A class decorator: give the class one HTTP-calling method per operation of ``table``.

    >>> from typing import Protocol
    >>> from opsloop.contract.operation import wrapped
    >>> class Echo(Protocol):
    ...     def echo(self, name: str, loud: bool = False) -> str:
    ...         '''``name``, shouted if ``loud``.'''
    >>> table = ServiceTable(Echo, [
    ...     Operation("echo", "POST", "/echo/{name}", answer=wrapped("text", str))])
    >>> import httpx
    >>> @over_http(table)
    ... class Recorder:
    ...     def _call(self, verb, path, **request):
    ...         self.sent = (verb, path, request)
    ...         return httpx.Response(200, json={"text": "HI"})
    >>> client = Recorder()
    >>> client.echo("a/b", loud=True), client.sent
    ('HI', ('POST', '/echo/a/b', {'json': {'loud': True}}))
    """

    def decorate(cls: Client) -> Client:
        # A composed method may come from a base class (a mixin shared with the local
        # implementation), but not from the Protocol, whose methods only document.
        if unwritten := sorted(
            name
            for name in table.composed
            if getattr(cls, name, None) in (None, getattr(table.protocol, name, None))
        ):
            raise InvalidArgumentError(
                f"{cls.__name__}: composed methods the class does not define: "
                f"{', '.join(unwritten)}"
            )
        for operation in table.operations:
            if operation.method in table.composed:
                continue
            call = _calling(table, operation)
            call.__qualname__ = f"{cls.__qualname__}.{operation.method}"
            setattr(cls, operation.method, call)
        return cls

    return decorate
