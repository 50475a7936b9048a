"""Batch scoring on a Dask cluster: Parquet files larger than one machine, scored partition by
partition where the workers are, with the local path's rules and results.

:func:`score_parquet_dask` is :func:`~opsloop.serving.batch_scoring.score_file` on a
``distributed.Client``. Each partition (one row group of one Parquet file, numbered in file
order so every row keeps the number the local path gives it) is one task:

* **The model, once per worker, sha256 checked.** The calling process reads each variant's
  artifact through the registry (checked against its recorded sha256) and broadcasts the
  bytes to every worker once. A worker checks the bytes against the same sha256 before it
  deserialises anything, under the registry's trust rules (the caller's ``trust`` and
  ``trusted_types``), and keeps the loaded model for every later partition.
* **The same rows, rules and outputs.** A partition is scored by
  :func:`~opsloop.serving.batch_scoring.score_rows`, the local path's own: rows the
  signature refuses go to the rejected side file (CSV) with their row number, field, rule
  and detail; the scored rows are written by the worker as ``OUTPUT/part-NNNNN.parquet``
  (one file per partition, so OUTPUT is a Parquet directory, and the workers must be able
  to write where it is: a shared file system or object store path).
* **Events as the serving runtime records them.** Each partition's prediction events (role
  ``batch``, request id ``BATCH-ROW``, the generation of the definition whose variants
  were shipped) come back to the calling process and go to the
  runtime's sink as that partition finishes, so they are never held all at once.
* **Failures are loud.** A task's own error (a missing column, a model the trust rules
  refuse, a tampered artifact) is raised as it is. A cluster failure (a worker lost more
  often than the scheduler allows, the scheduler gone) raises :class:`ClusterScoringError`
  naming the partition and how many partitions were finished before it: their rows are in
  OUTPUT and their events recorded, under the batch id the error names.

The command line's face is ``opsloop score DEPLOYMENT INPUT OUTPUT --dask [SCHEDULER]``.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opsloop.data.distributed.frames import parquet_files
from opsloop.errors import InvalidArgumentError, UnavailableError
from opsloop.serving.batch_scoring import (
    BatchScoring,
    ChunkProgress,
    _stable_types,
    rejected_path_for,
    score_rows,
    scoring_definition,
)
from opsloop.serving.loaded_variant import LoadedVariant, variant_of
from opsloop.serving.row_rejection import missing_columns, signature_columns
from opsloop.serving.serving_runtime import ServingRuntime


class ClusterScoringError(UnavailableError):
    """The Dask cluster failed a batch: a worker lost too often, or the scheduler gone."""


@dataclass(frozen=True)
class Partition:
    """One task's rows: row group ``row_group`` of ``file``, its first row's number in the
    whole input, and its place (``index``) among the partitions.

    >>> Partition(0, "a.parquet", 1, 500, 250).label
    'a.parquet row group 1'
    """

    index: int
    file: str
    row_group: int
    first_row: int
    rows: int

    @property
    def label(self) -> str:
        """How an error names the partition."""
        return f"{self.file} row group {self.row_group}"


def plan_partitions(files: Sequence[str]) -> list[Partition]:
    """One :class:`Partition` per non-empty row group of ``files``, rows numbered in order
    (read from the Parquet footers only).

    >>> import pandas as pd
    >>> pd.DataFrame({"x": range(5)}).to_parquet(tmp_path / "a.parquet", row_group_size=3)
    >>> [(p.row_group, p.first_row, p.rows) for p in plan_partitions([tmp_path / "a.parquet"])]
    [(0, 0, 3), (1, 3, 2)]
    """
    import pyarrow.parquet as pq

    partitions, first = [], 0
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            if rows:
                partitions.append(Partition(len(partitions), str(file), group, first, rows))
                first += rows
    return partitions


@dataclass(frozen=True)
class ShippedVariant:
    """What a worker needs to load a variant: its names and version, the artifact's flavor,
    sha256 and loader record, the signature, who registered it, and the caller's trust."""

    name: str
    role: str
    model_name: str
    version: int
    flavor: str
    sha256: str
    loader: dict
    signature: dict | None
    registered_by: str
    trust: bool
    trusted_types: tuple[str, ...]
    #: The version's tags as pairs (an ONNX or PyTorch classifier's ``classes``).
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple:
        """What identifies the loaded model in a worker's cache."""
        return (
            self.sha256,
            self.name,
            self.role,
            self.flavor,
            self.trust,
            self.trusted_types,
            self.tags,
        )


# A worker's loaded variants, kept between tasks; the lock makes a worker with several
# threads load a model once.
_LOADED: dict[tuple, LoadedVariant] = {}
_LOADS: list[tuple] = []
_LOCK = threading.Lock()


