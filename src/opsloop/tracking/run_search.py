"""Search runs in the store: a few lean SQL queries and a vectorised pivot into one DataFrame.

The filter (see :mod:`.filter_parser`) is translated to SQL and the database selects the
runs. The first query returns the chosen runs in order with their attributes; three more
return, in long form, every param, latest metric value and tag of those runs. The long rows
are placed into the wide frame with numpy fancy indexing (row = the run's position, column =
the key's code), so building the frame costs a few array operations per entity type, not per
run. Rows are read as plain tuples and transposed once: handing SQLAlchemy ``Row`` objects to
the DataFrame constructor costs more than the query.

>>> from opsloop.store import ArtifactStore, Database
>>> from opsloop.tracking.local_store import LocalTrackingStore
>>> s = LocalTrackingStore(Database("sqlite://"), ArtifactStore(tmp_path))
>>> for depth in (3, 5):
...     s.write_batch(s.create_run("e"), params={"depth": depth})
>>> search_run_frame(s.db, "e", "params.depth = '5'")["params.depth"].tolist()
['5']
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.tracking.filter_parser import parse_filter
from opsloop.tracking.filter_sql import filter_to_sql, order_to_sql
from opsloop.tracking.limits import INT64_MAX
from opsloop.tracking.page_token import page_token as token_at
from opsloop.tracking.page_token import token_offset

_runs = tables.runs
# Not "parent_run": filter_sql's correlated subqueries use that alias name.
_parent = tables.runs.alias("parent_of_run")

RUN_COLUMNS = (
    "run_id",
    "experiment",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "user",
    "git_commit",
    "git_branch",
    "git_dirty",
    "python_version",
    "platform",
)
_KINDS = ("params", "metrics", "tags")


class UnknownExperimentError(NotFoundError, ValueError):
    """No experiment has this name."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown experiment {name!r}")
        self.name = name


def _checked_limit(max_results: object) -> int | None:
    if max_results is not None and (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not 1 <= max_results <= INT64_MAX
    ):
        raise InvalidArgumentError(
            f"max_results must be a positive integer (at most {INT64_MAX}), got {max_results!r}"
        )
    return max_results  # type: ignore[return-value]


def _experiment_ids(connection, experiments: str | Iterable[str] | None) -> list[int] | None:
    if experiments is None:
        return None
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    e = tables.experiments
    ids = dict(connection.execute(sa.select(e.c.name, e.c.id).where(e.c.name.in_(names))).all())
    for name in names:
        if name not in ids:
            raise UnknownExperimentError(name)
    return list(ids.values())


def _among(column, pks: tuple, dialect: str, chosen):
    """``column IN`` the runs already chosen, without evaluating the filter again.

    The base query has the chosen runs' keys in hand; handing them back as one bound array
    (SQLite's ``json_each``, PostgreSQL's ``= ANY``) costs a fraction of re-running the
    filter's subqueries for every further query.
    """
    if dialect == "sqlite":
        listed = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam("chosen_pks", json.dumps(list(pks))))
        )
        return column.in_(listed)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam("chosen_pks", list(pks), type_=ARRAY(sa.Integer)))
    return column.in_(chosen)


def _entity_values(among) -> dict[str, sa.Select]:
    """(run pk, key, value) for every latest metric and tag of the chosen runs; metric names.

    Lean queries instead of one ``UNION ALL``: a union needs a kind column and a null in the
    column the other kinds use, and the driver builds a Python object for every value of every
    row, so those two columns cost as much as the values themselves. Params come packed on the
    run rows (see :func:`_unpacked_params`).
    """
    tags = tables.tags
    latest, keys = tables.latest_metrics, tables.metric_keys
    return {
        # Metric keys are few: their names are joined in numpy by id, not per row in SQL.
        "metrics": sa.select(latest.c.run_id, latest.c.key_id, latest.c.value).where(
            among(latest.c.run_id)
        ),
        "tags": sa.select(tags.c.run_id, tags.c.key, tags.c.value).where(among(tags.c.run_id)),
        "metric_keys": sa.select(keys.c.id, keys.c.name),
    }


