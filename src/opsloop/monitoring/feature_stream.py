"""Streaming detectors per input feature: ADWIN (or CUSUM) on each numeric feature's normal
scores against the reference, in event order, across windows.

The per-window two-sample tests (:mod:`.window_metrics`) compare a window with the
reference; a detector per feature reads every value as it came and finds a change inside a
window, or one too small for a single window's test that builds up over several. Each
numeric input feature (logical type ``int`` or ``float``; booleans and text are left out)
that the reference holds numbers of gets its own ADWIN on the calibrated ``"monitoring"``
preset (:mod:`opsloop.detect.presets`: 0.01 false alarms per 100,000 unchanged items, a
mean delay of 120 items for a shift of half a standard deviation). Missing values are
skipped: a feature's stream is its values present, and an alarm's ``position`` counts them
from the feature's first value the variant received.

The detector reads each value's **normal score** against the reference
(:meth:`FeatureReference.normal_scores`): the value's mid-rank among the reference's
values, ``(below + ties / 2 + 1/2) / (n + 1)``, through the standard normal quantile
function. The preset was calibrated on standard normal values, and ADWIN's bound is not
free of the stream's scale (its second term, ``2/3 ln(2 ln(w)/delta) m``, is in the
stream's units) nor of its tails: fed raw values, a heavy-tailed feature false-alarmed far
above the stated rate (on rows drawn from scikit-learn's breast cancer data, 15 alarms in
120,000 values of ``area error``, skewness 5.4). An unchanged feature's values are
independent draws from its distribution, so their scores are independent draws of one
fixed distribution, standard normal up to the reference's granularity whatever the
feature's shape; ties (counts, a zero-inflated feature) take their mid-rank, so a feature
of few levels gives a stream of few levels, bounded like the 0/1 error streams the preset
was also calibrated on. The scores lie within ``±Φ⁻¹(1 - 1/(2(n + 1)))`` (3.7 for the
default 5,000-row sample), so no outlier dominates ADWIN's means.

Measured (the false alarms as ``tests/monitoring/test_feature_calibration.py`` checks them,
the delays over 50 seeds where it checks 20): over 20 seeds of a lognormal,
an exponential, a Student t with 2 degrees of freedom and a zero-inflated count (10,000
values each against 5,000 reference values) and of the 30 breast cancer features (6,000
rows drawn from half the data, the other half the reference), 4,400,000 unchanged values
gave 2 alarms on the scores (0.045 per 100,000; the stated rate allows up to 4 at the
99.9% binomial quantile), and 81 on the raw values (47 on the t, 16 on the lognormal, 13 on
``area error``). 60 more seeds of the breast cancer features, 10,800,000 values: 1 alarm.
Half a standard deviation added after 5,000 values, over 50 seeds: on the lognormal, found
within 1,000 values in 50 seeds, a mean delay of 49 values (raw: 49 seeds, 95, and 16
false alarms before the shift); on ``area error``, 50 seeds, 50 (raw: 49, 116, 23 false
alarms); on the near-symmetric ``mean radius``, 50 seeds, 111 (raw: 50, 105).

**CUSUM** (``detector="CUSUM"``). The scores of an unchanged feature have a known
distribution, so a chart on the fixed target 0 with unit standard deviation needs no warm-up
and no estimate: a two-sided CUSUM on the ``"normal_scores"`` preset (``k = 0.25``), its
threshold set by :func:`.score_cusum.cusum_threshold` to ADWIN's stated 0.01 false alarms
per 100,000 values (Siegmund's approximation of the ARL, checked by simulating
1,000,000,000 N(0, 1) values: 116 alarms where it predicts 99.9), averaged over the mean
offset a reference of ``n`` values leaves in the scores (about N(0, 1/n)): ``h`` is 28.8
for 5,000 reference values, 31.4 for 1,000, 36.2 for 500. A feature with fewer than
:data:`~.score_cusum.MIN_REFERENCE` (265) reference values gets ADWIN, since no threshold up
to 60 reaches the rate. Where ADWIN compares the stream with its own past, CUSUM compares it
with the reference, so it assumes traffic from the population the reference was sampled
from: live rows drawn from the other half of the breast cancer data than the reference's
285 gave 4 signals in 3,600,000 values (0.36 expected at the stated rate), rows of both
drawn from all the data none. It keeps signalling while a shift lasts (restarting against
the reference after each): a window lists a feature's first alarm, with ``signals``, the
number it gave there, and Page's change point, the value after the signalling sum was last
zero (``None`` when that was before the window). Measured
(``tests/monitoring/test_feature_calibration.py``): 0 signals in 4,400,000 unchanged
values (the four skewed features, and the breast cancer rows drawn from all the data,
2,000 for the reference); half a standard deviation found in 50 of 50 seeds, a mean delay
of 45 values on the lognormal (ADWIN: 50), 44 on ``area error`` (47), 94 on ``mean
radius`` (104), with no alarm before. The per-feature detectors cost half as much with
it: 25 charts read 50,000 values each in 0.013 CPU s, 25 ADWINs in about 0.16.

A feature the reference holds no number of (absent from it, or not numeric there) is
listed in ``unreferenced`` and not watched. Each detector keeps the digest of the
reference values it scores against; when the reference changes (set again, or the
registered training data of another version), the feature's detector restarts on the
next value (``restarted``): the scores of one stream are then of one reference.

At most ``max_features`` features are watched (:data:`MAX_FEATURES` by default): the first
ones met, in the order of the inputs' columns, and those stay watched in every later window;
features met after the limit is reached are counted in ``unwatched``, not read.

Unlike the error stream (:mod:`.error_stream`), a feature's detector does **not** restart
when the variant starts serving another model version: the inputs do not depend on the
model that answers them, so a change of version is no change of the feature's stream.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> reference = FeatureReference.of(pd.DataFrame({"x": rng.lognormal(0, 1, 5000),
...                                               "y": rng.normal(5, 2, 5000)}))
>>> frame = pd.DataFrame({"x": np.r_[rng.lognormal(0, 1, 3000), rng.lognormal(1, 1, 1000)],
...                       "y": rng.normal(5, 2, 4000), "name": ["a"] * 4000})
>>> first = read_features(None, frame.iloc[:2000], reference)
>>> first.watched, first.alarms
(['x', 'y'], [])
>>> later = read_features(first.state, frame.iloc[2000:], reference)
>>> [(a["feature"], a["position"] >= 3000) for a in later.alarms]
[('x', True)]
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.data.training_reference import Reference
from opsloop.detect import ADWIN, CUSUM, Detector, detector_from_state
from opsloop.detect.presets import preset_params
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.change_point import mean_shift_point
from opsloop.monitoring.columnar_inputs import columnar_frame
from opsloop.monitoring.monitor_state import get_state, put_state
from opsloop.monitoring.normal_scores import ReferenceRanks
from opsloop.monitoring.score_cusum import MIN_REFERENCE, cusum_threshold
from opsloop.monitoring.window_part import PREDICTION_COLUMN, event_rows
from opsloop.monitoring.window_store import fetched_rows, iterated_rows
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.input_batches import read_input_batches

#: How many features a variant's detectors watch at most, unless the setting says otherwise.
MAX_FEATURES = 50
#: The detectors a feature can have, each on its preset for normal scores.
PRESETS = {"ADWIN": "monitoring", "CUSUM": "normal_scores"}
#: The detector of a setting that names none, as before the choice existed: ADWIN reads
#: the stream against itself; CUSUM against the reference, so a reference unlike the
#: traffic (not drawn from it) makes it signal (see :mod:`.score_cusum`).
DEFAULT_DETECTOR = "ADWIN"
#: What the detectors read of each value, recorded with their state and in each window.
SCALE = "normal score against the reference"

_events = tables.prediction_events


@dataclass(frozen=True)
class FeatureReference:
    """Each numeric feature's reference values, ``sorted`` (finite ones only), and their
    ``digests``, which tell a detector whether the reference it scores against changed.

    >>> ref = FeatureReference.of(pd.DataFrame({"x": [3.0, 1.0, None, 2.0], "c": ["a"] * 4}))
    >>> ref.sorted["x"].tolist(), sorted(ref.sorted)
    ([1.0, 2.0, 3.0], ['x'])
    """

    sorted: dict[str, np.ndarray]
    digests: dict[str, str]
    # Each feature's ranking of values, made on its first use and kept with the reference.
    _ranks: dict[str, ReferenceRanks] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> FeatureReference:
        """The numeric columns (booleans left out) of ``frame``, the reference's rows."""
        found, digests = {}, {}
        for name in frame.columns:
            if name == PREDICTION_COLUMN or not _numeric(frame[name]):
                continue
            values = frame[name].to_numpy(dtype=float, na_value=np.nan)
            values = np.sort(values[np.isfinite(values)])
            if len(values):
                found[str(name)] = values
                digests[str(name)] = hashlib.blake2b(values.tobytes(), digest_size=8).hexdigest()
        return cls(found, digests)

    @classmethod
    def of_reference(cls, reference: Reference) -> FeatureReference:
        """The input features of ``reference``'s sample of rows."""
        frame = reference.sample.frame()
        return cls.of(frame[[c for c in reference.features if c in frame.columns]])

    def normal_scores(self, name: str, values: np.ndarray) -> np.ndarray:
        """``values`` of feature ``name`` as normal scores: the standard normal quantile of
        each value's mid-rank among the reference's ``n`` values, ``(below + ties / 2 +
        1/2) / (n + 1)`` (:mod:`.normal_scores`). Standard normal (up to the reference's
        granularity) for values of the reference's distribution, whatever its shape.

        >>> ref = FeatureReference.of(pd.DataFrame({"x": [0.0, 0.0, 1.0, 5.0]}))
        >>> ref.normal_scores("x", np.array([0.0, 1.0, 100.0, -1.0])).round(3).tolist()
        [-0.524, 0.253, 1.282, -1.282]
        """
        if name not in self._ranks:
            self._ranks[name] = ReferenceRanks(self.sorted[name])
        return self._ranks[name].normal_scores(values)


