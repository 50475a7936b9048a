"""The data-window policies a retraining names: the policy options, and "keep the data that
is still correct" on a concept that changes in one region only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.still_correct import still_correct
from opsloop.monitoring.training_window import training_window, window_start

from .conftest import HOUR_MS, T0

RETRAIN = "concept_drift > 0 -> retrain(train=credit.fit:train"


def test_a_policy_names_its_data_window_and_its_parameter():
    rule = Policy.parse(f"{RETRAIN}, window=since_date, since=2027-01-15T08:00:00Z)")
    assert (rule.option("window"), rule.option("since")) == ("since_date", 1_800_000_000_000)
    # A date alone is midnight UTC; a zone is honoured.
    assert Policy.parse(f"{RETRAIN}, window=since_date, since=2027-01-15)").option("since") == (
        1_800_000_000_000 - 8 * HOUR_MS
    )
    assert Policy.parse(f"{RETRAIN})").option("window") == "since_change_point"
    assert Policy.parse(f"{RETRAIN}, window=new_only)").option("window") == "new_only"
    keep = Policy.parse(f"{RETRAIN}, window=keep_correct, neighbours=3)")
    assert (keep.option("window"), keep.option("neighbours")) == ("keep_correct", 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("window=since_date, since=15/01/2027", "retrain option since: an ISO 8601 date"),
        ("window=since_date", "retrain option since: window=since_date needs since=DATE"),
        ("since=2027-01-15", "retrain option since: only with window=since_date"),
        ("window=latest", "retrain option window: one of since_change_point, since_date"),
        ("window=new_only, reference_share=0.2", "option reference_share: window=new_only"),
        ("window=keep_correct, neighbours=0", "retrain option neighbours: a whole number >= 1"),
        ("neighbours=3", "retrain option neighbours: only with window=keep_correct"),
    ],
)
def test_a_bad_data_window_names_the_option_and_the_rule(options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        Policy.parse(f"{RETRAIN}, {options})")


def test_each_policy_starts_the_range_where_it_says():
    evidence = {
        "change_point_ms": T0 + 2 * HOUR_MS,
        "windows": [{"start_ms": T0 + 3 * HOUR_MS}, {"start_ms": T0 + 4 * HOUR_MS}],
    }
    assert window_start("since_change_point", evidence) == T0 + 2 * HOUR_MS
    assert window_start("keep_correct", evidence) == T0 + 2 * HOUR_MS
    assert window_start("new_only", evidence) == T0 + 3 * HOUR_MS
    assert window_start("since_date", evidence, T0 + HOUR_MS) == T0 + HOUR_MS
    # A request names no window of a streak: its change point.
    assert window_start("new_only", {"change_point_ms": 7, "windows": []}) == 7


# The concept: y = x1 > 0.5, until it flips where x2 > 0.6. Rows sit on a grid of cells with
# gaps around both boundaries (x1 in 0.4..0.6, x2 in 0.5..0.7), so a row's nearest rows are
# in its own quadrant and the rows kept can be told by hand.
X1 = [0.05, 0.15, 0.25, 0.35, 0.65, 0.75, 0.85, 0.95]
X2 = [0.05, 0.15, 0.25, 0.35, 0.45, 0.75, 0.85, 0.95]
CELLS = np.array([(a, b) for a in X1 for b in X2])


def old_concept(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] > 0.5).astype(int)


def new_concept(x: np.ndarray) -> np.ndarray:
    return old_concept(x) ^ (x[:, 1] > 0.6)


def frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})


def test_keep_correct_keeps_exactly_the_older_rows_outside_the_changed_region(db):
    # Three older rows a cell, the old concept: two in the labelled reference, one answered
    # live before the change; one new row a cell, at its centre, the new concept.
    offsets = [(0.01, 0.01), (-0.01, 0.01), (0.0, -0.01)]
    older = [CELLS + np.array(o) for o in offsets]
    reference = np.vstack(older[:2])
    set_reference(db, "api", frame(reference), labels=old_concept(reference), sample_size=10_000)
    change = T0 + 2 * HOUR_MS
    before = older[2]
    ids = log_predictions(
        db, "api", frame(before), [0] * len(before), at_ms=np.full(len(before), T0 + HOUR_MS)
    )
    log_labels(db, "api", ids, old_concept(before).tolist())
    ids = log_predictions(
        db, "api", frame(CELLS), [0] * len(CELLS), at_ms=np.full(len(CELLS), change + HOUR_MS)
    )
    log_labels(db, "api", ids, new_concept(CELLS).tolist())

    window = training_window(
        db,
        "api",
        start_ms=change,
        end_ms=change + 2 * HOUR_MS,
        label="y",
        policy="keep_correct",
        keep_correct=True,
        neighbours=5,
    )
    # By hand: 64 cells, 24 of them (x2 > 0.6, 3 of 8 rows of the grid) flipped; the older
    # rows kept are the 3 x 40 outside the flipped region, of the 3 x 64 judged.
    assert (window.new_rows, window.older_rows, window.reference_rows) == (64, 192, 120)
    kept = window.frame.iloc[window.new_rows :]
    assert (kept["x2"] < 0.6).all()
    everything_old = frame(np.vstack(older))
    expected = everything_old[everything_old["x2"] < 0.6]
    assert sorted(map(tuple, kept[["x1", "x2"]].round(6).to_numpy())) == sorted(
        map(tuple, expected.round(6).to_numpy())
    )
    assert (kept["y"].to_numpy() == old_concept(kept[["x1", "x2"]].to_numpy())).all()
    assert window.to_dict()["policy"] == "keep_correct"

    # Trained on the window, a 5-nearest-neighbour model is right on every post-change cell;
    # trained on everything, the three older rows of each flipped cell outvote its new row:
    # wrong on the 24 flipped cells, 40 of 64 right.
    def accuracy(rows: pd.DataFrame) -> float:
        model = KNeighborsClassifier(n_neighbors=5).fit(rows[["x1", "x2"]], rows["y"])
        return float((model.predict(frame(CELLS)) == new_concept(CELLS)).mean())

    everything = pd.concat(
        [everything_old.assign(y=old_concept(np.vstack(older))), window.frame.iloc[:64]],
        ignore_index=True,
    )
    assert accuracy(window.frame) == 1.0
    assert accuracy(everything) == 40 / 64


def test_still_correct_compares_categories_by_equality():
    recent = pd.DataFrame({"city": ["a", "a", "b", "b"], "y": [1, 1, 0, 0]})
    older = pd.DataFrame({"city": ["a", "b", "a"], "y": [1, 1, 0]})
    assert still_correct(older, recent, "y", neighbours=2).tolist() == [True, False, False]
