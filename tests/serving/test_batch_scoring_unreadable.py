"""Batch scoring of files the reader cannot parse, on scikit-learn's wine data: the error
names the input, and says which rows were already scored and recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from tests.serving.batch_scoring_setup import deploy_scaled_logistic, runtime_on_fake_clock

from opsloop.errors import InvalidArgumentError
from opsloop.serving import read_prediction_events
from opsloop.serving.batch_scoring import score_file


@pytest.fixture
def wine(registry):
    """A scaled multinomial logistic regression on the wine data, deployed as ``wine``."""
    return deploy_scaled_logistic(
        registry, load_wine, model="wine", deployment="wine", variant="live"
    )


@pytest.fixture
def runtime(registry):
    yield from runtime_on_fake_clock(registry)


def test_a_malformed_line_names_the_file_and_the_rows_already_scored(runtime, wine, tmp_path):
    model, X = wine
    lines = X.to_csv(index=False).splitlines()
    lines[26] += ",1,2"  # row 25 has two fields too many: the third chunk of 10 fails
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidArgumentError) as caught:
        score_file(runtime, "wine", tmp_path / "in.csv", tmp_path / "out.csv", chunk_size=10)
    message = str(caught.value)
    assert message.startswith(f"input: {tmp_path / 'in.csv'}: cannot read as csv: ")
    assert "Expected 13 fields in line 27, saw 15" in message
    assert f"the 20 rows before it were scored into {tmp_path / 'out.csv'}" in message
    out = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_array_equal(out["prediction"], model.predict(X.iloc[:20]))
    events = read_prediction_events(runtime.db, "wine", role="batch")
    assert len(events) == 20
    batch_id = out["request_id"].iloc[0].rsplit("-", 1)[0]
    assert f"recorded as batch {batch_id}" in message


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("latin.csv", "alcohol\xe9,ash\n1,2\n".encode("latin-1"), "cannot read as csv: 'utf-8'"),
        ("broken.parquet", b"PAR1 not parquet", "cannot read as parquet: "),
    ],
)
def test_an_unreadable_file_names_itself(runtime, wine, tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidArgumentError) as caught:
        score_file(runtime, "wine", tmp_path / name, tmp_path / "out.csv")
    assert str(caught.value).startswith(f"input: {tmp_path / name}: {reason}")
    assert "rows before it" not in str(caught.value)
    assert read_prediction_events(runtime.db, "wine", role="batch").empty


def test_a_format_batch_scoring_does_not_read_is_refused_once(runtime, wine, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"alcohol": 1}\n')
    with pytest.raises(InvalidArgumentError) as caught:
        score_file(runtime, "wine", tmp_path / "in.jsonl", tmp_path / "out.csv")
    assert str(caught.value) == (
        f"input: {tmp_path / 'in.jsonl'} is jsonl; batch scoring reads CSV or Parquet"
    )


def test_a_damaged_xz_file_names_itself(runtime, wine, tmp_path):
    import lzma

    _, X = wine
    packed = bytearray(lzma.compress((X.to_csv(index=False) * 50).encode()))
    middle = len(packed) // 2
    packed[middle : middle + 40] = bytes(b ^ 0xFF for b in packed[middle : middle + 40])
    (tmp_path / "in.csv.xz").write_bytes(bytes(packed))
    with pytest.raises(InvalidArgumentError) as caught:
        score_file(runtime, "wine", tmp_path / "in.csv.xz", tmp_path / "out.csv", chunk_size=50)
    assert str(caught.value).startswith(f"input: {tmp_path / 'in.csv.xz'}: cannot read as csv: ")
