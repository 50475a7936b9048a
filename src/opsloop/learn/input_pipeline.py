"""Input pipelines on torch's DataLoader: streaming Parquet files larger than memory, in batches.

:class:`ParquetBatches` reads record batches with pyarrow (only the requested columns, one batch
of rows in memory per worker at a time) and yields whole ``(features, label)`` tensors, so no
Python code runs per row. Row groups are the unit of work: DataLoader workers and
torch.distributed ranks each take every ``n``-th row group, so together they read every row
exactly once. With ``shuffle`` the row-group order and the rows inside each batch are permuted
from ``seed`` and the epoch (:meth:`ParquetBatches.set_epoch`), like ``DistributedSampler``.

:func:`make_loader` wraps it in a DataLoader with worker processes, prefetching and pinned
memory where an accelerator exists. Importing this module needs PyTorch (``opsloop.learn``
itself does not import it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from opsloop.learn.torch_import import import_torch

torch = import_torch()


class ParquetBatches(torch.utils.data.IterableDataset):
    """Batches of ``(features, label)`` tensors streamed from Parquet files.

    ``features`` are cast to float32 (one column each, in the order given; every column but
    ``label`` by default); the label keeps integers as int64 and anything else as float32. With
    ``label=None`` each item is the features tensor alone. ``rank``/``world_size`` shard the
    row groups between the processes of a distributed job.

    >>> import os, pandas as pd
    >>> folder = tmp_path
    >>> path = os.path.join(folder, "rows.parquet")
    >>> pd.DataFrame({"x": [0.5, 1.5, 2.5], "y": [0, 1, 0]}).to_parquet(path)
    >>> [tuple(t.shape) for t in next(iter(ParquetBatches(path, label="y", batch_size=2)))]
    [(2, 1), (2,)]
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        label: str | None = None,
        features: Sequence[str] | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        self.paths = [
            os.fspath(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)
        ]
        if not self.paths:
            raise ValueError("paths must name at least one Parquet file")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be within [0, world_size={world_size}), got {rank!r}")
        schema = pq.ParquetFile(self.paths[0]).schema_arrow
        names = list(schema.names)
        if label is not None and label not in names:
            raise ValueError(f"label column {label!r} is not in {self.paths[0]} (columns: {names})")
        chosen = [n for n in names if n != label] if features is None else list(features)
        missing = [n for n in chosen if n not in names]
        if missing or not chosen:
            raise ValueError(f"features must be columns of {self.paths[0]}; missing: {missing}")
        self.label = label
        self.features = chosen
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        # (file, row group) pairs: the units shared out between ranks and workers
        self.row_groups = [
            (i, g)
            for i, p in enumerate(self.paths)
            for g in range(pq.ParquetFile(p).num_row_groups)
        ]

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with ``seed``, fixes the shuffled order."""
        self.epoch = int(epoch)

    def _my_row_groups(self) -> list[tuple[int, int]]:
        units = list(self.row_groups)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            units = [units[i] for i in rng.permutation(len(units))]
        units = units[self.rank :: self.world_size]
        info = torch.utils.data.get_worker_info()
        if info is not None:
            units = units[info.id :: info.num_workers]
        return units

    def _to_tensors(self, batch: pa.RecordBatch, rng: np.random.Generator) -> Any:
        X = np.column_stack(
            [batch.column(n).to_numpy(zero_copy_only=False) for n in self.features]
        ).astype(np.float32, copy=False)
        order = rng.permutation(len(X)) if self.shuffle else None
        X = torch.from_numpy(X if order is None else X[order])
        if self.label is None:
            return X
        y = batch.column(self.label).to_numpy(zero_copy_only=False)
        y = y.astype(np.int64 if np.issubdtype(y.dtype, np.integer) else np.float32, copy=False)
        # arrow hands out read-only views, and torch tensors must own writable memory
        y = np.require(y, requirements="W")
        return X, torch.from_numpy(y if order is None else y[order])

    def __iter__(self) -> Iterator[Any]:
        columns = [*self.features, *([self.label] if self.label is not None else [])]
        units = self._my_row_groups()
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, len(units)])
        files: dict[int, pq.ParquetFile] = {}
        for file_index, group in units:
            if file_index not in files:
                files[file_index] = pq.ParquetFile(self.paths[file_index])
            for batch in files[file_index].iter_batches(
                batch_size=self.batch_size, row_groups=[group], columns=columns
            ):
                yield self._to_tensors(batch, rng)


def make_loader(
    dataset: Any,
    *,
    num_workers: int = 0,
    prefetch_factor: int = 2,
    pin_memory: bool | str = "auto",
    persistent_workers: bool = False,
) -> Any:
    """A DataLoader over a dataset that yields whole batches (such as :class:`ParquetBatches`).

    ``prefetch_factor`` batches per worker are read ahead; ``pin_memory="auto"`` pins only when
    CUDA is available (pinning helps copies to a GPU and costs time otherwise).

    >>> import os, pandas as pd
    >>> path = os.path.join(tmp_path, "rows.parquet")
    >>> pd.DataFrame({"x": range(10), "y": range(10)}).to_parquet(path)
    >>> sum(len(y) for _, y in make_loader(ParquetBatches(path, label="y", batch_size=4)))
    10
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if pin_memory == "auto":
        pin_memory = torch.cuda.is_available()
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = {"prefetch_factor": prefetch_factor, "persistent_workers": persistent_workers}
    # batch_size=None: the dataset already yields batches, so nothing is collated row by row
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=num_workers, pin_memory=bool(pin_memory), **extra
    )
