"""Dask frames: recognising one without importing Dask, reading Parquet lazily, running a
function on every partition with its dtypes checked, and connecting to a cluster.

**Partitions must agree on their dtypes.** Dask takes a frame's dtypes (its ``meta``) from
the first file it reads; a partition read from another file may hold a column with another
dtype (an ``int64`` column that is ``float64`` in one file, because that file had a missing
value). Every operation here checks each partition against the frame's dtypes and raises
:class:`PartitionDtypeError` naming the column, the partition and both dtypes, rather than
profile or validate the column under two types. Cast first where the promotion is wanted
(``ddf.astype({"amount": "float64"})``); an explicit cast makes every partition agree.

>>> import pandas as pd
>>> is_dask_frame(pd.DataFrame()), is_dask_frame(None)
(False, False)
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from opsloop.data.distributed.transfer import (
    compute_options,
    register_serialization,
    ship,
    unship,
)


class PartitionDtypeError(ValueError):
    """A partition of a Dask frame stores a column with another dtype than the frame's."""


class ParquetSchemaError(ValueError):
    """A Parquet file of a Dask frame lacks a column of the frame's columns (its ``meta``)."""


def is_dask_frame(data: object) -> bool:
    """Whether ``data`` is a ``dask.dataframe`` DataFrame (checked without importing Dask).

    >>> import dask.dataframe as dd, pandas as pd
    >>> is_dask_frame(dd.from_pandas(pd.DataFrame({"a": [1]}), npartitions=1))
    True
    """
    module = type(data).__module__
    return (
        module.startswith("dask")
        and hasattr(data, "npartitions")
        and hasattr(data, "to_delayed")
        and hasattr(data, "columns")
    )


def parquet_files(path: str | Path) -> list[str]:
    """The Parquet files ``path`` names: a directory (searched recursively), a glob pattern
    or one file; a clear error when there are none.

    >>> parquet_files("no/such/dir/*.parquet")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/dir/*.parquet: no Parquet files match
    """
    text = str(path)
    candidate = Path(text)
    if candidate.is_dir():
        files = sorted(str(p) for p in candidate.rglob("*.parquet") if p.is_file())
        if not files:
            raise FileNotFoundError(f"{text}: is a directory with no .parquet files")
        return files
    if glob.has_magic(text):
        files = sorted(p for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"{text}: no Parquet files match")
        return files
    if not candidate.is_file():
        raise FileNotFoundError(f"{text}: no such file or directory")
    from opsloop.data.io import table_format

    if table_format(candidate) != "parquet":
        raise ValueError(
            f"{text}: Dask reads Parquet here (a .parquet file, a directory or a glob)"
        )
    return [text]


def _footer(path: str):
    """The Parquet footer of ``path``; an error naming the file when it has none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{path}: cannot read its Parquet footer: {error}") from error


#: Largest uncompressed size of the row groups one partition of :func:`read_parquet_dask`
#: holds (Dask's own ``read_parquet`` block size): a file larger than this is split at
#: row-group boundaries, so that a worker's memory is bounded by the partition, not the file.
PARTITION_BYTES = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class ParquetPiece:
    """One partition of :func:`read_parquet_dask`: consecutive row groups of one file, and
    the values of its hive partition columns (``year=2020`` folders), code in the column's
    categories, in the frame's order."""

    path: str
    row_groups: tuple[int, ...]
    rows: int
    partition_codes: tuple[int, ...] = ()


