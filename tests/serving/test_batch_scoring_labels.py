"""Labels of batch-scored rows, on scikit-learn's wine data: joined by the rows' request ids
like a served answer's, so the batch's window has its task metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.clock import FakeClock

from opsloop.monitoring import evaluate, label_counts, log_labels
from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving.batch_scoring import score_file

HOUR_MS = 3_600_000


@pytest.fixture
def scored(registry, tmp_path):
    """Every third wine scored as a batch by a model trained on the rest, at a fake hour."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    names = pd.Series(np.array(["barolo", "grignolino", "barbera"])[y])
    train = np.arange(len(X)) % 3 != 0
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X[train], names[train])
    registry.register("wine", model, input_schema=X, training_data=X[train])
    Deployments(registry.db).deploy("cellar", [Variant("live", "wine", version=1)])
    clock = FakeClock()
    registry.db.clock = clock
    runtime = ServingRuntime(registry.db, registry.artifacts)
    X[~train].to_csv(tmp_path / "batch.csv", index=False)
    score_file(runtime, "cellar", tmp_path / "batch.csv", tmp_path / "out.csv")
    runtime.close()
    out = pd.read_csv(tmp_path / "out.csv")
    return registry.db, clock, out, names[~train].reset_index(drop=True)


def test_labels_of_batch_rows_are_kept_and_scored(scored):
    db, clock, out, truth = scored
    labels = truth.copy()
    # Six labels that disagree with the model's answer: the window's accuracy must see them.
    wrong = out.index[:6]
    labels[wrong] = np.where(out.loc[wrong, "prediction"] == "barolo", "barbera", "barolo")
    receipt = log_labels(db, "cellar", out["request_id"].tolist(), labels.tolist())
    assert (receipt.accepted, receipt.unknown, receipt.duplicate) == (60, 0, 0)
    assert label_counts(db, "cellar")["accepted"] == 60
    clock.now_ms += HOUR_MS
    (window,) = evaluate(db, "cellar")
    assert window.metrics["labelled"] == 60
    assert window.metrics["task_metric"] == accuracy_score(labels, out["prediction"])
