"""Reading tables: ISO dates in CSV and JSON become datetimes by one rule; compressed files
and parquet directories read like plain files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsloop.data.drift import compare
from opsloop.data.io import TableReadError, read_table
from opsloop.data.schema import infer_schema


def dated(seed: int, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    when = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 86_400 * 30, 500), unit="s")
    return pd.DataFrame(
        {
            "applied_at": when.strftime("%Y-%m-%d %H:%M:%S"),
            "day": when.strftime("%Y-%m-%d"),
            "zoned": when.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
            "code": rng.choice(["2024-01-01", "pending"], 500),
            "amount": rng.normal(size=500),
        }
    )


def test_csv_dates_are_datetimes_in_the_schema_and_in_drift(tmp_path):
    dated(0, "2024-01-01").to_csv(tmp_path / "ref.csv", index=False)
    dated(1, "2024-03-01").to_csv(tmp_path / "cur.csv", index=False)
    ref, cur = read_table(tmp_path / "ref.csv"), read_table(tmp_path / "cur.csv")
    assert str(ref["applied_at"].dtype).startswith("datetime64")
    assert str(ref["day"].dtype).startswith("datetime64")
    assert str(ref["zoned"].dtype).endswith(", UTC]")
    # 02:00 at +02:00 is midnight UTC: the offset is applied, not dropped.
    first = pd.Timestamp(dated(0, "2024-01-01")["zoned"][0]).tz_convert("UTC")
    assert ref["zoned"][0] == first
    # A column that mixes dates and other text stays text.
    assert not str(ref["code"].dtype).startswith("datetime64")
    schema = infer_schema(ref)
    assert [schema[c].type for c in ("applied_at", "day", "zoned")] == ["datetime"] * 3
    result = compare(ref, cur)
    column = result["applied_at"]
    # Two months apart, compared as times: KS statistic 1 (no overlap), not a string length.
    assert (column.kind, column.test, column.statistic) == ("datetime", "ks", 1.0)
    assert column.drifted


def test_jsonl_dates_follow_the_same_rule_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame(
        {"created_at": [1_700_000_000, 1_700_000_100], "seen": ["2024-05-01T10:00:00Z", None]}
    )
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    read = read_table(tmp_path / "t.jsonl")
    # pandas would have turned created_at into dates by its name; the rule goes by values.
    assert read["created_at"].tolist() == [1_700_000_000, 1_700_000_100]
    assert read["seen"][0] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert read["seen"].isna().tolist() == [False, True]


def test_compressed_files_and_parquet_directories(tmp_path):
    frame = dated(2, "2024-01-01")
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    frame.to_json(tmp_path / "t.jsonl.gz", orient="records", lines=True)
    (tmp_path / "parts").mkdir()
    frame.iloc[:200].to_parquet(tmp_path / "parts" / "part-0.parquet")
    frame.iloc[200:].to_parquet(tmp_path / "parts" / "part-1.parquet")
    from_csv = read_table(tmp_path / "t.csv.gz")
    from_json = read_table(tmp_path / "t.jsonl.gz")
    from_parts = read_table(tmp_path / "parts")
    assert from_csv.shape == from_json.shape == from_parts.shape == (500, 5)
    assert from_csv["amount"].tolist() == pytest.approx(frame["amount"].tolist(), rel=1e-15)
    assert from_json["day"].equals(from_csv["day"])
    assert sorted(from_parts["amount"]) == sorted(frame["amount"])


def test_unreadable_inputs_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TableReadError, match=r"is a directory with no \.parquet files"):
        read_table(tmp_path / "empty")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(TableReadError, match=r"bad.csv.gz: cannot read as csv"):
        read_table(tmp_path / "bad.csv.gz")
    with pytest.raises(TableReadError, match=r"unknown format '.txt'"):
        read_table(tmp_path / "notes.txt.gz")
