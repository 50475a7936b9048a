"""Run one streaming detector per column of a DataFrame and collect the results per column.

Feature monitoring in production watches every input column separately: a detector factory
makes one detector per column (the same kind for all, or a kind per column), each column's
values go to its own detector, and the result says which columns changed and where.

Only numeric columns can be monitored (logical type ``bool``, ``int`` or ``float`` according
to :func:`opsloop.data.types.infer_column_type`). Missing values are skipped: a detector
reads only the values present, and the positions it reports are mapped back to row positions
in the frame.

>>> import numpy as np, pandas as pd
>>> from opsloop.detect import ADWIN
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"age": rng.normal(40, 5, 2000), "score": rng.random(2000)})
>>> frame.loc[1000:, "age"] += 10
>>> monitor = PerFeatureMonitor(ADWIN)
>>> monitor.update_many(frame).drifted_columns
['age']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.types import infer_column_type
from opsloop.detect.base import DetectionResult, Detector, ScalarDetector, detector_from_state
from opsloop.detect.validation import first_violation, rule_text

_MONITORABLE = ("bool", "int", "float")

DetectorFactory = Callable[[], Detector]


@dataclass(frozen=True, eq=False)
class PerFeatureResult:
    """The detections of one ``update_many`` call, per column.

    Indices in each column's result are row positions in the frame that was read.

    >>> r = DetectionResult("ADWIN", 0, 3, np.array([2]), np.array([], dtype=np.int64))
    >>> PerFeatureResult(0, 3, {"x": r}).to_frame()
      column  index  position signal
    0      x      2         2  drift
    """

    start: int
    n_rows: int
    results: dict[str, DetectionResult]

    @property
    def drifted_columns(self) -> list[str]:
        """Columns where drift was signalled, in column order."""
        return [name for name, result in self.results.items() if result.drift_detected]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return {
            "start": int(self.start),
            "n_rows": int(self.n_rows),
            "drifted_columns": self.drifted_columns,
            "results": {name: result.to_dict() for name, result in self.results.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per signal: ``column``, row ``index``, stream ``position``, ``signal``."""
        frames = []
        for name, result in self.results.items():
            frame = result.to_frame()
            frame.insert(0, "column", name)
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["column", "index", "position", "signal"])
        return pd.concat(frames, ignore_index=True)


