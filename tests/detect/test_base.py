"""The detector contract, checked on every detector that reads one number per item."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opsloop.detect import (
    ADWIN,
    CUSUM,
    DDM,
    EDDM,
    HDDDM,
    HDDM_A,
    HDDM_W,
    KSWIN,
    MD3,
    DetectionResult,
    PageHinkley,
    detector_from_state,
)
from opsloop.detect.base import Detector, WarningDetector

from .streams import bernoulli_streams, gaussian_streams

ERRORS = bernoulli_streams(7)["several"]
GAUSSIAN = gaussian_streams(7)["several"]

FACTORIES = {
    "DDM": (lambda: DDM(), ERRORS),
    "EDDM": (lambda: EDDM(), ERRORS),
    "HDDM_A": (lambda: HDDM_A(two_sided_test=True), ERRORS),
    "HDDM_W": (lambda: HDDM_W(two_sided_test=True), ERRORS),
    "PageHinkley": (lambda: PageHinkley(threshold=10.0), GAUSSIAN),
    "ADWIN": (lambda: ADWIN(delta=0.01), GAUSSIAN),
    "KSWIN": (lambda: KSWIN(alpha=0.001, seed=3), GAUSSIAN[:4000]),
    "CUSUM": (lambda: CUSUM(), GAUSSIAN),
    "HDDDM": (lambda: HDDDM(batch_size=50, gamma=1.0), GAUSSIAN),
    "MD3": (lambda: MD3(chunk_size=200, sensitivity=1.5), GAUSSIAN),
}


@pytest.fixture(params=sorted(FACTORIES))
def case(request):
    factory, xs = FACTORIES[request.param]
    return factory, xs


def _one_by_one(detector, xs) -> tuple[list[int], list[int]]:
    drifts, warnings = [], []
    for i, x in enumerate(xs):
        if detector.update(x):
            drifts.append(i)
        if isinstance(detector, WarningDetector) and detector.warning_detected:
            warnings.append(i)
    return drifts, warnings


def _state_json(detector) -> str:
    return json.dumps(detector.to_state(), allow_nan=False, sort_keys=True)


def test_update_and_update_many_agree(case):
    factory, xs = case
    drifts, warnings = _one_by_one(factory(), xs)
    result = factory().update_many(xs)
    assert result.drift_indices.tolist() == drifts
    assert result.warning_indices.tolist() == warnings
    assert len(drifts) >= 2


def test_batches_of_any_size_agree(case):
    factory, xs = case
    whole = factory().update_many(xs)
    detector = factory()
    cuts = np.sort(np.random.default_rng(0).choice(np.arange(1, xs.size), 12, replace=False))
    drifts, warnings = [], []
    for chunk in np.split(xs, cuts):
        result = detector.update_many(chunk)
        drifts.extend((result.start + result.drift_indices).tolist())
        warnings.extend((result.start + result.warning_indices).tolist())
    assert drifts == whole.drift_indices.tolist()
    assert warnings == whole.warning_indices.tolist()
    assert detector.n_seen == xs.size
    assert _state_json(detector) == _state_json(_fed(factory, xs))


def _fed(factory, xs):
    detector = factory()
    detector.update_many(xs)
    return detector


def test_saved_state_continues_identically(case):
    factory, xs = case
    whole = factory().update_many(xs)
    # Cut right after a detection too: the restart must happen on the restored side.
    for cut in (xs.size // 3, int(whole.drift_indices[0]) + 1):
        first = factory()
        first.update_many(xs[:cut])
        saved = json.loads(_state_json(first))
        restored = type(first).from_state(saved)
        assert restored.n_seen == cut
        rest = restored.update_many(xs[cut:])
        expected = whole.drift_indices[whole.drift_indices >= cut] - cut
        assert rest.drift_indices.tolist() == expected.tolist()
        assert _state_json(restored) == _state_json(_fed(factory, xs))
        assert type(detector_from_state(saved)) is type(first)


def _bad_batches(detector) -> list:
    bad = [
        np.array([0.0, np.nan]),
        np.array([0.0, np.inf]),
        np.array([0.0, -np.inf]),
        np.zeros((2, 2)),
        np.array(["0", "1"]),
        np.array([1 + 1j]),
    ]
    if detector.input_rule == "binary":
        bad += [np.array([0.0, 0.5]), np.array([2, 0])]
    if detector.input_rule == "unit":
        bad += [np.array([0.0, 1.5]), np.array([-0.1])]
    return bad


def test_bad_input_raises_and_leaves_state_untouched(case):
    factory, xs = case
    detector = factory()
    detector.update_many(xs[: xs.size // 2])
    before = _state_json(detector)
    for batch in _bad_batches(detector):
        with pytest.raises(ValueError, match=f"^{detector.name}: "):
            detector.update_many(batch)
        assert _state_json(detector) == before
    # A list is one row of features for HDDDM, and a bad one for the others.
    bad_items = (np.nan, np.inf, "1", None, [1.0] if not isinstance(detector, HDDDM) else [[1.0]])
    for item in bad_items:
        with pytest.raises(ValueError, match=f"^{detector.name}: x "):
            detector.update(item)
        assert _state_json(detector) == before


def test_empty_batch_returns_empty_result(case):
    factory, xs = case
    detector = factory()
    detector.update_many(xs[:100])
    before = _state_json(detector)
    result = detector.update_many(np.array([]))
    assert (result.n_items, result.start, result.n_drifts) == (0, 100, 0)
    assert result.warning_indices.size == 0
    assert _state_json(detector) == before


def test_reset_forgets_the_stream(case):
    factory, xs = case
    detector = factory()
    detector.update_many(xs[:500])
    detector.reset()
    assert detector.n_seen == 0
    if not isinstance(detector, KSWIN):  # an unseeded KSWIN draws a new generator
        assert _state_json(detector) == _state_json(factory())
    assert (
        detector.update_many(xs).drift_indices.tolist()
        == factory().update_many(xs).drift_indices.tolist()
    )


def test_from_state_refuses_another_detector():
    saved = DDM().to_state()
    with pytest.raises(ValueError, match=r"EDDM.from_state: the saved state is for 'DDM'"):
        EDDM.from_state(saved)
    with pytest.raises(ValueError, match=r"DDM.from_state: the saved state has no 'state' key"):
        DDM.from_state({k: v for k, v in saved.items() if k != "state"})
    with pytest.raises(ValueError, match="detector_from_state: unknown detector 'Nope'"):
        detector_from_state({"detector": "Nope"})


@pytest.mark.parametrize("abstract", ["ScalarDetector", "WarningDetector", "SlotDetector"])
def test_states_naming_an_abstract_class_are_refused_with_value_error(abstract):
    saved = {**PageHinkley().to_state(), "detector": abstract}
    with pytest.raises(ValueError, match=f"'{abstract}' is an abstract base class"):
        detector_from_state(saved)
    with pytest.raises(ValueError, match=f"{abstract}.from_state: {abstract} is an abstract"):
        Detector.registry[abstract].from_state(saved)


def test_params_round_trip_through_repr_and_get_params(case):
    factory, _ = case
    detector = factory()
    twin = type(detector)(**detector.get_params())
    assert repr(twin) == repr(detector)
    json.dumps(detector.get_params())


def test_detection_result_views():
    result = DetectionResult("DDM", 10, 6, np.array([4]), np.array([1, 2]))
    assert result.to_dict() == {
        "detector": "DDM",
        "start": 10,
        "n_items": 6,
        "drift_indices": [4],
        "warning_indices": [1, 2],
    }
    frame = result.to_frame()
    expected = pd.DataFrame(
        {"index": [1, 2, 4], "position": [11, 12, 14], "signal": ["warning", "warning", "drift"]}
    )
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert result.stream_positions().tolist() == [14]
    assert (result.n_drifts, result.n_warnings, result.drift_detected) == (1, 2, True)
    json.dumps(result.to_dict())
