"""Batch scoring on scikit-learn's bundled data sets: the predictions are the model's own,
bad rows go to the side file with their reason, every scored row is an event, and the
chunking changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor
from tests.serving.batch_scoring_setup import deploy_scaled_logistic, runtime_on_fake_clock

from opsloop.errors import InvalidArgumentError
from opsloop.serving import Deployments, Variant, read_prediction_events
from opsloop.serving.batch_scoring import score_file, score_frame


@pytest.fixture
def cancer(registry):
    """A scaled logistic regression on the breast cancer data, deployed as ``api``."""
    return deploy_scaled_logistic(
        registry, load_breast_cancer, model="cancer", deployment="api", variant="stable"
    )


@pytest.fixture
def diabetes(registry):
    """Two regressions on the diabetes data, deployed as a canary (``stable`` primary)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    linear = LinearRegression().fit(X, y)
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y)
    registry.register("diabetes", linear, input_schema=X)
    registry.register("diabetes", tree, input_schema=X)
    Deployments(registry.db).deploy(
        "dia",
        [
            Variant("stable", "diabetes", version=1, weight=0.9),
            Variant("canary", "diabetes", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    return linear, tree, X


@pytest.fixture
def runtime(registry):
    yield from runtime_on_fake_clock(registry)


def test_csv_predictions_are_the_models_own_row_for_row(runtime, cancer, tmp_path):
    model, X = cancer
    X.to_csv(tmp_path / "in.csv", index=False)
    seen = []
    summary = score_file(
        runtime,
        "api",
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        chunk_size=100,
        on_chunk=seen.append,
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert (summary.rows, summary.scored, summary.rejected, summary.chunks) == (569, 569, 0, 6)
    assert out["row"].tolist() == list(range(569))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))
    pd.testing.assert_frame_equal(out[list(X.columns)], X)
    assert [p.rows for p in seen] == [100, 200, 300, 400, 500, 569]
    assert seen[-1].done == seen[-1].total == (tmp_path / "in.csv").stat().st_size
    assert pd.read_csv(tmp_path / "out.rejected.csv").empty


def test_every_scored_row_is_a_batch_event_with_its_request_id(runtime, cancer, tmp_path):
    model, X = cancer
    part = X.iloc[:40]
    part.to_parquet(tmp_path / "in.parquet")
    summary = score_file(
        runtime, "api", tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_size=16
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    events = read_prediction_events(runtime.db, "api", role="batch")
    assert summary.events == len(events) == 40
    assert events["request_id"].tolist() == out["request_id"].tolist()
    assert out["request_id"].tolist() == [f"{summary.batch_id}-{i}" for i in range(40)]
    assert set(events["variant"]) == {"stable"} and set(events["version"]) == {1}
    assert [o["predictions"][0] for o in events["output"]] == model.predict(part).tolist()
    np.testing.assert_allclose(
        [o["probabilities"][0] for o in events["output"]], model.predict_proba(part), atol=0
    )
    assert [e[0] for e in events["inputs"]] == part.to_dict("records")
    assert set(events["at_ms"]) == {runtime.db.clock()}
    # a batch row is no served request: the request path's events are untouched
    assert read_prediction_events(runtime.db, "api", role="primary").empty


def test_bad_rows_go_to_the_side_file_and_the_rest_are_scored(runtime, diabetes, tmp_path):
    linear, _, X = diabetes
    text = X.astype(object).copy()
    text.loc[3, "bmi"] = "heavy"  # not a number
    text.loc[7, "age"] = 5.0  # far beyond the range seen in training, margin included
    text.loc[11, "s1"] = None  # the signature allows no nulls
    text.loc[12, "s2"] = "inf"  # a float column that allows no infinity
    text.loc[12, "s3"] = "x"  # a second problem on the same row
    text.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(
        runtime,
        "dia",
        tmp_path / "in.csv",
        tmp_path / "out.csv",
        chunk_size=5,
        rejected_path=tmp_path / "bad.csv",
    )
    bad = pd.read_csv(tmp_path / "bad.csv")
    assert bad[["row", "variant", "field", "rule"]].values.tolist() == [
        [3, "stable", "bmi", "type_mismatch"],
        [7, "stable", "age", "out_of_range"],
        [11, "stable", "s1", "null_fraction_exceeded"],
        [12, "stable", "s2", "non_finite"],
    ]
    assert "field 's3': type_mismatch (expected float, found 'x')" in bad["detail"][3]
    assert bad["bmi"][0] == "heavy" and bad["age"][1] == 5.0
    kept = X.drop(index=[3, 7, 11, 12])
    out = pd.read_csv(tmp_path / "out.csv")
    assert (summary.scored, summary.rejected) == (len(kept), 4)
    assert out["row"].tolist() == kept.index.tolist()
    np.testing.assert_allclose(out["prediction"], linear.predict(kept), rtol=1e-12)


def test_all_variants_give_one_prediction_column_each(runtime, diabetes, tmp_path):
    linear, tree, X = diabetes
    X.to_parquet(tmp_path / "in.parquet")
    summary = score_file(
        runtime,
        "dia",
        tmp_path / "in.parquet",
        tmp_path / "out.csv",
        all_variants=True,
        chunk_size=64,
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert summary.variants == ("stable", "canary")
    np.testing.assert_allclose(out["prediction_stable"], linear.predict(X), rtol=1e-12)
    np.testing.assert_array_equal(out["prediction_canary"], tree.predict(X))
    events = read_prediction_events(runtime.db, "dia")
    # The primary's answer is the batch's; the canary's is kept beside it, as a shadow's.
    assert events.groupby(["variant", "role"]).size().to_dict() == {
        ("canary", "batch_shadow"): 442,
        ("stable", "batch"): 442,
    }
    # both variants' events of a row share its request id, as a shadow's share the primary's
    assert (events.groupby("request_id").size() == 2).all()


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_chunk_boundaries_do_not_change_the_results(runtime, diabetes, tmp_path, source):
    _, _, X = diabetes
    bad = [0, 99, 100, 441]
    path = tmp_path / f"in.{source}"
    if source == "csv":
        X.assign(bmi=X["bmi"].astype(object).mask(X.index.isin(bad), "?")).to_csv(path, index=False)
    else:
        X.assign(bmi=X["bmi"].mask(X.index.isin(bad))).to_parquet(path)
    results = []
    for size in (1_000, 100, 7):
        out = tmp_path / f"out-{size}.csv"
        score_file(runtime, "dia", path, out, chunk_size=size, all_variants=True)
        results.append(
            (
                pd.read_csv(out).drop(columns="request_id"),
                pd.read_csv(tmp_path / f"out-{size}.rejected.csv"),
            )
        )
    for scored, rejected in results[1:]:
        pd.testing.assert_frame_equal(scored, results[0][0])
        pd.testing.assert_frame_equal(rejected, results[0][1])
    assert results[0][1]["row"].tolist() == bad
    assert len(results[0][0]) == len(X) - len(bad)


def test_a_missing_signature_column_stops_the_batch(runtime, cancer):
    _, X = cancer
    with pytest.raises(InvalidArgumentError, match="column 'mean radius' is missing"):
        score_frame(runtime, "api", X.drop(columns="mean radius"))


def test_an_output_column_name_in_the_input_is_refused(runtime, cancer):
    _, X = cancer
    with pytest.raises(InvalidArgumentError, match="column 'prediction' clashes"):
        score_frame(runtime, "api", X.assign(prediction=1))
