"""Inputs written and read a column at a time give the values the standard library's JSON
gives, bit for bit: the texts parse to what the per-record encoder's texts parse to, and
the frame parsed by Arrow equals the one built from ``json.loads``; what Arrow cannot read
the same way is left to the standard library."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.json_columns import predictions_of_texts, row_texts, rows_of_texts
from opsloop.monitoring.window_part import _predictions, _records_frame

AWKWARD_FLOATS = [
    0.0, -0.0, 2.0, -3.0, 100.0, 123456.0, 1e15, 1e16, 1e17, 1e21, 1e22, 1e-5, 1e-7, 0.1,
    5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993.0,
    1.2345678901234568e17, 0.30000000000000004,
]  # fmt: skip


def _standard_texts(frame: pd.DataFrame) -> list[str]:
    """The texts the per-record encoder wrote (the reference)."""
    plain = frame.astype(object).where(frame.notna(), None)
    dumps = json.JSONEncoder(default=str, allow_nan=False).encode
    return [f"[{dumps(record)}]" for record in plain.to_dict("records")]


def _standard_frame(texts: list[str]) -> tuple[pd.DataFrame, list[int]]:
    events = [json.loads(text) for text in texts]
    return _records_frame([r for e in events for r in e]), [len(e) for e in events]


def test_floats_come_back_bit_for_bit_and_as_floats():
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 2**63, 20_000, dtype=np.uint64).view(np.float64)
    values = np.concatenate([AWKWARD_FLOATS, random_bits[np.isfinite(random_bits)]])
    texts = row_texts(pd.DataFrame({"x": values}))
    back = [json.loads(text)[0]["x"] for text in texts]
    assert all(type(v) is float for v in back)
    assert np.array_equal(np.array(back).view(np.int64), values.view(np.int64))


def _mixed() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "f32": rng.normal(size=n).astype(np.float32),
            "i": rng.integers(-5, 5, n),
            "u": rng.integers(0, 2**63, n, dtype=np.uint64),
            "b": rng.random(n) < 0.5,
            "s": rng.choice(["a", "b", 'quote " and \\ é'], n),
            "nullable": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "when": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 9, n), "D"),
            "weird name \n": rng.normal(size=n),
        }
    )
    frame.loc[::7, "f"] = np.nan
    frame.loc[::5, "s"] = None
    frame.loc[::3, "nullable"] = pd.NA
    frame.loc[:19, "f"] = AWKWARD_FLOATS
    return frame


def test_the_texts_parse_to_what_the_per_record_encoder_wrote():
    frame = _mixed()
    mine, standard = row_texts(frame), _standard_texts(frame)
    assert [json.loads(t) for t in mine] == [json.loads(t) for t in standard]
    # Where they differ it is only in the notation of a few floats.
    assert sum(a != b for a, b in zip(mine, standard, strict=True)) <= 20


def test_an_infinite_value_is_refused_by_column():
    with pytest.raises(InvalidArgumentError, match="column 'f' holds an infinite value"):
        row_texts(pd.DataFrame({"f": [1.0, -np.inf]}))
    assert row_texts(pd.DataFrame(index=range(2))) == ["[{}]", "[{}]"]


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param(None, id="mixed columns"),
        pytest.param(['[{"a": NaN}]', '[{"a": 1.5}]'], id="NaN"),
        pytest.param(['[{"a": 1, "b": true}]', '[{"b": null, "c": "x"}]'], id="missing keys"),
        pytest.param(['[{"a": 1}, {"a": 2.5}]', '[{"a": 3}]', "[]"], id="several records"),
        pytest.param(['[{"a": null}]', '[{"a": null, "b": 1}]'], id="all null"),
        pytest.param(['[{"a": 9007199254740993}]', '[{"a": -4}]'], id="big integers"),
    ],
)
def test_arrow_parses_the_frame_json_loads_would_build(texts):
    if texts is None:
        # Arrow reads the dates' text as timestamps: they are the next test's.
        texts = row_texts(_mixed().drop(columns="when"))
    frame, lengths = rows_of_texts(texts)
    expected, expected_lengths = _standard_frame(texts)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert lengths.tolist() == expected_lengths


@pytest.mark.parametrize(
    "texts",
    [
        ['[{"a": {"b": 1}}]'],
        ['[{"a": [1, 2]}]'],
        ['[{"a": "2024-01-01T00:00:00"}]'],
        ['[{"a": 1}]', '[{"a": "text"}]'],
        ['[{"a": 1}]', "null"],
        ["[{}]"],
        ["[]"],
    ],
    ids=["object", "list", "timestamp", "number and text", "null", "no keys", "empty"],
)
def test_what_arrow_would_read_otherwise_is_left_to_the_standard_library(texts):
    assert rows_of_texts(texts) is None
    assert rows_of_texts(row_texts(_mixed())) is None


def _standard_predictions(texts: list, lengths: list[int]) -> list:
    found: list = []
    for text, n_rows in zip(texts, lengths, strict=True):
        found.extend(_predictions(None if text is None else json.loads(text), n_rows))
    return found


OUTPUTS = [
    pytest.param(
        ['{"predictions": [1]}', '{"predictions": [0, 1]}', None, '{"predictions": [2]}'],
        [1, 2, 1, 3],
        id="ints, a failed answer, a wrong length",
    ),
    pytest.param(
        [
            '{"predictions": [0.5], "probabilities": [[0.5, 0.5]], "classes": [0, 1]}',
            '{"predictions": [1]}',
            '{"predictions": [null]}',
            '{"predictions": [NaN]}',
        ],
        [1, 1, 1, 1],
        id="floats and ints, other fields, null, NaN",
    ),
    pytest.param(['{"predictions": ["yes"]}', '{"other": 1}'], [1, 1], id="text, no predictions"),
    pytest.param([None, None], [1, 2], id="no output at all"),
]


@pytest.mark.parametrize(("texts", "lengths"), OUTPUTS)
def test_arrow_reads_the_predictions_json_loads_would(texts, lengths):
    found = predictions_of_texts(texts, np.array(lengths))
    expected = _standard_predictions(texts, lengths)
    assert found is not None
    # As event_rows makes the prediction column of them.
    pd.testing.assert_series_equal(
        pd.Series(found, dtype=object).infer_objects(),
        pd.Series(expected, dtype=object).infer_objects(),
        check_exact=True,
    )


@pytest.mark.parametrize(
    "texts",
    [
        ['{"predictions": [[1, 2]]}'],
        ['{"predictions": [{"a": 1}]}'],
        ['{"predictions": [1]}', '{"predictions": ["a"]}'],
        ['{"predictions": [true]}', '{"predictions": [1]}'],
        ["[1]"],
    ],
    ids=["lists", "objects", "number and text", "flag and number", "not an object"],
)
def test_predictions_arrow_would_read_otherwise_are_left_to_the_standard_library(texts):
    assert predictions_of_texts(texts, np.ones(len(texts), dtype=np.int64)) is None
