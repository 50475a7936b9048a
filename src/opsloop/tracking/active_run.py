"""A run being logged: the object ``start_run`` yields, with buffered, batched writes.

Params, tags and metric points are kept in memory and written together by a background
thread every ``flush_interval_s`` seconds, on :meth:`ActiveRun.flush` and when the run ends.
When ``max_buffered`` points wait, the logging call itself writes them: a loop that logs
faster than the store can write then waits for the store, so memory and the size of a
transaction stay bounded (a background thread alone could not keep up: it competes with the
logging loop for the interpreter at every row it hands to the database).

Every batch carries an idempotency key. A batch that fails to write is kept, key and all,
and sent again before anything newer, so a write that did reach the store but whose answer
was lost (a server killed between commit and reply) is not stored twice. A background
failure is raised to the caller at its next call, after that call's own value is buffered,
so a caller that catches the error and carries on loses nothing. While there is nothing to
log, the flusher writes an empty batch every ``heartbeat_s`` seconds, so the store can tell a
run that is quiet from one whose process died (see
:class:`~opsloop.tracking.local_store.LocalTrackingStore` on lost runs). Artifacts and data
sets are written at once: they are few, and their content must be stored first.

>>> from opsloop.store import ArtifactStore, Database
>>> from opsloop.tracking.local_store import LocalTrackingStore
>>> store = LocalTrackingStore(Database("sqlite://"), ArtifactStore(tmp_path))
>>> with ActiveRun(store, store.create_run("churn")) as run:
...     run.log_params({"model": "rf", "depth": 5})
...     for step in range(3):
...         run.log_metric("loss", 1.0 / (step + 1), step=step)
>>> stored = store.get_run(run.run_id)
>>> stored.status, stored.params["depth"], round(stored.metrics["loss"], 3)
('FINISHED', '5', 0.333)

The examples of the methods start from ``tracking``, another such store, empty.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from opsloop.errors import AlreadyDoneError, InvalidArgumentError
from opsloop.tracking.dataset_digest import dataset_sha256
from opsloop.tracking.limits import (
    INT64_MAX,
    INT64_MIN,
    checked_key,
    metric_step,
    metric_value,
    param_text,
    tag_text,
    time_ms,
)
from opsloop.tracking.metric_buffer import MetricBatch, MetricBuffer
from opsloop.tracking.records import ArtifactRecord, DatasetInput, Run

if TYPE_CHECKING:  # the service imports the wire types, which import this package
    from opsloop.tracking.tracking_service import TrackingService


@dataclass(frozen=True)
class _Batch:
    """One write: its points, params and tags, and the key that makes resending it safe."""

    metrics: MetricBatch
    params: dict[str, str]
    tags: dict[str, str]
    batch_id: str

    def __bool__(self) -> bool:
        return bool(self.params or self.tags or len(self.metrics))


class ActiveRun:
    """Log params, metrics, tags, artifacts and data sets to one run of a tracking backend.

    ``backend`` is a :class:`~opsloop.tracking.tracking_service.TrackingService`: the local
    store or a server's client (it uses ``write_batch``, ``end_run``, ``log_artifact``,
    ``log_dataset`` and ``get_run``). Used as a context manager, the
    run ends FINISHED, FAILED when the block raises, or KILLED on ``KeyboardInterrupt``.

    >>> run = ActiveRun(tracking, tracking.create_run("e"), flush_interval_s=60)
    >>> run.log_metric("auc", 0.5); run.flush(); tracking.get_run(run.run_id).metrics
    {'auc': 0.5}
    >>> run.end()
    """

    def __init__(
        self,
        backend: TrackingService,
        run_id: str,
        *,
        flush_interval_s: float = 1.0,
        max_buffered: int = 200_000,
        heartbeat_s: float = 30.0,
    ) -> None:
        if not flush_interval_s > 0:
            raise InvalidArgumentError(
                f"flush_interval_s must be positive, got {flush_interval_s!r}"
            )
        if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
            raise InvalidArgumentError(
                f"max_buffered must be a positive integer, got {max_buffered!r}"
            )
        if not heartbeat_s > 0:
            raise InvalidArgumentError(f"heartbeat_s must be positive, got {heartbeat_s!r}")
        self.backend = backend
        self.run_id = run_id
        self.heartbeat_s = heartbeat_s
        self._last_write = time.monotonic()
        self.flush_interval_s = flush_interval_s
        self.max_buffered = max_buffered
        self._metrics = MetricBuffer()
        self._params: dict[str, str] = {}
        self._pending_params: dict[str, str] = {}
        self._pending_tags: dict[str, str] = {}
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._valid_keys: set[str] = set()
        self._error: BaseException | None = None
        self._unacknowledged: _Batch | None = None
        self._held = 0  # points in the unacknowledged batch: they count against max_buffered
        self._ended = False
        self._wake = threading.Event()
        self._stop = False
        self._flusher = threading.Thread(
            target=self._flush_periodically, name=f"opsloop-flush-{run_id[:8]}", daemon=True
        )
        self._flusher.start()

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r})"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.end("FINISHED")
        else:
            status = "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"
            # The block's own exception is the one to report.
            with contextlib.suppress(Exception):
                self.end(status)

    # -- logging --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._ended:
            raise InvalidArgumentError(
                f"run {self.run_id} has ended; start or resume a run to log to it"
            )

    def _raise_deferred(self) -> None:
        """Raise a background write's error (called once the caller's own data is buffered)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp_ms: int | None = None
    ) -> None:
        """Buffer one metric point (a finite number; ``step`` defaults to 0).

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.log_metric("loss", float("inf"))
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric 'loss': value must be a finite number, got inf
        """
        if self._ended:
            self._check_open()
        if key not in self._valid_keys:
            checked_key("metric", key)
            self._valid_keys.add(key)
        # Fast path for the common case: a finite float (inf - inf and nan - nan are nan).
        if type(value) is not float or value - value != 0.0:
            value = metric_value(key, value)
        # A plain int still needs its range: the buffer holds steps as 64-bit integers.
        if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
            step = metric_step(key, step)
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        else:
            timestamp_ms = time_ms(f"metric {key!r}: timestamp_ms", timestamp_ms)
        waiting = self._metrics.append(key, value, step, timestamp_ms) + self._held
        if self._error is not None:
            self._raise_deferred()
        if waiting >= self.max_buffered:
            self._write_pending()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp_ms: int | None = None
    ) -> None:
        """Buffer several metrics at one step.

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.log_metrics({"auc": 0.8, "f1": 0.6}, step=2)
        >>> tracking.get_run(run.run_id).metrics
        {'auc': 0.8, 'f1': 0.6}
        """
        self._check_open()
        step = metric_step("metrics", step)
        stamp = (
            time.time_ns() // 1_000_000
            if timestamp_ms is None
            else time_ms("metrics: timestamp_ms", timestamp_ms)
        )
        keys, values = [], []
        for key, value in metrics.items():
            checked_key("metric", key)
            keys.append(key)
            values.append(metric_value(key, value))
        self._metrics.extend(keys, values, [step] * len(keys), [stamp] * len(keys))
        self._raise_deferred()
        if len(self._metrics) + self._held >= self.max_buffered:
            self._write_pending()

    def log_param(self, key: str, value: object) -> None:
        """Record one param (stored as text; logging it again needs the same value).

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.log_param("depth", 3)
        ...     run.log_param("depth", 4)
        Traceback (most recent call last):
        opsloop.errors.AlreadyDoneError: param 'depth' is already '3'; cannot change it to '4'
        """
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record several params.

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.log_params({"a": 1, "b": "x"})
        >>> tracking.get_run(run.run_id).params
        {'a': '1', 'b': 'x'}
        """
        self._check_open()
        checked = {checked_key("param", k): param_text(k, v) for k, v in params.items()}
        with self._pending_lock:
            for key, text in checked.items():
                old = self._params.get(key)
                if old is not None and old != text:
                    raise AlreadyDoneError(
                        f"param {key!r} is already {old!r}; cannot change it to {text!r}"
                    )
            for key, text in checked.items():
                if key not in self._params:
                    self._params[key] = text
                    self._pending_params[key] = text
        self._raise_deferred()

    def set_tag(self, key: str, value: object) -> None:
        """Set a tag (tags may change during the run).

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.set_tag("stage", "try"); run.set_tag("stage", "final")
        >>> tracking.get_run(run.run_id).tags
        {'stage': 'final'}
        """
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set several tags.

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.set_tags({"a": 1})
        >>> tracking.get_run(run.run_id).tags
        {'a': '1'}
        """
        self._check_open()
        checked = {checked_key("tag", k): tag_text(k, v) for k, v in tags.items()}
        with self._pending_lock:
            self._pending_tags.update(checked)
        self._raise_deferred()

    def log_artifact(self, path: str | Path, name: str | None = None) -> ArtifactRecord:
        """Store a file content-addressed and record it in the run (as ``name``, default its
        file name).

        >>> p = tmp_path / "report.txt"
        >>> _ = p.write_text("ok")
        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.log_artifact(p).path
        'report.txt'
        """
        self._check_open()
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"artifact path {str(source)!r} is not a file")
        return self.backend.log_artifact(self.run_id, source, name or source.name)

    def log_dataset(
        self,
        frame: pd.DataFrame,
        name: str = "train",
        *,
        schema: bool = True,
        profile: bool = True,
    ) -> DatasetInput:
        """Record a data set the run used: full-content sha256, shape, schema and profile.

        The schema comes from :func:`opsloop.data.schema.infer_schema` and the profile from
        :func:`opsloop.data.profile.profile` (turn either off for very wide tables).

        >>> import pandas as pd
        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     d = run.log_dataset(pd.DataFrame({"x": [1, 2]}), name="train")
        >>> d.n_rows, d.schema["columns"]["x"]["type"], d.profile["n_rows"]
        (2, 'int', 2)
        """
        self._check_open()
        digest = dataset_sha256(frame)
        schema_document = profile_document = None
        if schema:
            from opsloop.data.schema import infer_schema

            schema_document = infer_schema(frame).to_dict()
        if profile:
            from opsloop.data.profile import profile as profile_frame

            profile_document = profile_frame(frame).to_dict()
        dataset = DatasetInput(
            checked_key("dataset name", name),
            digest,
            int(frame.shape[0]),
            int(frame.shape[1]),
            schema_document,
            profile_document,
        )
        self.backend.log_dataset(self.run_id, dataset)
        return dataset

    # -- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered now (raises if the write fails; nothing is dropped).

        >>> run = ActiveRun(tracking, tracking.create_run("e")); run.log_param("a", 1); run.flush()
        >>> tracking.get_run(run.run_id).params
        {'a': '1'}
        >>> run.end()
        """
        self._raise_deferred()
        self._write_pending()

    def _send(self, batch: _Batch, status: str | None) -> None:
        extra = {} if status is None else {"status": status}
        self.backend.write_batch(
            self.run_id,
            metrics=batch.metrics if len(batch.metrics) else None,
            params=batch.params,
            tags=batch.tags,
            batch_id=batch.batch_id,
            **extra,
        )

    def _write_pending(self, status: str | None = None, heartbeat: bool = False) -> bool:
        """Write what is buffered (with ``status``, also end the run); whether anything was.
        With ``heartbeat``, an empty batch is written when nothing is buffered, so the store
        knows the run's process is alive.

        A batch whose write failed is sent again first, under its own key, and newer data
        waits behind it: the store receives every batch once, in logging order.
        """
        with self._flush_lock:
            if self._unacknowledged is not None:
                # Ending waits for the new batch below, which carries the status.
                self._send(self._unacknowledged, None)
                self._unacknowledged, self._held = None, 0
            with self._pending_lock:
                params, self._pending_params = self._pending_params, {}
                tags, self._pending_tags = self._pending_tags, {}
            batch = _Batch(self._metrics.drain(), params, tags, uuid.uuid4().hex)
            if not batch and not heartbeat:
                return False
            try:
                self._send(batch, status)
            except BaseException:
                if batch:
                    self._unacknowledged, self._held = batch, len(batch.metrics)
                raise
            self._last_write = time.monotonic()
            return bool(batch)

    def _flush_periodically(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stop:
                return
            try:
                due = time.monotonic() - self._last_write >= self.heartbeat_s
                self._write_pending(heartbeat=due)
            except Exception as error:  # reported to the caller at its next call
                self._error = error

    def end(self, status: str = "FINISHED") -> None:
        """Flush, stop the background writer and set the final status (idempotent).

        >>> run = ActiveRun(tracking, tracking.create_run("e")); run.end("KILLED"); run.end()
        >>> tracking.get_run(run.run_id).status
        'KILLED'
        """
        if self._ended:
            return
        self._stop = True
        self._wake.set()
        self._flusher.join()
        self._ended = True
        error, self._error = self._error, None
        ended = False
        try:
            # The last points and the final status go in one transaction (one request).
            ended = self._write_pending(status)
        finally:
            if not ended:
                self.backend.end_run(self.run_id, status)
        if error is not None:
            raise error

    def to_run(self) -> Run:
        """Flush and read the run back from the backend.

        >>> with ActiveRun(tracking, tracking.create_run("e")) as run:
        ...     run.to_run().status
        'RUNNING'
        """
        if not self._ended:
            self.flush()
        return self.backend.get_run(self.run_id)
