"""A shadow variant answered in a process of its own, so that it costs the primary almost
nothing.

A shadow answered by a thread of the serving process (:mod:`.shadow_mirror`) shares the
primary's interpreter lock: every validation, frame and model call of the shadow's is time
the primary's request cannot run Python, and on a small machine it also takes the primary's
core. :class:`ShadowProcess` moves the shadow out:

* **the child process** (a fresh interpreter, at a lower scheduling priority: see
  *Scheduling* below) opens the store itself, loads the shadow's model version
  through the registry (sha256 verified, the same trust rules as the serving process),
  checks and answers each copy, and writes its prediction events to the store in one
  transaction per batch, so the shadow's events, its agreement with the primary
  (:mod:`.shadow_agreement`) and the monitoring read the same rows as before;
* **the request path** does one thing: under a lock, it counts the copy against the bound
  and appends a reference to it to a buffer (``offer`` never waits, never copies, never
  pickles, and wakes no thread: waking one costs about 15 µs, as much again as the rest
  of the request's shadow work); when ``capacity`` copies are already waiting or being
  answered, the copy is dropped and counted;
* **a sender thread** looks at the buffer every 20 ms (:data:`SEND_EVERY_S`), pickles the
  copies waiting and writes them to the child in one message, and **a supervisor thread**
  reads the child's reports (answers and failures with their latencies, for the counts and
  the Prometheus metrics), which the child sends at most every 200 ms (:data:`REPORT_S`)
  after writing the events they count. Both take the interpreter lock once per batch, not
  per request.

**A crashing or hanging child is never visible to clients.** When the child ends (a crash,
a segfault, an out-of-memory kill) or stops reporting while it holds copies for longer than
``hang_timeout_s`` (then it is killed), the copies it held are counted as ``failed``, the
restart is counted (:attr:`ShadowProcess.restarts`, ``opsloop_shadow_restarts_total``) and
a new child is started after a pause that doubles with each restart in a row (0.5 s up to
30 s), so a shadow that crashes on every copy costs a start now and then, not a start per
request. Meanwhile copies wait in the bounded buffer or are dropped and counted. Every copy
offered ends counted once: ``answered``, ``failed`` or ``dropped``.

The copies a crash or a hang lost have no shadow event; the agreement report counts them
``unanswered``.

**Scheduling.** The child runs at :attr:`ShadowHost.niceness` (default 19, the lowest
priority) and, on Linux, under the ``SCHED_IDLE`` policy (:attr:`ShadowHost.scheduling`
``"idle"``, the default). Niceness alone is not enough on a small machine: a task at nice
19 still has a weight of 15 against a normal task's 1024, and a waking normal task
preempts it only when the scheduler's fairness rules say so, so a primary's request that
arrives while the shadow answers a copy on the core can wait behind it (a cost that
shows in the primary's p99 more than in its p50). A ``SCHED_IDLE`` task has a weight of 3,
a waking normal task preempts it at once, and a core that runs only such tasks counts as
idle when the scheduler places a waking task; so the shadow runs, in effect, on the time
the primary and everything else leave idle. When the machine is saturated the child gets
next to nothing, the bounded buffer fills, and further copies are dropped and counted
(``dropped``, ``opsloop_shadow_dropped_total``), as a shadow must rather than slow the
primary; a child starved while it holds copies for longer than ``hang_timeout_s`` is
stopped and restarted as a hung one would be. ``"normal"`` keeps the usual policy at the
niceness only. Where ``SCHED_IDLE`` does not exist (not Linux), or the system refuses it,
the child runs at the niceness only (the refusal is written to its standard error). The
niceness is applied in both cases: the disk scheduler derives a process's I/O priority
from it.

>>> ShadowHost.of(Database("sqlite://"), None) is None  # another process cannot open it
True
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.store.database import Database

logger = logging.getLogger("opsloop.serving")

#: How many copies the sender writes to the child at once, at most.
BATCH = 256
#: How often the sender looks for copies, in seconds. A sender woken by each copy would
#: cost the request path a wake-up of another thread (about 15 µs here); a copy waits this
#: long at most, which no one waits for.
SEND_EVERY_S = 0.02
#: How often the child writes its events and reports its answers, at most.
REPORT_S = 0.2
#: The longest pause before a restart, after several crashes in a row.
MAX_PAUSE_S = 30.0
#: How long a child may take to start (import its libraries, open the store) before it
#: counts as hung, when it holds copies.
STARTUP_S = 120.0


def check_niceness(niceness: object) -> None:
    """Refuse a ``niceness`` for a shadow's child that is not an integer from 0 to 19 (the
    child can only lower its own priority).

    >>> check_niceness(20)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: niceness must be an integer from 0 to 19, got 20
    """
    if isinstance(niceness, bool) or not isinstance(niceness, int) or not 0 <= niceness <= 19:
        raise InvalidArgumentError(f"niceness must be an integer from 0 to 19, got {niceness!r}")


#: The scheduling a shadow's child may ask for (see the module's *Scheduling*).
SCHEDULING = ("idle", "normal")


def check_scheduling(scheduling: object) -> None:
    """Refuse a ``scheduling`` for a shadow's child other than ``"idle"`` (Linux's
    ``SCHED_IDLE`` where there is one) or ``"normal"`` (the niceness only).

    >>> check_scheduling("batch")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: scheduling must be 'idle' or 'normal', got 'batch'
    """
    if not isinstance(scheduling, str) or scheduling not in SCHEDULING:
        raise InvalidArgumentError(f"scheduling must be 'idle' or 'normal', got {scheduling!r}")


@dataclass(frozen=True)
class ShadowHost:
    """What a shadow process needs to reach the store: its URI, the artifact store's root,
    and the serving user's trust (``trust``, ``trusted_types``, as for
    :class:`~.serving_runtime.ServingRuntime`). ``niceness`` is added to the child's
    scheduling priority (0: the same as the serving process), and ``scheduling`` is
    ``"idle"`` (Linux's ``SCHED_IDLE`` on top of the niceness, where there is one) or
    ``"normal"`` (the niceness only), so that on a busy machine the shadow waits for a core
    rather than the primary (see the module's *Scheduling*).

    >>> ShadowHost("sqlite:///store.db", "/srv/artifacts", niceness=-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: niceness must be an integer from 0 to 19, got -1
    >>> ShadowHost("sqlite:///store.db", "/srv/artifacts", scheduling="lowest")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: scheduling must be 'idle' or 'normal', got 'lowest'
    """

    store_uri: str
    artifacts_root: str
    trust: bool = False
    trusted_types: tuple[str, ...] = ()
    niceness: int = 19
    scheduling: str = "idle"

    def __post_init__(self) -> None:
        check_niceness(self.niceness)
        check_scheduling(self.scheduling)

    @classmethod
    def of(
        cls,
        db: Database | None,
        registry: Any,
        *,
        trust: bool = False,
        trusted_types: tuple[str, ...] = (),
    ) -> ShadowHost | None:
        """The host of a runtime on ``db`` whose ``registry`` keeps artifacts under a root
        another process can open; ``None`` where there is none (no store, or SQLite in
        memory, which lives in this process only).

        >>> from opsloop.registry import ModelRegistry
        >>> from opsloop.store import ArtifactStore
        >>> db = Database(f"sqlite:///{tmp_path}/store.db")
        >>> host = ShadowHost.of(db, ModelRegistry(db, ArtifactStore(tmp_path / "a")))
        >>> host.store_uri == db.uri, host.artifacts_root == str(tmp_path / "a")
        (True, True)
        """
        artifacts = getattr(registry, "artifacts", None)
        if db is None or artifacts is None:
            return None
        url = sa.make_url(db.uri)
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        return cls(db.uri, artifacts.root, trust, tuple(trusted_types))

    @classmethod
    def for_isolation(
        cls,
        isolation: str,
        db: Database | None,
        registry: Any,
        *,
        trust: bool = False,
        trusted_types: tuple[str, ...] = (),
    ) -> ShadowHost | None:
        """The host for a runtime's ``shadow_isolation``: ``None`` for ``"thread"``, and
        for ``"auto"`` where :meth:`of` finds none; ``"process"`` needs one.

        >>> ShadowHost.for_isolation("process", Database("sqlite://"), None)
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: shadow_isolation: 'process' needs a store ...
        >>> ShadowHost.for_isolation("auto", Database("sqlite://"), None) is None
        True
        """
        if isolation not in ("thread", "process", "auto"):
            raise InvalidArgumentError(
                f"shadow_isolation must be 'thread', 'process' or 'auto', got {isolation!r}"
            )
        if isolation == "thread":
            return None
        host = cls.of(db, registry, trust=trust, trusted_types=trusted_types)
        if host is None and isolation == "process":
            raise InvalidArgumentError(
                "shadow_isolation: 'process' needs a store another process can open (a file "
                "or a server, not SQLite in memory, not a control plane's URL)"
            )
        return host

    def open(self) -> tuple[Any, Any, Callable[[], int]]:
        """In the child: the registry to load the shadow's version from, the sink of its
        prediction events and the clock that stamps them (here, the store's)."""
        from opsloop.registry.model_registry import ModelRegistry
        from opsloop.serving.prediction_events import StoreEventSink
        from opsloop.store.artifacts import ArtifactStore

        db = Database(self.store_uri, migrate=False)
        registry = ModelRegistry(db, ArtifactStore(self.artifacts_root), actor="serving")
        return registry, StoreEventSink(db), db.clock


class ShadowCopy(NamedTuple):
    """One request's copy as the child receives it: the shadow's model version, the
    primary's request id and routing key, and the records as the client sent them."""

    model: str
    version: int
    request_id: str
    routing_key: str | None
    records: list
    #: The answering definition's (see :mod:`.retired_names`).
    generation: int | None = None


class ChildShadow(NamedTuple):
    """What the serving process keeps of a shadow variant ``name`` answered in a child
    process: the model version a copy for it names. The model itself is loaded by the
    child only, so the serving process does not hold it a second time.

    >>> ChildShadow("copy", "credit", 2).model_name
    'credit'
    """

    name: str
    model_name: str
    version: int
    #: The input columns of the version's schema (``None``: registered without one).
    columns: frozenset[str] | None = None


class ShadowProcess:
    """The shadow variant ``variant`` of ``deployment`` answered in a child process (see
    the module).

    ``offer`` takes the runtime's copy of a request (an object with ``variant``, one with
    ``model_name`` and ``version`` such as a :class:`ChildShadow`, ``request_id``,
    ``routing_key`` and ``records``). ``capacity`` bounds the copies
    offered and not yet answered (waiting here, in the pipe, or in the child). ``on_drop``
    is called on the request path for each copy dropped, so it must be cheap; ``on_answer``
    (with the seconds the shadow took), ``on_failure`` (with the kind: ``invalid_input``,
    ``model_error`` or ``process_ended``) and ``on_restart`` are called from the supervisor
    thread. ``answered``, ``failed``, ``dropped`` and ``restarts`` count.

    >>> ShadowProcess("api/s", "api", "s", ShadowHost("sqlite:///x.db", "/a"), capacity=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: shadow capacity must be a positive integer, got 0
    """

    def __init__(
        self,
        name: str,
        deployment: str,
        variant: str,
        host: ShadowHost,
        *,
        capacity: int = 1000,
        hang_timeout_s: float = 30.0,
        on_drop: Callable[[], None] | None = None,
        on_answer: Callable[[float], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidArgumentError(
                f"shadow capacity must be a positive integer, got {capacity!r}"
            )
        if not isinstance(hang_timeout_s, int | float) or not hang_timeout_s > 0:
            raise InvalidArgumentError(
                f"hang_timeout_s must be a positive number, got {hang_timeout_s!r}"
            )
        self.name, self.deployment, self.variant, self.host = name, deployment, variant, host
        self.capacity = capacity
        self.hang_timeout_s = float(hang_timeout_s)
        self.answered = self.failed = self.dropped = self.restarts = 0
        self._on_drop, self._on_answer = on_drop, on_answer
        self._on_failure, self._on_restart = on_failure, on_restart
        self._changed = threading.Condition(threading.Lock())
        self._buffer: collections.deque = collections.deque()
        self._pending = 0  # offered, not yet answered, failed or dropped
        self._in_child = 0  # sent to the current child, not yet reported on
        self._progress_at = time.monotonic()
        self._closing = False
        self._child: Any = None
        self._jobs: Any = None
        self._reports: Any = None
        self._ready = False
        self._crashes_in_a_row = 0
        self._start_child()
        self._sender = threading.Thread(
            target=self._send, name=f"opsloop-shadow-send-{name}", daemon=True
        )
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"opsloop-shadow-watch-{name}", daemon=True
        )
        self._sender.start()
        self._supervisor.start()

    # -- the request path ------------------------------------------------------------------

    def offer(self, job: Any) -> bool:
        """Take a copy for the shadow; ``False`` (and counted) when ``capacity`` copies are
        already under way or the shadow is closing."""
        with self._changed:
            if not self._closing and self._pending < self.capacity:
                self._pending += 1
                self._buffer.append(job)  # the sender looks every SEND_EVERY_S
                return True
            self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()
        return False

    # -- the child -------------------------------------------------------------------------

    def _start_child(self) -> None:
        # A fresh interpreter, not multiprocessing's spawn: that one imports the caller's
        # main module again, which a script without a __main__ guard does not survive.
        jobs_out, jobs_in = os.pipe()
        reports_out, reports_in = os.pipe()
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(jobs_out),
                str(reports_in),
                str(self.host.niceness),
                self.host.scheduling,
            ],
            pass_fds=(jobs_out, reports_in),
            stdin=subprocess.DEVNULL,
            # The parent's modules (a model's class pickled by reference) import the same.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        # The child holds its own ends; closing ours lets each side see the other end.
        os.close(jobs_out)
        os.close(reports_in)
        jobs_in = Connection(jobs_in, readable=False)
        reports_out = Connection(reports_out, writable=False)
        # A child that ended at once shows as the end of its reports; its pipe refuses this.
        with contextlib.suppress(OSError):
            jobs_in.send((self.host, self.deployment, self.variant))
        with self._changed:
            self._child, self._jobs, self._reports = child, jobs_in, reports_out
            self._ready = False
            self._progress_at = time.monotonic()
            self._changed.notify_all()

    def _send(self) -> None:
        while True:
            with self._changed:
                while not ((self._buffer and self._jobs is not None) or self._closing):
                    self._changed.wait(SEND_EVERY_S)
                if self._closing and (self._jobs is None or not self._buffer):
                    left, jobs = len(self._buffer), self._jobs
                    self._buffer.clear()
                    self._pending -= left
                    self.dropped += left
                    break
                batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), BATCH))]
                if not self._in_child:
                    self._progress_at = time.monotonic()
                self._in_child += len(batch)
                jobs = self._jobs
            copies = [
                ShadowCopy(
                    job.variant.model_name,
                    job.variant.version,
                    job.request_id,
                    job.routing_key,
                    list(job.records),
                    getattr(job, "generation", None),
                )
                for job in batch
            ]
            try:
                jobs.send(copies)
            except Exception:  # the child is gone: the supervisor counts what it held
                logger.debug("shadow %s: a batch found no child", self.name, exc_info=True)
        for _ in range(left):
            if self._on_drop is not None:
                self._on_drop()
        if jobs is not None:
            # No more copies: the child answers what it has and ends (if it is still there).
            with contextlib.suppress(Exception):
                jobs.send(None)

    def _supervise(self) -> None:
        while True:
            with self._changed:
                reports, child = self._reports, self._child
                startup = not self._ready
            try:
                if reports.poll(0.1):
                    self._settle(reports.recv())
                    continue
            except (EOFError, OSError):
                if self._ended(child):
                    return
                continue
            with self._changed:
                # A child still starting gets longer: it imports the model's libraries.
                allowed = max(self.hang_timeout_s, STARTUP_S) if startup else self.hang_timeout_s
                hung = self._in_child and time.monotonic() - self._progress_at > allowed
            if hung:
                logger.warning(
                    "shadow %s: no answer for %.1f s, its process is stopped and restarted",
                    self.name,
                    allowed,
                )
                child.kill()  # its end of the reports closes: the next poll sees it
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(5)

    def _settle(self, report: tuple) -> None:
        kind, latencies, failures = report
        with self._changed:
            self._progress_at = time.monotonic()
            if kind == "ready":
                self._ready = True
                return
            settled = len(latencies) + len(failures)
            self.answered += len(latencies)
            self.failed += len(failures)
            self._in_child -= settled
            self._pending -= settled
            if latencies:
                self._crashes_in_a_row = 0
        for seconds in latencies:
            if self._on_answer is not None:
                self._on_answer(seconds)
        for failure in failures:
            if self._on_failure is not None:
                self._on_failure(failure)

    def _ended(self, child: Any) -> bool:
        """Count what the ended child held; start another unless closing. ``True`` when
        the supervisor is done."""
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        with self._changed:
            lost, self._in_child = self._in_child, 0
            self._pending -= lost
            closing = self._closing
            if closing:
                self.dropped += lost
            else:
                self.failed += lost
            self._jobs = None  # the sender waits for the next child
            self._crashes_in_a_row += 1
            pause = min(0.5 * 2 ** (self._crashes_in_a_row - 1), MAX_PAUSE_S)
        self._reports.close()
        if closing:
            for _ in range(lost):
                if self._on_drop is not None:
                    self._on_drop()
            with self._changed:
                self._changed.notify_all()
            return True
        self.restarts += 1
        logger.warning(
            "shadow %s: its process ended (exit code %s) holding %d copies; restarting in %.1f s",
            self.name,
            child.returncode,
            lost,
            pause,
        )
        for _ in range(lost):
            if self._on_failure is not None:
                self._on_failure("process_ended")
        if self._on_restart is not None:
            self._on_restart()
        while True:
            with self._changed:
                if self._changed.wait_for(lambda: self._closing, timeout=pause):
                    return True
            try:
                self._start_child()
                return False
            except OSError:  # no process to be had now (limits, memory): try again later
                logger.exception("shadow %s: its process could not be started", self.name)
                pause = min(2 * pause, MAX_PAUSE_S)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop taking copies, let the child answer those under way (for at most
        ``timeout_s``), then stop it; copies left unanswered are counted as dropped.

        (The examples that start a child are in ``tests/serving/test_shadow_process.py``.)
        """
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        deadline = time.monotonic() + timeout_s
        self._sender.join(timeout_s)
        self._supervisor.join(max(deadline - time.monotonic(), 0.0))
        if self._supervisor.is_alive():
            with self._changed:
                child = self._child
            if child is not None and child.poll() is None:
                child.kill()  # hung: what it held is counted as dropped by the supervisor
            self._supervisor.join(10)
            self._sender.join(1)
        if self._jobs is not None:
            self._jobs.close()


#: The child's program: its niceness and scheduling policy set first (its imports are its
#: heaviest work, and the threads it starts later inherit the policy), then
#: :func:`answer_copies` on the two pipes' file descriptors.
CHILD = """\
import os, sys
os.nice(int(sys.argv[3]))
if sys.argv[4] == "idle" and hasattr(os, "SCHED_IDLE"):
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError as refused:
        print(f"opsloop shadow: SCHED_IDLE refused ({refused}), at niceness only", file=sys.stderr)
