"""The FastAPI app: tracking, artifact, registry and deployment routers under /api/v1/.

:func:`create_app` wires one database and one artifact store into the routers. A client's
mistake never becomes a 500: a ``ValueError`` raised by the store (a non-finite metric, a
param changed, a bad filter, a deployment breaking a rule) is a 422 whose message names the
field; an unknown run, experiment, model or deployment is a 404; a refused permission a 403;
an artifact whose bytes no longer match its hash a 409 naming both hashes. Bodies that break
the wire models get FastAPI's 422 with the field's location (the wire models fix every type,
so a ``TypeError`` can only be a server bug and stays a 500).

>>> from fastapi.testclient import TestClient
>>> from opsloop.store import Database
>>> client = TestClient(create_app(Database("sqlite://")))
>>> client.get("/api/v1/health").json()["status"]
'ok'
>>> response = client.get("/api/v1/runs/nope")
>>> response.status_code, response.json()["detail"]
(404, "unknown run id 'nope'")
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from opsloop import __version__
from opsloop.registry import ModelRegistry, PermissionDenied, UnknownModelError
from opsloop.server import artifact_routes, deployment_routes, registry_routes, tracking_routes
from opsloop.server.limits import RequestLimits, install_request_limits
from opsloop.serving import Deployments, UnknownDeploymentError
from opsloop.store import ArtifactStore, Database, TamperedArtifactError, open_database
from opsloop.store.location import artifact_uri
from opsloop.tracking.capture import current_user
from opsloop.tracking.local_store import LocalTrackingStore, UnknownExperimentError, UnknownRunError


def _error(status: int, error: BaseException, message: str | None = None) -> JSONResponse:
    # "error" names the exception class, so a client can raise the same one again.
    return JSONResponse(
        {"detail": str(error) if message is None else message, "error": type(error).__name__},
        status_code=status,
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def not_found(_request: Request, error: Exception) -> JSONResponse:
        # str() of an OSError made with one argument is that argument; keep it plain.
        message = str(error.args[0]) if error.args else str(error)
        return _error(404, error, message)

    async def tampered(_request: Request, error: TamperedArtifactError) -> JSONResponse:
        response = _error(409, error)
        response.headers["X-Opsloop-Expected-Sha256"] = error.expected
        response.headers["X-Opsloop-Found-Sha256"] = error.found
        return response

    async def denied(_request: Request, error: Exception) -> JSONResponse:
        return _error(403, error)

    async def invalid(_request: Request, error: Exception) -> JSONResponse:
        return _error(422, error)

    for kind in (
        UnknownRunError,
        UnknownExperimentError,
        UnknownModelError,
        UnknownDeploymentError,
        FileNotFoundError,
    ):
        app.add_exception_handler(kind, not_found)
    app.add_exception_handler(TamperedArtifactError, tampered)
    app.add_exception_handler(PermissionDenied, denied)
    # Starlette picks the most specific handler class first, so the classes above win.
    app.add_exception_handler(ValueError, invalid)


def create_app(
    database: Database | str | None = None,
    artifacts: ArtifactStore | str | None = None,
    *,
    allow_embedded: bool = True,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """The opsloop REST app on ``database`` and ``artifacts`` (defaults: the configured store).

    ``allow_embedded`` lets requests without a token act as the OS user while the store has
    no users; ``opsloop server`` sets it only when bound to a loopback address. ``limits``
    bounds request bodies (default: :meth:`RequestLimits.from_environment`).

    >>> from opsloop.store import Database
    >>> app = create_app(Database("sqlite://"), allow_embedded=False)
    >>> app.state.allow_embedded
    False
    """
    if database is None or isinstance(database, str):
        database = open_database(database)
    if artifacts is None or isinstance(artifacts, str):
        artifacts = ArtifactStore(artifacts or artifact_uri())
    app = FastAPI(title="opsloop", version=__version__)
    app.state.db = database
    app.state.allow_embedded = allow_embedded
    app.state.has_users = False
    app.state.os_user = current_user()
    app.state.tracking = LocalTrackingStore(database, artifacts)
    app.state.registry = ModelRegistry(database, artifacts, actor="server")
    app.state.deployments = Deployments(database, actor="server")
    _install_error_handlers(app)
    install_request_limits(app, limits)

    @app.get("/api/v1/health")
    def health() -> dict:
        """Liveness and the store's dialect (no authentication needed)."""
        return {"status": "ok", "version": __version__, "database": database.dialect}

    app.include_router(tracking_routes.router)
    app.include_router(artifact_routes.router)
    app.include_router(registry_routes.router)
    app.include_router(deployment_routes.router)
    return app