@dataclass(frozen=True)
class FeatureStreamRead:
    """A window's inputs read into the variant's feature detectors: the ``alarms`` (each
    with its ``feature``, ``detector``, stream ``position`` and estimated ``change_point``,
    ``None`` when ADWIN's kept window reaches back before the window), the ``watched``
    features, how many features were left ``unwatched`` by the limit, the features left
    out for want of reference values (``unreferenced``), those whose detector started
    afresh on a changed reference (``restarted``), and the detectors' ``state`` after
    (JSON-safe)."""

    alarms: list[dict[str, Any]]
    watched: list[str]
    unwatched: int
    state: dict[str, Any]
    unreferenced: list[str]
    restarted: list[str]
    detector: str = DEFAULT_DETECTOR
    preset: str = PRESETS[DEFAULT_DETECTOR]


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


def _saved(state: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The saved detectors and the digests of the references they scored against. A state
    from before the scores (the detectors then read raw values) starts afresh."""
    if state is None or state.get("scale") != SCALE:
        return {}, {}
    return dict(state["detectors"]), dict(state["references"])


def check_detector(value: Any, field: str = "detector") -> str:
    """``value`` as the name of a per-feature detector, or an error naming ``field``.

    >>> check_detector("ADWIN")
    'ADWIN'
    >>> check_detector("KSWIN")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: detector: must be one of ADWIN, CUSUM, got 'KSWIN'
    """
    if not isinstance(value, str) or value not in PRESETS:
        raise InvalidArgumentError(f"{field}: must be one of {', '.join(PRESETS)}, got {value!r}")
    return value


def read_features(
    state: dict[str, Any] | None,
    frame: pd.DataFrame,
    reference: FeatureReference,
    max_features: int = MAX_FEATURES,
    detector: str = DEFAULT_DETECTOR,
) -> FeatureStreamRead:
    """Read ``frame``'s numeric columns, in row order, as normal scores against
    ``reference``, into the ``detector`` of each feature saved as ``state`` (``None`` for
    none yet); see the module docstring.

    >>> ref = FeatureReference.of(pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 0.7]}))
    >>> read = read_features(None, pd.DataFrame({"x": [1.0, None, 2.0], "z": [1, 2, 3]}), ref)
    >>> read.state["detectors"]["x"]["n_seen"], read.unreferenced
    (2, ['z'])
    """
    max_features = check_max_features(max_features)
    kind, preset = check_detector(detector), PRESETS[detector]
    saved, digests = _saved(state)
    watched = list(saved)
    unwatched, unreferenced = 0, []
    for name in frame.columns:
        if name == PREDICTION_COLUMN or name in saved or not _numeric(frame[name]):
            continue
        if name not in reference.sorted:
            unreferenced.append(str(name))
        elif len(watched) < max_features:
            watched.append(str(name))
        else:
            unwatched += 1
    alarms, after, restarted = [], {}, []
    kept = {name: digests[name] for name in watched if name in digests}
    for name in watched:
        fresh = name not in saved
        if fresh:
            found = _fresh_detector(kind, len(reference.sorted[name]))
        else:
            found = detector_from_state(saved[name])
        readable = name in frame.columns and _numeric(frame[name]) and name in reference.sorted
        if not readable:
            after[name] = found.to_state()
            continue
        if not fresh and (
            digests.get(name) != reference.digests[name]
            or found.name != _detector_name(kind, len(reference.sorted[name]))
        ):
            # Scores against another reference are another stream: the detector would see
            # the change of reference as a change of the feature. Another detector is
            # another setting.
            found = _fresh_detector(kind, len(reference.sorted[name]))
            restarted.append(name)
        kept[name] = reference.digests[name]
        values = frame[name].to_numpy(dtype=float, na_value=np.nan)
        values = reference.normal_scores(name, values[~np.isnan(values)])
        first = found.n_seen
        before = found.to_state()
        result = found.update_many(values)
        if result.drift_detected:
            located = _cusum_alarm if found.name == "CUSUM" else _adwin_alarms
            alarms += located(name, before, values, result.drift_indices, first)
        after[name] = found.to_state()
    state = {"scale": SCALE, "detectors": after, "references": kept}
    return FeatureStreamRead(
        alarms, watched, unwatched, state, unreferenced, restarted, kind, preset
    )


def _detector_name(kind: str, n: int) -> str:
    """The detector a feature of ``n`` reference values gets for the setting ``kind``:
    CUSUM's calibration needs :data:`~.score_cusum.MIN_REFERENCE` of them, else ADWIN."""
    return "ADWIN" if kind == "CUSUM" and n < MIN_REFERENCE else kind


