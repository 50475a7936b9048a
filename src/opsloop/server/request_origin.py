"""Each request's origin for the audit log: the client's address, then the token's id.

:class:`RecordOrigin` opens a :class:`~opsloop.store.audit_origin.RequestOrigin` around each
HTTP request, with the client's address from the connection (the peer the server sees;
behind a proxy, the proxy's). The token lookup (:mod:`.identity`) adds the id of the token
the request authenticated with, so every audited change the request makes records ``via:
http``, that token and that address (see :mod:`opsloop.store.audit_origin`).

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from opsloop.store.audit_origin import current_origin
>>> app = FastAPI()
>>> @app.get("/origin")
... def origin() -> str:
...     return current_origin()
>>> install_request_origin(app)
>>> TestClient(app).get("/origin").json()
'{"client":"testclient","token":null,"via":"http"}'
"""

from __future__ import annotations

from fastapi import FastAPI

from opsloop.store.audit_origin import request_origin


class RecordOrigin:
    """ASGI middleware serving each HTTP request inside its own request origin (see
    :func:`install_request_origin`).

    >>> import asyncio
    >>> from opsloop.store.audit_origin import current_request
    >>> seen = []
    >>> async def app(scope, receive, send):
    ...     seen.append(current_request())
    >>> asyncio.run(RecordOrigin(app)({"type": "http", "client": ("::1", 1)}, None, None))
    >>> asyncio.run(RecordOrigin(app)({"type": "lifespan"}, None, None))
    >>> seen[0].client, seen[1]
    ('::1', None)
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        with request_origin(None if not client else str(client[0])):
            await self.app(scope, receive, send)


def install_request_origin(app: FastAPI) -> None:
    """Record the origin of the requests ``app`` serves (see the module).

    >>> from fastapi.testclient import TestClient
    >>> from opsloop.store.audit_origin import current_request
    >>> app = FastAPI()
    >>> @app.get("/client")
    ... def client() -> str | None:
    ...     return current_request().client
    >>> install_request_origin(app)
    >>> TestClient(app, client=("10.1.2.3", 4000)).get("/client").json()
    '10.1.2.3'

    """
    app.add_middleware(RecordOrigin)
