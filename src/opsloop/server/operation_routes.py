"""The REST routes of a service, generated from its operation table.

For each :class:`~opsloop.contract.operation.Operation` of a
:class:`~opsloop.contract.operation.ServiceTable`, :func:`operation_router` adds one route:
the path's parameters bounded as the Protocol's annotations say, the query's parameters
likewise, the rest taken from a JSON body whose model the table derives, the caller's role
checked by :mod:`.identity` (an operation marked ``reads_only`` as a read), the caller's
name passed as ``actor`` (or the operation's ``caller`` parameter) where the method takes
one, a body whose fields all have defaults optional, an answer marked ``secret`` sent with
``Cache-Control: no-store`` (declared in the OpenAPI document on its success response,
:data:`NO_STORE`), and the answer written by the operation's
:class:`~opsloop.contract.operation.Answer` with its model declared, so the OpenAPI
document describes every answer. Errors are the library's, mapped to HTTP by
:mod:`.errors`.

>>> from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS
>>> router = operation_router(DEPLOYMENT_OPERATIONS, lambda request: None)
>>> sorted({route.path for route in router.routes})[:2]
['/api/v1/deployments', '/api/v1/deployments/{name:path}']
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import annotated_types
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.params import Param
from pydantic.fields import FieldInfo

from opsloop.contract.operation import Operation, ServiceTable
from opsloop.registry.users import ROLES
from opsloop.server.identity import require_role

# The least role of each operation, checked before its function runs (which checks again);
# an operation that only reads though sent as POST is open to whoever may read.
_ROLE = {
    (role, reads_only): require_role(role, reads_only=reads_only)
    for role in ROLES
    for reads_only in (False, True)
}
_BOUNDS = {
    annotated_types.MaxLen: "max_length",
    annotated_types.MinLen: "min_length",
    annotated_types.Ge: "ge",
    annotated_types.Le: "le",
    annotated_types.Gt: "gt",
    annotated_types.Lt: "lt",
}


def _unwrapped(annotation: Any) -> tuple[Any, bool]:
    """``annotation`` without ``| None``, and whether it had it."""
    arguments = typing.get_args(annotation)
    if type(None) in arguments and typing.get_origin(annotation) in (typing.Union, _UnionType):
        rest = [argument for argument in arguments if argument is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return annotation, False


_UnionType = type(int | None)


def _text_parameter(annotation: Any, where: Callable[..., Param], alias: str | None = None) -> Any:
    """A wire type as a path or query parameter: the same bounds, without ``strict`` (text
    arrives, and ``"3"`` is the number 3 there).

    >>> from opsloop.contract.wire_types import Name
    >>> bound = _text_parameter(Name | None, Query)
    >>> bound.__metadata__[0].metadata[0].max_length
    250
    >>> from opsloop.contract.wire_types import Sha256
    >>> _text_parameter(Sha256, Query).__metadata__[0].metadata[0].pattern
    '^[0-9a-f]{64}$'
    """
    base, optional = _unwrapped(annotation)
    bounds: dict[str, Any] = {}
    extra: list[Any] = []
    if typing.get_origin(base) is Annotated:
        base, *metadata = typing.get_args(base)
        for item in metadata:
            if isinstance(item, FieldInfo):
                for bound in item.metadata:
                    for kind, keyword in _BOUNDS.items():
                        if isinstance(bound, kind):
                            bounds[keyword] = getattr(bound, keyword)
                    # pydantic keeps a pattern in its own metadata class, not annotated_types'.
                    if getattr(bound, "pattern", None) is not None:
                        bounds["pattern"] = bound.pattern
                # A rule the library checks itself, stated for the document (a key's
                # characters, no NUL).
                if isinstance(item.json_schema_extra, dict):
                    bounds["json_schema_extra"] = item.json_schema_extra
            else:
                extra.append(item)
    if alias is not None:
        bounds["alias"] = alias
    return Annotated[(base | None) if optional else base, where(**bounds), *extra]  # type: ignore[valid-type]


#: The header an answer carrying a secret is sent with, as the OpenAPI document states it.
NO_STORE = {
    "Cache-Control": {
        "description": "The answer carries a secret: no proxy or browser may keep a copy.",
        "schema": {"type": "string", "enum": ["no-store"]},
    }
}


def _endpoint(
    table: ServiceTable, operation: Operation, service: Callable[[Request], Any]
) -> Callable[..., Any]:
    parts = table.parameters(operation)
    body_model = table.body_model(operation)
    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "caller",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[Any, Depends(_ROLE[operation.role, operation.reads_only])],
        ),
    ]
    for name in parts.path:
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_text_parameter(parts.hints.get(name, str), Path),
            )
        )
    for name in parts.query:
        default = parts.signature.parameters[name].default
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_text_parameter(
                    parts.hints.get(name, str),
                    Query,
                    alias=operation.renamed.get(name),
                ),
                default=default,
            )
        )
    if operation.secret:
        parameters.append(
            inspect.Parameter("response", inspect.Parameter.KEYWORD_ONLY, annotation=Response)
        )
    if body_model is not None:
        # A body whose every field has a default may be left out, as ``{}``.
        optional = not any(field.is_required() for field in body_model.model_fields.values())
        parameters.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=body_model,
                **({"default": None} if optional else {}),
            )
        )
    elif operation.whole_body is not None:
        parameters.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[parts.hints.get(operation.whole_body, Any), Body()],
            )
        )

    def endpoint(request: Request, caller: Any, **values: Any) -> Any:
        body = values.pop("body", None)
        response = values.pop("response", None)
        if response is not None:
            # The answer carries a secret: no proxy or browser may keep a copy.
            response.headers["Cache-Control"] = "no-store"
        arguments = dict(values)
        if operation.whole_body is not None:
            arguments[operation.whole_body] = body
        elif body is not None:
            arguments.update({name: getattr(body, name) for name in parts.body})
        if parts.acting:
            arguments[parts.caller] = caller.name
        result = getattr(service(request), operation.method)(**arguments)
        return None if operation.answer.model is None else operation.answer.encode(result)

    endpoint.__name__ = f"{table.name}_{operation.method}"
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return endpoint


def operation_router(
    table: ServiceTable, service: Callable[[Request], Any], *, prefix: str = "/api/v1"
) -> APIRouter:
    """A router with one route per operation of ``table``, calling the implementation that
    ``service(request)`` gives (the app's local service, shared by its routes)."""
    router = APIRouter(prefix=prefix)
    for operation in table.operations:
        method = getattr(table.protocol, operation.method)
        summary, _, description = (inspect.getdoc(method) or "").partition("\n\n")
        router.add_api_route(
            operation.path,
            _endpoint(table, operation, service),
            methods=[operation.verb],
            response_model=operation.answer.model,
            status_code=operation.status,
            summary=summary.replace("\n", " ") or None,
            description=description or None,
            name=f"{table.name}.{operation.method}",
            operation_id=f"{table.name}_{operation.method}",
            responses={operation.status: {"headers": NO_STORE}} if operation.secret else None,
        )
    return router
