"""A concept change that persists keeps reading as concept drift after the error stream's
history has absorbed it: ADWIN cuts to the new error level, so the windows after the change
err no more than their history, but still more than the reference's relationship allows on
their inputs (the reference's labelled errors weighted to them), and the drift goes on.
Planted in make_classification windows over several windows, with the inputs stable and
with the inputs moved; and by hand against scipy's Welch test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.monitoring.decay_kind import ErrorHistory, decay_kind
from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.reference import get_reference, set_reference
from opsloop.monitoring.reweighted_reference import ReweightedReference, reweighted_reference
from opsloop.monitoring.shift_explained import shift_test
from opsloop.monitoring.window_store import read_window

from .conftest import HOUR_MS, T0
from .test_decay_reweighting import COLUMNS, PER_WINDOW, SHIFT_AT, WINDOWING, Rows

WINDOWS = SHIFT_AT + 4
RULE = "concept_drift > 0 -> alert"


def test_an_absorbed_rise_above_the_reference_goes_on_as_concept_drift_by_hand():
    """The history holds the new error level (40% over 1,000 rows), and so does the window:
    no rise against it. The reference (equal weights: its inputs are the window's) erred on
    10% of its 400 rows; the test is scipy's Welch t-test, one-sided. The window before it
    read as concept drift: it goes on."""
    history = ErrorHistory(mean=0.4, width=1000, variance=1000 * 0.4 * 0.6)
    window = np.r_[np.ones(40), np.zeros(60)]
    reference = np.r_[np.ones(40), np.zeros(360)]
    kept = ReweightedReference(reference, np.ones(400))
    found = decay_kind(0.0, "accuracy", window, history, reweighted=kept, ongoing=True)
    assert found["error"]["rose"] is False
    welch = stats.ttest_ind(window, reference, equal_var=False, alternative="greater")
    assert found["shift"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-10)
    assert found["shift"]["statistic"] == pytest.approx(welch.statistic, rel=1e-12)
    assert found["shift"]["expected_error"] == 0.1 and found["shift"]["explained"] is False
    assert found["kind"] == "concept_drift"
    # The same window with its inputs moved: data and concept drift (it was data drift).
    moved = decay_kind(0.8, "accuracy", window, history, reweighted=kept, ongoing=True)
    assert moved["kind"] == "data_and_concept_drift"
    # Not going on, the history's verdict stands: no rise, no concept drift.
    assert decay_kind(0.0, "accuracy", window, history, reweighted=kept)["kind"] == "none"
    assert decay_kind(0.8, "accuracy", window, history, reweighted=kept)["kind"] == "data_drift"
    # Going on, a window back within what the reference expects ends it.
    calm = np.r_[np.ones(11), np.zeros(89)]
    for share, kind in ((0.0, "none"), (0.8, "data_drift")):
        found = decay_kind(share, "accuracy", calm, history, reweighted=kept, ongoing=True)
        assert found["kind"] == kind and found["shift"]["explained"] is True


class Persisting(Rows):
    """The rows of :class:`Rows` with the labels flipped where the first input is positive
    from window ``SHIFT_AT`` on, for every window after it; the inputs tilted too only with
    ``tilt``."""

    def __init__(self, tilt: bool):
        super().__init__(flip=True)
        self.tilt = tilt

    def window(self, k):
        if self.tilt:
            return super().window(k)
        rng = np.random.default_rng(50 + k)
        chosen = rng.choice(np.arange(9000, 30_000), PER_WINDOW, replace=False)
        labels = self.y[chosen].copy()
        if k >= SHIFT_AT:
            positive = self.x[chosen, 0] > 0
            labels[positive] = 1 - labels[positive]
        inputs = pd.DataFrame(self.x[chosen], columns=COLUMNS)
        return inputs, self.model.predict(self.x[chosen]), labels


def _run(db, clock, rows):
    frame, predictions, labels = rows.reference()
    set_reference(db, "api", frame, predictions=predictions, labels=labels)
    for k in range(WINDOWS):
        rows.log(db, k)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluate(db, "api", windowing=WINDOWING, policies=[RULE])
    return read_evaluations(db, "api", WINDOWING)


def _same_numbers_again(db, rows, k, decay):
    """The window's test, made again from the stored reference and the window's sample."""
    sample = read_window(db, "api", "default", WINDOWING, T0 + k * HOUR_MS).sample
    reweighted = reweighted_reference(get_reference(db, "api"), sample.frame(), "accuracy")
    _, predictions, labels = rows.window(k)
    again = shift_test((predictions != labels).astype(float), reweighted.errors,
                       reweighted.weights, alpha=0.05)  # fmt: skip
    for key in ("expected_error", "effective_rows", "statistic", "p_value"):
        assert decay["shift"][key] == pytest.approx(again[key], rel=1e-12)


@pytest.mark.parametrize(
    ("tilt", "kind"), [(False, "concept_drift"), (True, "data_and_concept_drift")]
)
def test_a_persisting_concept_change_keeps_reading_as_concept_drift(db, clock, tilt, kind):
    rows = Persisting(tilt)
    evaluations = _run(db, clock, rows)
    decays = [e.metrics["decay"] for e in evaluations]
    assert [d["kind"] for d in decays] == [None, "none", "none", "none"] + [kind] * 4
    assert [e.metrics["concept_drift"] for e in evaluations][SHIFT_AT:] == [1] * 4
    # The history absorbed the change: after its first window the later ones err no more
    # than the rows ADWIN kept, which reads as no rise (data drift or none, before).
    rose = [d["error"]["rose"] for d in decays[SHIFT_AT:]]
    assert rose[0] is True and rose[-1] is False, rose
    # With the inputs stable, the first window's rise is the history's to tell (the
    # reference is weighed once a concept drift goes on); with them moved, every window's
    # error is beyond what the weighted reference expects.
    weighed = SHIFT_AT if tilt else SHIFT_AT + 1
    assert tilt or decays[SHIFT_AT]["shift"] is None
    for k in range(weighed, WINDOWS):
        shift = decays[k]["shift"]
        assert shift["explained"] is False
        assert shift["window_error"] > shift["expected_error"] + 0.15
        _same_numbers_again(db, rows, k, decays[k])
    # Before the change no concept drift went on and the inputs did not move: the
    # reference was not weighed (a density ratio takes a moment), the history decided.
    assert [d["shift"] for d in decays[1:SHIFT_AT]] == [None] * (SHIFT_AT - 1)
    # The rule's streak starts with the change and holds: it fired once.
    alerts = read_alerts(db, "api")
    assert alerts["start_ms"].tolist() == [T0 + SHIFT_AT * HOUR_MS]


def test_a_window_without_labels_does_not_end_a_concept_drift_going_on(db, clock):
    """The persisting change with no labels for one window after it began: that window
    decides no kind, and the drift goes on across it (the windows after it still err more
    than the weighted reference expects), not read as none once the history absorbed it."""
    rows = Persisting(False)
    gap, windows = SHIFT_AT + 2, SHIFT_AT + 5
    frame, predictions, labels = rows.reference()
    set_reference(db, "api", frame, predictions=predictions, labels=labels)
    for k in range(windows):
        inputs, answers, truth = rows.window(k)
        ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
        times = T0 + k * HOUR_MS + np.arange(PER_WINDOW) * (HOUR_MS // PER_WINDOW)
        log_predictions(db, "api", inputs, answers, at_ms=times, request_ids=ids)
        if k != gap:
            log_labels(db, "api", ids, truth, windowing=WINDOWING)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        evaluate(db, "api", windowing=WINDOWING, policies=[RULE])
    evaluations = read_evaluations(db, "api", WINDOWING)
    decays = [e.metrics["decay"] for e in evaluations]
    after = windows - gap - 1
    labelled = [e.metrics["labelled"] for e in evaluations]
    assert labelled == [PER_WINDOW] * gap + [0] + [PER_WINDOW] * after
    drifting = ["concept_drift"] * (gap - SHIFT_AT)
    expected = [None, "none", "none", "none", *drifting, None, *["concept_drift"] * after]
    assert [d["kind"] for d in decays] == expected
    assert [e.metrics["concept_drift"] for e in evaluations][SHIFT_AT:] == [1, 1, None, 1, 1]
    # After the gap the history has absorbed the change (no rise), yet each window errs
    # more than the reference expects on its inputs: the same numbers made again.
    for k in range(gap + 1, windows):
        assert decays[k]["error"]["rose"] is False
        shift = decays[k]["shift"]
        assert shift["explained"] is False
        assert shift["window_error"] > shift["expected_error"] + 0.15
        _same_numbers_again(db, rows, k, decays[k])
