"""Tracking on the store's database: experiments, runs, batched metric writes, search.

This is the embedded backend (the HTTP server runs the same code). A metric batch is written
in one transaction: the run's point counter is advanced once for the whole batch (which
numbers the points, so equal steps stay distinct even with several writers), the points are
inserted with one ``executemany``, and each key's latest value is upserted, keeping the
higher step (then the later time). A process killed mid-batch leaves either the whole batch
or none of it.

>>> from opsloop.store import ArtifactStore, Database
>>> store = LocalTrackingStore(Database("sqlite://"), ArtifactStore(tmp_path))
>>> run_id = store.create_run("churn", name="rf")
>>> batch = MetricBatch(("auc", "auc"), np.array([0.7, 0.8]), np.array([0, 1]),
...                     np.array([1_000, 2_000]))
>>> store.write_batch(run_id, metrics=batch, params={"model": "rf"})
>>> run = store.get_run(run_id)
>>> run.params, run.metrics, run.metric_history("auc")["value"].tolist()
({'model': 'rf'}, {'auc': 0.8}, [0.7, 0.8])

The examples of the methods start from ``tracking``, another such store, empty.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, InvalidArgumentError, NotFoundError
from opsloop.store import tables
from opsloop.store.artifacts import ArtifactStore, MissingArtifactError, check_sha256
from opsloop.store.database import Database, clock_of, open_database
from opsloop.store.location import artifact_uri
from opsloop.store.metric_blocks import block_summaries, upsert_sql
from opsloop.tracking.artifact_search import search_artifact_frame
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.history_reduction import reduced_points, series_sizes
from opsloop.tracking.limits import (
    INT32_MAX,
    MAX_TIME_MS,
    MIN_TIME_MS,
    checked_int,
    checked_key,
    checked_name,
    checked_text,
    param_text,
    tag_text,
    time_ms,
)
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.records import (
    RUN_STATUSES,
    ArtifactRecord,
    DatasetInput,
    Run,
    empty_history,
)
from opsloop.tracking.run_search import UnknownExperimentError, fetch_columns, search_run_frame

_runs = tables.runs
_parent = tables.runs.alias("parent_run")
_POINT_COLUMNS = ("run_id", "key_id", "step", "seq", "timestamp_ms", "value")


class UnknownRunError(NotFoundError, ValueError):
    """No run has this id."""

    def __init__(self, run_id: object) -> None:
        super().__init__(f"unknown run id {run_id!r}")
        self.run_id = run_id


class AmbiguousRunIdError(InvalidArgumentError):
    """A shortened run id matches more than one run; ``candidates`` lists them."""

    def __init__(self, prefix: str, candidates: list[str], more: bool) -> None:
        listed = ", ".join(candidates) + (", ..." if more else "")
        count = f"more than {len(candidates)}" if more else str(len(candidates))
        super().__init__(
            f"run id {prefix!r} is ambiguous: {count} runs have ids starting with it "
            f"({listed}); give more characters"
        )
        self.prefix = prefix
        self.candidates = tuple(candidates)


#: The shortest run id prefix accepted, as git's: shorter ones are asked to be longer.
MIN_RUN_ID_PREFIX = 4
# How many candidates an ambiguous prefix lists.
_CANDIDATES_SHOWN = 10
_RUN_ID_CHARACTERS = frozenset("0123456789abcdef")


class LocalTrackingStore:
    """Experiments and runs in a :class:`~opsloop.store.Database`, artifacts in an ArtifactStore.

    Defaults: the configured database (``OPSLOOP_STORE_URI`` or SQLite in ``OPSLOOP_HOME``)
    and artifact root.

    **Lost runs.** Every write to a run records a heartbeat, and an
    :class:`~opsloop.tracking.active_run.ActiveRun` with nothing to log writes an empty batch
    every ``heartbeat_s`` (30 s) to say it is alive. Opening a store marks ``FAILED`` every
    ``RUNNING`` run whose last heartbeat (or start) is older than ``lost_after_s`` (default
    ``OPSLOOP_LOST_RUN_S`` or 600 s), with that heartbeat as its end time: its process was
    killed before it could end it. ``lost_after_s=None`` leaves runs alone.

    >>> tracking.create_experiment("churn") == tracking.create_experiment("churn")
    True
    """

    def __init__(
        self,
        database: Database | None = None,
        artifacts: ArtifactStore | None = None,
        *,
        lost_after_s: float | str | None = "environment",
    ) -> None:
        self.db = database if database is not None else open_database()
        self.artifacts = artifacts if artifacts is not None else ArtifactStore(artifact_uri())
        self._run_pks: dict[str, int] = {}
        self._key_ids: dict[str, int] = {}
        self._cache_lock = threading.Lock()
        self._latest_statement = None
        if lost_after_s == "environment":
            lost_after_s = float(os.environ.get(LOST_RUN_VARIABLE, _LOST_AFTER_S))
        if lost_after_s is not None:
            self.fail_lost_runs(lost_after_s)

    def __repr__(self) -> str:
        return f"LocalTrackingStore({self.db!r}, {self.artifacts!r})"

    def fail_lost_runs(self, lost_after_s: float, *, at_ms: int | None = None) -> list[str]:
        """Mark ``FAILED`` every ``RUNNING`` run with no heartbeat (or start) in the last
        ``lost_after_s`` seconds before ``at_ms`` (default now), ending it at its last
        heartbeat; return their run ids.

        >>> from opsloop.store.database import now_ms
        >>> run = tracking.create_run("e")
        >>> soon, late = now_ms() + 60_000, now_ms() + 700_000
        >>> tracking.fail_lost_runs(600, at_ms=soon)
        []
        >>> tracking.fail_lost_runs(600, at_ms=late) == [run]
        True
        >>> tracking.get_run(run).status, tracking.get_run(run).end_ms <= soon
        ('FAILED', True)
        """
        if not lost_after_s > 0:
            raise InvalidArgumentError(f"lost_after_s must be positive, got {lost_after_s!r}")
        cutoff = (self.db.clock() if at_ms is None else at_ms) - round(lost_after_s * 1000)
        last = sa.func.coalesce(_runs.c.heartbeat_ms, _runs.c.start_ms)
        lost = sa.and_(_runs.c.status == "RUNNING", last < cutoff)
        # Read first: opening a store should not take the write lock when nothing is lost.
        with self.db.read() as connection:
            if connection.execute(sa.select(_runs.c.id).where(lost).limit(1)).first() is None:
                return []
        with self.db.write() as connection:
            found = connection.execute(sa.select(_runs.c.run_id).where(lost)).scalars().all()
            connection.execute(_runs.update().where(lost).values(status="FAILED", end_ms=last))
        return list(found)

    def _insert(self, table: sa.Table):
        dialect = sqlite if self.db.dialect == "sqlite" else postgresql
        return dialect.insert(table)

    # -- experiments ----------------------------------------------------------------------

    def _experiment_id(self, connection: Connection, name: str, create: bool) -> int:
        table = tables.experiments
        if create:
            connection.execute(
                self._insert(table)
                .values(name=name, created_ms=self.db.clock())
                .on_conflict_do_nothing(index_elements=["name"])
            )
        found = connection.execute(sa.select(table.c.id).where(table.c.name == name)).scalar()
        if found is None:
            raise UnknownExperimentError(name)
        return found

    def create_experiment(self, name: str, description: str | None = None) -> int:
        """The id of experiment ``name``, created if it does not exist.

        >>> tracking.create_experiment("a"), tracking.create_experiment("b")
        (1, 2)
        """
        checked_key("experiment", name)
        if description is not None:
            checked_text("experiment description", description)
        with self.db.write() as connection:
            experiment_id = self._experiment_id(connection, name, create=True)
            if description is not None:
                connection.execute(
                    tables.experiments.update()
                    .where(tables.experiments.c.id == experiment_id)
                    .values(description=description)
                )
            return experiment_id

    def list_experiments(self) -> pd.DataFrame:
        """One row per experiment: ``name``, ``description``, ``created_ms``, ``runs``.

        >>> _ = tracking.create_run("churn")
        >>> tracking.list_experiments()[["name", "runs"]].to_dict("records")
        [{'name': 'churn', 'runs': 1}]
        """
        e = tables.experiments
        count = (
            sa.select(sa.func.count())
            .select_from(_runs)
            .where(_runs.c.experiment_id == e.c.id)
            .scalar_subquery()
        )
        query = sa.select(e.c.name, e.c.description, e.c.created_ms, count.label("runs"))
        with self.db.read() as connection:
            rows = connection.execute(query.order_by(e.c.name)).all()
        return pd.DataFrame(rows, columns=["name", "description", "created_ms", "runs"])

    # -- runs -----------------------------------------------------------------------------

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
        """Start a run in ``experiment`` (created if needed); return its new run id.

        >>> len(tracking.create_run("churn", tags={"team": "risk"}))
        32
        """
        checked_key("experiment", experiment)
        checked_tags = _checked_tags(tags or {})
        code = code or CodeVersion()
        _check_run_fields(name, user, command, code, environment)
        if start_ms is not None:
            start_ms = time_ms("start_ms", start_ms)
        run_id = uuid.uuid4().hex
        with self.db.write() as connection:
            experiment_id = self._experiment_id(connection, experiment, create=True)
            parent_pk = None
            if parent_run_id is not None:
                parent_pk = self._run_pk(connection, parent_run_id)
            if environment is not None:
                connection.execute(
                    self._insert(tables.environments)
                    .values(
                        sha256=environment.sha256,
                        python_version=environment.python_version,
                        platform=environment.platform,
                        packages=json.dumps(list(environment.packages)),
                    )
                    .on_conflict_do_nothing(index_elements=["sha256"])
                )
            pk = connection.execute(
                _runs.insert()
                .values(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    parent_id=parent_pk,
                    name=name,
                    status="RUNNING",
                    start_ms=self.db.clock() if start_ms is None else int(start_ms),
                    user_name=user,
                    command=command,
                    git_commit=code.commit,
                    git_branch=code.branch,
                    git_dirty=code.dirty,
                    git_diff_sha256=code.diff_sha256,
                    environment_sha256=None if environment is None else environment.sha256,
                    metric_seq=0,
                    heartbeat_ms=self.db.clock(),
                )
                .returning(_runs.c.id)
            ).scalar_one()
            if checked_tags:
                self._write_tags(connection, pk, checked_tags)
        with self._cache_lock:
            self._run_pks[run_id] = pk
        return run_id

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the run whose id is ``run_id`` or starts with it, as git resolves
        a short commit hash: a prefix of at least :data:`MIN_RUN_ID_PREFIX` characters
        that matches one run only. An ambiguous prefix raises
        :class:`AmbiguousRunIdError` listing the candidates.

        >>> run_id = tracking.create_run("e")
        >>> tracking.resolve_run_id(run_id[:8]) == run_id
        True
        """
        with self.db.read() as connection:
            return self._full_run_id(connection, run_id)

    def _full_run_id(self, connection: Connection, run_id: str) -> str:
        if not isinstance(run_id, str):
            raise TypeError(f"run id must be a string, got {type(run_id).__name__}")
        exact = connection.execute(sa.select(_runs.c.id).where(_runs.c.run_id == run_id)).scalar()
        prefix = run_id.lower()
        if (
            exact is not None
            or len(prefix) < MIN_RUN_ID_PREFIX
            or not set(prefix) <= _RUN_ID_CHARACTERS
        ):
            return run_id
        # Ids are lowercase hex, so the prefix holds no LIKE wildcards.
        found = (
            connection.execute(
                sa.select(_runs.c.run_id)
                .where(_runs.c.run_id.like(prefix + "%"))
                .order_by(_runs.c.run_id)
                .limit(_CANDIDATES_SHOWN + 1)
            )
            .scalars()
            .all()
        )
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AmbiguousRunIdError(
                run_id, found[:_CANDIDATES_SHOWN], len(found) > _CANDIDATES_SHOWN
            )
        return run_id

    def _run_pk(self, connection: Connection, run_id: str) -> int:
        pk = self._run_pks.get(run_id)
        if pk is not None:
            return pk
        if not isinstance(run_id, str):
            raise TypeError(f"run id must be a string, got {type(run_id).__name__}")
        pk = connection.execute(sa.select(_runs.c.id).where(_runs.c.run_id == run_id)).scalar()
        if pk is None:
            raise UnknownRunError(run_id)
        with self._cache_lock:
            self._run_pks[run_id] = pk
        return pk

    def _run_pks_of(self, connection: Connection, run_ids: Sequence[str]) -> list[int]:
        """:meth:`_run_pk` of each of ``run_ids``, the ones not yet known read in one query
        per 500 (a compare of 1,000 runs made 1,000 queries)."""
        for run_id in run_ids:
            if not isinstance(run_id, str):
                raise TypeError(f"run id must be a string, got {type(run_id).__name__}")
        unknown = list(dict.fromkeys(r for r in run_ids if r not in self._run_pks))
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            found = connection.execute(
                sa.select(_runs.c.run_id, _runs.c.id).where(_runs.c.run_id.in_(chunk))
            ).all()
            with self._cache_lock:
                self._run_pks.update((run_id, pk) for run_id, pk in found)
        missing = next((r for r in run_ids if r not in self._run_pks), None)
        if missing is not None:
            raise UnknownRunError(missing)
        return [self._run_pks[run_id] for run_id in run_ids]

    def end_run(self, run_id: str, status: str = "FINISHED", end_ms: int | None = None) -> None:
        """Set the run's final status (FINISHED, FAILED or KILLED) and end time.

        >>> r = tracking.create_run("e"); tracking.end_run(r, "FAILED"); tracking.get_run(r).status
        'FAILED'
        """
        _check_status(status)
        if end_ms is not None:
            time_ms("end_ms", end_ms)
        with self.db.write() as connection:
            self._set_status(connection, self._run_pk(connection, run_id), status, end_ms)

    def _set_status(self, connection: Connection, pk: int, status: str, end_ms: int | None) -> None:
        end = None if status == "RUNNING" else (self.db.clock() if end_ms is None else int(end_ms))
        connection.execute(_runs.update().where(_runs.c.id == pk).values(status=status, end_ms=end))

    # -- writes ---------------------------------------------------------------------------

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
        """Write metric points, params and tags of one run in one transaction.

        With ``status``, the run's status and end time are set in the same transaction
        (what a run's last flush does: one commit instead of two).

        ``batch_id`` (1 to 64 letters, digits, ``-`` or ``_``) makes the write idempotent: the
        key is stored with the batch, in its transaction, and a batch sent again under the
        same key (a retry after a lost reply) writes nothing. Keys are per run.

        A param can be logged again with the same value; a different value is refused
        (params describe how the run was configured and do not change). Tags can change.

        >>> r = tracking.create_run("e"); tracking.write_batch(r, params={"lr": 0.1})
        >>> tracking.write_batch(r, params={"lr": 0.2})
        Traceback (most recent call last):
        opsloop.errors.AlreadyDoneError: param 'lr' of run ... is already '0.1'; cannot...
        """
        checked_params = {
            checked_key("param", k): param_text(k, v) for k, v in (params or {}).items()
        }
        checked_tags = _checked_tags(tags or {})
        if status is not None:
            _check_status(status)
        if end_ms is not None:
            time_ms("end_ms", end_ms)
        if metrics is not None and len(metrics):
            for key in set(metrics.keys):
                checked_key("metric", key)
            stamps = np.asarray(metrics.timestamps_ms)
            outside = (stamps < MIN_TIME_MS) | (stamps > MAX_TIME_MS)
            if outside.any():
                bad = int(np.flatnonzero(outside)[0])
                raise InvalidArgumentError(
                    f"metric {metrics.keys[bad]!r}: timestamp_ms must be from {MIN_TIME_MS} "
                    f"to {MAX_TIME_MS}, got {int(stamps[bad])}"
                )
            if not np.isfinite(metrics.values).all():
                bad = int(np.flatnonzero(~np.isfinite(metrics.values))[0])
                raise InvalidArgumentError(
                    f"metric {metrics.keys[bad]!r}: value must be a finite number, "
                    f"got {metrics.values[bad]}"
                )
        if batch_id is not None:
            check_batch_id(batch_id)
        new_keys: dict[str, int] = {}
        with self.db.write() as connection:
            pk = self._run_pk(connection, run_id)
            if batch_id is not None and not _claim_batch(connection, pk, batch_id):
                return  # applied before, in an earlier transaction
            connection.execute(
                _runs.update().where(_runs.c.id == pk).values(heartbeat_ms=self.db.clock())
            )
            if checked_params:
                self._write_params(connection, pk, run_id, checked_params)
            if checked_tags:
                self._write_tags(connection, pk, checked_tags)
            if metrics is not None and len(metrics):
                new_keys = self._write_metrics(connection, pk, metrics)
            if status is not None:
                self._set_status(connection, pk, status, end_ms)
        if new_keys:
            with self._cache_lock:
                self._key_ids.update(new_keys)

    def _write_params(
        self, connection: Connection, pk: int, run_id: str, values: dict[str, str]
    ) -> None:
        table = tables.params
        existing = dict(
            connection.execute(
                sa.select(table.c.key, table.c.value).where(
                    table.c.run_id == pk, table.c.key.in_(list(values))
                )
            ).all()
        )
        for key, old in existing.items():
            if old != values[key]:
                raise AlreadyDoneError(
                    f"param {key!r} of run {run_id} is already {old!r}; "
                    f"cannot change it to {values[key]!r}"
                )
        rows = [
            {"run_id": pk, "key": k, "value": v} for k, v in values.items() if k not in existing
        ]
        if rows:
            connection.execute(table.insert(), rows)
            # The run row's packed copy, in the same transaction (see tables.runs).
            runs = tables.runs
            added = tables.PARAM_SEPARATOR.join(
                token for row in rows for token in (row["key"], row["value"])
            )
            packed = sa.case(
                (runs.c.params_packed.is_(None), sa.literal(added)),
                else_=runs.c.params_packed + tables.PARAM_SEPARATOR + added,
            )
            connection.execute(
                runs.update()
                .where(runs.c.id == pk)
                .values(params_packed=packed, param_count=runs.c.param_count + len(rows))
            )

    def _write_tags(self, connection: Connection, pk: int, values: dict[str, str]) -> None:
        insert = self._insert(tables.tags)
        statement = insert.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": insert.excluded.value}
        )
        connection.execute(
            statement, [{"run_id": pk, "key": k, "value": v} for k, v in values.items()]
        )

    def _key_ids_for(self, connection: Connection, names: list[str]) -> tuple[np.ndarray, dict]:
        known = self._key_ids
        missing = [name for name in names if name not in known]
        found: dict[str, int] = {}
        if missing:
            keys = tables.metric_keys
            connection.execute(
                self._insert(keys).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": name} for name in missing],
            )
            found = dict(
                connection.execute(
                    sa.select(keys.c.name, keys.c.id).where(keys.c.name.in_(missing))
                ).all()
            )
        ids = np.array([known.get(name) or found[name] for name in names], dtype=np.int64)
        return ids, found

    def _latest_upsert(self):
        # Built once: constructing it per batch costs more than executing it on a short run.
        if self._latest_statement is None:
            latest = tables.latest_metrics
            insert = self._insert(latest)
            self._latest_statement = insert.on_conflict_do_update(
                index_elements=["run_id", "key_id"],
                set_={
                    "step": insert.excluded.step,
                    "timestamp_ms": insert.excluded.timestamp_ms,
                    "value": insert.excluded.value,
                },
                where=sa.or_(
                    insert.excluded.step > latest.c.step,
                    sa.and_(
                        insert.excluded.step == latest.c.step,
                        insert.excluded.timestamp_ms >= latest.c.timestamp_ms,
                    ),
                ),
            )
        return self._latest_statement

    def _write_metrics(self, connection: Connection, pk: int, batch: MetricBatch) -> dict:
        names, inverse = np.unique(np.asarray(batch.keys, dtype=object), return_inverse=True)
        key_ids, new_keys = self._key_ids_for(connection, names.tolist())
        point_keys = key_ids[inverse]
        n = len(batch)
        last = connection.execute(
            _runs.update()
            .where(_runs.c.id == pk)
            .values(metric_seq=_runs.c.metric_seq + n)
            .returning(_runs.c.metric_seq)
        ).scalar_one()
        seqs = np.arange(last - n + 1, last + 1, dtype=np.int64)
        marker = "?" if self.db.dialect == "sqlite" else "%s"
        sql = (
            f"INSERT INTO metrics ({', '.join(_POINT_COLUMNS)}) "
            f"VALUES ({', '.join([marker] * len(_POINT_COLUMNS))})"
        )
        rows = list(
            zip(
                [pk] * n,
                point_keys.tolist(),
                batch.steps.tolist(),
                seqs.tolist(),
                batch.timestamps_ms.tolist(),
                batch.values.tolist(),
                strict=True,
            )
        )
        connection.exec_driver_sql(sql, rows)
        # The series' block summaries, in the same transaction, so a chart never reads a
        # summary that disagrees with the points.
        connection.exec_driver_sql(
            upsert_sql(marker),
            block_summaries(pk, point_keys, batch.steps, seqs, batch.values),
        )
        # The latest point per key: highest step, then latest time, then logged last.
        order = np.lexsort((seqs, batch.timestamps_ms, batch.steps, inverse))
        grouped = inverse[order]
        last_of_key = order[np.r_[grouped[1:] != grouped[:-1], True]]
        statement = self._latest_upsert()
        connection.execute(
            statement,
            [
                {
                    "run_id": pk,
                    "key_id": int(point_keys[i]),
                    "step": int(batch.steps[i]),
                    "timestamp_ms": int(batch.timestamps_ms[i]),
                    "value": float(batch.values[i]),
                }
                for i in last_of_key
            ],
        )
        return new_keys

    def log_artifact(
        self, run_id: str, source: str | Path | bytes, path: str | None = None
    ) -> ArtifactRecord:
        """Store a file (or bytes) content-addressed and record it under ``path`` in the run.

        >>> r = tracking.create_run("e")
        >>> tracking.log_artifact(r, b"hello", "notes.txt").size
        5
        """
        if isinstance(source, bytes | bytearray):
            if not path:
                raise InvalidArgumentError("artifact path is required when logging bytes")
            check_artifact_path(path)
            sha256 = self.artifacts.put_bytes(bytes(source))
        else:
            path = check_artifact_path(path or Path(source).name)
            sha256 = self.artifacts.put_file(source)
        return self.record_artifact(run_id, path, sha256)

    def read_artifact(self, sha256: str) -> bytes:
        """The stored bytes of an artifact, checked against ``sha256`` before they are returned.

        >>> record = tracking.log_artifact(tracking.create_run("e"), b"hello", "a.txt")
        >>> tracking.read_artifact(record.sha256)
        b'hello'
        """
        return self.artifacts.get_bytes(check_sha256(sha256))

    def search_artifacts(
        self,
        experiment: str | None = None,
        suffix: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Artifacts across runs, newest run first (see
        :func:`~opsloop.tracking.artifact_search.search_artifact_frame`).

        >>> _ = tracking.log_artifact(tracking.create_run("e"), b"<p>", "report.html")
        >>> tracking.search_artifacts(suffix=".html")["path"].tolist()
        ['report.html']
        """
        return search_artifact_frame(self.db, experiment, suffix, max_results, offset)

    def record_artifact(self, run_id: str, path: str, sha256: str) -> ArtifactRecord:
        """Record in the run, under ``path``, an artifact already stored under ``sha256``.

        >>> digest = tracking.artifacts.put_bytes(b"hello")
        >>> tracking.record_artifact(tracking.create_run("e"), "notes.txt", digest).size
        5
        """
        check_artifact_path(path)
        if not self.artifacts.exists(sha256):
            raise MissingArtifactError(sha256)
        record = ArtifactRecord(path, sha256, self.artifacts.size(sha256))
        insert = self._insert(tables.run_artifacts)
        with self.db.write() as connection:
            pk = self._run_pk(connection, run_id)
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["run_id", "path"],
                    set_={"sha256": insert.excluded.sha256, "size": insert.excluded.size},
                ).values(run_id=pk, path=record.path, sha256=record.sha256, size=record.size)
            )
        return record

    def log_dataset(self, run_id: str, dataset: DatasetInput) -> None:
        """Record that the run was given ``dataset`` (stored once per content hash).

        >>> r = tracking.create_run("e")
        >>> tracking.log_dataset(r, DatasetInput("train", "a" * 64, 10, 3))
        >>> tracking.get_run(r).datasets[0].n_rows
        10
        """
        checked_key("dataset name", dataset.name)
        checked_int("n_rows", dataset.n_rows, 0)
        checked_int("n_columns", dataset.n_columns, 0, INT32_MAX)
        with self.db.write() as connection:
            pk = self._run_pk(connection, run_id)
            connection.execute(
                self._insert(tables.datasets)
                .values(
                    sha256=dataset.sha256,
                    n_rows=dataset.n_rows,
                    n_columns=dataset.n_columns,
                    schema_json=_json_or_none(dataset.schema),
                    profile_json=_json_or_none(dataset.profile),
                    created_ms=self.db.clock(),
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
            )
            insert = self._insert(tables.run_inputs)
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["run_id", "name"],
                    set_={"dataset_sha256": insert.excluded.dataset_sha256},
                ).values(run_id=pk, name=dataset.name, dataset_sha256=dataset.sha256)
            )

    # -- reads ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """The run with params, latest metrics, tags, code, environment, inputs and artifacts.

        ``run_id`` may be shortened to an unambiguous prefix (see :meth:`resolve_run_id`).

        >>> try:
        ...     tracking.get_run("nope")
        ... except ValueError as error:
        ...     print(error)
        unknown run id 'nope'
        """
        env = tables.environments
        query = sa.select(
            _runs,
            tables.experiments.c.name.label("experiment"),
            _parent.c.run_id.label("parent_run_id"),
            env.c.python_version,
            env.c.platform,
            env.c.packages,
        ).select_from(
            _runs.join(tables.experiments, tables.experiments.c.id == _runs.c.experiment_id)
            .outerjoin(_parent, _parent.c.id == _runs.c.parent_id)
            .outerjoin(env, env.c.sha256 == _runs.c.environment_sha256)
        )
        with self.db.read() as connection:
            run_id = self._full_run_id(connection, run_id)
            row = connection.execute(query.where(_runs.c.run_id == run_id)).mappings().first()
            if row is None:
                raise UnknownRunError(run_id)
            pk = row["id"]
            params = _pairs(connection, tables.params, pk)
            tags = _pairs(connection, tables.tags, pk)
            latest, keys = tables.latest_metrics, tables.metric_keys
            metrics = dict(
                connection.execute(
                    sa.select(keys.c.name, latest.c.value)
                    .join(keys, keys.c.id == latest.c.key_id)
                    .where(latest.c.run_id == pk)
                    .order_by(keys.c.name)
                ).all()
            )
            inputs = connection.execute(
                sa.select(
                    tables.run_inputs.c.name,
                    tables.datasets.c.sha256,
                    tables.datasets.c.n_rows,
                    tables.datasets.c.n_columns,
                    tables.datasets.c.schema_json,
                    tables.datasets.c.profile_json,
                )
                .join(
                    tables.datasets,
                    tables.datasets.c.sha256 == tables.run_inputs.c.dataset_sha256,
                )
                .where(tables.run_inputs.c.run_id == pk)
                .order_by(tables.run_inputs.c.name)
            ).all()
            artifacts = connection.execute(
                sa.select(
                    tables.run_artifacts.c.path,
                    tables.run_artifacts.c.sha256,
                    tables.run_artifacts.c.size,
                )
                .where(tables.run_artifacts.c.run_id == pk)
                .order_by(tables.run_artifacts.c.path)
            ).all()
        environment = None
        if row["environment_sha256"] is not None:
            environment = Environment(
                row["python_version"],
                row["platform"],
                tuple(json.loads(row["packages"])),
                row["environment_sha256"],
            )
        return Run(
            run_id=row["run_id"],
            experiment=row["experiment"],
            name=row["name"],
            status=row["status"],
            start_ms=row["start_ms"],
            end_ms=row["end_ms"],
            parent_run_id=row["parent_run_id"],
            user=row["user_name"],
            command=row["command"],
            params=params,
            metrics=metrics,
            tags=tags,
            code=CodeVersion(
                row["git_commit"], row["git_branch"], row["git_dirty"], row["git_diff_sha256"]
            ),
            environment=environment,
            datasets=tuple(
                DatasetInput(
                    name,
                    sha,
                    n_rows,
                    n_columns,
                    None if schema is None else json.loads(schema),
                    None if profile is None else json.loads(profile),
                )
                for name, sha, n_rows, n_columns, schema, profile in inputs
            ),
            artifacts=tuple(ArtifactRecord(*a) for a in artifacts),
            _history=lambda key: self.metric_history(run_id, key),
        )

    def metric_history(self, run_id: str, key: str) -> pd.DataFrame:
        """Every point of ``key`` in the run: ``step``, ``value``, ``timestamp`` (UTC).

        >>> len(tracking.metric_history(tracking.create_run("e"), "never-logged"))
        0
        """
        return self.metric_histories([run_id], [key]).drop(columns=["run_id", "key"])

    def metric_histories(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str] | None = None,
        buckets: int | None = None,
    ) -> pd.DataFrame:
        """Points of several runs (all keys, or ``keys``): run_id, key, step, value, timestamp.

        With ``buckets``, a series of more than ``2 * buckets`` points comes back as the
        lowest and highest point of each of ``buckets`` equal step intervals, found from the
        block summaries kept as points are written (see :mod:`.history_reduction`): what a
        chart of a long series draws, at a cost that does not grow with the series.

        >>> list(tracking.metric_histories([tracking.create_run("e")]).columns)
        ['run_id', 'key', 'step', 'value', 'timestamp']
        >>> r = tracking.create_run("e")
        >>> tracking.write_batch(r, MetricBatch(("loss",) * 6, np.array([3., 1, 2, 9, 4, 5]),
        ...                                     np.arange(6), np.zeros(6, int)))
        >>> tracking.metric_histories([r], buckets=2)["value"].tolist()
        [3.0, 1.0, 9.0, 4.0]
        """
        if buckets is not None and (
            isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1
        ):
            raise InvalidArgumentError(f"buckets must be a positive integer, got {buckets!r}")
        points, names = tables.metrics, tables.metric_keys
        # Each read's (run pk, key, step, value, timestamp ms) as five columns.
        parts: list[list[tuple]] = []
        with self.db.read() as connection:
            pks = dict(zip(self._run_pks_of(connection, run_ids), run_ids, strict=True))
            # (run pks, key ids or None for every key) of each read of whole series.
            reads: list[tuple[list[int], list[int] | None]] = [(list(pks), None)]
            if buckets is not None:
                in_blocks = tables.metric_blocks.c.run_id.in_(list(pks))
                if keys is not None:
                    in_blocks &= names.c.name.in_(list(keys))
                short: dict[int, list[int]] = {pk: [] for pk in pks}
                has_long = set()
                reduced: list[tuple] = []
                for run_pk, key_id, name, count, low, high in series_sizes(connection, in_blocks):
                    if count <= 2 * buckets:
                        short[run_pk].append(key_id)
                        continue
                    has_long.add(run_pk)
                    reduced += [
                        (run_pk, name, *point)
                        for point in reduced_points(connection, run_pk, key_id, low, high, buckets)
                    ]
                if reduced:
                    parts.append(list(zip(*reduced, strict=True)))
                # A run with a long series has its short ones read by key, so the long
                # one is not scanned; runs with the same short keys share one read.
                by_keys: dict[tuple[int, ...], list[int]] = {}
                for run_pk in has_long:
                    if short[run_pk]:
                        by_keys.setdefault(tuple(sorted(short[run_pk])), []).append(run_pk)
                reads = [([pk for pk in pks if pk not in has_long], None)]
                reads += [(runs, list(key_ids)) for key_ids, runs in by_keys.items()]
            for run_pks, key_ids in reads:
                if not run_pks:
                    continue
                chosen = points.c.run_id.in_(run_pks)
                if keys is not None:
                    chosen &= names.c.name.in_(list(keys))
                if key_ids is not None:
                    chosen &= points.c.key_id.in_(key_ids)
                query = (
                    sa.select(
                        points.c.run_id,
                        names.c.name,
                        points.c.step,
                        points.c.value,
                        points.c.timestamp_ms,
                    )
                    .join(names, names.c.id == points.c.key_id)
                    .where(chosen)
                    .order_by(points.c.run_id, names.c.name, points.c.step, points.c.seq)
                )
                # The driver's tuples, transposed once: SQLAlchemy's per-row path costs more
                # than the query for the tens of thousands of points a compare view reads.
                parts.append(fetch_columns(connection, query, 5))
        run_pk, key, step, value, timestamp_ms = (
            np.concatenate([np.array(part[i], dtype=dtype) for part in parts])
            if parts
            else np.array([], dtype=dtype)
            for i, dtype in enumerate((np.int64, object, np.int64, np.float64, np.int64))
        )
        if buckets is not None:
            # Reduced series were read first: put every run's keys back together, in order.
            order = pd.DataFrame({"run_pk": run_pk, "key": key}).sort_values(
                ["run_pk", "key"], kind="stable"
            )
            taken = order.index.to_numpy()
            run_pk, key, step, value, timestamp_ms = (
                column[taken] for column in (run_pk, key, step, value, timestamp_ms)
            )
        history = empty_history()
        out = pd.DataFrame(
            {
                "run_id": pd.Series(run_pk).map(pks).astype(object),
                "key": pd.Series(key, dtype=object),
                "step": step,
                "value": value,
                "timestamp": pd.to_datetime(timestamp_ms, unit="ms", utc=True).astype(
                    history["timestamp"].dtype
                ),
            }
        )
        return out.reset_index(drop=True)

    def search_runs(
        self,
        experiments: str | Iterable[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> pd.DataFrame:
        """Runs matching ``filter`` (see :mod:`.filter_parser`), one row each, as a DataFrame.

        The columns are described in :func:`~.run_search.search_run_frame`; the default
        order is newest first. With ``max_results``, ``attrs["next_page_token"]`` of the
        frame is the ``page_token`` of the next page (``None`` on the last one).

        >>> for model in ("rf", "gbm"):
        ...     tracking.write_batch(tracking.create_run("churn"), params={"model": model})
        >>> tracking.search_runs("churn", "params.model = 'rf'")["params.model"].tolist()
        ['rf']
        >>> first = tracking.search_runs("churn", max_results=1)
        >>> tracking.search_runs("churn", max_results=1, page_token=first.attrs["next_page_token"])[
        ...     "params.model"].tolist()
        ['rf']
        """
        return search_run_frame(self.db, experiments, filter, order_by, max_results, page_token)


def _check_status(status: object) -> None:
    if status not in RUN_STATUSES:
        raise InvalidArgumentError(
            f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}"
        )


def check_artifact_path(path: object) -> str:
    """``path`` if it can name an artifact of a run: 1 to 1000 characters, no NUL.

    >>> check_artifact_path("model/weights.bin")
    'model/weights.bin'
    """
    if not isinstance(path, str) or not 0 < len(path) <= 1000:
        raise InvalidArgumentError(f"artifact path must be 1 to 1000 characters, got {path!r:.80}")
    return checked_text("artifact path", path, 1000)


def _check_run_fields(
    name: object, user: object, command: object, code: CodeVersion, environment: object
) -> None:
    # Each bound is the column's own, so PostgreSQL never refuses what was accepted here.
    for field, value in (("run name", name), ("user", user), ("git branch", code.branch)):
        if value is not None:
            checked_name(field, value)
    if command is not None:
        checked_text("command", command)
    if code.commit is not None:
        checked_text("git commit", code.commit, 64)
    if environment is not None:
        checked_text("python_version", environment.python_version, 64)
        checked_name("platform", environment.platform)


def _checked_tags(values: Mapping[str, object]) -> dict[str, str]:
    return {checked_key("tag", k): tag_text(k, v) for k, v in values.items()}


def _json_or_none(value: Mapping | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _pairs(connection: Connection, table: sa.Table, pk: int) -> dict[str, str]:
    return dict(
        connection.execute(
            sa.select(table.c.key, table.c.value).where(table.c.run_id == pk).order_by(table.c.key)
        ).all()
    )


#: Environment variable: seconds without a heartbeat after which a RUNNING run is lost.
LOST_RUN_VARIABLE = "OPSLOOP_LOST_RUN_S"
_LOST_AFTER_S = 600.0

_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_batch_id(batch_id: object) -> str:
    """Return ``batch_id`` if it is 1 to 64 letters, digits, ``-`` or ``_``, else raise.

    >>> check_batch_id("a" * 65)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: batch_id must be 1 to 64 letters, digits, '-' or '_'...
    """
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        shown = repr(batch_id[:16] + "...") if isinstance(batch_id, str) else repr(batch_id)
        raise InvalidArgumentError(
            f"batch_id must be 1 to 64 letters, digits, '-' or '_', got {shown}"
        )
    return batch_id


def _claim_batch(connection: Connection, run_pk: int, batch_id: str) -> bool:
    """Record ``batch_id`` for the run in this transaction; False if it was recorded before.

    An insert that does nothing on conflict, so two concurrent writers of one key cannot
    both apply it: the second waits on the first's row and then sees the conflict.
    """
    table = tables.run_batches
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(run_id=run_pk, batch_id=batch_id, created_ms=clock_of(connection))
        .on_conflict_do_nothing()
        .returning(table.c.batch_id)  # a row back only when it was inserted (rowcount varies)
    )
    return connection.execute(statement).first() is not None