def _fresh_detector(kind: str, n: int) -> Detector:
    """A new detector for a feature of ``n`` reference values: ADWIN on its preset, or
    CUSUM on its preset with the threshold for a reference of ``n`` values."""
    name = _detector_name(kind, n)
    if name == "ADWIN":
        return ADWIN.preset(PRESETS["ADWIN"])
    return CUSUM(**{**preset_params("CUSUM", PRESETS["CUSUM"]), "h": cusum_threshold(n)})


def _adwin_alarms(name, before, values, indices, first) -> list[dict[str, Any]]:
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
                "detector": "ADWIN",
                "preset": PRESETS["ADWIN"],
                "position": first + index,
                "change_point": change,
            }
        )
    return found


def _cusum_alarm(name, before, values, indices, first) -> list[dict[str, Any]]:
    """The first alarm of feature ``name`` in the batch, with how many ``signals`` the
    chart gave in all. Its change point is Page's estimate: the value after the last one
    at which the signalling sum was zero, ``None`` when that is before the batch."""
    index, chart = int(indices[0]), detector_from_state(before)
    k, z = chart.k, (values[: index + 1] - chart.target) / chart.sigma
    change = None
    for start, steps in zip(chart.statistics, (z - k, -z - k), strict=True):
        # A chart that signalled on the previous batch's last value starts again at zero.
        start = 0.0 if chart.drift_detected else start
        # The sum S_t = max(0, S_t-1 + y_t) is C_t - min(0, min C_j) with C the running
        # total from the saved sum: zero where C_t is the running minimum and not above 0.
        total = start + np.cumsum(steps)
        sums = total - np.minimum(np.minimum.accumulate(total), 0.0)
        if sums[-1] <= chart.h:
            continue
        zeros = np.flatnonzero(sums[:-1] == 0.0)
        if len(zeros):
            change = first + int(zeros[-1]) + 1
        elif start == 0.0:
            change = first
    return [
        {
            "feature": name,
            "detector": "CUSUM",
            "preset": PRESETS["CUSUM"],
            "position": first + index,
            "change_point": change,
            "signals": len(indices),
        }
    ]


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
    where = (
        (_events.c.deployment == deployment)
        & (_events.c.variant == variant)
        & (_events.c.at_ms >= start_ms)
        & (_events.c.at_ms < end_ms)
    )
    order = (_events.c.at_ms, _events.c.id)
    with db.read() as connection:
        # The inputs' references only, as the driver gives them, taken into one array row
        # by row: reading every event's outputs and request id too, through SQLAlchemy's
        # rows, cost more than the detectors themselves, and holding every row as a tuple
        # made the garbage collector walk the whole process's objects, often more than
        # the read itself.
        query = sa.select(
            sa.func.coalesce(_events.c.input_batch_id, -1),
            sa.func.coalesce(_events.c.input_row, -1),
        )
        rows_found = iterated_rows(connection, query.where(where).order_by(*order))
        refs = np.fromiter(itertools.chain.from_iterable(rows_found), dtype=np.int64)
        if not len(refs):
            return pd.DataFrame()
        batch_ids, rows = refs[0::2], refs[1::2]
        if (batch_ids >= 0).all():
            batches = read_input_batches(connection, np.unique(batch_ids).tolist())
            frame = columnar_frame(batch_ids, rows, batches)
            if frame is not None:
                return frame
        # Events kept as text among them (or batches of other columns): parsed as the fold
        # parses them.
        query = sa.select(
            _events.c.request_id,
            _events.c.inputs_json,
            _events.c.input_batch_id,
            _events.c.input_row,
            _events.c.output_json,
        )
        found = fetched_rows(connection, query.where(where).order_by(*order))
        names = list(query.selected_columns.keys())
        events = pd.DataFrame(
            {
                name: pd.Series(values, dtype=object)
                for name, values in zip(names, zip(*found, strict=True), strict=True)
            }
        )
        ids = events["input_batch_id"]
        batches = read_input_batches(connection, ids[ids.notna()].tolist())
    frame, _, _ = event_rows(events, batches)
    return frame.drop(columns=[PREDICTION_COLUMN])