def parquet_pieces(files: Sequence[str], partition_bytes: int = PARTITION_BYTES) -> list:
    """The :class:`ParquetPiece` partitions of ``files``, from their footers: each file's
    row groups in runs of at most ``partition_bytes`` uncompressed bytes (at least one row
    group a run); a file without row groups is one empty piece. A file whose footer cannot
    be read is named in the error.

    >>> import pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = str(pathlib.Path(d) / "a.parquet")
    ...     pd.DataFrame({"x": range(10)}).to_parquet(path, row_group_size=4)
    ...     [(p.row_groups, p.rows) for p in parquet_pieces([path], partition_bytes=1)]
    [((0,), 4), ((1,), 4), ((2,), 2)]
    """
    pieces = []
    for path in files:
        metadata = _footer(path)
        run: list[int] = []
        run_bytes = run_rows = 0
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            if run and run_bytes + group.total_byte_size > partition_bytes:
                pieces.append(ParquetPiece(path, tuple(run), run_rows))
                run, run_bytes, run_rows = [], 0, 0
            run.append(index)
            run_bytes += group.total_byte_size
            run_rows += group.num_rows
        pieces.append(ParquetPiece(path, tuple(run), run_rows))
    return pieces


def hive_partitions(files: Sequence[str]) -> tuple[dict, list[tuple[int, ...]]]:
    """The hive partition columns of ``files`` (``key=value`` folders below the folder they
    share) as ``dd.read_parquet`` gives them: each a categorical dtype whose categories
    are the column's values, sorted, in the type Arrow infers for them (``int32`` for
    whole numbers); and each file's codes in those categories. No columns when the files
    are not in such folders.

    >>> import pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for year in (2021, 2020):
    ...         (pathlib.Path(d) / f"year={year}").mkdir()
    ...         pd.DataFrame({"x": [1]}).to_parquet(pathlib.Path(d) / f"year={year}" / "a.parquet")
    ...     dtypes, codes = hive_partitions(parquet_files(d))
    ...     list(dtypes["year"].categories), codes
    ([2020, 2021], [(0,), (1,)])
    """
    import os

    import pyarrow.dataset as pa_ds

    base = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
    dataset = pa_ds.dataset(
        [os.path.abspath(f) for f in files],
        format="parquet",
        partitioning=pa_ds.HivePartitioning.discover(infer_dictionary=True),
        partition_base_dir=base,
    )
    partitioning = dataset.partitioning
    # Without key=value folders Arrow reports the files' own fields, without dictionaries.
    found = [] if partitioning is None else partitioning.dictionaries or []
    categories = {
        name: pd.Index(dictionary.to_pandas().sort_values(), copy=False)
        for name, dictionary in zip(partitioning.schema.names, found, strict=False)
        if dictionary is not None
    }
    if not categories:
        return {}, [() for _ in files]
    names = list(categories)
    by_path = {}
    for fragment in dataset.get_fragments():
        keys = pa_ds.get_partition_keys(fragment.partition_expression)
        by_path[fragment.path] = tuple(int(categories[name].get_loc(keys[name])) for name in names)
    dtypes = {name: pd.CategoricalDtype(categories[name]) for name in names}
    return dtypes, [by_path[os.path.abspath(f)] for f in files]


