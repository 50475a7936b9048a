"""The data plane's FastAPI app: records predictions, the Open Inference Protocol, metrics.

:func:`create_data_plane_app` is what ``opsloop serve`` runs; :func:`install_data_plane`
adds the same routes to the control plane's app (``opsloop server --serve``), so a laptop
needs one process. The routes:

* ``POST /v1/deployments/{name}/predict`` and ``/feedback`` (:mod:`.prediction_routes`);
* the Open Inference Protocol under ``/v2`` (:mod:`.inference_protocol`);
* ``GET /metrics``, Prometheus' text format (:mod:`opsloop.serving.serving_metrics`, with
  the monitoring's gauges of :mod:`opsloop.monitoring.monitoring_gauges`).

Who may call: the same rule as the control plane (:mod:`.identity`), with the tokens
remembered while the audit log stands still (:mod:`opsloop.registry.token_cache`; the
routes then follow the deployments by the audit id the token check read, so a request
reads it once). Predicting, feedback,
model metadata and metrics need the viewer role (any user with a token: a prediction changes
no definition, and an application's token should not need more). On a loopback address
with no users, the installation token acts as the OS user, as it does for ``opsloop
server``. The health probes (``/v2/health/live``, ``/v2/health/ready``) need nothing.
Bodies are bounded as the control plane's are (:mod:`.limits`), must be JSON
(:mod:`.content_types`; an inference request may also be octets, or come without a
Content-Type as ``tritonclient`` sends it), and errors
are answered in the one place (:mod:`.errors`).

>>> import os, tempfile
>>> from unittest import mock
>>> from fastapi.testclient import TestClient
>>> from opsloop.store import ArtifactStore, Database
>>> home = mock.patch.dict(os.environ, {"OPSLOOP_HOME": str(tmp_path)})
>>> _ = home.start()
>>> app = create_data_plane_app(Database("sqlite://"), ArtifactStore(tmp_path))
>>> client = TestClient(app, base_url="http://127.0.0.1:8080")
>>> client.get("/v2/health/live").json()
{'live': True}
>>> client.post("/v1/deployments/api/predict", json=[{"x": 1}]).status_code
401
>>> token = {"Authorization": f"Bearer {app.state.installation_token}"}
>>> answer = client.post("/v1/deployments/api/predict", json=[{"x": 1}], headers=token)
>>> answer.status_code, answer.json()["detail"]
(404, "no deployment named 'api'")
>>> app.state.runtime.close(); _ = home.stop()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from opsloop import __version__
from opsloop.registry.token_cache import TokenCache
from opsloop.server import inference_protocol, prediction_routes
from opsloop.server.content_types import JSON, OCTETS, body_type, require_json
from opsloop.server.error_responses import EVERY_ROUTE, error_responses
from opsloop.server.errors import install_error_handlers
from opsloop.server.host_check import HostCheck
from opsloop.server.identity import Viewer, store_has_users
from opsloop.server.limits import RequestLimits, install_request_limits
from opsloop.server.openapi_document import exact_document
from opsloop.server.remote_identity import ControlPlaneTokens
from opsloop.server.request_origin import install_request_origin
from opsloop.serving.serving_metrics import CONTENT_TYPE
from opsloop.serving.serving_runtime import ServingRuntime
from opsloop.store import ArtifactStore, Database
from opsloop.store.installation_token import ensure_installation_token
from opsloop.tracking.capture import current_user
from opsloop.tracking.http_store import ServerConnection


async def _json_or_untyped(request: Request) -> None:
    """Inference bodies: JSON, octets (binary tensors after a JSON header) or no
    Content-Type at all (what V2 clients send); a browser sends none of them cross-site
    with a token without asking first."""
    header = request.headers.get("content-type")
    if header is not None and body_type(header) not in (JSON, OCTETS):
        raise HTTPException(
            415,
            f"Content-Type: this route accepts only {JSON} or {OCTETS} bodies, got {header!r}",
        )


def install_data_plane(app: FastAPI, runtime: ServingRuntime, tokens: Any = None) -> None:
    """Add the data plane's routes to ``app``, answering with ``runtime``; callers' tokens
    are checked by ``tokens`` (default: a :class:`~opsloop.registry.token_cache.TokenCache`
    on ``app.state.db``).

    ``app.state`` must hold what :mod:`.identity` reads (``db``, ``allow_embedded``,
    ``has_users``, ``installation_token``, ``os_user``), as the apps' factories set it.

    >>> import os, tempfile
    >>> from unittest import mock
    >>> from opsloop.server import create_app
    >>> from opsloop.store import ArtifactStore, Database
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": str(tmp_path)}):
    ...     db = Database("sqlite://")
    ...     app = create_app(db, ArtifactStore(tmp_path))
    ...     install_data_plane(app, ServingRuntime(db, None))
    >>> {"/api/v1/health", "/v1/deployments/{name}/predict", "/metrics"} <= set(
    ...     app.openapi()["paths"])
    True
    >>> app.state.runtime.close()
    """
    app.state.runtime = runtime
    app.state.token_cache = tokens or TokenCache(
        app.state.db, check_interval_s=runtime.check_interval_s
    )
    answers = error_responses(*EVERY_ROUTE, 403, 404, 503)
    # Feedback refuses a second label for an answer (409).
    app.include_router(
        prediction_routes.router,
        dependencies=[Depends(require_json)],
        responses=error_responses(*EVERY_ROUTE, 403, 404, 409, 503),
    )
    app.add_middleware(prediction_routes.PredictArrivals, runtime=runtime)
    app.include_router(inference_protocol.probes)
    app.include_router(
        inference_protocol.router, dependencies=[Depends(_json_or_untyped)], responses=answers
    )

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
            **error_responses(400, 401, 403),
        },
    )
    def metrics(request: Request, user: Viewer) -> Response:
        """Requests, errors, latency and shadow drops per deployment and variant, and the
        monitoring's latest windows (drift share, task metric) and alerts."""
        return Response(request.app.state.runtime.metrics.exposition(), media_type=CONTENT_TYPE)


