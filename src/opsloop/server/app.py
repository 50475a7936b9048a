"""The FastAPI app: tracking, artifact, registry, deployment and user routers under
/api/v1/, and the web dashboard (:mod:`opsloop.ui`) at ``/``.

:func:`create_app` wires one database and one artifact store into the routers. Errors are
answered in one place (:mod:`.errors`): a caller's mistake is an
:class:`~opsloop.errors.OpsloopError`, answered with its status (404 not found, 422 invalid
argument, 409 conflict, 403 denied, 401 unauthenticated) and a body naming its ``code``;
bodies that break the wire models get FastAPI's 422 with the field's location; anything else
is our defect, a 500 that carries an error id and nothing else, its traceback logged.

Requests are refused before any route when their Host is not an allowed name (400, see
:mod:`.host_check`), when their body is not the route's type (415, see
:mod:`.content_types`), or, with no users in the store, when they lack the installation
token (401, see :mod:`.identity`). No origin may read answers cross-site unless listed in
``allowed_origins``.

>>> from fastapi.testclient import TestClient
>>> from opsloop.store import Database
>>> app = create_app(Database("sqlite://"))
>>> token = {"Authorization": f"Bearer {app.state.installation_token}"}
>>> client = TestClient(app, base_url="http://127.0.0.1:5005", headers=token)
>>> client.get("/api/v1/health").json()["status"]
'ok'
>>> response = client.get("/api/v1/runs/nope")
>>> response.status_code, response.json()["detail"], response.json()["code"]
(404, "unknown run id 'nope'", 'not_found')
>>> client.get("/api/v1/health", headers={"Host": "attacker.example:5005"}).status_code
400
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from opsloop import __version__
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.registry import ModelRegistry
from opsloop.registry.dashboard_sessions import DashboardSessions, SessionLifetime
from opsloop.registry.local_users import LocalUsers
from opsloop.server import (
    artifact_routes,
    deployment_routes,
    monitoring_routes,
    registry_routes,
    review_routes,
    tracking_routes,
    user_routes,
)
from opsloop.server.content_types import require_json, require_octets
from opsloop.server.error_responses import EVERY_ROUTE, error_responses
from opsloop.server.errors import install_error_handlers
from opsloop.server.forwarded_headers import ForwardedByTrustedProxies
from opsloop.server.forwarded_headers import trusted_proxies as trusted_proxies_setting
from opsloop.server.host_check import HostCheck
from opsloop.server.identity import (
    Viewer,
    anonymous_access,
    caller,
    session_caller,
    store_has_users,
)
from opsloop.server.limits import RequestLimits, install_request_limits
from opsloop.server.openapi_document import exact_document
from opsloop.server.request_origin import install_request_origin
from opsloop.server.response_models import Caller, Health
from opsloop.serving import Deployments
from opsloop.serving.review_queue import ReviewQueue
from opsloop.store import ArtifactStore, Database, open_database
from opsloop.store.installation_token import ensure_installation_token
from opsloop.store.location import artifact_uri
from opsloop.tracking.capture import current_user
from opsloop.tracking.local_store import LocalTrackingStore
from opsloop.ui.mount import install_dashboard, secure_cookies_setting


def create_app(
    database: Database | str | None = None,
    artifacts: ArtifactStore | str | None = None,
    *,
    allow_embedded: bool = True,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    allow_pickle: bool = False,
    limits: RequestLimits | None = None,
    anonymous: str = "none",
    secure_cookies: str = "auto",
    trusted_proxies: Iterable[str] = (),
    session_lifetime: SessionLifetime | None = None,
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
    :meth:`RequestLimits.from_environment`). ``anonymous`` is what a request without a
    token may do, on the API and the dashboard alike: ``none`` (nothing) or ``read`` (read
    what a viewer reads, change nothing; see :mod:`.identity`).

    The dashboard's sessions last ``session_lifetime`` (idle and in all; default
    :class:`~opsloop.registry.dashboard_sessions.SessionLifetime`). ``secure_cookies``
    marks its cookies ``Secure``: ``always``, ``never``, or ``auto`` when the request came
    over HTTPS, which behind a proxy ending TLS only the proxy's ``X-Forwarded-Proto``
    tells; it is read from the peers in ``trusted_proxies`` (addresses or networks) only,
    as is ``X-Forwarded-For`` (:mod:`.forwarded_headers`).

    >>> from opsloop.store import Database
    >>> app = create_app(Database("sqlite://"), allow_embedded=False)
    >>> app.state.allow_embedded, app.state.installation_token
    (False, None)
    >>> create_app(Database("sqlite://"), allow_embedded=False, allowed_hosts="ops.example")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: allowed_hosts must be a list of names, got the string...
    >>> create_app(Database("sqlite://"), anonymous="all")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: anonymous: must be one of none, read, got 'all'
    """
    for field, names in (("allowed_hosts", allowed_hosts), ("allowed_origins", allowed_origins)):
        # A string is iterable too, and would allow each of its characters.
        if isinstance(names, str):
            raise InvalidArgumentError(f"{field} must be a list of names, got the string {names!r}")
    anonymous_access(anonymous)
    secure_cookies_setting(secure_cookies)
    proxies = trusted_proxies_setting(trusted_proxies)
    if database is None or isinstance(database, str):
        database = open_database(database)
    if artifacts is None or isinstance(artifacts, str):
        artifacts = ArtifactStore(artifacts or artifact_uri())
    app = FastAPI(title="opsloop", version=__version__)
    app.state.db = database
    app.state.allow_embedded = allow_embedded
    app.state.anonymous = anonymous
    app.state.has_users = store_has_users(database)
    embedded = allow_embedded and not app.state.has_users
    app.state.installation_token = ensure_installation_token() if embedded else None
    app.state.os_user = current_user()
    app.state.tracking = LocalTrackingStore(database, artifacts)
    app.state.registry = ModelRegistry(
        database, artifacts, actor="server", pickle_policy="admins" if allow_pickle else "refuse"
    )
    app.state.deployments = Deployments(database, actor="server")
    app.state.review_queue = ReviewQueue(database, actor="server")
    app.state.users = LocalUsers(database)
    # Policies act through the server's registry and deployments as the caller; a retrain is
    # queued for a follower (the server runs no user code).
    app.state.monitoring = Monitoring(
        database, actor="server", registry=app.state.registry, deployments=app.state.deployments
    )
    install_error_handlers(app)
    install_request_limits(app, limits)

    @app.get("/api/v1/health", response_model=Health, responses=error_responses(400))
    def health() -> dict:
        """Liveness and the store's dialect (no authentication needed)."""
        return {"status": "ok", "version": __version__, "database": database.dialect}

    @app.get(
        "/api/v1/whoami", response_model=Caller, responses=error_responses(*EVERY_ROUTE, 403, 404)
    )
    def whoami(user: Viewer) -> dict:
        """The user the request's token belongs to and their role: a data plane on another
        host checks its callers' tokens here (:mod:`.remote_identity`)."""
        return {"name": user.name, "role": user.role}

    json_bodies = [Depends(require_json)]
    # The error answers each router's routes can give, for the OpenAPI document.
    stored = error_responses(*EVERY_ROUTE, 403, 404)
    hashed = error_responses(*EVERY_ROUTE, 403, 404, 409)
    app.include_router(tracking_routes.router, dependencies=json_bodies, responses=stored)
    app.include_router(
        artifact_routes.router, dependencies=[Depends(require_octets)], responses=hashed
    )
    app.include_router(registry_routes.router, dependencies=json_bodies, responses=hashed)
    # A second label for an answer (feedback) and a second approval conflict.
    app.include_router(deployment_routes.router, dependencies=json_bodies, responses=hashed)
    app.include_router(review_routes.router, dependencies=json_bodies, responses=hashed)
    # A retrain request claimed by another follower, or reported twice.
    app.include_router(monitoring_routes.router, dependencies=json_bodies, responses=hashed)
    # The last enabled admin refused another role or disabling.
    app.include_router(user_routes.router, dependencies=json_bodies, responses=hashed)
    # The web pages at /, checking sessions with the same token rule as the API.
    install_dashboard(
        app,
        caller,
        sessions=DashboardSessions(database, session_lifetime),
        session_caller=session_caller,
        secure_cookies=secure_cookies,
    )
    origins = list(allowed_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Opsloop-Sha256"],
        )
    install_request_origin(app)
    # Before the origin is recorded: a trusted proxy's X-Forwarded-For names the client.
    app.add_middleware(ForwardedByTrustedProxies, trusted=proxies)
    # Added last, so it runs first: a request for a name not allowed reaches nothing else.
    app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    exact_document(app)
    return app
