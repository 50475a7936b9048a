"""What the calling process receives in drift's sketch mode on Dask: every partition's
sketches (gathered, then merged there) against the one merged result the workers' tree of
merges hands it.

Each partition is ``drift_table(--partition-rows, seed=i)``'s current frame (20 numeric and
5 categorical columns), summarised as the sketch mode's partition task does it (KLL sketches
of ``--sketch-k`` for the numeric columns, exact counts for the others); the bytes are those
of the pickled results, which is what Dask sends. No timing: sizes only.

    python benchmarks/sketch_transfer.py --partitions 40 --partition-rows 50000
"""

from __future__ import annotations

import argparse
import functools
import pickle

import pandas as pd

from opsloop.data.distributed.drift import _merge_partition_summaries, _summarize_partition
from opsloop.datasets import drift_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--partition-rows", type=int, default=50_000)
    parser.add_argument("--sketch-k", type=int, default=1000)
    args = parser.parse_args()
    parts = []
    for seed in range(args.partitions):
        _, current, _ = drift_table(args.partition_rows, seed=seed)
        plan = {
            name: "number" if pd.api.types.is_numeric_dtype(current[name]) else "categorical"
            for name in current.columns
        }
        parts.append(_summarize_partition(current, plan, args.sketch_k))
    gathered = sum(len(pickle.dumps(part)) for part in parts)
    merged = len(pickle.dumps(functools.reduce(_merge_partition_summaries, parts)))
    print(
        f"{args.partitions} partitions of {args.partition_rows:,} rows x {len(plan)} columns, "
        f"k = {args.sketch_k}: every partition's summaries {gathered:,} bytes; the merged "
        f"result {merged:,} bytes ({gathered / merged:.1f} times less)"
    )


if __name__ == "__main__":
    main()