def worker_variant(shipped: ShippedVariant, data: bytes) -> LoadedVariant:
    """The variant loaded from ``data`` on this process, once: the bytes are checked
    against ``shipped.sha256`` before anything is deserialised.

    >>> shipped = ShippedVariant("s", "primary", "m", 1, "onnx", "00" * 32, {}, None, "eve",
    ...                          False, ())
    >>> worker_variant(shipped, b"other bytes")
    Traceback (most recent call last):
    opsloop.store.artifacts.TamperedArtifactError: artifact models:/m/1 as received by this worker is refused: expected sha256 0000000000000000000000000000000000000000000000000000000000000000, found sha256 ...
    """  # noqa: E501
    from opsloop.registry.flavors import load_model_bytes
    from opsloop.store.artifacts import TamperedArtifactError

    with _LOCK:
        loaded = _LOADED.get(shipped.key)
        if loaded is not None:
            return loaded
        found = hashlib.sha256(data).hexdigest()
        source = f"models:/{shipped.model_name}/{shipped.version}"
        if found != shipped.sha256:
            raise TamperedArtifactError(
                shipped.sha256, found, f"{source} as received by this worker"
            )
        model = load_model_bytes(
            data,
            shipped.flavor,
            shipped.loader,
            trust=shipped.trust,
            trusted_types=shipped.trusted_types,
            source=source,
            registered_by=shipped.registered_by,
        )
        loaded = variant_of(
            shipped.name,
            shipped.role,
            shipped.model_name,
            shipped.version,
            shipped.flavor,
            shipped.signature,
            model,
            tags=dict(shipped.tags),
        )
        _LOADED[shipped.key] = loaded
        _LOADS.append(shipped.key)
        return loaded


def worker_loads() -> list[tuple]:
    """The models this process has loaded, one entry per load (``client.run`` it to see
    that each worker loaded each model once).

    A copy: changing it changes nothing of the record.

    >>> loads = worker_loads()
    >>> loads.append(("models:/m/1", "0" * 64))
    >>> ("models:/m/1", "0" * 64) in worker_loads()
    False
    """
    return list(_LOADS)


def _score_partition(
    part: Partition,
    shipped: tuple[ShippedVariant, ...],
    blobs: list[bytes],
    deployment: str,
    batch_id: str,
    all_variants: bool,
    probabilities: bool,
    at_ms: int,
    output: str,
    integers: frozenset[str],
    generation: int,
) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    variants = [worker_variant(s, b) for s, b in zip(shipped, blobs, strict=True)]
    frame = pq.ParquetFile(part.file).read_row_group(part.row_group).to_pandas()
    scored, events = score_rows(
        deployment,
        frame,
        variants,
        all_variants=all_variants,
        first_row=part.first_row,
        batch_id=batch_id,
        clock=lambda: at_ms,
        generation=generation,
        probabilities=probabilities,
    )
    table = _stable_types(scored.scored, set(integers))
    if len(table):
        pq.write_table(
            pa.Table.from_pandas(table, preserve_index=False),
            Path(output) / f"part-{part.index:05d}.parquet",
        )
    return {
        "index": part.index,
        "rows": len(frame),
        "scored": len(table),
        "rejected": scored.rejected,
        "events": events,
        "empty": table.iloc[:0] if not len(table) else None,
    }


def _cluster_failures() -> tuple[type[BaseException], ...]:
    from asyncio import CancelledError

    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, FutureCancelledError, CommClosedError, CancelledError)


