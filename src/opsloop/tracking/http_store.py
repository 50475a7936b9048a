"""Tracking through an opsloop server: the local store's methods, as calls to the REST API.

When ``OPSLOOP_TRACKING_URI`` is an ``http(s)://`` URL, :func:`opsloop.tracking.start_run`
and the other functions use :class:`HttpTrackingStore` instead of the database. The run
object is the same :class:`~opsloop.tracking.ActiveRun`: metric points are buffered in the
process and sent as one ``POST /runs/{id}/batch`` per flush (four parallel JSON lists), so
logging a value never waits for the network. One ``httpx.Client`` keeps the connection
open between calls. ``OPSLOOP_TRACKING_TOKEN`` (or ``token=``) is sent as a Bearer token;
without one, a server on a loopback address gets the installation token of this account's
``OPSLOOP_HOME`` (:mod:`opsloop.store.installation_token`), which is what a server started
by the same account with no users asks for.

The server answers a client's mistake with a 4xx and a message naming the field; this
client raises it as the exception the local store would raise (``ValueError`` and its
subclasses, ``PermissionError``, :class:`~opsloop.store.TamperedArtifactError`), so code
and tests behave the same against both backends. The run's user is whoever the server
authenticates, not what the client claims.

>>> store = HttpTrackingStore("http://127.0.0.1:5005/")
>>> store.base_url
'http://127.0.0.1:5005'
"""

from __future__ import annotations

import ast
import hashlib
import ipaddress
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

import httpx
import numpy as np

from opsloop.contract.http_client import operation_call, over_http, path_segment, request_path
from opsloop.errors import (
    BY_CODE,
    AlreadyDoneError,
    DeniedError,
    InvalidArgumentError,
    NotFoundError,
    OverLimitError,
    UnauthenticatedError,
)
from opsloop.store.artifacts import MissingArtifactError, TamperedArtifactError, check_sha256
from opsloop.store.installation_token import read_installation_token
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.filter_parser import FilterSyntaxError
from opsloop.tracking.limits import MAX_BATCH_POINTS, param_text, tag_text
from opsloop.tracking.local_store import UnknownRunError, check_batch_id
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.records import ArtifactRecord, Run
from opsloop.tracking.run_search import UnknownExperimentError
from opsloop.tracking.tracking_service import (
    ARTIFACT_PATH,
    RUN_ARTIFACTS_PATH,
    TRACKING_OPERATIONS,
    TrackingService,
)

