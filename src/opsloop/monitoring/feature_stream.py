"""Streaming detectors per input feature: ADWIN on each numeric feature's values, in event
order, across windows.

The per-window two-sample tests (:mod:`.window_metrics`) compare a window with the
reference; a detector per feature reads every value as it came and finds a change inside a
window, or one too small for a single window's test that builds up over several. Each
numeric input feature (logical type ``int`` or ``float``; booleans and text are left out)
gets its own ADWIN on the calibrated ``"monitoring"`` preset (:mod:`opsloop.detect.presets`:
its bound scales with the stream's variance, so one preset serves features of any scale; 0.01
false alarms per 100,000 unchanged items on a mean-shift stream). Missing values are
skipped: a feature's stream is its values present, and an alarm's ``position`` counts them
from the feature's first value the variant received.

The preset's false-alarm rate is measured on Gaussian values. On heavy-tailed features it
is higher: on rows drawn from scikit-learn's breast cancer data (20 seeds of 6,000 rows, 30
features, 3,600,000 values), 16 false alarms, 15 of them on ``area error`` (skewness 5.4:
12.5 per 100,000 of its values) and one on ``perimeter error`` (3.4), mostly in the first
thousand values, where ADWIN's estimate of a heavy tail is roughest; none on the 30
features as Gaussian values of the same means and deviations. Watch a skewed feature's
logarithm where its alarms matter.

At most ``max_features`` features are watched (:data:`MAX_FEATURES` by default): the first
ones met, in the order of the inputs' columns, and those stay watched in every later window;
features met after the limit is reached are counted in ``unwatched``, not read.

Unlike the error stream (:mod:`.error_stream`), a feature's detector does **not** restart
when the variant starts serving another model version: the inputs do not depend on the
model that answers them, so a change of version is no change of the feature's stream.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> frame = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 3000), rng.normal(1, 1, 1000)],
...                       "y": rng.normal(5, 2, 4000), "name": ["a"] * 4000})
>>> first = read_features(None, frame.iloc[:2000])
>>> first.watched, first.alarms
(['x', 'y'], [])
>>> later = read_features(first.state, frame.iloc[2000:])
>>> [(a["feature"], a["position"] >= 3000) for a in later.alarms]
[('x', True)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.detect import ADWIN, detector_from_state
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.change_point import mean_shift_point
from opsloop.monitoring.monitor_state import get_state, put_state
from opsloop.monitoring.window_part import PREDICTION_COLUMN, event_rows
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.input_batches import read_input_batches

#: How many features a variant's detectors watch at most, unless the setting says otherwise.
MAX_FEATURES = 50
DETECTOR, PRESET = "ADWIN", "monitoring"

_events = tables.prediction_events


@dataclass(frozen=True)
class FeatureStreamRead:
    """A window's inputs read into the variant's feature detectors: the ``alarms`` (each
    with its ``feature``, ``detector``, stream ``position`` and estimated ``change_point``,
    ``None`` when ADWIN's kept window reaches back before the window), the ``watched``
    features, how many features were left ``unwatched`` by the limit, and the detectors'
    ``state`` after (JSON-safe)."""

    alarms: list[dict[str, Any]]
    watched: list[str]
    unwatched: int
    state: dict[str, Any]


def check_max_features(value: Any, field: str = "max_features") -> int:
    """``value`` as a number of features to watch, or an error naming ``field``.

    >>> check_max_features(25)
    25
    >>> check_max_features(0)
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: max_features: must be an integer of at least 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{field}: must be an integer of at least 1, got {value!r}")
    return int(value)


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def read_features(
    state: dict[str, Any] | None, frame: pd.DataFrame, max_features: int = MAX_FEATURES
) -> FeatureStreamRead:
    """Read ``frame``'s numeric columns, in row order, into the detectors saved as
    ``state`` (``None`` for none yet); see the module docstring.

    >>> read_features(None, pd.DataFrame({"x": [1.0, None, 2.0]})).state["x"]["n_seen"]
    2
    """
    max_features = check_max_features(max_features)
    saved = {} if state is None else dict(state)
    watched = list(saved)
    unwatched = 0
    for name in frame.columns:
        if name == PREDICTION_COLUMN or name in saved or not _numeric(frame[name]):
            continue
        if len(watched) < max_features:
            watched.append(str(name))
        else:
            unwatched += 1
    alarms, after = [], {}
    for name in watched:
        detector = ADWIN.preset(PRESET) if name not in saved else detector_from_state(saved[name])
        if name not in frame.columns or not _numeric(frame[name]):
            after[name] = detector.to_state()
            continue
        values = frame[name].to_numpy(dtype=float, na_value=np.nan)
        values = values[~np.isnan(values)]
        first = detector.n_seen
        before = detector.to_state()
        result = detector.update_many(values)
        if result.drift_detected:
            alarms += _alarms(name, before, values, result.drift_indices, first)
        after[name] = detector.to_state()
    return FeatureStreamRead(alarms, watched, unwatched, after)


def _alarms(name, before, values, indices, first) -> list[dict[str, Any]]:
    """The alarms of feature ``name`` at batch ``indices``: replayed from ``before`` to
    read ADWIN's kept window at each, where the change of mean is estimated."""
    replay, done, found = detector_from_state(before), 0, []
    for index in indices.tolist():
        replay.update_many(values[done : index + 1])
        done = index + 1
        kept_from = index + 1 - replay.width
        change = None
        # Only this window's values are at hand: a kept window reaching back before it
        # leaves the estimate out rather than guess.
        if kept_from >= 0:
            change = first + kept_from + mean_shift_point(values[kept_from : index + 1])
        found.append(
            {
                "feature": name,
                "detector": DETECTOR,
                "preset": PRESET,
                "position": first + index,
                "change_point": change,
            }
        )
    return found


def window_inputs(
    db: Database, deployment: str, variant: str, start_ms: int, end_ms: int
) -> pd.DataFrame:
    """The input rows of ``variant``'s events in ``[start_ms, end_ms)``, in event order
    (time, then the order they were recorded).

    >>> from opsloop.monitoring.event_log import log_predictions
    >>> db = Database("sqlite://")
    >>> _ = log_predictions(db, "api", [{"x": 2.0}, {"x": 1.0}], [0, 1], at_ms=[20, 10])
    >>> window_inputs(db, "api", "default", 0, 100)["x"].tolist()
    [1.0, 2.0]
    """
    query = (
        sa.select(
            _events.c.request_id,
            _events.c.inputs_json,
            _events.c.input_batch_id,
            _events.c.input_row,
            _events.c.output_json,
        )
        .where(
            _events.c.deployment == deployment,
            _events.c.variant == variant,
            _events.c.at_ms >= start_ms,
            _events.c.at_ms < end_ms,
        )
        .order_by(_events.c.at_ms, _events.c.id)
    )
    with db.read() as connection:
        rows = [tuple(row) for row in connection.execute(query).all()]
        names = list(query.selected_columns.keys())
        if not rows:
            return pd.DataFrame()
        events = pd.DataFrame(
            {
                name: pd.Series(values, dtype=object)
                for name, values in zip(names, zip(*rows, strict=True), strict=True)
            }
        )
        ids = events["input_batch_id"]
        batches = read_input_batches(connection, ids[ids.notna()].tolist())
    frame, _, _ = event_rows(events, batches)
    return frame.drop(columns=[PREDICTION_COLUMN])


#: The monitor state that holds a deployment's setting.
SETTING = "feature_detectors"


def set_feature_detectors(
    db: Database, deployment: str, *, enabled: bool, max_features: int = MAX_FEATURES
) -> dict[str, Any]:
    """Turn the per-feature detectors of ``deployment`` on or off, watching at most
    ``max_features`` features; return the setting. They are off by default: reading every
    window's inputs again costs most of what folding them did (``benchmarks/
    monitoring_ingest.py``). Turned off and on again, the detectors resume where they were.

    >>> db = Database("sqlite://")
    >>> set_feature_detectors(db, "api", enabled=True, max_features=10)
    {'enabled': True, 'max_features': 10}
    >>> set_feature_detectors(db, "api", enabled="yes")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: enabled: must be true or false, got 'yes'
    """
    if not isinstance(enabled, (bool, np.bool_)):
        raise InvalidArgumentError(f"enabled: must be true or false, got {enabled!r}")
    setting = {"enabled": bool(enabled), "max_features": check_max_features(max_features)}
    with db.write() as connection:
        put_state(connection, deployment, SETTING, setting)
    return setting


def feature_detector_setting(db: Database, deployment: str) -> dict[str, Any]:
    """``deployment``'s setting of the per-feature detectors (off unless set).

    >>> feature_detector_setting(Database("sqlite://"), "api")
    {'enabled': False, 'max_features': 50}
    """
    with db.read() as connection:
        return get_state(
            connection, deployment, SETTING, {"enabled": False, "max_features": MAX_FEATURES}
        )
