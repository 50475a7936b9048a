"""The tracking API: ``start_run``, ``get_run``, ``search_runs``, ``compare_runs``.

Where runs go is decided by ``OPSLOOP_TRACKING_URI``: unset, the local store (the database of
``OPSLOOP_STORE_URI`` or SQLite under ``OPSLOOP_HOME``); an ``http(s)://`` URL, an opsloop
server (:class:`~opsloop.tracking.http_store.HttpTrackingStore`, with the token in
``OPSLOOP_TRACKING_TOKEN``); otherwise a database URI. The functions behave the same on
every backend. (The examples run with ``OPSLOOP_HOME`` set to an empty folder: a fresh
local store.)

>>> with start_run(experiment="churn", capture=False) as run:
...     run.log_params({"model": "rf"})
...     run.log_metric("auc", 0.91)
>>> found = search_runs("churn", filter="metrics.auc > 0.9 and params.model = 'rf'")
>>> found["run_id"].tolist() == [run.run_id], get_run(run.run_id).metrics
(True, {'auc': 0.91})
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.store.location import artifact_uri, opsloop_home, store_uri
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.capture import (
    capture_code_version,
    capture_command_line,
    capture_environment,
    current_user,
)
from opsloop.tracking.comparison import RunComparison, compare
from opsloop.tracking.records import Run

if TYPE_CHECKING:  # the service imports the wire types, which import this package
    from opsloop.tracking.tracking_service import TrackingService

TRACKING_VARIABLE = "OPSLOOP_TRACKING_URI"


def tracking_target(uri: str | None = None) -> str:
    """Where tracking goes: ``uri``, else ``$OPSLOOP_TRACKING_URI``, else ``""`` (the local
    store). An ``http(s)://`` target is a server (:func:`is_server`); any other is a database.

    >>> tracking_target("https://ops.example.com"), is_server("https://ops.example.com")
    ('https://ops.example.com', True)
    """
    return uri or os.environ.get(TRACKING_VARIABLE) or ""


def is_server(target: str) -> bool:
    """Whether a tracking target names an opsloop server rather than a database.

    >>> is_server("sqlite:///x.db")
    False
    """
    return target.startswith(("http://", "https://"))


_backends: dict[tuple, object] = {}
_backends_lock = threading.Lock()
_active = threading.local()


def tracking_backend(uri: str | None = None) -> TrackingService:
    """The backend for ``uri`` (default ``$OPSLOOP_TRACKING_URI``), made once per process.

    >>> tracking_backend() is tracking_backend()
    True

    A URL gives that server's store (here a server on the store ``tracking`` writes to):

    >>> _ = tracking.create_experiment("churn")
    >>> "churn" in tracking_backend(server_url).list_experiments()["name"].tolist()
    True
    """
    target = tracking_target(uri)
    if is_server(target):
        # Imported here: the HTTP client is generated from the service's table, whose wire
        # types import this package's limits, so importing it with the package is circular.
        from opsloop.tracking.http_store import TOKEN_VARIABLE, HttpTrackingStore

        # The home is part of the key: without a token, a loopback server gets its
        # installation token.
        key = (os.getpid(), target, os.environ.get(TOKEN_VARIABLE), str(opsloop_home()))
        with _backends_lock:
            backend = _backends.get(key)
            if backend is None:
                backend = _backends[key] = HttpTrackingStore(target, token=key[2])
            return backend
    key = (os.getpid(), target or store_uri(), artifact_uri())
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            from opsloop.store import ArtifactStore, open_database
            from opsloop.tracking.local_store import LocalTrackingStore

            backend = LocalTrackingStore(open_database(key[1]), ArtifactStore(key[2]))
            _backends[key] = backend
        return backend


def active_run() -> ActiveRun | None:
    """The innermost run started by :func:`start_run` in this thread and not yet ended.

    >>> with start_run("e", capture=False) as run:
    ...     active_run() is run
    True
    >>> active_run() is None
    True
    """
    stack = getattr(_active, "stack", [])
    while stack and stack[-1]._ended:
        stack.pop()
    return stack[-1] if stack else None


class _RunContext(ActiveRun):
    def __exit__(self, kind, error, traceback) -> None:
        try:
            super().__exit__(kind, error, traceback)
        finally:
            stack = getattr(_active, "stack", [])
            if self in stack:
                stack.remove(self)


def start_run(
    experiment: str = "default",
    *,
    name: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, object] | None = None,
    capture: bool = True,
    flush_interval_s: float = 1.0,
    tracking_uri: str | None = None,
) -> ActiveRun:
    """Start (or with ``run_id``, resume) a run; use it as a context manager.

    ``nested=True`` makes the run a child of this thread's active run (or give
    ``parent_run_id``). ``capture`` records the git version, environment, command line and
    OS user.

    >>> with start_run("tune", capture=False) as parent:
    ...     with start_run("tune", nested=True, capture=False) as child:
    ...         child.log_metric("loss", 0.1)
    >>> get_run(child.run_id).parent_run_id == parent.run_id
    True
    """
    backend = tracking_backend(tracking_uri)
    if run_id is not None:
        backend.get_run(run_id)
        backend.end_run(run_id, "RUNNING")
        resumed = _RunContext(backend, run_id, flush_interval_s=flush_interval_s)
        if tags:
            resumed.set_tags(tags)
        _push(resumed)
        return resumed
    if nested and parent_run_id is None:
        parent = active_run()
        if parent is None:
            raise InvalidArgumentError(
                "nested=True needs an active run in this thread to be the parent"
            )
        parent_run_id = parent.run_id
    details = {}
    if capture:
        details = {
            "user": current_user(),
            "command": capture_command_line(),
            "code": capture_code_version(),
            "environment": capture_environment(),
        }
    new_id = backend.create_run(
        experiment, name=name, parent_run_id=parent_run_id, tags=tags, **details
    )
    run = _RunContext(backend, new_id, flush_interval_s=flush_interval_s)
    _push(run)
    return run


def _push(run: ActiveRun) -> None:
    if not hasattr(_active, "stack"):
        _active.stack = []
    _active.stack.append(run)


def get_run(run_id: str, *, tracking_uri: str | None = None) -> Run:
    """The stored run: params, latest metrics, tags, versions, inputs, ``metric_history(key)``.

    >>> with start_run("e", capture=False) as run:
    ...     for step in range(3):
    ...         run.log_metric("loss", 1 / (step + 1), step=step)
    >>> get_run(run.run_id).metric_history("loss")["step"].tolist()
    [0, 1, 2]
    """
    return tracking_backend(tracking_uri).get_run(run_id)


def search_runs(
    experiment: str | Iterable[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
    *,
    page_token: str | None = None,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Runs of ``experiment`` (a name, names, or ``None`` for all) matching ``filter``.

    The filter language (AND, OR, NOT, parentheses; ``metrics.``, ``params.``, ``tags.``
    and run attributes) is documented in :mod:`opsloop.tracking.filter_parser`; it runs as
    SQL in the database. ``order_by`` is a list such as ``["metrics.auc DESC"]``; runs it
    ranks equal come newest first (then by the order they were created), so the order is
    the same on every call.

    >>> for auc in (0.7, 0.9, 0.8):
    ...     with start_run("e", capture=False) as run:
    ...         run.log_metric("auc", auc)
    >>> search_runs("e", order_by=["metrics.auc DESC"])["metrics.auc"].tolist()
    [0.9, 0.8, 0.7]

    Page by page: ``max_results`` runs at a time, the frame's ``attrs["next_page_token"]``
    passed back as ``page_token`` with the same experiment, filter and ``order_by``; it is
    ``None`` on the last page. The same works locally and through a server. A token of
    another search, or text that is not a token, is refused naming ``page_token``.

    >>> page = search_runs("e", order_by=["metrics.auc DESC"], max_results=2)
    >>> page["metrics.auc"].tolist()
    [0.9, 0.8]
    >>> token = page.attrs["next_page_token"]
    >>> last = search_runs("e", order_by=["metrics.auc DESC"], max_results=2, page_token=token)
    >>> last["metrics.auc"].tolist(), last.attrs["next_page_token"]
    ([0.7], None)
    """
    return tracking_backend(tracking_uri).search_runs(
        experiment, filter, order_by, max_results, page_token
    )


def compare_runs(run_ids: Sequence[str], *, tracking_uri: str | None = None) -> RunComparison:
    """Params and latest metrics side by side, plus every metric history of the runs.

    >>> ids = []
    >>> for depth in (3, 5):
    ...     with start_run("e", capture=False) as run:
    ...         run.log_params({"depth": depth, "seed": 0})
    ...         ids.append(run.run_id)
    >>> compare_runs(ids).differing_params()
    ['depth']
    """
    if isinstance(run_ids, str):
        raise TypeError("run_ids must be a list of run ids, not one string")
    backend = tracking_backend(tracking_uri)
    runs = [backend.get_run(run_id) for run_id in run_ids]
    # The full ids: a shortened one found its run above but names no metric rows.
    return compare(runs, backend.metric_histories([run.run_id for run in runs]))
