"""Worker: ``opsloop.data.drift.compare`` with its defaults, in the main venv.

With ``--profile`` the reference is a saved :class:`ReferenceProfile`, opened with
``lazy=True`` inside the timed work (each column is read from the file as it is compared;
reading it is part of what a monitoring job pays each time); otherwise the
reference is the DataFrame, summarised inside ``compare``. With ``--warm`` and a profile, the
warm-up compares the whole saved profile (loaded again) with the current frame's first rows;
the reference frame is read only after the measurement, to size the inputs.
``--ks-p-value fast`` passes ``ks_p_value="fast"`` to ``compare``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from measure import measure, parse_args, timed_read

import opsloop
from opsloop.data.drift.compare import compare
from opsloop.data.drift.summary import ReferenceProfile


def outcome(result) -> dict:
    return {
        "drifted": {c.column: c.drifted for c in result.columns},
        "tests": {c.column: c.test for c in result.columns},
        "p_values": {c.column: c.p_value for c in result.columns},
        "kinds": {c.column: c.kind for c in result.columns},
    }


def main() -> None:
    def extra(parser) -> None:
        parser.add_argument("--profile", type=Path, help="saved ReferenceProfile (.npz)")
        parser.add_argument("--ks-p-value", default="scipy", help="compare's ks_p_value")

    args = parse_args(extra)
    if args.profile is not None:
        current, read_s = timed_read(lambda: pd.read_parquet(args.current))
        measure(
            args,
            opsloop.__version__,
            # The warm-up too opens the saved profile and reads every column, against the current
            # frame's head. lazy=True: one reference column in memory at a time.
            lambda frames: outcome(
                compare(
                    ReferenceProfile.load(args.profile, lazy=True),
                    frames[0],
                    ks_p_value=args.ks_p_value,
                )
            ),
            [current],
            read_s,
            sized=lambda: [pd.read_parquet(args.reference), current],
        )
    else:
        (reference, current), read_s = timed_read(
            lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
        )
        measure(
            args,
            opsloop.__version__,
            lambda frames: outcome(compare(*frames, ks_p_value=args.ks_p_value)),
            [reference, current],
            read_s,
        )


if __name__ == "__main__":
    main()