def _dask_types(arrow_type):
    """The pandas dtype ``dd.read_parquet`` gives an Arrow type while Dask converts
    strings (its ``dataframe.convert-string`` setting): Arrow-backed strings, dates and
    decimals; ``None`` (pandas' own choice) for the others."""
    import pyarrow as pa

    if arrow_type == pa.string() or arrow_type == pa.large_string():
        return pd.StringDtype("pyarrow")
    if arrow_type == pa.date32() or arrow_type == pa.date64() or pa.types.is_decimal(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def _to_pandas(table, convert_strings: bool) -> pd.DataFrame:
    frame = table.to_pandas(
        use_threads=False, types_mapper=_dask_types if convert_strings else None
    )
    index = frame.index
    if (
        convert_strings
        and not isinstance(index, pd.MultiIndex)
        and pd.api.types.is_string_dtype(index.dtype)
        and index.dtype != pd.StringDtype("pyarrow")
    ):
        frame.index = index.astype(pd.StringDtype("pyarrow"))
    return frame


def read_parquet_piece(
    piece: ParquetPiece,
    columns: Sequence[str] | None = None,
    *,
    file_columns: Sequence[str] | None = None,
    partition_dtypes: dict | None = None,
    convert_strings: bool = False,
) -> pd.DataFrame:
    """The pandas frame of ``piece``: what ``pandas.read_parquet`` gives for those row
    groups, or with ``convert_strings`` what ``dd.read_parquet`` gives (Arrow-backed
    strings, dates and decimals), read in the calling thread (a Dask worker's thread is its
    core: Arrow's thread pools would compete with the other workers). Its columns are
    ``columns`` when given, else ``file_columns`` (all the file's when ``None``) followed
    by the hive partition columns of ``partition_dtypes``, whatever other columns the file
    holds. A file without one of those columns raises :class:`ParquetSchemaError`, and a
    file that cannot be read an error naming it.

    >>> import pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = str(pathlib.Path(d) / "a.parquet")
    ...     pd.DataFrame({"x": [1.5, 2.5], "c": ["a", "b"]}).to_parquet(path)
    ...     print(read_parquet_piece(ParquetPiece(path, (0,), 2), ["x"]))
    ...     try:
    ...         read_parquet_piece(ParquetPiece(path, (0,), 2), ["y"])
    ...     except ParquetSchemaError as error:
    ...         print(str(error).replace(path, "a.parquet"))
         x
    0  1.5
    1  2.5
    a.parquet: has no column 'y' (its columns: 'x', 'c'); every file must hold the frame's columns
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    partition_dtypes = partition_dtypes or {}
    if columns is None:
        wanted = None if file_columns is None else list(file_columns)
        added = list(partition_dtypes)
    else:
        wanted = [name for name in columns if name not in partition_dtypes]
        added = [name for name in columns if name in partition_dtypes]
    try:
        # Not memory-mapped: a file truncated while it is read would kill the process
        # with SIGBUS instead of raising.
        with pq.ParquetFile(piece.path) as file:
            if wanted is not None:
                present = file.schema_arrow.names
                missing = [name for name in wanted if name not in present]
                if missing:
                    listed = ", ".join(repr(name) for name in present)
                    raise ParquetSchemaError(
                        f"{piece.path}: has no column {missing[0]!r} (its columns: {listed});"
                        " every file must hold the frame's columns"
                    )
            table = file.read_row_groups(
                list(piece.row_groups), columns=wanted, use_threads=False, use_pandas_metadata=True
            )
    except (OSError, pa.ArrowException) as error:
        raise ValueError(
            f"{piece.path}: cannot read row groups {list(piece.row_groups)}: {error}"
        ) from error
    if wanted is not None:
        # Arrow keeps the file's column order; the frame's order is the first file's.
        chosen = set(wanted)
        table = table.select(wanted + [n for n in table.column_names if n not in chosen])
    frame = _to_pandas(table, convert_strings)
    for name in added:
        index = list(partition_dtypes).index(name)
        code = piece.partition_codes[index]
        frame[name] = pd.Categorical.from_codes(
            np.full(len(frame), code, dtype=np.int32), dtype=partition_dtypes[name]
        )
    return frame


def read_parquet_dask(path: str | Path, columns: Sequence[str] | None = None):
    """A lazy ``dask.dataframe`` over the Parquet files of ``path`` (a directory, a glob
    pattern or one file): one partition per file, or per run of row groups of at most
    :data:`PARTITION_BYTES` in a larger file (:func:`parquet_pieces`), read by
    :func:`read_parquet_piece`. Its partitions are the frames ``dd.read_parquet`` gives on
    the same files (dtypes and values; hive partition columns such as ``year=2020`` folders
    are categorical columns, :func:`hive_partitions`); an operation that needs some columns
    reads only those (Dask's column projection). The frame's columns and dtypes are the
    first file's: a later file's other columns are left out, and a file without one of them
    raises :class:`ParquetSchemaError` when read. Categorical columns have unknown
    categories.

    >>> import pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for i in range(2):
    ...         pd.DataFrame({"x": [i, i + 1]}).to_parquet(pathlib.Path(d) / f"{i}.parquet")
    ...     ddf = read_parquet_dask(pathlib.Path(d) / "*.parquet")
    ...     ddf.npartitions, int(ddf["x"].sum().compute(scheduler="synchronous"))
    (2, 4)
    """
    import dask
    import dask.dataframe as dd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dask.dataframe.utils import clear_known_categories, pyarrow_strings_enabled

    files = parquet_files(path)
    pieces = parquet_pieces(files)  # first: a file without a footer is named here
    partition_dtypes, codes = hive_partitions(files)
    by_file = dict(zip(files, codes, strict=True))
    pieces = [dataclasses.replace(piece, partition_codes=by_file[piece.path]) for piece in pieces]
    convert_strings = pyarrow_strings_enabled()
    try:
        schema = pq.read_schema(files[0])
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{files[0]}: cannot read its Parquet schema: {error}") from error
    meta = clear_known_categories(_to_pandas(schema.empty_table(), convert_strings))
    file_columns = list(meta.columns)
    for name, dtype in partition_dtypes.items():
        meta[name] = pd.Categorical([], dtype=dtype)
    # Dask would otherwise turn every object column (dates, decimals, lists, bytes) of
    # every partition into strings; the reader gives strings their dtype itself.
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_map(
            read_parquet_piece,
            pieces,
            meta=meta,
            label="read-parquet-piece",
            file_columns=file_columns,
            partition_dtypes=partition_dtypes,
            convert_strings=convert_strings,
        )
    return frame if columns is None else frame[list(columns)]


def known_rows(ddf) -> int | None:
    """The rows of ``ddf`` when its expression says them without reading a partition: a
    frame of :func:`read_parquet_dask` (columns projected, partitions selected) counted from
    the Parquet footers; ``None`` for any other frame.

    >>> import dask.dataframe as dd, pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for i in range(3):
    ...         pd.DataFrame({"x": range(i + 1)}).to_parquet(pathlib.Path(d) / f"{i}.parquet")
    ...     ddf = read_parquet_dask(d)
    ...     known_rows(ddf), known_rows(ddf[["x"]].partitions[1:]), known_rows(ddf[ddf.x > 0])
    (6, 5, None)
    """
    from dask.dataframe.dask_expr._expr import ArrowStringConversion, Projection
    from dask.dataframe.dask_expr.io import FromMap

    expr = ddf.expr.simplify()
    while isinstance(expr, ArrowStringConversion | Projection):
        expr = expr.frame
    if not (isinstance(expr, FromMap) and expr.func is read_parquet_piece):
        return None
    pieces = expr.iterables[0]
    chosen = expr._partitions if expr._partitions is not None else range(len(pieces))
    return sum(pieces[index].rows for index in chosen)


def frame_rows(ddf) -> int:
    """The rows of the Dask frame ``ddf``: :func:`known_rows` where the frame says them,
    else ``len(ddf)`` (which Dask may count by reading every partition).

    >>> import dask, dask.dataframe as dd, pandas as pd
    >>> with dask.config.set(scheduler="synchronous"):
    ...     frame_rows(dd.from_pandas(pd.DataFrame({"x": range(5)}), npartitions=2))
    5
    """
    rows = known_rows(ddf)
    return len(ddf) if rows is None else rows


def map_partitions_checked(
    ddf, function: Callable[..., Any], *args: Any, columns: Sequence[str] | None = None
) -> list:
    """``function(partition, *args)`` on every partition of ``ddf`` (only ``columns`` of
    it, when given), each partition's dtypes checked first; the results in partition order.

    Runs on Dask's current scheduler (a ``distributed.Client`` when one is active). A failed
    partition, or a worker lost more often than the scheduler allows, raises: no partial
    result is ever returned. The results' arrays travel out of band, straight from the
    workers of a ``LocalCluster`` of this process (:mod:`.transfer`).

    >>> import dask, dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": range(5)}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     map_partitions_checked(ddf, len)
    [3, 2]
    """
    import dask

    frame = ddf if columns is None else ddf[list(columns)]
    dtypes = dict(frame.dtypes.items())
    parts = frame.to_delayed()
    tasks = [
        dask.delayed(_run_checked, pure=True)(part, index, dtypes, function, args)
        for index, part in enumerate(parts)
    ]
    register_serialization()
    return [unship(result) for result in dask.compute(*tasks, **compute_options())]


#: Partial results merged per task of a tree reduction: the client receives one result, and
#: no task merges more than this many.
SPLIT_EVERY = 8


def reduce_partitions(
    ddf,
    function: Callable[..., Any],
    merge: Callable[[Any, Any], Any],
    *args: Any,
    columns: Sequence[str] | None = None,
    split_every: int = SPLIT_EVERY,
) -> Any:
    """``function(partition, *args)`` on every partition of ``ddf`` (dtypes checked as in
    :func:`map_partitions_checked`), the results merged on the workers by a tree of
    ``merge(left, right)`` calls, ``split_every`` results a task: the calling process
    receives one merged result instead of one per partition.

    Every merge takes its inputs in partition order, left to right, so an associative
    ``merge`` gives what merging the partitions' results one after the other gives.

    >>> import dask, dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": range(10)}), npartitions=5)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     reduce_partitions(ddf, lambda part: [int(part["x"].sum())], list.__add__,
    ...                       split_every=2)
    [1, 5, 9, 13, 17]
    """
    import dask

    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    frame = ddf if columns is None else ddf[list(columns)]
    dtypes = dict(frame.dtypes.items())
    tasks = [
        dask.delayed(_run_checked, pure=True)(part, index, dtypes, function, args)
        for index, part in enumerate(frame.to_delayed())
    ]
    while len(tasks) > 1:
        tasks = [
            dask.delayed(_merge_in_order, pure=True)(merge, *tasks[start : start + split_every])
            for start in range(0, len(tasks), split_every)
        ]
    register_serialization()
    (result,) = dask.compute(tasks[0], **compute_options())
    return unship(result)


def _merge_in_order(merge: Callable[[Any, Any], Any], *results: Any) -> Any:
    merged = unship(results[0])
    for result in results[1:]:
        merged = merge(merged, unship(result))
    return ship(merged)


def _run_checked(partition: pd.DataFrame, index: int, dtypes: dict, function, args):
    # Shipped: the result's arrays reach the client out of band (see .transfer).
    check_partition_dtypes(partition, index, dtypes)
    return ship(function(partition, *args))


def check_partition_dtypes(partition: pd.DataFrame, index: int, dtypes: dict) -> None:
    """Raise :class:`PartitionDtypeError` when ``partition`` (number ``index``) stores a
    column with another dtype than ``dtypes`` (the frame's).

    >>> import numpy as np, pandas as pd
    >>> check_partition_dtypes(pd.DataFrame({"n": [1.5]}), 3, {"n": np.dtype("int64")})
    Traceback (most recent call last):
    ...
    opsloop.data.distributed.frames.PartitionDtypeError: column 'n' is float64 in partition 3 but int64 in the frame's dtypes (from its first partition); cast it to one dtype first, e.g. ddf.astype({'n': 'float64'})
    """  # noqa: E501
    for name, expected in dtypes.items():
        found = partition[name].dtype
        if found == expected:
            continue
        if isinstance(found, pd.CategoricalDtype) and isinstance(expected, pd.CategoricalDtype):
            continue  # categories differ between files; the values are what is checked
        raise PartitionDtypeError(
            f"column {name!r} is {found} in partition {index} but {expected} in the frame's "
            "dtypes (from its first partition); cast it to one dtype first, e.g. "
            f"ddf.astype({{{name!r}: {str(_promoted(found, expected))!r}}})"
        )


def _promoted(a, b):
    try:
        import numpy as np

        return np.result_type(a, b)
    except TypeError:
        return "object"


def byte_size(n: float) -> str:
    """``n`` bytes as a person reads them, in the largest unit up to GiB it reaches.

    >>> byte_size(512), byte_size(1536), byte_size(3 * 2**30)
    ('512 bytes', '1.5 KiB', '3.0 GiB')
    """
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


#: Environment of the worker processes of the clusters :func:`local_cluster` starts, set
#: before each process starts (glibc reads it then). Dask's default,
#: ``MALLOC_TRIM_THRESHOLD_=65536``, fixes glibc's allocator thresholds at their smallest:
#: every array above 128 KiB gets fresh pages from the kernel and gives them back when freed,
#: so a worker pays a page fault per 4 KiB each time it allocates a column (profiling a
#: 250,000-row partition: 175,000 faults and 0.7-0.8 CPU-s, against 0.4-0.5 with these).
#: Arrays up to 32 MiB (glibc's own ceiling for its adaptive threshold) come from the heap
#: instead, which keeps up to 64 MiB of free memory at its top for the next partition.
WORKER_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
}

#: Dask settings of the clusters :func:`local_cluster` starts: periodic work that costs CPU
#: on every process whether it works or not, slowed or off. The workers' statistical
#: profiler samples their threads every 10 ms; the event-loop tick and the system monitor
#: run every 20 and 500 ms; each worker and its nanny read the worker's memory every 100 ms.
#: Together they take an idle two-worker cluster from about 10% of a core to about 1.4%
#: (the memory checks at 500 ms: 0.3% per worker and 0.8% for the client and scheduler,
#: against 0.6-0.7% and 1.4-1.6% at 100 ms). Memory limits, spilling thresholds and
#: heartbeats are Dask's defaults; they are enforced up to half a second later.
QUIET_SETTINGS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


def local_cluster(n_workers: int | None = None, threads_per_worker: int | None = None, **kwargs):
    """A ``distributed.LocalCluster`` of worker processes set up for opsloop's partition
    work: their allocator keeps freed arrays for the next partition
    (:data:`WORKER_ENVIRONMENT`) and Dask's CPU-costly diagnostics are off or slowed
    (:data:`QUIET_SETTINGS`). Other arguments go to ``LocalCluster``. An environment
    variable of the same name set in this process takes precedence, as Dask's
    ``distributed.nanny.pre-spawn-environ`` rules it.

    For a cluster started elsewhere, give its workers the same environment before they start
    (``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``, or Dask's
    ``distributed.nanny.pre-spawn-environ`` setting) and the same settings.

    >>> import os
    >>> from distributed import Client
    >>> with local_cluster(1, 1, dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     client.run(os.environ.get, "MALLOC_MMAP_THRESHOLD_").popitem()[1]
    '33554432'
    """
    import dask
    from distributed import LocalCluster

    environment = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **WORKER_ENVIRONMENT}
    # The nanny reads these settings when it is made and gives them to the worker processes
    # it starts (or restarts) later.
    with dask.config.set({**QUIET_SETTINGS, "distributed.nanny.pre-spawn-environ": environment}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            **{"processes": True, **kwargs},
        )


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, timeout: str = "10s") -> Iterator:
    """A ``distributed.Client`` for the duration of a ``with`` block: connected to
    ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``), or to a new
    ``LocalCluster`` of worker processes on this machine when it is ``None`` or
    ``"local"`` (:func:`local_cluster`). The client is the default scheduler inside the
    block and closed after it (the local cluster too). ``timeout`` bounds the wait for the
    scheduler to answer.

    >>> with dask_client("tcp://127.0.0.1:1", timeout="1s") as client:  # nobody listens
    ...     pass
    Traceback (most recent call last):
    ...
    ConnectionError: cannot reach the Dask scheduler at tcp://127.0.0.1:1: ...
    """
    from distributed import Client

    if scheduler is None or scheduler == "local":
        with local_cluster() as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectionError(
            f"cannot reach the Dask scheduler at {scheduler}: {reason}"
        ) from error
    with client:
        yield client
