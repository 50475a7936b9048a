"""One worker's share of one window: a profile of the rows it saw (inputs and the
``prediction`` column), a bounded sample of those rows, the software metrics, the
requests the input anomaly detector scored and flagged (:mod:`.input_anomalies`), and the
records per request (the batch sizes, :mod:`.input_length`).

Parts merge: profiles exactly for counts and moments (:mod:`opsloop.data.profile`),
samples exactly (:mod:`opsloop.data.row_sample`), counts by addition. So a window read back
is the merge of the parts every worker wrote, and equals the part one worker would have
written alone.

:func:`parts_of_events` builds the parts of a batch of prediction events, as stored in the
``prediction_events`` table (inputs and output as JSON text, or inputs kept column by
column in a batch: :mod:`.columnar_inputs`); the events' ``assertions_json`` (when the
batch has the column) holds the detector's marks.

>>> import pandas as pd
>>> events = pd.DataFrame({
...     "variant": ["a", "a"], "request_id": ["r1", "r2"],
...     "inputs_json": ['[{"x": 1.0}]', '[{"x": 3.0}]'],
...     "output_json": ['{"predictions": [0]}', '{"predictions": [1]}'],
...     "error": [None, None], "latency_ms": [1.0, 2.0], "at_ms": [10, 20],
...     "assertions_json": ['{"input_detector": 1}', None]})
>>> parts = parts_of_events(events, Windowing("1h"))
>>> part = parts[("a", 0)]
>>> part.profile["x"].numeric.mean, part.software.requests, len(part.sample)
(2.0, 2, 2)
>>> part.anomalies.scored, part.anomalies.flagged
(1, 1)
>>> part.batch_sizes.count, part.batch_sizes.maximum
(2, 1)
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from opsloop.data.profile import Profile, profile
from opsloop.data.profile.numeric import NumericSummary
from opsloop.data.row_sample import RowSample
from opsloop.data.training_reference import PREDICTION_COLUMN
from opsloop.monitoring.columnar_inputs import columnar_frame, event_texts
from opsloop.monitoring.input_anomalies import InputAnomalyCounts, event_marks
from opsloop.monitoring.json_columns import predictions_of_texts, rows_of_texts
from opsloop.monitoring.software_metrics import SoftwareMetrics
from opsloop.monitoring.windowing import Windowing


@dataclass(frozen=True)
class WindowPart:
    """A window's ``profile`` (``None`` before any row), ``sample`` (``None`` once expired),
    ``software`` metrics, input ``anomalies`` counts and ``batch_sizes``, the rows of each
    request (``None`` in a part kept before parts counted them)."""

    profile: Profile | None
    sample: RowSample | None
    software: SoftwareMetrics
    anomalies: InputAnomalyCounts = field(default_factory=InputAnomalyCounts)
    batch_sizes: NumericSummary | None = None

    def merge(self, other: WindowPart) -> WindowPart:
        """Both parts' rows together (a sample expired in either part is gone in the merge).

        >>> import pandas as pd
        >>> events = pd.DataFrame({"variant": ["a"], "request_id": ["r"],
        ...     "inputs_json": ['[{"x": 2.0}]'], "output_json": [None], "error": ["boom"],
        ...     "latency_ms": [3.0], "at_ms": [0]})
        >>> part = parts_of_events(events, Windowing())[("a", 0)]
        >>> both = part.merge(part)
        >>> both.profile.n_rows, both.software.errors
        (2, 2)
        """
        if self.profile is None or other.profile is None:
            merged = self.profile or other.profile
        else:
            merged = self.profile.merge(other.profile)
        if self.sample is None or other.sample is None:
            sample = None
        else:
            sample = self.sample.merge(other.sample)
        # A part without batch sizes (kept before they were counted) leaves the merge
        # without them: a summary of some of the window's requests would be read as all.
        if self.batch_sizes is None or other.batch_sizes is None:
            sizes = None
        else:
            sizes = self.batch_sizes.merge(other.batch_sizes)
        return WindowPart(
            merged,
            sample,
            self.software.merge(other.software),
            self.anomalies.merge(other.anomalies),
            sizes,
        )

    def state_bytes(self) -> bytes:
        """The profile and software metrics as compressed JSON (the sample is kept apart so
        that it can expire)."""
        state = {
            "profile": None if self.profile is None else self.profile.to_state(),
            "software": self.software.to_dict(),
            "input_anomalies": self.anomalies.to_dict(),
            "batch_sizes": None if self.batch_sizes is None else self.batch_sizes.to_state(),
        }
        return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, state: bytes, sample: bytes | None) -> WindowPart:
        """Rebuild from :meth:`state_bytes` and the sample's bytes (``None``: expired). A
        part kept before parts counted input anomalies has none scored, and one kept before
        they counted batch sizes has ``batch_sizes`` ``None``.

        >>> import pandas as pd
        >>> events = pd.DataFrame({"variant": ["a"], "request_id": ["r"],
        ...     "inputs_json": ['[{"x": 2.0}]'], "output_json": ['{"predictions": [1]}'],
        ...     "error": [None], "latency_ms": [3.0], "at_ms": [0]})
        >>> part = parts_of_events(events, Windowing())[("a", 0)]
        >>> back = WindowPart.from_bytes(part.state_bytes(), None)
        >>> back.profile["x"].numeric.sum, back.sample is None, back.batch_sizes.mean
        (2.0, True, 1.0)
        >>> old = zlib.compress(json.dumps({"profile": None, "software":
        ...     part.software.to_dict()}).encode())
        >>> WindowPart.from_bytes(old, None).batch_sizes is None
        True
        """
        data = json.loads(zlib.decompress(state))
        sizes = data.get("batch_sizes")
        found = None if data["profile"] is None else Profile.from_state(data["profile"])
        rows = None if sample is None else RowSample.from_bytes(sample)
        return cls(
            found,
            rows,
            SoftwareMetrics.from_dict(data["software"]),
            InputAnomalyCounts.from_dict(data.get("input_anomalies")),
            None if sizes is None else NumericSummary.from_state(sizes),
        )


def _records_frame(records: list[dict]) -> pd.DataFrame:
    # Column by column from the decoded dicts: pandas' per-row record path costs several
    # times more, and its JSON reader does not read every float back bit for bit.
    names = list(dict.fromkeys(name for record in records[:1] for name in record))
    if any(record.keys() != records[0].keys() for record in records):
        names = list(dict.fromkeys(name for record in records for name in record))
    return pd.DataFrame({name: [record.get(name) for record in records] for name in names})


def _decode_all(texts: list) -> list:
    # One json.loads for the whole batch: a call per event costs more than the parsing. A
    # NULL column value arrives as None or, through a DataFrame, as NaN.
    return json.loads("[" + ",".join(t if isinstance(t, str) else "null" for t in texts) + "]")


def _predictions(output: object, n_rows: int) -> list:
    predictions = output.get("predictions") if isinstance(output, dict) else None
    if not isinstance(predictions, list) or len(predictions) != n_rows:
        return [None] * n_rows
    return [
        p if p is None or isinstance(p, int | float | str | bool) else None for p in predictions
    ]


def _batch_refs(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Each event's batch id and row there (``None`` for an event with its own text), or
    ``None`` when no event of ``events`` was kept in a batch."""
    if "input_batch_id" not in events:
        return None
    batch_ids = events["input_batch_id"].to_numpy(dtype=object)
    kept = pd.notna(batch_ids)
    if not kept.any():
        return None
    rows = events["input_row"].to_numpy(dtype=object)
    batch_ids = np.where(kept, batch_ids, None)
    rows = np.where(kept, rows, None)
    return batch_ids, rows