from opsloop.serving.shadow_process import answer_copies
answer_copies(int(sys.argv[1]), int(sys.argv[2]))
"""


def answer_copies(jobs_fd: int, reports_fd: int) -> None:
    """The child process: read what to answer (a :class:`ShadowHost` or one of its kind,
    :mod:`.control_plane_shadow_host`; the deployment and the variant) from ``jobs_fd``,
    then answer the copies read from it until ``None`` or the end of the pipe, write their
    prediction events through the host's sink, and report each batch's answers (latencies
    in seconds) and failures (kinds) on ``reports_fd``."""
    jobs = Connection(jobs_fd, writable=False)
    reports = Connection(reports_fd, readable=False)
    try:
        host, deployment, variant = jobs.recv()
    except EOFError:
        return
    # Ctrl-C at the server reaches the whole process group; the server closes its shadows.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    registry, sink, clock = host.open()
    loaded: dict = {}
    reports.send(("ready", [], []))
    events: list = []
    latencies: list = []
    failures: list = []
    since = time.monotonic()
    while True:
        # Copies answered are written and reported together at most every REPORT_S: one
        # transaction, and one wake-up of the serving process, per interval, not per copy.
        if events:
            remaining = since + REPORT_S - time.monotonic()
            if remaining <= 0 or not jobs.poll(remaining):
                _report(sink, reports, events, latencies, failures)
                events, latencies, failures = [], [], []
                continue
        try:
            copies = jobs.recv()
        except EOFError:  # the serving process is gone
            copies = None
        if copies is None:
            if events:
                _report(sink, reports, events, latencies, failures)
            return
        if not events:
            since = time.monotonic()
        for copy in copies:
            event, kind = _answer(copy, host, registry, loaded, deployment, variant, clock)
            events.append(event)
            if kind is None:
                latencies.append(event.latency_ms / 1000.0)
            else:
                failures.append(kind)


def _report(sink: Any, reports: Connection, events: list, latencies: list, failures: list):
    """Write the events, then report the copies they answer (so a count the serving
    process has read is a row in the store, unless the write failed and was logged)."""
    try:
        sink.write(events)
    except Exception:
        logger.exception("shadow: lost %d prediction events, the store refused them", len(events))
    reports.send(("answered", latencies, failures))


def _answer(copy: ShadowCopy, host, registry, loaded: dict, deployment, variant, clock):
    """One copy's prediction event, and its failure kind (``None`` when answered)."""
    from opsloop.serving.loaded_variant import load_variant
    from opsloop.serving.prediction_events import PredictionEvent

    started = time.perf_counter()
    answer, error, kind = None, None, None
    try:
        key = (copy.model, copy.version)
        if key not in loaded:
            loaded.clear()  # the definition moved to another version: keep one in memory
            loaded[key] = load_variant(
                registry,
                variant,
                "shadow",
                copy.model,
                copy.version,
                trust=host.trust,
                trusted_types=host.trusted_types,
            )
        shadow = loaded[key]
    except Exception as caught:
        kind, error = "model_error", f"{type(caught).__name__}: {caught}"
    if kind is None:
        try:
            answer = shadow.predict(shadow.check(copy.records))
        except Exception as caught:
            invalid = isinstance(caught, InvalidArgumentError)
            kind = "invalid_input" if invalid else "model_error"
            error = f"{type(caught).__name__}: {caught}"
    seconds = time.perf_counter() - started
    event = PredictionEvent(
        deployment=deployment,
        variant=variant,
        role="shadow",
        model=copy.model,
        version=copy.version,
        request_id=copy.request_id,
        routing_key=copy.routing_key,
        inputs=copy.records,
        output=None if answer is None else answer.to_dict(),
        error=error,
        latency_ms=seconds * 1000.0,
        at_ms=clock(),
        generation=copy.generation,
    )
    return event, kind
