"""Worker: the floor, numpy sorting every numeric column of both frames once.

Any exact KS test needs at least these sorts, so no contender can use less CPU on the
numeric columns than this.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from measure import measure, parse_args, timed_read


def sort_columns(frames: list[pd.DataFrame], columns: list[str]) -> dict:
    checksum = 0.0
    for frame in frames:
        for column in columns:
            values = np.sort(frame[column].to_numpy(dtype="float64", na_value=np.nan))
            checksum += float(values[0])  # keeps the sort's result alive and used
    return {"n_sorted": len(frames) * len(columns), "checksum": checksum}


def main() -> None:
    args = parse_args()
    frames, read_s = timed_read(
        lambda: [pd.read_parquet(args.reference), pd.read_parquet(args.current)]
    )
    measure(args, np.__version__, lambda f: sort_columns(f, args.roles["numeric"]), frames, read_s)


if __name__ == "__main__":
    main()