def score_parquet_dask(
    runtime: ServingRuntime,
    deployment: str,
    input_path: str | Path,
    output: str | Path,
    *,
    client=None,
    all_variants: bool = False,
    rejected_path: str | Path | None = None,
    on_partition: Callable[[ChunkProgress], None] | None = None,
    probabilities: bool = False,
) -> BatchScoring:
    """Score the Parquet files of ``input_path`` (a file, a directory or a glob) with
    ``deployment`` on a Dask cluster (see the module): scored rows to the Parquet directory
    ``output`` (which must not exist or be empty), rejected rows to ``rejected_path``
    (default: :func:`~opsloop.serving.batch_scoring.rejected_path_for`), events to the
    runtime's sink. ``client`` is a ``distributed.Client`` (default: the current one);
    ``on_partition`` hears after each partition, in the order they finish, how many rows
    are done of how many (the row groups' counts, from the Parquet footers).

    >>> from opsloop.store import Database
    >>> score_parquet_dask(ServingRuntime(Database("sqlite://"), None), "api", tmp_path,
    ...                    tmp_path / "out")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: input: ... is a directory with no .parquet files
    """
    started = time.perf_counter()
    try:
        files = parquet_files(input_path)
    except (FileNotFoundError, ValueError) as error:
        raise InvalidArgumentError(f"input: {error}") from None
    output = Path(output)
    rejected_path = Path(rejected_path) if rejected_path else rejected_path_for(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidArgumentError(
            f"output: {output} exists and is not an empty directory; scoring on Dask writes "
            "a directory of Parquet parts"
        )
    variants, generation = scoring_definition(runtime, deployment, all_variants)
    import pyarrow.parquet as pq

    names = pq.read_schema(files[0]).names
    for variant in variants:
        if variant.schema is not None:
            missing_columns(names, variant.schema)
    partitions = plan_partitions(files)
    if not partitions:
        raise InvalidArgumentError(f"input: {input_path} has no rows")
    if client is None:
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            raise InvalidArgumentError(
                "no Dask client: pass client= or create a distributed.Client first"
            ) from None
    shipped, blobs = _shipped(runtime, variants)
    integers = frozenset(
        column.name
        for variant in variants
        if variant.schema is not None
        for column in signature_columns(variant.schema)
        if column.type == "int"
    )
    output.mkdir(parents=True, exist_ok=True)
    batch_id = uuid.uuid4().hex
    total_rows = sum(part.rows for part in partitions)
    totals = {"rows": 0, "scored": 0, "rejected": 0, "events": 0, "done": 0}
    empty = None
    failures = _cluster_failures()
    futures = []
    current = partitions[0]
    try:
        # Each artifact's bytes go to every worker once, not with every task.
        blob_futures = [client.scatter(blob, broadcast=True, hash=False) for blob in blobs]
        at_ms = runtime.db.clock()
        futures = [
            client.submit(
                _score_partition,
                part,
                shipped,
                blob_futures,
                deployment,
                batch_id,
                all_variants,
                probabilities,
                at_ms,
                str(output),
                integers,
                generation,
                key=f"opsloop-score-{batch_id}-{part.index}",
                pure=False,
            )
            for part in partitions
        ]
        from distributed import as_completed

        with _RejectedFile(rejected_path) as side:
            for future in as_completed(futures):
                current = partitions[int(future.key.rsplit("-", 1)[1])]
                result = future.result()
                if result["events"]:
                    runtime.recorder.sink.write(result["events"])
                side.add(result["index"], result["rejected"])
                if result["empty"] is not None and empty is None:
                    empty = result["empty"]
                totals["rows"] += result["rows"]
                totals["scored"] += result["scored"]
                totals["rejected"] += len(result["rejected"])
                totals["events"] += len(result["events"])
                totals["done"] += 1
                if on_partition is not None:
                    # Rows, as the local path counts a Parquet input, so that one progress
                    # bar reads both.
                    on_partition(
                        ChunkProgress(
                            totals["rows"],
                            totals["scored"],
                            totals["rejected"],
                            totals["rows"],
                            total_rows,
                        )
                    )
    except failures as error:
        reason = str(error).splitlines()[0] if str(error) else ""
        raise ClusterScoringError(
            f"the Dask cluster failed while scoring {current.label}: "
            f"{type(error).__name__}: {reason}; {totals['done']} of {len(partitions)} "
            f"partitions were scored before it (their rows are in {output}, their rejected "
            f"rows in {rejected_path} up to the first unfinished partition, their events "
            f"recorded with batch id {batch_id})"
        ) from error
    finally:
        for future in futures:
            future.cancel()
    if totals["scored"] == 0 and empty is not None:
        empty.to_parquet(output / "part-00000.parquet", index=False)
    return BatchScoring(
        deployment,
        batch_id,
        totals["rows"],
        totals["scored"],
        totals["rejected"],
        len(partitions),
        tuple(variant.name for variant in variants),
        totals["events"],
        str(output),
        str(rejected_path),
        time.perf_counter() - started,
    )


def _shipped(runtime: ServingRuntime, variants: list[LoadedVariant]):
    registry = runtime.registry
    shipped, blobs = [], []
    for variant in variants:
        record = registry.get_version(variant.model_name, variant.version)
        shipped.append(
            ShippedVariant(
                variant.name,
                variant.role,
                variant.model_name,
                variant.version,
                record.flavor,
                record.artifact_sha256,
                registry.loader_record(variant.model_name, variant.version),
                dict(record.signature) if record.signature else None,
                record.created_by,
                runtime.trust,
                tuple(runtime.trusted_types),
                tuple(sorted(record.tags.items())),
            )
        )
        # Read through the registry: checked against the recorded sha256 here too.
        blobs.append(registry.artifact_bytes(variant.model_name, variant.version))
    return tuple(shipped), blobs


class _RejectedFile:
    """The rejected rows' CSV, written in partition order as partitions finish in any."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[int, pd.DataFrame] = {}
        self._next = 0
        self._handle = None

    def __enter__(self) -> _RejectedFile:
        self._handle = self.path.open("w", newline="")
        return self

    def add(self, index: int, rejected: pd.DataFrame) -> None:
        self._pending[index] = rejected
        while self._next in self._pending:
            frame = self._pending.pop(self._next)
            frame.to_csv(self._handle, index=False, header=self._next == 0)
            self._next += 1

    def __exit__(self, *exc) -> None:
        self._handle.close()
