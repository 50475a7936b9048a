"""The demo's server, and the client through which the demo sends its traffic.

:class:`DemoServer` serves the control plane and the data plane in one app, as ``opsloop
server --serve`` does, with uvicorn in a thread of the demo's process, on 127.0.0.1 (a
free port unless one is given). The demo sends its applications and their labels to it
over HTTP, as an application would (``POST /v1/deployments/{name}/predict`` and
``/feedback``, with an API token of the demo's admin), so the canary's gates, its ramp and
its rollback are what the served runtime did with those requests. It changes and reads its
deployment as a user of the server would, through the control plane's REST API
(``/api/v1/deployments/...``) with the client the command line uses for a server
(:meth:`DemoServer.deployments`, an API token of the acting user each). The server and the
demo share one store object: the demo's simulated clock (an hour a monitoring window) is
the clock the served runtime and the control plane stamp their records with.

>>> DemoServer(port=0)
Traceback (most recent call last):
...
ValueError: port must be between 1 and 65535, got 0
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Any

import httpx

#: What the demo's models may load beyond the fixed allow-list: gradient boosting keeps a
#: partial of check_array, and this demo registered those models itself.
DEMO_TRUSTED_TYPES = ("functools.partial", "sklearn.utils.validation.check_array")


class DemoServer:
    """The demo's server on 127.0.0.1 (``port``, or a free one), started by :meth:`start`
    once the demo's store has its users, stopped by :meth:`stop` (or leaving a ``with``
    block). ``sent`` counts the prediction requests the demo sent, per variant that
    answered; ``labels`` the answers whose labels it sent back. :meth:`deployments` and
    :meth:`registry` are the control plane's API as a user: the demo's (``user``) or another
    registered one, such as its approver.

    >>> import getpass
    >>> from opsloop.registry.users import add_user
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> _ = add_user(db, getpass.getuser(), "admin")
    >>> with DemoServer() as server:
    ...     server.start(db, ArtifactStore(tmp_path), getpass.getuser())
    ...     live = httpx.get(f"{server.url}/v2/health/live", timeout=120).json()
    ...     live, len(server.deployments().list()), len(server.registry().list_models())
    ({'live': True}, 0, 0)
    >>> with DemoServer() as server:
    ...     server.start(db, ArtifactStore(tmp_path), getpass.getuser())
    ...     server.predict("api", [{"age": 41}])
    Traceback (most recent call last):
    ...
    RuntimeError: POST /v1/deployments/api/predict answered 404: no deployment named 'api'
    """

    def __init__(self, port: int | None = None) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        self.port = port
        self.url: str | None = None
        self.user: str | None = None
        self.token: str | None = None
        self.runtime: Any = None
        self.sent: Counter[str] = Counter()
        self.labels = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._client: httpx.Client | None = None
        self._db: Any = None
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._tokens: dict[str, str] = {}

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, db, artifacts, user: str, deadline_s: float = 60.0) -> None:
        """Serve ``db`` and ``artifacts`` and wait for the health check; the demo's
        requests act as ``user`` (with a new API token of theirs, kept in ``token``)."""
        import uvicorn

        from opsloop.registry.users import new_token
        from opsloop.server.launch import serving_app
        from opsloop.serving.serving_runtime import ServingRuntime

        if self.url is not None:
            raise RuntimeError(f"the demo's server is already serving at {self.url}")
        # The store's clock read at each event, not once: the demo simulates its hours
        # by setting the store's clock while the server runs. Shadows answer in threads,
        # on that clock too (a shadow process would stamp its events with its own).
        self.runtime = ServingRuntime(
            db,
            artifacts,
            trusted_types=DEMO_TRUSTED_TYPES,
            clock=lambda: db.clock(),
            shadow_isolation="thread",
        )
        app = serving_app(db, artifacts, self.runtime)
        self._db, self.user = db, user
        self.token = new_token(db, user)
        # Bound here, so the port is the demo's before the server starts. Named TCP, so
        # asyncio turns Nagle's algorithm off on the accepted connections (without it each
        # answer waits for the client's delayed acknowledgement, about 40 ms).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, daemon=True
        )
        self._thread.start()
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        )
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                if self._client.get("/api/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self._thread.is_alive():
                raise RuntimeError(f"the server at {self.url} stopped before it answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.url} did not answer in {deadline_s} s")
            time.sleep(0.02)

    def deployments(self, user: str | None = None):
        """The deployments of the control plane's REST API
        (:class:`~opsloop.serving.http_deployments.HttpDeployments`), acting as ``user``
        (default: the demo's user) with an API token issued to them here, once."""
        from opsloop.serving.http_deployments import HttpDeployments

        return self._remote(HttpDeployments, user)

    def registry(self, user: str | None = None):
        """The registry of the control plane's REST API
        (:class:`~opsloop.registry.HttpModelRegistry`), acting as ``user`` (default: the
        demo's user) with an API token issued to them here, once."""
        from opsloop.registry import HttpModelRegistry

        return self._remote(HttpModelRegistry, user)

    def _remote(self, kind, user: str | None):
        from opsloop.registry.users import new_token

        if self._client is None:
            raise RuntimeError("the demo's server is not started")
        user = user or self.user
        key = (kind.__name__, user)
        if key not in self._clients:
            token = self.token if user == self.user else self._tokens.get(user)
            if token is None:
                token = self._tokens[user] = new_token(self._db, user)
            self._clients[key] = kind(self.url, token=token, timeout_s=120)
        return self._clients[key]

    def _post(self, path: str, body: Any) -> dict:
        if self._client is None:
            raise RuntimeError("the demo's server is not started")
        answer = self._client.post(path, json=body)
        if answer.status_code >= 300:
            try:
                detail = answer.json()["detail"]
            except (ValueError, KeyError, TypeError):
                detail = answer.text
            raise RuntimeError(f"POST {path} answered {answer.status_code}: {detail}")
        return answer.json()

    def predict(self, deployment: str, records: list[dict]) -> dict:
        """The data plane's answer to ``records``, sent in one request."""
        answer = self._post(f"/v1/deployments/{deployment}/predict", records)
        self.sent[answer["variant"]] += 1
        return answer

    def feedback(self, deployment: str, request_id: str, label: Any) -> None:
        """Send the label(s) of the answer ``request_id`` through the feedback endpoint."""
        self._post(
            f"/v1/deployments/{deployment}/feedback", {"request_id": request_id, "label": label}
        )
        self.labels += 1

    def settle(self, deployment: str, requests: int = 0, deadline_s: float = 60.0) -> dict:
        """Wait until each shadow of ``deployment`` has dealt with ``requests`` copies
        (answered, failed, dropped or sampled out: they answer off the request path, behind
        the primary), then until the served runtime has written its events and its
        canary's counts to the store; the shadows' counts."""
        deadline = time.monotonic() + deadline_s
        while True:
            counts = self.runtime.shadow_counts(deployment)
            if all(sum(c.values()) >= requests for c in counts.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.runtime.recorder.flush(deadline_s)
        self.runtime.rollouts.flush()
        return counts

    def wait(self) -> None:
        """Serve until Ctrl-C (or until the server stops by itself)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        """Stop serving, then write what the served runtime buffered; stopping again, or
        a server never started, does nothing."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.runtime is not None:
            self.runtime.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
