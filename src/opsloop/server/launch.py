"""Start the servers: ``opsloop server`` and ``python -m opsloop.server`` call :func:`serve`,
``opsloop serve`` calls :func:`serve_data_plane`.

Both bind 127.0.0.1 by default and refuse any other address until the store has users with
API tokens, so a server is never open to the network by accident. ``serve(...,
data_plane=True)`` (``opsloop server --serve``) mounts the data plane in the control
plane's process. Both answer in several processes sharing the port with ``workers``
(:mod:`.data_plane_workers`, :mod:`.server_workers`), on a store every process opens
(a file or a database server, never an in-memory SQLite store, which each process would
have on its own).

>>> serve(host="192.0.2.1", port=0)
Traceback (most recent call last):
...
ValueError: port must be between 1 and 65535, got 0
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
from collections.abc import Callable, Sequence

from opsloop.tracking.http_store import is_loopback

#: The environment variable that carries ``opsloop serve``'s settings to its workers.
SETTINGS_VARIABLE = "OPSLOOP_DATA_PLANE_SETTINGS"
#: Seconds a worker may take to answer its supervisor's ping before it is replaced.
HEALTHCHECK_S = 60
#: What uvicorn imports in each worker (:mod:`opsloop.server.data_plane_workers`).
WORKER_FACTORY = "opsloop.server.data_plane_workers:worker_app"
#: What uvicorn imports in each worker of ``opsloop server --workers N``
#: (:mod:`opsloop.server.server_workers`).
SERVER_WORKER_FACTORY = "opsloop.server.server_workers:worker_app"


def serve(
    host: str = "127.0.0.1",
    port: int = 5005,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    allow_pickle: bool = False,
    announce: Callable[[str], None] = print,
    *,
    data_plane: bool = False,
    trust: bool = False,
    trusted_types: Sequence[str] = (),
    anonymous: str = "none",
    workers: int = 1,
    secure_cookies: str = "auto",
    trusted_proxies: Sequence[str] = (),
    session_idle_s: int | None = None,
    session_max_s: int | None = None,
) -> None:
    """Serve the REST API on ``host:port`` until interrupted.

    With ``data_plane``, the same process also answers prediction requests for every
    deployment of the store (:mod:`opsloop.server.data_plane`), loading pickled models
    only with ``trust`` and skops types beyond the allow-list only when named in
    ``trusted_types``.

    ``allowed_hosts`` are names the Host header may carry besides the loopback names and the
    bound address; ``allowed_origins`` the web origins allowed to call the API from a browser;
    ``allow_pickle`` lets admins register pickled models; ``anonymous`` what a request
    without a token may do (``none``, or ``read`` as a viewer: see
    :mod:`~opsloop.server.identity`); ``secure_cookies`` when the dashboard's cookies are
    marked ``Secure`` (``auto``, ``always``, ``never``) and ``trusted_proxies`` the
    proxies whose ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are honoured
    (:mod:`~opsloop.server.forwarded_headers`; uvicorn's own reading of them is off);
    ``session_idle_s`` and ``session_max_s`` how long a dashboard session lasts unused and
    in all (default :class:`~opsloop.registry.dashboard_sessions.SessionLifetime`'s). On a
    loopback address with no
    users, requests carrying the installation token act as the OS user; ``announce`` is told
    where that token is. Any other address raises :class:`ValueError` until the store has
    users, as does a port outside 1-65535.

    ``workers`` above 1 answers in that many processes sharing the port
    (:mod:`opsloop.server.server_workers`): this process checks and announces as for one,
    then starts them and waits. A store in memory is refused then (each worker would open
    an empty one of its own).

    >>> serve(port=70000)
    Traceback (most recent call last):
    ...
    ValueError: port must be between 1 and 65535, got 70000
    >>> serve(port=5005, anonymous="write")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: anonymous: must be one of none, read, got 'write'
    >>> serve(port=5005, workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be a whole number >= 1, got 0
    """
    import uvicorn

    _checked_workers(workers)
    settings = {
        "host": host,
        "port": port,
        "allowed_hosts": list(allowed_hosts),
        "allowed_origins": list(allowed_origins),
        "allow_pickle": allow_pickle,
        "data_plane": data_plane,
        "trust": trust,
        "trusted_types": list(trusted_types),
        "anonymous": anonymous,
        "secure_cookies": secure_cookies,
        "trusted_proxies": list(trusted_proxies),
        "session_idle_s": session_idle_s,
        "session_max_s": session_max_s,
    }
    app = server_app(settings, workers=workers)
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:
        _announce_shadows(runtime, (), announce)
    _announce_token(app, announce)
    if workers > 1:
        # The checks and the announcements above are the workers' own; each worker opens
        # the store and loads its variants again, so this process lets its copies go.
        if runtime is not None:
            runtime.close()
        del app, runtime
        serve_workers(settings, workers, factory=SERVER_WORKER_FACTORY, proxy_headers=False)
        return
    settle_before_serving(app)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # the app honours the trusted proxies' headers itself
        )
    finally:
        if runtime is not None:
            runtime.close()


def server_app(settings: dict, *, workers: int = 1):
    """The app :func:`serve`'s ``settings`` (its arguments, as a dictionary) describe,
    checked as it checks them: the control plane, with the data plane mounted when
    ``settings["data_plane"]``. With ``workers`` above 1 the store must be one every
    worker opens: an in-memory SQLite store raises :class:`ValueError`.

    >>> server_app({"port": 0})
    Traceback (most recent call last):
    ...
    ValueError: port must be between 1 and 65535, got 0
    """
    from opsloop.registry.dashboard_sessions import SessionLifetime
    from opsloop.server.app import create_app
    from opsloop.server.forwarded_headers import trusted_proxies
    from opsloop.server.identity import anonymous_access
    from opsloop.ui.mount import secure_cookies_setting

    anonymous = settings.get("anonymous", "none")
    anonymous_access(anonymous)
    secure_cookies = secure_cookies_setting(settings.get("secure_cookies", "auto"))
    proxies = [str(name) for name in trusted_proxies(settings.get("trusted_proxies", []))]
    chosen = {
        field: settings[key]
        for field, key in (("idle_s", "session_idle_s"), ("absolute_s", "session_max_s"))
        if settings.get(key) is not None
    }
    lifetime = SessionLifetime(**chosen)
    database, local, hosts = _checked_address(
        settings.get("host", "127.0.0.1"), settings["port"], settings.get("allowed_hosts", [])
    )
    if workers > 1:
        _shared_store(database)
    app = create_app(
        database,
        allow_embedded=local,
        allowed_hosts=hosts,
        allowed_origins=list(settings.get("allowed_origins", [])),
        allow_pickle=settings.get("allow_pickle", False),
        anonymous=anonymous,
        secure_cookies=secure_cookies,
        trusted_proxies=proxies,
        session_lifetime=lifetime,
    )
    if settings.get("data_plane", False):
        from opsloop.server.data_plane import install_data_plane
        from opsloop.serving.serving_runtime import ServingRuntime

        runtime = ServingRuntime(
            database,
            app.state.registry.artifacts,
            trust=settings.get("trust", False),
            trusted_types=settings.get("trusted_types", []),
            shadow_isolation="auto",
        )
        install_data_plane(app, runtime)
    return app


def _checked_workers(workers: object) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")


def _shared_store(database) -> None:
    """Refuse a store the workers would not share: each process has its own in-memory
    SQLite database, so workers on one would each see an empty store."""
    import sqlalchemy as sa

    url = sa.make_url(database.uri)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError(
            "workers: an in-memory store is each process's own, so workers would not share "
            "it; set OPSLOOP_STORE_URI to a SQLite file or a PostgreSQL database"
        )


def serving_app(db, artifacts, runtime):
    """The control plane on ``db`` and ``artifacts`` with ``runtime``'s data plane mounted
    in it, as ``opsloop server --serve`` serves them, for a caller that runs the server
    itself (``opsloop demo`` serves it from a thread, on the store's clock).

    >>> import os
    >>> from unittest import mock
    >>> from opsloop.serving.serving_runtime import ServingRuntime
    >>> from opsloop.store import ArtifactStore, Database
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": str(tmp_path)}):
    ...     db = Database("sqlite://")
    ...     runtime = ServingRuntime(db, ArtifactStore(tmp_path))
    ...     app = serving_app(db, ArtifactStore(tmp_path), runtime)
    >>> {"/api/v1/health", "/v1/deployments/{name}/predict"} <= set(app.openapi()["paths"])
    True
    >>> runtime.close()
    """
    from opsloop.server.app import create_app
    from opsloop.server.data_plane import install_data_plane

    app = create_app(db, artifacts)
    install_data_plane(app, runtime)
    return app


def settle_before_serving(app, dashboard: bool = True) -> None:
    """Do once, before the first request, what the first request would otherwise pay for:
    route one request through ``app`` (FastAPI builds its middleware and each included
    router's routes, with their pydantic validators, on the first request that reaches
    them: about a second on a loaded 2-core machine), compile the dashboard's page
    templates, then move every object made so far (modules, the app, the store's caches:
    about 300,000) out of the garbage collector's scans.

    Without the last, the first request that allocates enough (a compare view of 1,000 runs
    does) starts a full collection that walks them all: half a second on that machine, and
    again now and then later. They live as long as the process, so scanning them finds
    nothing to free.

    >>> import gc
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> settle_before_serving(app, dashboard=False)
    >>> app.middleware_stack is not None, gc.get_freeze_count() > 0
    (True, True)
    >>> gc.unfreeze()
    """
    # A path no route has: every router is built on the way to the 404, and no page,
    # session or store is touched.
    asyncio.run(_request(app, "/.settle-before-serving"))
    if dashboard:
        from opsloop.ui.mount import compile_templates

        compile_templates()
    gc.collect()  # what is garbage now is freed, not frozen with the rest
    gc.freeze()


async def _request(app, path: str) -> None:
    """One GET of ``path`` through ``app`` in this process, its answer dropped."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        return None

    await app(scope, receive, send)


def _checked_address(host: str, port: int, allowed_hosts: Sequence[str]):
    """The store, whether ``host`` is loopback, and the Host names to allow; a ValueError
    for a port out of range or a network address while the store has no users."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    from opsloop.server.identity import store_has_users
    from opsloop.store import open_database

    database = open_database()
    local = is_loopback(host)
    if not local and not store_has_users(database):
        raise ValueError(
            f"refusing to bind {host}: the server would be reachable from the network with no "
            "API tokens; create a user first (opsloop users add NAME --role admin) or bind "
            "127.0.0.1"
        )
    hosts = list(allowed_hosts)
    # An unspecified address (0.0.0.0, ::) is not a name anyone reaches the server by.
    if host not in ("0.0.0.0", "::"):
        hosts.append(host)
    return database, local, hosts


def _announce_token(app, announce: Callable[[str], None]) -> None:
    if app.state.installation_token is not None:
        from opsloop.store.installation_token import installation_token_path

        announce(
            f"no users: requests need the installation token in {installation_token_path()} "
            "(opsloop's clients of this account send it)"
        )


def _announce_shadows(runtime, deployments: Sequence[str], announce) -> None:
    """Tell where each shadow of the served deployments (none named: all of the store's)
    answers, and the share of the request copies it answers."""
    chosen = list(deployments) or runtime.deployments.list()["name"].tolist()
    where = "in a process of its own" if runtime.shadow_isolation == "process" else "in a thread"
    for name in chosen:
        for variant in runtime.deployments.get(name).variants:
            if variant.role == "shadow":
                announce(
                    f"deployment {name}: shadow {variant.name} answers "
                    f"{variant.shadow_sample * 100:g}% of the request copies, {where}"
                )


def serve_data_plane(
    deployments: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 8080,
    allowed_hosts: Sequence[str] = (),
    *,
    trust: bool = False,
    trusted_types: Sequence[str] = (),
    check_interval_s: float = 0.0,
    shadow_isolation: str = "auto",
    announce: Callable[[str], None] = print,
    server_url: str | None = None,
    token: str | None = None,
    gauge_refresh_s: float | None = None,
    workers: int = 1,
) -> None:
    """Serve the data plane (predictions, the Open Inference Protocol, metrics) on
    ``host:port`` until interrupted, for the ``deployments`` named (none: every deployment
    of the store). Those named are loaded before the first request; a variant that cannot
    be loaded is announced, and its deployment reports not ready.

    With ``server_url`` the data plane runs on that control plane, acting with ``token``
    (default ``$OPSLOOP_TRACKING_TOKEN``), with no store of its own
    (:func:`~opsloop.server.data_plane.create_remote_data_plane_app`); a token the control
    plane refuses stops it before it listens. Its callers' tokens are checked by the control
    plane, so it may bind any address. Its token must be an editor's (it records events
    and review items). ``shadow_isolation`` is
    :class:`~opsloop.serving.ServingRuntime`'s (on a control plane, a shadow process
    reaches it as this process does, :mod:`opsloop.serving.control_plane_shadow_host`).
    ``gauge_refresh_s`` (with ``server_url`` only; default
    :data:`~opsloop.monitoring.remote_gauges.REFRESH_S`) is how often, at most, the
    monitoring gauges shown at ``/metrics`` are read from the control plane.

    ``workers`` above 1 answers in that many processes sharing the port
    (:mod:`opsloop.server.data_plane_workers`): this process checks and announces as for
    one, then starts them and waits.

    >>> serve_data_plane(port=0)
    Traceback (most recent call last):
    ...
    ValueError: port must be between 1 and 65535, got 0
    >>> serve_data_plane(port=8080, workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be a whole number >= 1, got 0
    """
    import uvicorn

    _checked_workers(workers)
    settings = {
        "deployments": list(deployments),
        "host": host,
        "port": port,
        "allowed_hosts": list(allowed_hosts),
        "trust": trust,
        "trusted_types": list(trusted_types),
        "check_interval_s": check_interval_s,
        "shadow_isolation": shadow_isolation,
        "server_url": server_url,
        "token": token,
        "gauge_refresh_s": gauge_refresh_s,
    }
    app = data_plane_app(settings, announce)
    if workers > 1 and app.state.db is not None:
        try:
            _shared_store(app.state.db)
        except ValueError:
            app.state.runtime.close()
            raise
    if workers > 1:
        # The checks and the announcements above are the workers' own; each worker loads
        # its variants again, so this process lets its copies go before they start.
        app.state.runtime.close()
        del app
        serve_workers(settings, workers)
        return
    try:
        settle_before_serving(app, dashboard=False)
        # X-Forwarded-* would name the client in audit entries: no peer is trusted to set it.
        uvicorn.run(
            app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False
        )
    finally:
        app.state.runtime.close()


def data_plane_app(settings: dict, announce: Callable[[str], None] = print):
    """The data plane app :func:`serve_data_plane`'s ``settings`` (its arguments, as a
    dictionary) describe, checked as it checks them: the port, the address, the named
    deployments (loaded, failures announced), the token on a control plane. Its shadows'
    placement and the installation token's place are announced.

    >>> data_plane_app({"port": 0, "server_url": "http://127.0.0.1:1"})
    Traceback (most recent call last):
    ...
    ValueError: port must be between 1 and 65535, got 0
    """
    deployments = settings.get("deployments", [])
    host, port = settings.get("host", "127.0.0.1"), settings["port"]
    allowed_hosts = settings.get("allowed_hosts", [])
    server_url = settings.get("server_url")
    common = {
        "names": list(deployments) or None,
        "trust": settings.get("trust", False),
        "trusted_types": settings.get("trusted_types", []),
        "check_interval_s": settings.get("check_interval_s", 0.0),
        "shadow_isolation": settings.get("shadow_isolation", "auto"),
    }
    if server_url is not None:
        if not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        from opsloop.server.data_plane import create_remote_data_plane_app

        hosts = list(allowed_hosts) + ([] if host in ("0.0.0.0", "::") else [host])
        app = create_remote_data_plane_app(
            server_url,
            token=settings.get("token"),
            allowed_hosts=hosts,
            gauge_refresh_s=settings.get("gauge_refresh_s"),
            **common,
        )
    else:
        if settings.get("gauge_refresh_s") is not None:
            raise ValueError(
                "gauge_refresh_s: only a data plane on a control plane's URL reads the "
                "monitoring gauges through it; on the store they are read at each scrape"
            )
        from opsloop.server.data_plane import create_data_plane_app
        from opsloop.store import ArtifactStore
        from opsloop.store.location import artifact_uri

        database, local, hosts = _checked_address(host, port, allowed_hosts)
        app = create_data_plane_app(
            database,
            ArtifactStore(artifact_uri()),
            allow_embedded=local,
            allowed_hosts=hosts,
            **common,
        )
    runtime = app.state.runtime
    try:
        if server_url is not None:  # a refused token stops here, before listening
            worker = app.state.token_cache.worker()
            if not worker.can("editor"):
                raise PermissionError(
                    f"the data plane's token belongs to {worker.name!r}, whose role is "
                    f"{worker.role!r}; recording events and review items needs 'editor'"
                )
        for name in deployments:
            served = runtime.served(name)
            for variant, why in served.failures.items():
                announce(f"deployment {name}: variant {variant} is not loaded: {why}")
        _announce_shadows(runtime, deployments, announce)
        _announce_token(app, announce)
    except BaseException:
        runtime.close()
        raise
    return app


def serve_workers(
    settings: dict, workers: int, *, factory: str = WORKER_FACTORY, proxy_headers: bool = False
) -> None:
    """Serve the app ``factory`` (``module:function``, by default the data plane's
    :func:`~opsloop.server.data_plane_workers.worker_app`) builds from ``settings`` in
    ``workers`` processes on ``settings``' host and port until interrupted (see
    :mod:`opsloop.server.data_plane_workers` for the metrics directory and the shadow
    processes). uvicorn's reading of ``X-Forwarded-*`` is off unless ``proxy_headers``: by
    default uvicorn trusts them from any loopback peer, and they would name the client in
    audit entries (the control plane reads them from its trusted proxies only).

    >>> serve_workers({"host": "127.0.0.1", "port": 8080}, 1)
    Traceback (most recent call last):
    ...
    ValueError: workers must be a whole number >= 2, got 1
    """
    import shutil
    import tempfile

    import uvicorn

    from opsloop.serving.serving_metrics import MULTIPROCESS_VARIABLE, multiprocess_directory

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 2:
        raise ValueError(f"workers must be a whole number >= 2, got {workers!r}")
    made = None
    if multiprocess_directory() is None:
        made = tempfile.mkdtemp(prefix="opsloop-metrics-")
        os.environ[MULTIPROCESS_VARIABLE] = made
    os.environ[SETTINGS_VARIABLE] = json.dumps(settings)
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=settings["host"],
            port=settings["port"],
            workers=workers,
            # A worker loading large models may hold the interpreter lock for seconds,
            # too long for uvicorn's default 5 s answer to the supervisor's ping.
            timeout_worker_healthcheck=HEALTHCHECK_S,
            log_level="warning",
            access_log=False,
            proxy_headers=proxy_headers,
        )
    finally:
        os.environ.pop(SETTINGS_VARIABLE, None)
        if made is not None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
            shutil.rmtree(made, ignore_errors=True)


def names(value: str) -> list[str]:
    """The names of a comma-separated option, blanks dropped.

    >>> names("a.example, b.example,")
    ['a.example', 'b.example']
    """
    return [name.strip() for name in value.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m opsloop.server [--host H] [--port P] ...``: :func:`serve` from arguments.

    A refused address or port is one line on stderr and exit code 2.

    >>> main(["--port", "0"])
    2
    """
    parser = argparse.ArgumentParser(
        prog="python -m opsloop.server", description="Serve the opsloop REST API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("--port", type=int, default=5005, help="Port to listen on.")
    parser.add_argument("--allowed-hosts", default="", help="Comma-separated Host names.")
    parser.add_argument("--allowed-origins", default="", help="Comma-separated web origins.")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="Let admins register pickled models."
    )
    parser.add_argument(
        "--anonymous",
        default="none",
        help="What a request without a token may do: none (the default) or read.",
    )
    parser.add_argument(
        "--secure-cookies",
        default="auto",
        help="Mark the dashboard's cookies Secure: auto (when the request came over HTTPS), "
        "always or never.",
    )
    parser.add_argument(
        "--trusted-proxies",
        default="",
        help="Comma-separated proxy addresses or networks whose X-Forwarded-Proto and "
        "X-Forwarded-For are honoured; none by default.",
    )
    parser.add_argument(
        "--session-idle", type=int, default=None, help="Seconds a dashboard session lasts unused."
    )
    parser.add_argument(
        "--session-max", type=int, default=None, help="Seconds a dashboard session lasts at most."
    )
    chosen = parser.parse_args(argv)
    try:
        serve(
            chosen.host,
            chosen.port,
            names(chosen.allowed_hosts),
            names(chosen.allowed_origins),
            chosen.allow_pickle,
            anonymous=chosen.anonymous,
            secure_cookies=chosen.secure_cookies,
            trusted_proxies=names(chosen.trusted_proxies),
            session_idle_s=chosen.session_idle,
            session_max_s=chosen.session_max,
        )
    except ValueError as error:
        import sys

        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