def _unpacked_params(packed: tuple, counts: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run position, key, value) of every param from the runs' packed copies.

    One join and one split in C instead of a database row per param. A key or value that
    itself holds the separator makes the token count disagree with the counts; the caller
    then reads the params table instead, so such values are never split wrongly.

    >>> positions, keys, values = _unpacked_params(("a\x1f1\x1fb\x1f2", None, "a\x1f3"), (2, 0, 1))
    >>> positions.tolist(), keys.tolist(), values.tolist()
    ([0, 0, 2], ['a', 'b', 'a'], ['1', '2', '3'])
    """
    sizes = np.array(counts, dtype=np.int64)
    present = [text for text in packed if text]
    tokens = tables.PARAM_SEPARATOR.join(present).split(tables.PARAM_SEPARATOR) if present else []
    if len(tokens) != 2 * int(sizes.sum()):
        raise _PackedParamsAmbiguous
    positions = np.repeat(np.arange(len(sizes)), sizes)
    return positions, np.array(tokens[0::2], dtype=object), np.array(tokens[1::2], dtype=object)


class _PackedParamsAmbiguous(Exception):
    """A packed copy cannot be split unambiguously (a key or value holds the separator)."""


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def fetch_columns(connection, statement, width: int) -> list[tuple]:
    """The result's columns as tuples, read from the driver's cursor as plain tuples.

    Transposing the driver's tuples costs a fraction of a millisecond per 10,000 rows;
    building and transposing SQLAlchemy ``Row`` objects costs more than the query itself.
    Values therefore arrive as the driver gives them (SQLite booleans as 0/1).

    >>> with Database("sqlite://").read() as connection:
    ...     fetch_columns(connection, sa.select(sa.literal(1), sa.literal("a")), 2)
    [(1,), ('a',)]
    """
    result = connection.execute(statement)
    try:
        # The rows are tuples of scalars and cannot form reference cycles; letting the
        # collector run while tens of thousands of them are made only re-walks the heap.
        with _collector_paused():
            rows = result.cursor.fetchall()
            return list(zip(*rows, strict=True)) if rows else [()] * width
    finally:
        result.close()


def _times(milliseconds: tuple):
    # None becomes NaN in a float array, and NaN becomes NaT.
    as_float = np.array(milliseconds, dtype=np.float64)
    return pd.to_datetime(as_float, unit="ms", utc=True).astype("datetime64[ms, UTC]").array


def _optional_bools(values: tuple) -> np.ndarray:
    out = np.array(values, dtype=object)
    present = ~pd.isna(out)
    out[present] = out[present].astype(bool)
    return out


def _wide_kind(prefix: str, positions, keys, values, n_runs: int) -> pd.DataFrame:
    """Columns ``<prefix>.<key>`` (keys sorted) from one kind's long rows, as one block.

    The grid goes to pandas whole: handed over as a thousand separate columns, each is
    checked and then all are copied into one block again, which costs more than the grid.
    Text stays object dtype with None for "not logged", as the run records have it.
    """
    key_codes, names = pd.factorize(keys, sort=True)
    if prefix == "metrics":
        grid = np.full((n_runs, len(names)), np.nan)
        grid[positions, key_codes] = np.asarray(values, dtype=np.float64)
    else:
        grid = np.full((n_runs, len(names)), None, dtype=object)
        grid[positions, key_codes] = values
    columns = [f"{prefix}.{name}" for name in names]
    return pd.DataFrame(
        grid, index=pd.RangeIndex(n_runs), columns=columns, dtype=grid.dtype, copy=False
    )


def search_run_frame(
    db: Database,
    experiments: str | Iterable[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> pd.DataFrame:
    """Runs matching ``filter``, one row each: run attributes, then params, metrics and tags.

    Columns: ``run_id``, ``experiment``, ``name``, ``status``, ``start_time``, ``end_time``,
    ``parent_run_id``, ``user``, ``git_commit``, ``git_branch``, ``git_dirty``,
    ``python_version``, ``platform``, then ``params.<key>``, ``metrics.<key>`` (latest
    values, NaN where absent) and ``tags.<key>`` (``None`` where absent). The default order
    is newest first; ``order_by`` clauses come before it, so it breaks their ties.

    Paging (see :mod:`.page_token`): when ``max_results`` left runs out, the frame's
    ``attrs["next_page_token"]`` names the next page, to pass back as ``page_token`` with
    the same search; it is ``None`` on the last page.

    >>> search_run_frame(Database("sqlite://"), None).shape
    (0, 13)
    """
    if isinstance(order_by, str):
        raise TypeError("order_by must be a list of clauses such as ['metrics.auc DESC']")
    if experiments is not None and not isinstance(experiments, str):
        # read once: the page token and the query both need the names (an iterator is spent)
        experiments = list(experiments)
    condition = None if not filter else filter_to_sql(parse_filter(filter))
    orders = [order_to_sql(clause) for clause in (order_by or ())]
    limit = _checked_limit(max_results)
    offset = 0 if page_token is None else token_offset(page_token, experiments, filter, order_by)
    # One run more than the page tells whether another page follows, without a count query.
    probe = None if limit is None or limit == INT64_MAX else limit + 1
    env, e = tables.environments, tables.experiments
    with db.read() as connection:
        experiment_ids = _experiment_ids(connection, experiments)
        where = [] if condition is None else [condition]
        if experiment_ids is not None:
            where.append(_runs.c.experiment_id.in_(experiment_ids))
        order = [*orders, _runs.c.start_ms.desc(), _runs.c.id.desc()]
        chosen = sa.select(_runs.c.id).where(*where)
        if limit is not None or offset:
            chosen = chosen.order_by(*order).limit(limit).offset(offset or None)
        base = fetch_columns(
            connection,
            sa.select(
                _runs.c.id,
                _runs.c.run_id,
                e.c.name,
                _runs.c.name,
                _runs.c.status,
                _runs.c.start_ms,
                _runs.c.end_ms,
                _parent.c.run_id,
                _runs.c.user_name,
                _runs.c.git_commit,
                _runs.c.git_branch,
                _runs.c.git_dirty,
                env.c.python_version,
                env.c.platform,
                _runs.c.params_packed,
                _runs.c.param_count,
            )
            .select_from(
                _runs.join(e, e.c.id == _runs.c.experiment_id)
                .outerjoin(_parent, _parent.c.id == _runs.c.parent_id)
                .outerjoin(env, env.c.sha256 == _runs.c.environment_sha256)
            )
            .where(*where)
            .order_by(*order)
            .limit(probe if probe is not None else limit)
            .offset(offset or None),
            3 + len(RUN_COLUMNS),
        )
        more = limit is not None and len(base[0]) > limit
        if more:
            base = [column[:limit] for column in base]
        n_runs = len(base[0])
        long: dict[str, object] = {}
        pks, *attributes, packed, counts = base
        if n_runs:

            def among(column):
                return _among(column, pks, db.dialect, chosen)

            for kind, statement in _entity_values(among).items():
                long[kind] = fetch_columns(connection, statement, 2 if kind == "metric_keys" else 3)
            try:
                long["params"] = _unpacked_params(packed, counts)
            except _PackedParamsAmbiguous:
                params = tables.params
                long["params"] = fetch_columns(
                    connection,
                    sa.select(params.c.run_id, params.c.key, params.c.value).where(
                        among(params.c.run_id)
                    ),
                    3,
                )
    data: dict[str, object] = {}
    for name, values in zip(RUN_COLUMNS, attributes, strict=True):
        if name in ("start_time", "end_time"):
            data[name] = _times(values)
        elif name == "git_dirty":
            data[name] = _optional_bools(values)
        else:
            data[name] = np.array(values, dtype=object)
    frames = [pd.DataFrame(data, index=pd.RangeIndex(n_runs))]
    next_offset = offset + n_runs
    next_token = (
        token_at(experiments, filter, order_by, next_offset)
        if more and next_offset <= INT64_MAX
        else None
    )
    if n_runs:
        run_index = pd.Index(np.array(pks, dtype=np.int64))
        key_ids, key_names = long.pop("metric_keys")
        metric_names = pd.Series(np.array(key_names, dtype=object), index=np.array(key_ids))
        for kind in _KINDS:
            run_pks, keys, values = long[kind]
            if not len(run_pks):
                continue
            if isinstance(run_pks, np.ndarray):  # unpacked params: already positions
                positions = run_pks
            else:
                positions = run_index.get_indexer(np.array(run_pks, dtype=np.int64))
            keys = np.array(keys, dtype=np.int64 if kind == "metrics" else object)
            if kind == "metrics":
                keys = metric_names.to_numpy()[metric_names.index.get_indexer(keys)]
            frames.append(_wide_kind(kind, positions, keys, np.array(values, dtype=object), n_runs))
    out = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
    out.attrs["next_page_token"] = next_token
    return out


def frame_to_columns(frame: pd.DataFrame) -> dict[str, list]:
    """A search frame as JSON-safe column lists (times in ms, missing values as ``None``).

    >>> frame = search_run_frame(Database("sqlite://"))
    >>> frame_to_columns(frame)["run_id"]
    []
    """
    out: dict[str, list] = {}
    for name in frame.columns:
        column = frame[name]
        if name in ("start_time", "end_time"):
            milliseconds = column.astype("datetime64[ms, UTC]").to_numpy("datetime64[ms]")
            as_int = milliseconds.astype(np.int64).astype(object)
            out[name] = np.where(np.isnat(milliseconds), None, as_int).tolist()
        elif name.startswith("metrics."):
            values = column.to_numpy(np.float64)
            out[name] = np.where(np.isnan(values), None, values).tolist()
        else:
            values = column.to_numpy(object)
            out[name] = np.where(pd.isna(values), None, values).tolist()
    return out


def frame_from_columns(columns: dict[str, list]) -> pd.DataFrame:
    """Rebuild the search frame from :func:`frame_to_columns` with the same dtypes.

    >>> frame = frame_from_columns({"run_id": ["a"], "start_time": [1000],
    ...                             "metrics.auc": [None], "params.m": ["rf"]})
    >>> str(frame["start_time"].iloc[0]), bool(np.isnan(frame["metrics.auc"].iloc[0]))
    ('1970-01-01 00:00:01+00:00', True)
    """
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"search result columns need one length, got {sorted(lengths)}")
    n_runs = lengths.pop() if lengths else 0
    data: dict[str, object] = {}
    for name, values in columns.items():
        if name in ("start_time", "end_time"):
            data[name] = _times(tuple(values))
        elif name == "git_dirty":
            data[name] = _optional_bools(tuple(values))
        elif name.startswith("metrics."):
            data[name] = np.array(values, dtype=np.float64)
        elif name.startswith(("params.", "tags.")):
            data[name] = pd.Series(np.array(values, dtype=object), dtype=object, copy=False)
        else:
            data[name] = np.array(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(n_runs))
