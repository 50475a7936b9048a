"""Input pipeline: epoch time and compute utilisation with and without opsloop's Parquet loader.

One epoch of a small MLP training loop over a Parquet file, fed three ways:

* ``pandas + TensorDataset``: the whole file read into memory, then torch's DataLoader indexing
  row by row and collating each batch (the common first attempt);
* ``ParquetBatches, 0 workers``: record batches streamed by pyarrow in the training process;
* ``ParquetBatches, N workers``: the same in N worker processes with prefetching.

Utilisation is the share of the epoch the training step ran (forward, backward, optimiser), the
rest being the wait for data; on a GPU machine this is the accelerator's busy share.

    python benchmarks/learn.py --rows 200000 --features 32 --workers 2

Writes ``benchmarks/out/learn.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from opsloop.learn.input_pipeline import ParquetBatches, make_loader
from opsloop.learn.mlp import mlp

OUT = Path(__file__).resolve().parent / "out"


def write_file(path: Path, rows: int, features: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = {f"f{i}": rng.normal(size=rows).astype(np.float32) for i in range(features)}
    columns["label"] = rng.integers(0, 10, rows)
    pq.write_table(pa.table(columns), path, row_group_size=16_384)


def run_epoch(loader, features: int) -> tuple[float, float, int]:
    model = mlp([features, 128, 10], seed=0)
    step = torch.optim.SGD(model.parameters(), lr=0.01)
    compute = 0.0
    rows = 0
    start = time.perf_counter()
    for X, y in loader:
        begin = time.perf_counter()
        step.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        step.step()
        compute += time.perf_counter() - begin
        rows += len(y)
    return time.perf_counter() - start, compute, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.parquet"
        write_file(path, args.rows, args.features, args.seed)
        names = [f"f{i}" for i in range(args.features)]

        def in_memory():
            frame = pq.read_table(path).to_pandas()
            dataset = torch.utils.data.TensorDataset(
                torch.as_tensor(frame[names].to_numpy(np.float32)),
                torch.as_tensor(frame["label"].to_numpy(np.int64)),
            )
            return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)

        def streamed(workers):
            data = ParquetBatches(path, label="label", batch_size=args.batch_size, shuffle=True)
            return make_loader(data, num_workers=workers, prefetch_factor=4)

        setups = {
            "pandas + TensorDataset": in_memory,
            "ParquetBatches, 0 workers": lambda: streamed(0),
            f"ParquetBatches, {args.workers} workers": lambda: streamed(args.workers),
        }
        rows = []
        for name, build in setups.items():
            start = time.perf_counter()
            loader = build()
            epoch, compute, seen = run_epoch(loader, args.features)
            total = time.perf_counter() - start
            assert seen == args.rows, (name, seen)
            rows.append((name, total, epoch, compute / epoch))

    base = rows[0][1]
    lines = [
        "# Input pipeline: one training epoch over a Parquet file",
        "",
        f"{args.rows:,} rows x {args.features} float32 features, batches of {args.batch_size}, "
        f"MLP {args.features}-128-10, torch threads 1.",
        "",
        "| loader | load + epoch (s) | epoch (s) | compute share | speed-up |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, total, epoch, share in rows:
        lines.append(f"| {name} | {total:.2f} | {epoch:.2f} | {share:.0%} | {base / total:.1f}x |")
    OUT.mkdir(exist_ok=True)
    (OUT / "learn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
