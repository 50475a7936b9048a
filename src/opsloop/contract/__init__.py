"""The service contract: one Protocol per service and one operation table that generates
both the server's routes and the HTTP client, so an operation is written once.

A service's Protocol names its operations and annotates their parameters with the wire's
bounded types (:mod:`.wire_types`); its :class:`ServiceTable` says how each crosses HTTP
(:mod:`.operation`). :func:`over_http` makes the client (:mod:`.http_client`); the server's
``opsloop.server.operation_routes`` makes the routes. Errors cross by the stable codes of
:mod:`opsloop.errors`.

>>> from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS
>>> DEPLOYMENT_OPERATIONS.operation("lineage").path
'/deployments/{name:path}/lineage'
"""

from opsloop.contract.http_client import over_http, path_segment, refuse_actor
from opsloop.contract.operation import (
    NO_CONTENT,
    Answer,
    Operation,
    ServiceTable,
    record,
    wrapped,
)

__all__ = [
    "NO_CONTENT",
    "Answer",
    "Operation",
    "ServiceTable",
    "over_http",
    "path_segment",
    "record",
    "refuse_actor",
    "wrapped",
]
