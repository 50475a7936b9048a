"""Search runs in the store: two SQL queries and a vectorised pivot into one DataFrame.

The filter (see :mod:`.filter_parser`) is translated to SQL and the database selects the
runs. The first query returns the chosen runs in order with their attributes; the second
returns, in long form, every param, tag and latest metric value of those runs in one
``UNION ALL``. The long rows are placed into the wide frame with numpy fancy indexing
(row = the run's position, column = the key's code), so building the frame costs a few array
operations per entity type, not per run. Rows are read as plain tuples and transposed once:
handing SQLAlchemy ``Row`` objects to the DataFrame constructor costs more than the query.

>>> import tempfile
>>> from opsloop.store import ArtifactStore, Database
>>> from opsloop.tracking.local_store import LocalTrackingStore
>>> s = LocalTrackingStore(Database("sqlite://"), ArtifactStore(tempfile.mkdtemp()))
>>> for depth in (3, 5):
...     s.write_batch(s.create_run("e"), params={"depth": depth})
>>> search_run_frame(s.db, "e", "params.depth = '5'")["params.depth"].tolist()
['5']
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.tracking.filter_parser import parse_filter
from opsloop.tracking.filter_sql import filter_to_sql, order_to_sql

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


class UnknownExperimentError(ValueError):
    """No experiment has this name."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown experiment {name!r}")
        self.name = name


def _checked_limit(max_results: object) -> int | None:
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
    ):
        raise ValueError(f"max_results must be a positive integer, got {max_results!r}")
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


def _long_values(chosen) -> sa.CompoundSelect:
    """(run pk, kind, key, text, number) for every param, latest metric and tag of ``chosen``."""
    params, tags = tables.params, tables.tags
    latest, keys = tables.latest_metrics, tables.metric_keys
    no_text = sa.cast(sa.null(), sa.Text)
    no_number = sa.cast(sa.null(), sa.Float(precision=53))
    return sa.union_all(
        sa.select(params.c.run_id, sa.literal(0), params.c.key, params.c.value, no_number).where(
            params.c.run_id.in_(chosen)
        ),
        sa.select(latest.c.run_id, sa.literal(1), keys.c.name, no_text, latest.c.value)
        .join(keys, keys.c.id == latest.c.key_id)
        .where(latest.c.run_id.in_(chosen)),
        sa.select(tags.c.run_id, sa.literal(2), tags.c.key, tags.c.value, no_number).where(
            tags.c.run_id.in_(chosen)
        ),
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fetch_columns(connection, statement, width: int) -> list[tuple]:
    """The result's columns as tuples, read from the driver's cursor as plain tuples.

    Transposing the driver's tuples costs a fraction of a millisecond per 10,000 rows;
    building and transposing SQLAlchemy ``Row`` objects costs more than the query itself.
    Values therefore arrive as the driver gives them (SQLite booleans as 0/1).
    """
    result = connection.execute(statement)
    try:
        # The rows are tuples of scalars and cannot form reference cycles; letting the
        # collector run while tens of thousands of them are made only re-walks the heap.
        with _collector_paused():
            rows = result.cursor.fetchall()
    finally:
        result.close()
    return list(zip(*rows, strict=True)) if rows else [()] * width


def _times(milliseconds: tuple):
    # None becomes NaN in a float array, and NaN becomes NaT.
    as_float = np.array(milliseconds, dtype=np.float64)
    return pd.to_datetime(as_float, unit="ms", utc=True).astype("datetime64[ms, UTC]").array


def _optional_bools(values: tuple) -> np.ndarray:
    out = np.array(values, dtype=object)
    present = ~pd.isna(out)
    out[present] = out[present].astype(bool)
    return out


def _wide(positions, kinds, keys, texts, numbers, n_runs: int) -> dict[str, object]:
    """Columns ``params.*``, ``metrics.*``, ``tags.*`` (keys sorted) from the long rows."""
    out: dict[str, object] = {}
    for code, prefix in enumerate(_KINDS):
        mask = kinds == code
        if not mask.any():
            continue
        key_codes, names = pd.factorize(keys[mask], sort=True)
        if prefix == "metrics":
            grid = np.full((n_runs, len(names)), np.nan)
            grid[positions[mask], key_codes] = numbers[mask].astype(np.float64)
        else:
            grid = np.full((n_runs, len(names)), None, dtype=object)
            grid[positions[mask], key_codes] = texts[mask]
        for column, name in enumerate(names):
            values = grid[:, column]
            # Text stays object dtype with None for "not logged", as the run records have it.
            out[f"{prefix}.{name}"] = (
                values if prefix == "metrics" else pd.Series(values, dtype=object, copy=False)
            )
    return out


def search_run_frame(
    db: Database,
    experiments: str | Iterable[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
) -> pd.DataFrame:
    """Runs matching ``filter``, one row each: run attributes, then params, metrics and tags.

    Columns: ``run_id``, ``experiment``, ``name``, ``status``, ``start_time``, ``end_time``,
    ``parent_run_id``, ``user``, ``git_commit``, ``git_branch``, ``git_dirty``,
    ``python_version``, ``platform``, then ``params.<key>``, ``metrics.<key>`` (latest
    values, NaN where absent) and ``tags.<key>`` (``None`` where absent). The default order
    is newest first.

    >>> search_run_frame(Database("sqlite://"), None).shape
    (0, 13)
    """
    if isinstance(order_by, str):
        raise TypeError("order_by must be a list of clauses such as ['metrics.auc DESC']")
    condition = None if not filter else filter_to_sql(parse_filter(filter))
    orders = [order_to_sql(clause) for clause in (order_by or ())]
    limit = _checked_limit(max_results)
    env, e = tables.environments, tables.experiments
    with db.read() as connection:
        experiment_ids = _experiment_ids(connection, experiments)
        where = [] if condition is None else [condition]
        if experiment_ids is not None:
            where.append(_runs.c.experiment_id.in_(experiment_ids))
        order = [*orders, _runs.c.start_ms.desc(), _runs.c.id.desc()]
        chosen = sa.select(_runs.c.id).where(*where)
        if limit is not None:
            chosen = chosen.order_by(*order).limit(limit)
        base = _fetch_columns(
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
            )
            .select_from(
                _runs.join(e, e.c.id == _runs.c.experiment_id)
                .outerjoin(_parent, _parent.c.id == _runs.c.parent_id)
                .outerjoin(env, env.c.sha256 == _runs.c.environment_sha256)
            )
            .where(*where)
            .order_by(*order)
            .limit(limit),
            1 + len(RUN_COLUMNS),
        )
        n_runs = len(base[0])
        long = _fetch_columns(connection, _long_values(chosen), 5) if n_runs else [()] * 5
    pks, *attributes = base
    data: dict[str, object] = {}
    for name, values in zip(RUN_COLUMNS, attributes, strict=True):
        if name in ("start_time", "end_time"):
            data[name] = _times(values)
        elif name == "git_dirty":
            data[name] = _optional_bools(values)
        else:
            data[name] = np.array(values, dtype=object)
    run_pks, kinds, keys, texts, numbers = long
    if run_pks:
        positions = pd.Index(np.array(pks, dtype=np.int64)).get_indexer(
            np.array(run_pks, dtype=np.int64)
        )
        wide = _wide(
            positions,
            np.array(kinds, dtype=np.int64),
            np.array(keys, dtype=object),
            np.array(texts, dtype=object),
            np.array(numbers, dtype=object),
            n_runs,
        )
        data.update(wide)
    return pd.DataFrame(data, index=pd.RangeIndex(n_runs))


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
