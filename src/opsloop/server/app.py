"""The FastAPI app: tracking, artifact, registry and deployment routers under /api/v1/.

:func:`create_app` wires one database and one artifact store into the routers. A client's
mistake never becomes a 500: a ``ValueError`` raised by the store (a non-finite metric, a
param changed, a bad filter, a deployment breaking a rule) is a 422 whose message names the
field; an unknown run, experiment, model or deployment is a 404; a refused permission a 403;
an artifact whose bytes no longer match its hash a 409 naming both hashes. Bodies that break
the wire models get FastAPI's 422 with the field's location (the wire models fix every type,
so a ``TypeError`` can only be a server bug and stays a 500).

Requests are refused before any route when their Host is not an allowed name (400, see
:mod:`.host_check`), when their body is not the route's type (415, see
:mod:`.content_types`), or, with no users in the store, when they lack the installation
token (401, see :mod:`.identity`). No origin may read answers cross-site unless listed in
``allowed_origins``.

>>> import os, tempfile
>>> from unittest import mock
>>> from fastapi.testclient import TestClient
>>> from opsloop.store import Database
>>> home = mock.patch.dict(os.environ, {"OPSLOOP_HOME": tempfile.mkdtemp()})
>>> _ = home.start()
>>> app = create_app(Database("sqlite://"))
>>> token = {"Authorization": f"Bearer {app.state.installation_token}"}
>>> client = TestClient(app, base_url="http://127.0.0.1:5005", headers=token)
>>> client.get("/api/v1/health").json()["status"]
'ok'
>>> response = client.get("/api/v1/runs/nope")
>>> response.status_code, response.json()["detail"]
(404, "unknown run id 'nope'")
>>> client.get("/api/v1/health", headers={"Host": "attacker.example:5005"}).status_code
400
>>> _ = home.stop()
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from opsloop import __version__
from opsloop.errors import InvalidArgumentError
from opsloop.registry import ModelRegistry, PermissionDenied, UnknownModelError
from opsloop.server import artifact_routes, deployment_routes, registry_routes, tracking_routes
from opsloop.server.content_types import require_json, require_octets
from opsloop.server.host_check import HostCheck
from opsloop.server.identity import store_has_users
from opsloop.server.limits import RequestLimits, install_request_limits
from opsloop.serving import Deployments, UnknownDeploymentError
from opsloop.store import ArtifactStore, Database, TamperedArtifactError, open_database
from opsloop.store.artifacts import MissingArtifactError
from opsloop.store.installation_token import ensure_installation_token
from opsloop.store.location import artifact_uri
from opsloop.tracking.capture import current_user
from opsloop.tracking.local_store import LocalTrackingStore, UnknownExperimentError, UnknownRunError


def _error(
    status: int, error: BaseException, message: str | None = None, name: str | None = None
) -> JSONResponse:
    # "error" names the exception class, so a client can raise the same one again.
    return JSONResponse(
        {
            "detail": str(error) if message is None else message,
            "error": type(error).__name__ if name is None else name,
        },
        status_code=status,
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def not_found(_request: Request, error: Exception) -> JSONResponse:
        # str() of an OSError made with one argument is that argument; keep it plain.
        message = str(error.args[0]) if error.args else str(error)
        return _error(404, error, message)

    async def missing(_request: Request, error: MissingArtifactError) -> JSONResponse:
        # Named as its base class, which clients raise again; the store's location stays here.
        return _error(404, error, f"no artifact with sha256 {error.sha256}", "FileNotFoundError")

    async def tampered(_request: Request, error: TamperedArtifactError) -> JSONResponse:
        # The message names both hashes, not where the server keeps the bytes.
        response = _error(
            409,
            error,
            f"artifact {error.expected} is refused: expected sha256 {error.expected}, "
            f"found sha256 {error.found}",
        )
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
    app.add_exception_handler(MissingArtifactError, missing)
    app.add_exception_handler(TamperedArtifactError, tampered)
    app.add_exception_handler(PermissionDenied, denied)
    # Starlette picks the most specific handler class first, so the classes above win.
    app.add_exception_handler(ValueError, invalid)


def create_app(
    database: Database | str | None = None,
    artifacts: ArtifactStore | str | None = None,
    *,
    allow_embedded: bool = True,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    allow_pickle: bool = False,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """The opsloop REST app on ``database`` and ``artifacts`` (defaults: the configured store).

    ``allow_embedded`` lets requests act as the OS user while the store has no users, if they
    carry the installation token (kept in ``$OPSLOOP_HOME/server-token``, created here when
    the store has no users); ``opsloop server`` sets it only when bound to a loopback
    address. ``allowed_hosts`` adds names to the loopback names the Host header may carry;
    ``allowed_origins`` names the web origins (``https://ui.example.com``) that may call
    the API from a browser (none by default). ``allow_pickle`` lets admins register pickled
    models (flavor ``python``), which run code on whoever loads them; without it nobody can
    (``opsloop server --allow-pickle``). ``limits`` bounds request bodies (default:
    :meth:`RequestLimits.from_environment`).

    >>> from opsloop.store import Database
    >>> app = create_app(Database("sqlite://"), allow_embedded=False)
    >>> app.state.allow_embedded, app.state.installation_token
    (False, None)
    >>> create_app(Database("sqlite://"), allow_embedded=False, allowed_hosts="ops.example")
    Traceback (most recent call last):
    ValueError: allowed_hosts must be a list of names, got the string 'ops.example'
    """
    for field, names in (("allowed_hosts", allowed_hosts), ("allowed_origins", allowed_origins)):
        # A string is iterable too, and would allow each of its characters.
        if isinstance(names, str):
            raise InvalidArgumentError(f"{field} must be a list of names, got the string {names!r}")
    if database is None or isinstance(database, str):
        database = open_database(database)
    if artifacts is None or isinstance(artifacts, str):
        artifacts = ArtifactStore(artifacts or artifact_uri())
    app = FastAPI(title="opsloop", version=__version__)
    app.state.db = database
    app.state.allow_embedded = allow_embedded
    app.state.has_users = store_has_users(database)
    embedded = allow_embedded and not app.state.has_users
    app.state.installation_token = ensure_installation_token() if embedded else None
    app.state.os_user = current_user()
    app.state.tracking = LocalTrackingStore(database, artifacts)
    app.state.registry = ModelRegistry(
        database, artifacts, actor="server", pickle_policy="admins" if allow_pickle else "refuse"
    )
    app.state.deployments = Deployments(database, actor="server")
    _install_error_handlers(app)
    install_request_limits(app, limits)

    @app.get("/api/v1/health")
    def health() -> dict:
        """Liveness and the store's dialect (no authentication needed)."""
        return {"status": "ok", "version": __version__, "database": database.dialect}

    json_bodies = [Depends(require_json)]
    app.include_router(tracking_routes.router, dependencies=json_bodies)
    app.include_router(artifact_routes.router, dependencies=[Depends(require_octets)])
    app.include_router(registry_routes.router, dependencies=json_bodies)
    app.include_router(deployment_routes.router, dependencies=json_bodies)
    origins = list(allowed_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Opsloop-Sha256"],
        )
    # Added last, so it runs first: a request for a name not allowed reaches nothing else.
    app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    return app