TOKEN_VARIABLE = "OPSLOOP_TRACKING_TOKEN"
_TIMEOUT_S = 60.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is only reachable from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names a server on this machine's loopback interface.

    >>> is_loopback_url("http://[::1]:5005"), is_loopback_url("http://localhost.evil.com")
    (True, False)
    """
    return is_loopback(httpx.URL(url).host)


class ServerConnection:
    r"""One opsloop server's ``/api/v1``: a kept-open ``httpx.Client``, the Bearer token, and
    the rule that turns an error answer back into the exception local code raises.

    The server names the exception class in its error body (``"error"``); ``errors`` maps
    such names to the exceptions a caller wants back (each called with the server's message).
    The rest follows one policy: a changed artifact is a
    :class:`~opsloop.store.TamperedArtifactError` with both hashes, a missing one a
    :class:`~opsloop.store.artifacts.MissingArtifactError` (a ``FileNotFoundError``), 401 and
    403 a ``denied`` when given (the registry's ``PermissionDenied``), else an
    :class:`~opsloop.errors.UnauthenticatedError` or a :class:`~opsloop.errors.DeniedError`
    (all ``PermissionError``\ s), and any other answer with a ``code`` the class of
    :mod:`opsloop.errors` for it (``InvalidArgumentError``, a ``ValueError``, names the
    field). An answer with no code (an older server) is a ``ValueError`` for 404, 409, 413 and
    422, and any 5xx a
    :class:`ServerError`.

    >>> ServerConnection("http://127.0.0.1:5005/", token="olp_x").headers
    {'Authorization': 'Bearer olp_x'}

    Without a token (none given, ``OPSLOOP_TRACKING_TOKEN`` unset), a server on this machine
    gets the installation token under ``OPSLOOP_HOME`` and any other server none:

    >>> from opsloop.store.installation_token import ensure_installation_token
    >>> local = ensure_installation_token()
    >>> ServerConnection("http://localhost:5005").headers == {"Authorization": f"Bearer {local}"}
    True
    >>> ServerConnection("https://ops.example.com").headers
    {}
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = _TIMEOUT_S,
        denied: type[PermissionError] | None = None,
        owner: str = "ServerConnection",
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(
                f"tracking server URL must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        if not token and is_loopback_url(self.base_url):
            token = read_installation_token()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.denied = denied
        # The class a closed connection's error names: the client its caller holds.
        self.owner = owner
        self.client = httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers=self.headers,
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool, for good: a request after it is a
        :class:`ClosedClientError` (closing again does nothing).

        >>> server = ServerConnection("http://127.0.0.1:1")
        >>> server.close(); server.close()
        >>> server.call("GET", "/runs/r1")
        Traceback (most recent call last):
        opsloop.tracking.http_store.ClosedClientError: ServerConnection('http://127.0.0.1:1') is closed: create a new client to send requests
        """  # noqa: E501
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        errors: Mapping[str, Callable[[str], BaseException]] | None = None,
        **kwargs,
    ) -> httpx.Response:
        """Send one request under ``/api/v1``; an error answer is raised as an exception.

        ``server_url`` is a running opsloop server with one run:

        >>> run_id = tracking.create_run("churn")  # the server's store
        >>> server = ServerConnection(server_url)
        >>> server.call("GET", f"/runs/{run_id}").json()["experiment"]
        'churn'
        >>> server.call("GET", "/runs/nope")
        Traceback (most recent call last):
        opsloop.tracking.local_store.UnknownRunError: unknown run id 'nope'
        >>> server.call("GET", "/runs/nope", errors={"UnknownRunError": LookupError})
        Traceback (most recent call last):
        LookupError: unknown run id 'nope'
        """
        if self.client.is_closed:
            # httpx would say only that "the client" is closed, from deep in its stack.
            raise ClosedClientError(
                f"{self.owner}({self.base_url!r}) is closed: create a new client to send requests"
            )
        response = self.client.request(method, path, **kwargs)
        if response.status_code < 400:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        detail = body.get("detail", response.text)
        if isinstance(detail, list):  # FastAPI's validation errors: name each field
            detail = "; ".join(
                f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg')}"
                for item in detail
            )
        try:
            kind, code, status = body.get("error"), body.get("code"), response.status_code
            if errors and isinstance(kind, str) and kind in errors:
                raise errors[kind](detail)
            if isinstance(kind, str) and kind in _KNOWN:
                raise _KNOWN[kind](detail)
            if kind == "TamperedArtifactError":
                raise TamperedArtifactError(
                    response.headers.get("X-Opsloop-Expected-Sha256", ""),
                    response.headers.get("X-Opsloop-Found-Sha256", ""),
                    f"{self.base_url}{path}",
                )
            if kind == "FileNotFoundError":
                # The server's message ends with the hash: "no artifact with sha256 <hash>".
                raise MissingArtifactError(str(detail).rsplit(" ", 1)[-1])
            if status in (401, 403):
                # A client that names its own denied class (the registry's PermissionDenied) gets
                # it for both, as before; otherwise each status gets its class.
                denied = self.denied or (UnauthenticatedError if status == 401 else DeniedError)
                raise denied(f"{self.base_url}: {detail}")
            if code in BY_CODE:
                raise BY_CODE[code](detail)
            if status in (404, 409, 413, 422):  # an older server, which names no code
                raise InvalidArgumentError(detail)
            raise ServerError(status, f"{self.base_url}{path}: server answered {status}: {detail}")
        except OverLimitError as error:
            # A bound's refusal tells when to retry in its header: carried, so that a data
            # plane passes its control plane's Retry-After on to its own client.
            if error.retry_after_s is None:
                error.retry_after_s = retry_after_seconds(response.headers.get("Retry-After"))
            raise


#: The longest wait a Retry-After header may ask for that is read as one (a day).
MAX_RETRY_AFTER_S = 86_400


def retry_after_seconds(value: str | None) -> int | None:
    """The seconds a ``Retry-After`` header ``value`` asks a client to wait, when it gives
    them as a number of at most :data:`MAX_RETRY_AFTER_S`; else ``None`` (no header, a
    date, or something else).

    >>> retry_after_seconds("30"), retry_after_seconds(None), retry_after_seconds("soon")
    (30, None, None)
    >>> retry_after_seconds("99999999999999999999")
    """
    text = (value or "").strip()
    # At most 12 digits are read: a longer number is over the bound anyway.
    if not text or len(text) > 12 or not text.isascii() or not text.isdigit():
        return None
    seconds = int(text)
    return seconds if seconds <= MAX_RETRY_AFTER_S else None


def _quoted_after(prefix: str, detail: str) -> object:
    """The value whose repr follows ``prefix`` in ``detail`` (our own messages), else None."""
    if not detail.startswith(prefix):
        return None
    try:
        return ast.literal_eval(detail[len(prefix) :])
    except (ValueError, SyntaxError):
        return None


def _unknown_run(detail: str) -> BaseException:
    run_id = _quoted_after("unknown run id ", detail)
    return NotFoundError(detail) if run_id is None else UnknownRunError(run_id)


def _unknown_experiment(detail: str) -> BaseException:
    name = _quoted_after("unknown experiment ", detail)
    return NotFoundError(detail) if name is None else UnknownExperimentError(name)


# The exceptions this client raises again when the server names them, from the message.
_KNOWN: dict[str, Callable[[str], BaseException]] = {
    "UnknownRunError": _unknown_run,
    "UnknownExperimentError": _unknown_experiment,
    **{kind.__name__: kind for kind in (FilterSyntaxError, AlreadyDoneError, *BY_CODE.values())},  # type: ignore[misc, attr-defined]
}


class ClosedClientError(RuntimeError):
    """A request through a client after its ``close()``: the message names the client.

    >>> str(ClosedClientError("HttpTrackingStore('http://127.0.0.1:1') is closed"))
    "HttpTrackingStore('http://127.0.0.1:1') is closed"
    """


class ServerError(RuntimeError):
    """The server answered 5xx: its defect, or it is unavailable (``status``).

    >>> ServerError(503, "down").status
    503
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Answers after which a batch is sent again: the request may not have been handled.
_RETRIED_STATUSES = frozenset({502, 503, 504})


@over_http(TRACKING_OPERATIONS)
class HttpTrackingStore(TrackingService):
    """The tracking backend of an opsloop server at ``base_url``.

    Its operations are generated from the service's table
    (:data:`~opsloop.tracking.tracking_service.TRACKING_OPERATIONS`); ``create_run``,
    ``write_batch``, ``get_run``, ``log_artifact`` and ``read_artifact`` are written here,
    on top of the wire.

    Metric batches are sent with an idempotency key (``batch_id``) and sent again, under the
    same key, when the connection fails or the server answers 502, 503 or 504, with a
    doubling pause (50 ms to 2 s) for up to ``retry_s`` seconds: a server that restarts
    meanwhile stores each batch exactly once.

    >>> HttpTrackingStore("https://ops.example.com", token="olp_x")._headers["Authorization"]
    'Bearer olp_x'
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = _TIMEOUT_S,
        retry_s: float = 60.0,
    ) -> None:
        if not retry_s >= 0:
            raise InvalidArgumentError(
                f"retry_s must be a non-negative number of seconds, got {retry_s!r}"
            )
        self._server = ServerConnection(
            base_url,
            token=token,
            transport=transport,
            timeout_s=timeout_s,
            owner=type(self).__name__,
        )
        self.base_url = self._server.base_url
        self._headers = self._server.headers
        self.retry_s = retry_s

    def __repr__(self) -> str:
        return f"HttpTrackingStore({self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool, for good: an operation after it is a
        :class:`ClosedClientError` naming this client (closing again does nothing).

        >>> store = HttpTrackingStore("http://127.0.0.1:1")
        >>> store.close(); store.get_run("r1")
        Traceback (most recent call last):
        opsloop.tracking.http_store.ClosedClientError: HttpTrackingStore('http://127.0.0.1:1') is closed: create a new client to send requests
        """  # noqa: E501
        self._server.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self._server.call(method, path, **kwargs)

    # -- composed on the wire's operations ------------------------------------------------

    _create_run = operation_call(TRACKING_OPERATIONS, "create_run")
    _get_run = operation_call(TRACKING_OPERATIONS, "get_run")

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        user: str | None = None,
        command: str | None = None,
        code: CodeVersion | None = None,
        environment: Environment | None = None,
        start_ms: int | None = None,
    ) -> str:
        """Start a run on the server; return its id. ``user`` is not sent: the server
        records the token's owner. Tag values become text here, as the local store makes
        them, so a value it refuses is refused before anything is sent.

        >>> HttpTrackingStore("http://127.0.0.1:1").create_run("e", tags={"t": "x" * 9000})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: tag 't': value is 9000 characters; the limit is 8000
        """
        return self._create_run(
            experiment,
            name=name,
            parent_run_id=parent_run_id,
            tags={key: tag_text(key, value) for key, value in (tags or {}).items()},
            command=command,
            code=code,
            environment=environment,
            start_ms=start_ms,
        )

    def get_run(self, run_id: str) -> Run:
        """The run as the server stores it; its ``metric_history`` asks the server too.

        >>> remote = HttpTrackingStore(server_url)
        >>> run_id = remote.create_run("churn")
        >>> points = MetricBatch(("loss", "loss"), np.array([0.5, 0.25]), np.array([0, 1]),
        ...                      np.array([1000, 2000]))
        >>> remote.write_batch(run_id, points, params={"depth": 3})
        >>> run = remote.get_run(run_id)
        >>> run.params, run.metric_history("loss")["value"].tolist()
        ({'depth': '3'}, [0.5, 0.25])
        >>> remote.get_run("nope")
        Traceback (most recent call last):
        opsloop.tracking.local_store.UnknownRunError: unknown run id 'nope'
        """
        run = self._get_run(run_id)
        return replace(run, _history=partial(self.metric_history, run.run_id))

    def write_batch(
        self,
        run_id: str,
        metrics: MetricBatch | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        status: str | None = None,
        end_ms: int | None = None,
        batch_id: str | None = None,
    ) -> None:
        """Send metric points, params and tags in one request (one transaction on the server).

        With ``status`` the same request ends the run. A batch of more than
        :data:`~opsloop.tracking.limits.MAX_BATCH_POINTS` points (what the server takes in
        one request) is sent as several requests in logging order; the params, tags and
        status go with the last, so the run ends only once every point is stored.

        ``batch_id`` is the batch's idempotency key (a new random one when not given; each
        piece of a split batch gets one derived from it): sending the same batch again with
        the same key, as the retries here do, stores it once.

        Non-finite values are refused here, before anything is sent, as the local store does.

        >>> HttpTrackingStore("http://127.0.0.1:1").write_batch("r", MetricBatch(
        ...     ("auc",), np.array([np.nan]), np.array([0]), np.array([0])))
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric 'auc': value must be a finite number, got nan
        """
        body: dict[str, object] = {
            "params": {key: param_text(key, value) for key, value in (params or {}).items()},
            "tags": {key: tag_text(key, value) for key, value in (tags or {}).items()},
        }
        if status is not None:
            body["status"], body["end_ms"] = status, end_ms
        if metrics is not None and len(metrics):
            finite = np.isfinite(metrics.values)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise InvalidArgumentError(
                    f"metric {metrics.keys[bad]!r}: value must be a finite number, "
                    f"got {metrics.values[bad]}"
                )
        key = check_batch_id(batch_id) if batch_id is not None else uuid.uuid4().hex
        if metrics is not None and len(metrics):
            *earlier, metrics = metrics.pieces(MAX_BATCH_POINTS)
            for number, piece in enumerate(earlier):
                self._send_batch(
                    run_id,
                    {"params": {}, "tags": {}, "metrics": piece.to_dict()},
                    _piece_id(key, number),
                )
            body["metrics"] = metrics.to_dict()
            if earlier:
                key = _piece_id(key, len(earlier))
        self._send_batch(run_id, body, key)

    def _send_batch(self, run_id: str, body: dict[str, object], batch_id: str) -> None:
        # Encoded here (not by httpx) to skip a second walk over a large body.
        content = json.dumps({**body, "batch_id": batch_id}, separators=(",", ":"))
        operation = TRACKING_OPERATIONS.operation("write_batch")
        path = request_path(operation, {"run_id": run_id})
        deadline = time.monotonic() + self.retry_s
        pause = 0.05
        while True:
            try:
                self._call(
                    operation.verb,
                    path,
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
                return
            except (httpx.TransportError, ServerError) as error:
                retried = not isinstance(error, ServerError) or error.status in _RETRIED_STATUSES
                if not retried or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)  # the server is restarting or unreachable: back off
            pause = min(pause * 2, 2.0)

    def log_artifact(
        self, run_id: str, source: str | Path | bytes, path: str | None = None
    ) -> ArtifactRecord:
        """Upload a file (or bytes) and record it in the run under ``path``.

        >>> HttpTrackingStore("http://127.0.0.1:1").log_artifact("r", b"x")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: artifact path is required when logging bytes
        """
        if isinstance(source, bytes | bytearray):
            if not path:
                raise InvalidArgumentError("artifact path is required when logging bytes")
            data = bytes(source)
        else:
            source = Path(source)
            if not source.is_file():
                raise FileNotFoundError(f"artifact path {str(source)!r} is not a file")
            # A file is streamed from disk rather than read into memory whole.
            with source.open("rb") as handle:
                return self._upload_artifact(run_id, path or source.name, handle)
        return self._upload_artifact(run_id, path, data)

    def _upload_artifact(self, run_id: str, path: str, content) -> ArtifactRecord:
        response = self._call(
            "POST",
            RUN_ARTIFACTS_PATH.format(run_id=path_segment(run_id)),
            params={"path": path},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        return ArtifactRecord(**response.json())

    def read_artifact(self, sha256: str) -> bytes:
        """The bytes the server stores under ``sha256``, checked against it on arrival:
        different bytes raise :class:`~opsloop.store.TamperedArtifactError`.

        >>> HttpTrackingStore("http://127.0.0.1:1").read_artifact("ab")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: sha256 must be 64 lowercase hex digits, got 'ab'
        """
        location = ARTIFACT_PATH.format(sha256=check_sha256(sha256))
        data = self._call("GET", location).content
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise TamperedArtifactError(sha256, found, f"{self.base_url}/api/v1{location}")
        return data


def _piece_id(batch_id: str, number: int) -> str:
    """The idempotency key of piece ``number`` of a split batch.

    >>> _piece_id("a" * 64, 0) != _piece_id("a" * 64, 1), len(_piece_id("a" * 64, 0))
    (True, 40)
    """
    return hashlib.sha256(f"{batch_id}/{number}".encode()).hexdigest()[:40]