def create_data_plane_app(
    database: Database,
    artifacts: ArtifactStore | None = None,
    *,
    names: Iterable[str] | None = None,
    allow_embedded: bool = True,
    allowed_hosts: Iterable[str] = (),
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    check_interval_s: float = 0.0,
    limits: RequestLimits | None = None,
    runtime: ServingRuntime | None = None,
    shadow_isolation: str = "auto",
) -> FastAPI:
    """The data plane on ``database`` and ``artifacts``, serving the deployments ``names``
    (default: every deployment of the store). ``trust`` and ``trusted_types`` are the
    serving user's consent to load pickles and skops types beyond the allow-list;
    ``check_interval_s`` and ``shadow_isolation`` (default: shadows in processes of their
    own where the store allows) are :class:`~opsloop.serving.ServingRuntime`'s. ``allow_embedded``
    and ``allowed_hosts`` are as for :func:`~opsloop.server.create_app`. A ``runtime``
    given is used as is.

    >>> from opsloop.store import Database
    >>> app = create_data_plane_app(Database("sqlite://"), allow_embedded=False)
    >>> app.state.installation_token is None, app.title
    (True, 'opsloop data plane')
    >>> app.state.runtime.close()
    """
    app = FastAPI(title="opsloop data plane", version=__version__)
    app.state.db = database
    app.state.allow_embedded = allow_embedded
    app.state.has_users = store_has_users(database)
    embedded = allow_embedded and not app.state.has_users
    app.state.installation_token = ensure_installation_token() if embedded else None
    app.state.os_user = current_user()
    install_error_handlers(app)
    install_request_limits(app, limits)
    install_data_plane(
        app,
        runtime
        or ServingRuntime(
            database,
            artifacts,
            names=names,
            trust=trust,
            trusted_types=trusted_types,
            check_interval_s=check_interval_s,
            shadow_isolation=shadow_isolation,
        ),
    )
    install_request_origin(app)
    app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    exact_document(app)
    return app


def create_remote_data_plane_app(
    server_url: str,
    *,
    token: str | None = None,
    names: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] = (),
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    check_interval_s: float = 0.0,
    limits: RequestLimits | None = None,
    gauge_refresh_s: float | None = None,
    shadow_isolation: str = "thread",
) -> FastAPI:
    """The data plane on the control plane at ``server_url``, acting with ``token``
    (default ``$OPSLOOP_TRACKING_TOKEN``), with no store of its own (see
    :mod:`opsloop.serving.remote_serving`, which takes ``shadow_isolation``; its
    ``/metrics`` reads the monitoring's gauges from the control plane at most every
    ``gauge_refresh_s`` seconds, by default
    :data:`~opsloop.monitoring.remote_gauges.REFRESH_S`). Every request needs an API token,
    which the control plane checks (:mod:`.remote_identity`); the routes and their rules are
    those of :func:`create_data_plane_app`. A control plane that cannot be reached is a 503.

    Against a server (``server_url``, one with no users, so its installation token acts as
    the OS user):

    >>> from fastapi.testclient import TestClient
    >>> app = create_remote_data_plane_app(server_url)
    >>> client = TestClient(app, base_url="http://127.0.0.1:8080")
    >>> client.post("/v1/deployments/api/predict", json=[{"x": 1}]).status_code
    401
    >>> bad = {"Authorization": "Bearer olp_unknown"}
    >>> client.post("/v1/deployments/api/predict", json=[{"x": 1}], headers=bad).json()
    {'detail': 'unknown or revoked API token', 'code': 'unauthenticated'}
    >>> app.state.runtime.close()
    """
    from opsloop.serving.remote_serving import remote_runtime

    runtime = remote_runtime(
        server_url,
        token=token,
        names=names,
        trust=trust,
        trusted_types=trusted_types,
        check_interval_s=check_interval_s,
        gauge_refresh_s=gauge_refresh_s,
        shadow_isolation=shadow_isolation,
    )
    app = FastAPI(title="opsloop data plane", version=__version__)
    app.state.db = None
    app.state.allow_embedded = False
    app.state.has_users = True
    app.state.installation_token = None
    app.state.os_user = current_user()
    install_error_handlers(app)

    async def unreachable(_request: Request, error: Exception) -> JSONResponse:
        body = {"detail": f"the control plane at {server_url} did not answer: {error}"}
        return JSONResponse({**body, "code": "unavailable"}, status_code=503)

    app.add_exception_handler(httpx.TransportError, unreachable)
    install_request_limits(app, limits)
    tokens = ControlPlaneTokens(
        ServerConnection(server_url, token=token),
        runtime.revision,
        check_interval_s=check_interval_s,
    )
    install_data_plane(app, runtime, tokens)
    install_request_origin(app)
    app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    exact_document(app)
    return app