#: The monitor state that holds a deployment's setting.
SETTING = "feature_detectors"


def set_feature_detectors(
    db: Database,
    deployment: str,
    *,
    enabled: bool,
    max_features: int = MAX_FEATURES,
    detector: str = DEFAULT_DETECTOR,
) -> dict[str, Any]:
    """Turn the per-feature detectors of ``deployment`` on or off, watching at most
    ``max_features`` features with ``detector`` (``"CUSUM"`` or ``"ADWIN"``); return the
    setting. They are off by default for their cost, not their false alarms (calibrated on
    normal scores, see the module docstring): reading a window's inputs again and scoring
    them costs 0.26 to 0.35 of what logging and folding them did for 25 features with ADWIN,
    0.13 to 0.18 with CUSUM (CPU seconds, ``benchmarks/monitoring_ingest.py``,
    ``benchmarks/RESULTS.md``), over the tenth a window's evaluation is meant to stay
    under. Turned off and on again, the detectors resume where they were; another
    ``detector`` starts each feature afresh.

    >>> db = Database("sqlite://")
    >>> set_feature_detectors(db, "api", enabled=True, max_features=10)
    {'enabled': True, 'max_features': 10, 'detector': 'ADWIN'}
    >>> set_feature_detectors(db, "api", enabled="yes")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: enabled: must be true or false, got 'yes'
    """
    if not isinstance(enabled, (bool, np.bool_)):
        raise InvalidArgumentError(f"enabled: must be true or false, got {enabled!r}")
    setting = {
        "enabled": bool(enabled),
        "max_features": check_max_features(max_features),
        "detector": check_detector(detector),
    }
    with db.write() as connection:
        put_state(connection, deployment, SETTING, setting)
    return setting


def feature_detector_setting(db: Database, deployment: str) -> dict[str, Any]:
    """``deployment``'s setting of the per-feature detectors (off unless set; a setting
    saved before the detector could be chosen ran ADWIN, and goes on with it).

    >>> feature_detector_setting(Database("sqlite://"), "api")
    {'enabled': False, 'max_features': 50, 'detector': 'ADWIN'}
    """
    with db.read() as connection:
        setting = get_state(connection, deployment, SETTING, None)
    default = {"enabled": False, "max_features": MAX_FEATURES, "detector": DEFAULT_DETECTOR}
    return default if setting is None else {"detector": "ADWIN", **setting}
