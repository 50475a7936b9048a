"""A tree model's edit registered as a new version: loadable, lineage kept, edit recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from opsloop.errors import InvalidArgumentError
from opsloop.registry import register_override
from opsloop.tracking.capture import CodeVersion
from opsloop.tracking.records import DatasetInput


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True)


def test_an_edited_forest_is_the_next_version_with_its_source_lineage(
    registry, tracking, acting, cancer
):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X[:400], y[:400])
    run_id = tracking.create_run("cancer", code=CodeVersion("c" * 40, "main", False, None))
    tracking.log_dataset(run_id, DatasetInput("train", "a" * 64, 400, 30))
    registry.register(
        "cancer", forest, run_id=run_id, tags={"team": "risk"}, description="screening"
    )
    editor = acting("eda")
    edited = register_override(
        editor, "cancer", "0", where="x20 > 16 and x27 <= 0.15", version=1, reason="review"
    )
    assert (edited.version, edited.run_id, edited.description) == (2, run_id, "screening")
    assert edited.tags["team"] == "risk"
    assert edited.tags["edited_from"] == "models:/cancer/1"
    record = json.loads(edited.tags["edit"])
    assert record["where"] == "x20 > 16.0 and x27 <= 0.15"
    assert (record["value"], record["trees"]) == (0, 10)
    assert record["leaves_overridden"] + record["nodes_added"] > 0
    lineage = registry.lineage("cancer", 2)
    assert (lineage.run_id, lineage.datasets) == (run_id, (("train", "a" * 64),))
    audit = registry.audit("cancer")
    assert audit["reason"].tolist()[-1] == "review"
    assert audit["actor"].tolist()[-1] == "eda"
    # loaded back through the structure check, it answers as the edit says
    loaded = registry.load("cancer", 2)
    X32 = X.astype(np.float32).astype(np.float64)
    inside = (X32[:, 20] > 16) & (X32[:, 27] <= 0.15)
    assert 20 < inside.sum() < len(X) - 20
    assert (loaded.predict(X[inside]) == 0).all()
    np.testing.assert_array_equal(
        loaded.predict_proba(X[~inside]), forest.predict_proba(X[~inside])
    )


def test_an_edit_without_a_reason_says_what_it_did(registry, cancer):
    X, y = cancer
    registry.register("m", RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y))
    registry.set_alias("m", "champion", 1)
    edited = register_override(registry, "m", 1, where="x0 > 20", alias="champion")
    assert registry.audit("m")["reason"].tolist()[-1] == ("override x0 > 20.0 -> 1 of models:/m/1")
    assert edited.metrics == {}


def test_a_boosted_model_is_refused_and_nothing_registered(registry, cancer):
    X, y = cancer
    registry.register("hgb", HistGradientBoostingClassifier(max_iter=2).fit(X, y))
    with pytest.raises(InvalidArgumentError, match="HistGradientBoostingClassifier is not"):
        register_override(registry, "hgb", 0, where="x0 > 1")
    assert registry.get_version("hgb").version == 1
