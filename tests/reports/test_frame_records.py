"""DataFrames to JSON-safe records, from the reports layer (the API and --json both use it)."""

import json

import numpy as np
import pandas as pd

from opsloop.reports.frame_records import frame_records


def test_numpy_scalars_missing_values_and_times_become_plain_json():
    frame = pd.DataFrame(
        {
            "n": np.array([3, 4], dtype=np.int64),
            "x": [0.1 + 0.2, np.nan],
            "t": pd.to_datetime([1_700_000_000_123, None], unit="ms", utc=True),
            "s": ["a", None],
        }
    )
    records = frame_records(frame)
    assert records == [
        {"n": 3, "x": 0.30000000000000004, "t": 1_700_000_000_123, "s": "a"},
        {"n": 4, "x": None, "t": None, "s": None},
    ]
    assert type(records[0]["n"]) is int
    assert json.loads(json.dumps(records)) == records


def test_a_frame_without_columns_keeps_its_rows():
    assert frame_records(pd.DataFrame(index=range(2))) == [{}, {}]