def event_rows(
    events: pd.DataFrame, batches: dict[int, pa.Table] | None = None
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The rows of a batch of stored events: a frame of the inputs with the
    :data:`PREDICTION_COLUMN`, the event each row came from, and each row's id (the request
    id, with ``#i`` for the i-th row of a request of several). Events whose inputs were
    kept in a batch (``input_batch_id``, ``input_row``) take them from ``batches``, the
    tables of those batches by id.

    >>> import pandas as pd
    >>> events = pd.DataFrame({"request_id": ["r"], "inputs_json": ['[{"x": 1}, {"x": 2}]'],
    ...                        "output_json": ['{"predictions": [5, 6]}']})
    >>> frame, owner, ids = event_rows(events)
    >>> frame.values.tolist(), owner.tolist(), ids
    ([[1, 5], [2, 6]], [0, 0], ['r#0', 'r#1'])
    """
    texts = events["inputs_json"].tolist()
    refs = _batch_refs(events)
    parsed = None
    if refs is not None:
        batch_ids, rows = refs
        if all(batch_id is not None for batch_id in batch_ids.tolist()):
            frame = columnar_frame(batch_ids.astype(np.int64), rows.astype(np.int64), batches)
            if frame is not None:
                parsed = frame, np.ones(len(texts), dtype=np.int64)
        if parsed is None:
            texts = event_texts(texts, batch_ids, rows, batches)
    # Arrow parses a batch of plain records several times faster than json.loads; what it
    # cannot read exactly as json.loads would is parsed here instead.
    if parsed is None:
        parsed = rows_of_texts(texts)
    if parsed is not None:
        frame, lengths = parsed
    else:
        inputs = _decode_all(texts)
        lengths = np.fromiter((len(r) for r in inputs), dtype=np.int64, count=len(inputs))
        records = [record for event in inputs for record in event]
        frame = _records_frame(records) if records else pd.DataFrame(index=range(0))
    predictions = predictions_of_texts(events["output_json"].tolist(), lengths)
    if predictions is None:
        predictions = []
        outputs = _decode_all(events["output_json"].tolist())
        for output, n_rows in zip(outputs, lengths.tolist(), strict=True):
            predictions.extend(_predictions(output, n_rows))
    frame[PREDICTION_COLUMN] = pd.Series(predictions, dtype=object).infer_objects()
    owner = np.repeat(np.arange(len(texts)), lengths)
    request_ids = events["request_id"].tolist()
    row_ids = []
    for request_id, n_rows in zip(request_ids, lengths.tolist(), strict=True):
        if n_rows == 1:
            row_ids.append(request_id)
        else:
            row_ids.extend(f"{request_id}#{i}" for i in range(n_rows))
    return frame, owner, row_ids


def parts_of_events(
    events: pd.DataFrame, windowing: Windowing, batches: dict[int, pa.Table] | None = None
) -> dict[tuple[str, int], WindowPart]:
    """The window parts of a batch of stored events, by ``(variant, window start)``
    (``batches``: the tables of the input batches the events point at, by id)."""
    if events.empty:
        return {}
    frame, owner, row_ids = event_rows(events, batches)
    at_ms = events["at_ms"].to_numpy(dtype=np.int64)
    starts = at_ms - at_ms % windowing.window_ms
    variants = events["variant"].to_numpy(dtype=object)
    latency = events["latency_ms"].to_numpy(dtype=float)
    failed = events["error"].notna().to_numpy()
    if "assertions_json" in events:
        marks = event_marks(events["assertions_json"].tolist())
    else:
        marks = np.full(len(events), -1, dtype=np.int64)
    lengths = np.bincount(owner, minlength=len(events))
    row_ids_array = np.asarray(row_ids, dtype=object)
    parts = {}
    groups = pd.DataFrame({"variant": variants, "start": starts}).groupby(
        ["variant", "start"], sort=True
    )
    for (variant, start), index in groups.indices.items():
        rows_mask = np.isin(owner, index)
        rows = frame.loc[rows_mask].reset_index(drop=True)
        software = SoftwareMetrics.of(
            latency[index],
            failed[index],
            len(rows),
            int(at_ms[index].min()),
            int(at_ms[index].max()),
        )
        found = profile(rows) if len(rows) else None
        sample = RowSample.of(
            rows, row_ids_array[rows_mask].tolist(), windowing.sample_size, windowing.seed
        )
        anomalies = InputAnomalyCounts.of(marks[index], lengths[index])
        sizes = NumericSummary.of_values(lengths[index])
        parts[(str(variant), int(start))] = WindowPart(found, sample, software, anomalies, sizes)
    return parts
