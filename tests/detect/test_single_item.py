"""``update``, one item at a time, against River's ``update`` item by item.

DDM, EDDM and PageHinkley run ``update`` in plain Python and ADWIN holds items between its
tests, so the single-item path is not the kernel that ``update_many`` runs: these tests compare
it with River directly, including the warning flags and the state read between items.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from river import drift

from opsloop.detect import ADWIN, DDM, EDDM, PageHinkley, detector_from_state

from .streams import bernoulli_streams, gaussian_streams

ERRORS = bernoulli_streams(31)
VALUES = gaussian_streams(31)

CASES = [
    ("DDM", lambda: DDM(), lambda: drift.binary.DDM(), ERRORS),
    (
        "DDM w=1.5 d=2",
        lambda: DDM(warm_start=10, warning_threshold=1.5, drift_threshold=2.0),
        lambda: drift.binary.DDM(warm_start=10, warning_threshold=1.5, drift_threshold=2.0),
        ERRORS,
    ),
    ("EDDM", lambda: EDDM(), lambda: drift.binary.EDDM(), ERRORS),
    (
        "EDDM a=0.8 b=0.75",
        lambda: EDDM(alpha=0.8, beta=0.75),
        lambda: drift.binary.EDDM(alpha=0.8, beta=0.75),
        ERRORS,
    ),
    ("PageHinkley", lambda: PageHinkley(), lambda: drift.PageHinkley(), VALUES),
    (
        "PageHinkley up",
        lambda: PageHinkley(mode="up", threshold=20.0),
        lambda: drift.PageHinkley(mode="up", threshold=20.0),
        VALUES,
    ),
    (
        "PageHinkley down",
        lambda: PageHinkley(mode="down", alpha=0.99, threshold=5.0),
        lambda: drift.PageHinkley(mode="down", alpha=0.99, threshold=5.0),
        VALUES,
    ),
    ("ADWIN", lambda: ADWIN(), lambda: drift.ADWIN(), VALUES),
    ("ADWIN clock=1", lambda: ADWIN(clock=1), lambda: drift.ADWIN(clock=1), VALUES),
    (
        "ADWIN delta=0.01 clock=5",
        lambda: ADWIN(delta=0.01, clock=5),
        lambda: drift.ADWIN(delta=0.01, clock=5),
        VALUES,
    ),
    ("ADWIN on errors", lambda: ADWIN(), lambda: drift.ADWIN(), ERRORS),
]


@pytest.mark.parametrize(("label", "ours", "theirs", "streams"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "several"])
def test_update_gives_rivers_signals_item_by_item(label, ours, theirs, streams, stream):
    xs = streams[stream].tolist()
    detector, reference = ours(), theirs()
    warns = hasattr(reference, "warning_detected")
    drifts, river_drifts, warnings, river_warnings = [], [], [], []
    for i, x in enumerate(xs):
        signal = detector.update(x)
        assert type(signal) is bool
        if signal:
            drifts.append(i)
        reference.update(x)
        if reference.drift_detected:
            river_drifts.append(i)
        assert detector.drift_detected == reference.drift_detected
        if warns:
            if detector.warning_detected:
                warnings.append(i)
            if reference.warning_detected:
                river_warnings.append(i)
    assert drifts == river_drifts
    assert warnings == river_warnings
    assert detector.n_seen == len(xs)
    if stream == "several":
        assert len(drifts) >= 2


def test_adwin_state_between_tests_is_rivers():
    # Items between two tests are held until the next test; reading the window flushes them.
    xs = VALUES["several"][:3000].tolist()
    detector, reference = ADWIN(), drift.ADWIN()
    for i, x in enumerate(xs):
        detector.update(x)
        reference.update(x)
        if i % 7 == 0:
            assert detector.width == reference.width
            assert detector.estimation == reference.estimation
            assert detector.variance == reference.variance


def test_saving_in_the_middle_of_held_items_continues_the_stream():
    xs = VALUES["several"].tolist()
    whole = ADWIN().update_many(np.array(xs)).drift_indices.tolist()
    for cut in (1, 45, 6001):
        first = ADWIN()
        for x in xs[:cut]:
            first.update(x)
        saved = json.loads(json.dumps(first.to_state()))
        assert saved["n_seen"] == cut
        second = detector_from_state(saved)
        later = [cut + i for i, x in enumerate(xs[cut:]) if second.update(x)]
        assert later == [i for i in whole if i >= cut]
        # A batch after held items starts where they end.
        mixed = ADWIN()
        for x in xs[:cut]:
            mixed.update(x)
        result = mixed.update_many(np.array(xs[cut:]))
        assert result.start == cut
        assert result.stream_positions().tolist() == [i for i in whole if i >= cut]


@pytest.mark.parametrize("make", [DDM, EDDM, PageHinkley, ADWIN])
def test_update_takes_ints_bools_and_numpy_scalars(make):
    xs = ERRORS["several"]
    forms = [
        xs.tolist(),
        [bool(v) for v in xs],
        list(xs.astype(np.int64)),
        list(xs.astype(np.float32)),
    ]
    expected = make().update_many(xs).drift_indices.tolist()
    assert expected
    for items in forms:
        detector = make()
        assert [i for i, x in enumerate(items) if detector.update(x)] == expected


@pytest.mark.parametrize(
    ("make", "bad", "message"),
    [
        (DDM, 0.5, r"DDM: x = 0.5 breaks the rule 'values are 0 or 1 \(1 = error\)'"),
        (EDDM, 2, r"EDDM: x = 2.0 breaks the rule 'values are 0 or 1"),
        (PageHinkley, float("inf"), "PageHinkley: x = inf breaks the rule 'values are finite"),
        (ADWIN, float("nan"), "ADWIN: x = nan breaks the rule 'values are finite"),
        (ADWIN, 1 + 0j, "ADWIN: x must be a real number, got complex"),
        (PageHinkley, "1", "PageHinkley: x must be a real number, got str"),
        (ADWIN, "1", "ADWIN: x must be a real number, got str"),
        (ADWIN, np.array([1.0, 2.0]), "ADWIN: x must be a real number, got ndarray"),
        (ADWIN, np.array([1.0]), "ADWIN: x must be a real number, got ndarray"),
        (ADWIN, 10.0**308 * 10, "ADWIN: x = inf breaks the rule"),
    ],
)
def test_bad_items_are_refused_and_leave_the_detector_as_it_was(make, bad, message):
    detector = make()
    for x in ERRORS["several"][:100].tolist():
        detector.update(x)
    before = json.dumps(detector.to_state(), sort_keys=True)
    with pytest.raises(ValueError, match=message):
        detector.update(bad)
    assert json.dumps(detector.to_state(), sort_keys=True) == before