class PerFeatureMonitor:
    """One detector per monitored column.

    Parameters
    ----------
    detector
        A factory called with no argument to make each column's detector (a detector class
        works, or ``lambda: KSWIN(alpha=1e-4, seed=1)``), or a mapping from column name to
        factory to use different detectors per column.
    columns
        The columns to monitor; ``None`` monitors the numeric columns of the first frame
        read (all the mapping's columns when ``detector`` is a mapping).

    The columns are fixed by the first frame; later frames must contain them (other columns
    are ignored).

    >>> from opsloop.detect import PageHinkley
    >>> monitor = PerFeatureMonitor(PageHinkley, columns=["x"])
    >>> monitor.update({"x": 1.0, "note": "ignored"})
    {'x': False}
    """

    def __init__(
        self,
        detector: DetectorFactory | Mapping[str, DetectorFactory],
        columns: Sequence[str] | None = None,
    ) -> None:
        if isinstance(detector, Mapping):
            if columns is None:
                columns = list(detector)
            missing = [c for c in columns if c not in detector]
            if missing:
                raise ValueError(f"PerFeatureMonitor: no detector factory for columns {missing}")
        elif not callable(detector):
            raise ValueError(
                "PerFeatureMonitor: detector must be a factory (callable) or a mapping "
                f"from column to factory, got {type(detector).__name__}"
            )
        self.detector = detector
        self.columns = None if columns is None else [str(c) for c in columns]
        self._detectors: dict[str, Detector] = {}
        self._n_seen = 0

    @property
    def detectors(self) -> dict[str, Detector]:
        """The detector of each monitored column (empty before the first frame)."""
        return dict(self._detectors)

    @property
    def n_seen(self) -> int:
        """Rows read so far."""
        return self._n_seen

    def _factory(self, column: str) -> DetectorFactory:
        if isinstance(self.detector, Mapping):
            return self.detector[column]
        return self.detector

    def _check_frame(self, frame: pd.DataFrame) -> list[str]:
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(
                f"PerFeatureMonitor: expected a pandas DataFrame, got {type(frame).__name__}"
            )
        if self._detectors:
            columns = list(self._detectors)
        elif self.columns is not None:
            columns = self.columns
        else:
            columns = [str(c) for c in frame.columns if infer_column_type(frame[c]) in _MONITORABLE]
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"PerFeatureMonitor: the frame lacks monitored columns {absent}")
        for column in columns:
            kind = infer_column_type(frame[column])
            if kind not in _MONITORABLE and frame[column].notna().any():
                raise ValueError(
                    f"PerFeatureMonitor: column {column!r} is {kind}; only bool, int and float "
                    "columns can be monitored"
                )
        return columns

    def update_many(self, frame: pd.DataFrame) -> PerFeatureResult:
        """Feed each monitored column to its detector; positions are row positions in ``frame``.

        Every column is checked before any detector reads anything, so a rejected frame
        changes nothing.
        """
        columns = self._check_frame(frame)
        values: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        made: dict[str, Detector] = {}
        for column in columns:
            series = frame[column]
            present = series.notna().to_numpy()
            data = series.to_numpy(dtype=np.float64, na_value=np.nan)[present]
            rows = np.flatnonzero(present)
            detector = self._detectors.get(column)
            probe = detector if detector is not None else self._factory(column)()
            if not isinstance(probe, ScalarDetector):
                raise ValueError(
                    f"PerFeatureMonitor: the factory for {column!r} made a "
                    f"{type(probe).__name__}, not a detector that reads one value per item"
                )
            at = first_violation(data, probe.input_rule)
            if at is not None:
                raise ValueError(
                    f"PerFeatureMonitor: column {column!r}, row {int(rows[at])}: "
                    f"{float(data[at])!r} breaks {probe.name}'s rule "
                    f"'{rule_text(probe.input_rule)}'"
                )
            if detector is None:
                made[column] = probe
            values[column] = (data, rows)
        self._detectors.update(made)
        start = self._n_seen
        results = {}
        for column in columns:
            data, rows = values[column]
            result = self._detectors[column].update_many(data)
            results[column] = DetectionResult(
                result.detector,
                start,
                len(frame),
                rows[result.drift_indices],
                rows[result.warning_indices],
            )
        self._n_seen += len(frame)
        return PerFeatureResult(start, len(frame), results)

    def update(self, row: Mapping[str, Any]) -> dict[str, bool]:
        """Feed one row (a mapping of column to value); return drift per monitored column."""
        frame = pd.DataFrame([dict(row)])
        result = self.update_many(frame)
        return {name: r.drift_detected for name, r in result.results.items()}

    def to_state(self) -> dict[str, Any]:
        """Each column's detector state, as a JSON-safe dict."""
        return {
            "monitor": "PerFeatureMonitor",
            "n_seen": self._n_seen,
            "columns": {name: d.to_state() for name, d in self._detectors.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        detector: DetectorFactory | Mapping[str, DetectorFactory] | None = None,
    ) -> PerFeatureMonitor:
        """Rebuild a monitor; its detectors continue where the saved ones stopped.

        ``detector`` is needed only if the saved monitor had not read a frame yet.
        """
        if state.get("monitor") != "PerFeatureMonitor":
            raise ValueError("PerFeatureMonitor.from_state: not a saved PerFeatureMonitor")
        saved = state.get("columns", {})
        if detector is None:
            if not saved:
                raise ValueError(
                    "PerFeatureMonitor.from_state: the saved monitor has no columns yet; "
                    "pass the detector factory"
                )
            detector = {name: _refuse_new_column(name) for name in saved}
        monitor = cls(detector, columns=list(saved) or None)
        monitor._detectors = {name: detector_from_state(s) for name, s in saved.items()}
        monitor._n_seen = int(state.get("n_seen", 0))
        return monitor


def _refuse_new_column(name: str) -> DetectorFactory:
    def factory() -> Detector:
        raise ValueError(f"PerFeatureMonitor: column {name!r} has no saved detector")

    return factory
