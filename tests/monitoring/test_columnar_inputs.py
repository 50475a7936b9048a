"""Inputs logged in batches are kept column by column, and everything that reads events
gets from them what it got from the JSON texts ``log_predictions`` wrote before: the rows a
window is folded from (dtypes included), the window itself, the events' records, the
training window. Frames that would not read back the same are still written as texts."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.monitoring.columnar_inputs import MIN_ROWS, input_table
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.json_columns import row_texts
from opsloop.monitoring.training_window import training_window
from opsloop.monitoring.window_part import event_rows
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.serving.prediction_events import (
    EventRecorder,
    PredictionEvent,
    StoreEventSink,
    read_prediction_events,
)
from opsloop.store import tables

from .conftest import HOUR_MS, T0

AWKWARD = [0.0, -0.0, 2.0, 1e16, 1e-5, 5e-324, 1.7976931348623157e308, 0.30000000000000004]


def _kept(n: int) -> dict[str, pd.DataFrame]:
    """Frames kept column by column (one of each kind the rule allows)."""
    return {
        "numbers": pd.DataFrame(
            {
                "f": AWKWARD[:n] if n <= len(AWKWARD) else np.linspace(0, 1, n),
                "gap": [None if i % 3 == 0 else i / 7 for i in range(n)],
                "k": np.arange(n, dtype=np.int64) - 3,
                "on": [i % 2 == 0 for i in range(n)],
            }
        ),
        "text": pd.DataFrame({"plan": [None if i == 1 else f"p{i % 3}" for i in range(n)]}),
        "all_missing": pd.DataFrame({"x": [np.nan] * n, "y": np.ones(n)}),
        "narrow_types": pd.DataFrame(
            {
                "f32": np.arange(n, dtype=np.float32) / 3,
                "u8": np.arange(n, dtype=np.uint8),
                "nullable_int": pd.array(range(n), dtype="Int64"),
                "nullable_bool": pd.array([True] * n, dtype="boolean"),
                "category": pd.Categorical([f"c{i % 2}" for i in range(n)]),
            }
        ),
        # Text that Arrow's JSON reader takes for timestamps: the texts were parsed by the
        # standard library then.
        "date_like": pd.DataFrame({"day": ["2024-01-02"] * n, "v": np.arange(n) * 0.5}),
        "numbered_columns": pd.DataFrame(np.arange(2 * n, dtype=float).reshape(n, 2)),
    }


def _as_texts(n: int) -> dict[str, pd.DataFrame]:
    """Frames that stay JSON texts: kept by column, they would read back otherwise."""
    return {
        "missing_int": pd.DataFrame({"n": pd.array([1, None] + [2] * (n - 2), dtype="Int64")}),
        "datetime": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=n, freq="h")}),
        "mixed": pd.DataFrame({"m": [1, "a"] + [2.5] * (n - 2)}),
        "same_names": pd.DataFrame([[1.0, 2.0]] * n, columns=[1, "1"]),
        "huge_uint": pd.DataFrame({"u": np.full(n, 2**63 + 5, dtype=np.uint64)}),
        "lone_surrogate": pd.DataFrame({"s": pd.Series(["\ud800"] * n, dtype=object)}),
        "int_category": pd.DataFrame({"c": pd.Categorical([1, 2] * (n // 2))}),
    }


def _events(frames: list[pd.DataFrame], *, columnar: bool) -> tuple[pd.DataFrame, dict]:
    """Stored events of ``frames`` (one request per row, in order): their inputs as the
    JSON texts log_predictions wrote before, or as rows of a batch per frame."""
    parts, batches = [], {}
    for number, frame in enumerate(frames, start=1):
        n = len(frame)
        part = {
            "variant": ["a"] * n,
            "request_id": [f"b{number}r{i}" for i in range(n)],
            "inputs_json": row_texts(frame),
            "input_batch_id": [None] * n,
            "input_row": [None] * n,
            "output_json": [json.dumps({"predictions": [i % 2]}) for i in range(n)],
            "error": [None] * n,
            "latency_ms": [1.0] * n,
            "at_ms": [T0 + i for i in range(n)],
        }
        table = input_table(frame) if columnar else None
        if table is not None:
            batches[number] = table
            part.update(inputs_json=[None] * n, input_batch_id=[number] * n, input_row=range(n))
        parts.append(pd.DataFrame({k: pd.Series(list(v), dtype=object) for k, v in part.items()}))
    return pd.concat(parts, ignore_index=True), batches


@pytest.mark.parametrize("name", list(_kept(6)))
def test_a_kept_batch_folds_to_the_rows_its_texts_gave(name):
    frame = _kept(6)[name]
    assert input_table(frame) is not None
    texts, _ = _events([frame], columnar=False)
    columns, batches = _events([frame], columnar=True)
    assert columns["inputs_json"].isna().all()
    expected, expected_owner, expected_ids = event_rows(texts)
    found, owner, ids = event_rows(columns, batches)
    pd.testing.assert_frame_equal(found, expected)
    assert owner.tolist() == expected_owner.tolist() and ids == expected_ids


@pytest.mark.parametrize("name", list(_as_texts(6)))
def test_a_frame_that_would_read_back_otherwise_stays_text(name):
    assert input_table(_as_texts(6)[name]) is None


@pytest.mark.parametrize(
    "frames",
    [
        # The same column as integers in one batch and floats in the next.
        [pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [0.5, 1.5]})],
        # Different columns.
        [pd.DataFrame({"x": [1.0]}), pd.DataFrame({"y": ["a", "b"]})],
        # A column missing everywhere in one batch only.
        [pd.DataFrame({"x": [np.nan, np.nan]}), pd.DataFrame({"x": [1.0]})],
        # A batch kept as text among kept ones.
        [pd.DataFrame({"x": [1.0]}), _as_texts(4)["mixed"].rename(columns={"m": "x"})],
    ],
)
def test_batches_that_differ_fold_as_their_texts_did(frames):
    texts, _ = _events(frames, columnar=False)
    columns, batches = _events(frames, columnar=True)
    expected = event_rows(texts)[0]
    pd.testing.assert_frame_equal(event_rows(columns, batches)[0], expected)


def _assert_same_windows(db, variant: str, n: int) -> None:
    """The two hourly windows of deployment ``kept`` (columns) and ``texts`` (JSON texts)
    fold ``n`` events each into the same sample and the same state, sketches aside."""
    windowing = Windowing("1h", sample_size=n)
    assert update_windows(db, "kept", windowing) == update_windows(db, "texts", windowing) == n
    for start in (T0, T0 + HOUR_MS):
        ours = read_window(db, "kept", variant, windowing, start)
        theirs = read_window(db, "texts", variant, windowing, start)
        pd.testing.assert_frame_equal(ours.sample.rows, theirs.sample.rows)
        assert _without_sketches(json.loads(zlib.decompress(ours.state_bytes()))) == (
            _without_sketches(json.loads(zlib.decompress(theirs.state_bytes())))
        )


def _without_sketches(value):
    if isinstance(value, dict):
        return {k: _without_sketches(v) for k, v in value.items() if k != "kll"}
    if isinstance(value, list):
        return [_without_sketches(v) for v in value]
    return value


def _log_as_texts(db, deployment, frame, predictions, ids, at_ms) -> None:
    """The rows log_predictions wrote before inputs were kept by column."""
    with db.write() as connection:
        connection.execute(
            tables.prediction_events.insert(),
            [
                {
                    "deployment": deployment,
                    "variant": "default",
                    "role": "primary",
                    "model": "external",
                    "version": 0,
                    "request_id": request_id,
                    "inputs_json": text,
                    "output_json": f'{{"predictions": [{p}]}}',
                    "latency_ms": 0.0,
                    "at_ms": at,
                }
                for request_id, text, p, at in zip(
                    ids, row_texts(frame), predictions, at_ms, strict=True
                )
            ],
        )


def test_windows_records_and_training_rows_are_those_of_the_texts(db, clock):
    rng = np.random.default_rng(3)
    n = 280
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "gap": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "k": rng.integers(-5, 5, n),
            "plan": rng.choice(["free", "pro"], n),
        }
    )
    predictions = rng.integers(0, 2, n)
    ids = [f"r{i}" for i in range(n)]
    at_ms = (T0 + np.sort(rng.integers(0, 2 * HOUR_MS, n))).tolist()
    for lo in range(0, n, 70):
        part = slice(lo, lo + 70)
        log_predictions(
            db, "kept", frame[part], predictions[part], request_ids=ids[part], at_ms=at_ms[part]
        )
    _log_as_texts(db, "texts", frame, predictions.tolist(), ids, at_ms)
    with db.read() as connection:
        kept = connection.execute(
            sa.select(sa.func.count()).where(
                tables.prediction_events.c.deployment == "kept",
                tables.prediction_events.c.inputs_json.is_(None),
            )
        ).scalar_one()
    assert kept == n
    clock.advance(3 * HOUR_MS)
    _assert_same_windows(db, "default", n)
    records = read_prediction_events(db, "kept")["inputs"].tolist()
    assert records == [json.loads(text) for text in row_texts(frame)]
    assert records[0] == [frame.iloc[0].to_dict()]
    labels = rng.integers(0, 2, n)
    log_labels(db, "kept", ids, labels)
    log_labels(db, "texts", ids, labels)
    window = training_window(db, "kept", start_ms=T0, end_ms=T0 + HOUR_MS, label="y")
    expected = training_window(db, "texts", start_ms=T0, end_ms=T0 + HOUR_MS, label="y")
    pd.testing.assert_frame_equal(window.frame, expected.frame)
    assert window.sha256 == expected.sha256 and window.new_rows > 100


@pytest.mark.parametrize("rows", [MIN_ROWS - 1, MIN_ROWS])
def test_few_rows_and_frames_that_would_read_back_otherwise_are_logged_as_text(db, rows):
    few = pd.DataFrame({"x": np.arange(rows) / 2})
    log_predictions(db, "few", few, [0] * rows)
    frame = _as_texts(MIN_ROWS)["datetime"]
    log_predictions(db, "api", frame, [0] * MIN_ROWS)
    events = read_prediction_events(db, "api")
    assert events["inputs"].tolist()[1] == [{"t": "2024-01-01 01:00:00"}]
    assert read_prediction_events(db, "few")["inputs"].tolist()[-1] == [{"x": (rows - 1) / 2}]
    with db.read() as connection:
        batches = connection.execute(
            sa.select(sa.func.count()).select_from(tables.prediction_input_batches)
        ).scalar_one()
    assert batches == (rows == MIN_ROWS)


def test_names_with_quotes_are_kept_as_given(db, clock):
    deployment, variant, model = "o'brien", "b'; drop table x; --", 'm"1'
    log_predictions(
        db, deployment, [{"x": 1.0}, {"x": 3.0}], [0, 1], variant=variant, model=model,
        version=3, at_ms=T0,
    )  # fmt: skip
    events = read_prediction_events(db, deployment)
    assert events["variant"].tolist() == [variant, variant]
    assert events["model"].tolist() == [model, model] and events["version"].tolist() == [3, 3]
    clock.advance(HOUR_MS)
    assert update_windows(db, deployment, Windowing("1h")) == 2
    window = read_window(db, deployment, variant, Windowing("1h"), T0)
    assert window.profile["x"].numeric.mean == 2.0


def test_names_with_a_nul_character_are_kept_as_given(db):
    log_predictions(db, "api", [{"x": 1.0}], [0], variant="a\x00b", at_ms=T0)
    assert read_prediction_events(db, "api")["variant"].tolist() == ["a\x00b"]


def _served(deployment: str, n: int, at_ms: list[int], records: list[dict]) -> list:
    return [
        PredictionEvent(
            deployment,
            "stable",
            "primary",
            "m",
            1,
            f"r{i}",
            None,
            [record],
            {"predictions": [i % 2]},
            None,
            1.0 + i % 5,
            at,
        )
        for i, (record, at) in enumerate(zip(records, at_ms, strict=True))
    ]


def test_a_served_burst_is_kept_by_column_and_folds_as_its_texts(db, clock):
    rng = np.random.default_rng(11)
    n = 150
    records = [
        {
            "x": float(rng.normal()),
            "gap": None if i % 4 == 0 else float(rng.normal()),
            "k": int(rng.integers(-5, 5)),
            "on": bool(i % 3 == 0),
            "plan": None if i % 7 == 0 else str(rng.choice(["free", "pro"])),
        }
        for i in range(n)
    ]
    at_ms = (T0 + np.sort(rng.integers(0, 2 * HOUR_MS, n))).tolist()
    # The burst as the runtime records it: one flush of the recorder's writer thread.
    recorder = EventRecorder(StoreEventSink(db), linger_s=60.0)
    for event in _served("kept", n, at_ms, records):
        assert recorder.record(event)
    assert recorder.flush(30.0) and recorder.written == n
    recorder.close()
    # The same events as the sink wrote them before: one JSON text each.
    with db.write() as connection:
        connection.execute(
            tables.prediction_events.insert(),
            [event.to_row() for event in _served("texts", n, at_ms, records)],
        )
    with db.read() as connection:
        kept = connection.execute(
            sa.select(sa.func.count()).where(
                tables.prediction_events.c.deployment == "kept",
                tables.prediction_events.c.inputs_json.is_(None),
            )
        ).scalar_one()
        batches = connection.execute(
            sa.select(tables.prediction_input_batches.c.row_count)
        ).scalars().all()  # fmt: skip
    assert kept == n and batches == [n]
    clock.advance(3 * HOUR_MS)
    _assert_same_windows(db, "stable", n)
    found = read_prediction_events(db, "kept")["inputs"].tolist()
    assert found == read_prediction_events(db, "texts")["inputs"].tolist()
    assert found == [[record] for record in records]
    # The same types and field order as the JSON texts gave (1 stays 1, not 1.0).
    assert [list(map(type, row[0].values())) for row in found[:2]] == [
        [float, type(None), int, bool, type(None)],
        [float, float, int, bool, str],
    ]
    labels = rng.integers(0, 2, n)
    ids = [f"r{i}" for i in range(n)]
    assert log_labels(db, "kept", ids, labels) == log_labels(db, "texts", ids, labels)
    window, expected = (
        training_window(db, name, start_ms=T0, end_ms=T0 + HOUR_MS, label="y", variant="stable")
        for name in ("kept", "texts")
    )
    pd.testing.assert_frame_equal(window.frame, expected.frame)
    assert window.sha256 == expected.sha256 and window.new_rows > 50


@pytest.mark.parametrize(
    "column",
    [
        [1, 2.5],  # integers and floats: a table would give 1.0 back for 1
        [float("nan"), 0.5],  # JSON gives NaN back, a table a missing value
        [float("inf"), 0.5],
        [1, None],  # a missing integer
        ["a", 1],
        [{"nested": 1}, {"nested": 2}],
        [2**64, 1],
    ],
)
def test_served_inputs_that_would_read_back_otherwise_stay_text(db, column):
    records = [{"v": column[i % 2], "x": 0.5} for i in range(MIN_ROWS)]
    StoreEventSink(db).write(_served("api", MIN_ROWS, [T0] * MIN_ROWS, records))
    with db.read() as connection:
        batches = connection.execute(
            sa.select(sa.func.count()).select_from(tables.prediction_input_batches)
        ).scalar_one()
    assert batches == 0
    found = read_prediction_events(db, "api")["inputs"].tolist()
    expected = [json.loads(json.dumps([record])) for record in records]
    assert json.dumps(found) == json.dumps(expected)


def test_a_flush_keeps_by_column_only_groups_of_enough_rows_of_the_same_fields(db):
    first = [{"x": i / 8} for i in range(MIN_ROWS)]
    few = [{"y": i / 8} for i in range(MIN_ROWS - 1)]
    events = _served("api", 2 * MIN_ROWS - 1, [T0] * (2 * MIN_ROWS - 1), first + few)
    # Interleaved, with a request of two records and one of another deployment among them.
    pairs = zip(events[: MIN_ROWS - 1], events[MIN_ROWS:], strict=True)
    events = [e for pair in pairs for e in pair] + [events[MIN_ROWS - 1]]
    two = PredictionEvent("api", "s", "primary", "m", 1, "two", None, [{"x": 1.0}, {"x": 2.0}],
                          None, None, 1.0, T0)  # fmt: skip
    other = PredictionEvent("shop", "s", "primary", "m", 1, "o", None, [{"x": 3.0}], None,
                            None, 1.0, T0)  # fmt: skip
    StoreEventSink(db).write([two, *events, other])
    with db.read() as connection:
        stored = connection.execute(
            sa.select(
                tables.prediction_events.c.request_id,
                tables.prediction_events.c.input_batch_id,
                tables.prediction_events.c.input_row,
            ).order_by(tables.prediction_events.c.id)
        ).all()
    by_column = {request_id: row for request_id, batch, row in stored if batch is not None}
    assert sorted(by_column.values()) == list(range(MIN_ROWS))
    assert {f"r{i}" for i in range(MIN_ROWS)} == set(by_column)
    assert by_column["r5"] == 5
    found = read_prediction_events(db)
    assert found["inputs"].tolist() == [[{"x": 1.0}, {"x": 2.0}]] + [e.inputs for e in events] + [
        [{"x": 3.0}]
    ]
