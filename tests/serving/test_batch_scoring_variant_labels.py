"""Labels of rows a batch scored with every variant, on scikit-learn's iris data: they judge
the primary's answers only, as a served request's label judges its primary answer and not
its shadows', so a candidate's task metric never comes from a batch job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from tests.clock import FakeClock

from opsloop.monitoring import evaluate, log_labels
from opsloop.serving import (
    Deployments,
    ServingRuntime,
    Variant,
    read_feedback,
    read_prediction_events,
    record_feedback,
)
from opsloop.serving.batch_scoring import score_file

HOUR_MS = 3_600_000


@pytest.fixture
def scored(registry, tmp_path):
    """Every other iris scored by a primary, a canary and a shadow, models trained on the
    rest (the canary and shadow much weaker, so their accuracies differ)."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    train = np.arange(len(X)) % 2 == 0
    strong = LogisticRegression(max_iter=1000).fit(X[train], y[train])
    weak = LogisticRegression(C=1e-3, max_iter=1000).fit(X[train], y[train])
    registry.register("iris", strong, input_schema=X, training_data=X[train])
    registry.register("iris", weak, input_schema=X, training_data=X[train])
    Deployments(registry.db).deploy(
        "flowers",
        [
            Variant("stable", "iris", version=1, weight=0.9),
            Variant("canary", "iris", version=2, role="candidate", weight=0.1),
            Variant("mirror", "iris", version=2, role="shadow", weight=0.0),
        ],
        strategy="canary",
    )
    clock = FakeClock()
    registry.db.clock = clock
    runtime = ServingRuntime(registry.db, registry.artifacts)
    X[~train].to_csv(tmp_path / "batch.csv", index=False)
    score_file(runtime, "flowers", tmp_path / "batch.csv", tmp_path / "out.csv", all_variants=True)
    runtime.close()
    out = pd.read_csv(tmp_path / "out.csv")
    return registry.db, clock, out, y[~train].reset_index(drop=True)


def test_batch_labels_give_the_primary_alone_a_task_metric(scored):
    db, clock, out, truth = scored
    assert accuracy_score(truth, out["prediction_canary"]) != accuracy_score(
        truth, out["prediction_stable"]
    )
    events = read_prediction_events(db, "flowers")
    assert events.groupby(["variant", "role"]).size().to_dict() == {
        ("canary", "batch_shadow"): 75,
        ("mirror", "batch_shadow"): 75,
        ("stable", "batch"): 75,
    }
    receipt = log_labels(db, "flowers", out["request_id"].tolist(), truth.tolist())
    assert (receipt.accepted, receipt.unknown, receipt.duplicate) == (75, 0, 0)
    clock.now_ms += HOUR_MS
    windows = {w.variant: w.metrics for w in evaluate(db, "flowers")}
    assert windows["stable"]["labelled"] == 75
    assert windows["stable"]["task_metric"] == accuracy_score(truth, out["prediction_stable"])
    # The other variants' windows see the batch's rows (drift, requests), not its labels.
    for other in ("canary", "mirror"):
        assert windows[other]["rows"] == 75
        assert windows[other]["labelled"] == 0
        assert windows[other]["task_metric"] is None


def test_feedback_on_a_retired_deployments_batch_row_is_kept_with_its_history(scored):
    db, _, out, truth = scored
    Deployments(db).retire("flowers")
    request_id = out["request_id"].iloc[3]
    record_feedback(db, "flowers", request_id, label=int(truth.iloc[3]), actor="ana")
    kept = read_feedback(db, "flowers/retired-1")
    assert kept["request_id"].tolist() == [request_id]
    assert kept["label"].tolist() == [int(truth.iloc[3])]
