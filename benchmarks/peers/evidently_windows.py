"""Worker: Evidently's data drift preset, with its defaults, on each window of a stream.

Run by ``benchmarks/monitoring_ingest.py --windows N`` in ``benchmarks/.envs/evidently``. The
current Parquet file holds every window's rows with a ``window`` column; the worker runs
``Report([DataDriftPreset()], include_tests=True)`` once per window against the reference, as
a scheduled batch job over the same windows would, and records each window's drifted columns.
The measured work is the loop over the windows (the rows already in memory); reading the
files is reported apart.
"""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry (there is no network anyway)

import evidently
import pandas as pd
from evidently_preset import preset_drift
from measure import measure, parse_args, timed_read


def per_window(reference: pd.DataFrame, current: pd.DataFrame, roles: dict) -> dict:
    drifted: dict[str, list[str]] = {}
    for window, rows in current.groupby("window", sort=True):
        outcome = preset_drift(reference, rows.drop(columns="window"), roles)
        drifted[str(window)] = sorted(c for c, flag in outcome["drifted"].items() if flag)
    return {"windows": drifted}


def main() -> None:
    args = parse_args()
    (reference, current), read_s = timed_read(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
    )
    measure(
        args,
        evidently.__version__,
        lambda frames: per_window(*frames, args.roles),
        [reference, current],
        read_s,
    )


if __name__ == "__main__":
    main()
