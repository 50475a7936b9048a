"""A deployment with no reference set is compared with the training data registered with
the version its primary variant serves: the drift equals, exactly, what the same data set
explicitly gives; a set reference wins; the origin is said in the evaluation and the status."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.data.training_reference import LABEL_COLUMN, REFERENCE_SAMPLE_SIZE
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitor_report import monitor_status
from opsloop.monitoring.reference import get_reference, reference_origin, set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import ModelRegistry
from opsloop.serving.deployments import Deployments, Variant
from opsloop.store import ArtifactStore

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=150, seed=11)


@pytest.fixture
def split(cancer):
    frame, target = cancer
    order = np.random.default_rng(3).permutation(len(frame))
    train, live = frame.iloc[order[:350]], frame.iloc[order[350:]]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(train, target[order[:350]])
    return train.reset_index(drop=True), live.reset_index(drop=True), model


@pytest.fixture
def registry(db, tmp_path):
    return ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"), actor="ana")


def _shifted_traffic(db, deployment, live, model):
    """Two windows of live rows, the first 10 features moved by two standard deviations."""
    shifted = live.copy()
    moved = list(live.columns[:10])
    shifted[moved] = shifted[moved] + 2 * live[moved].std()
    for k in range(2):
        rows = shifted.iloc[k * 100 : (k + 1) * 100].reset_index(drop=True)
        times = T0 + k * HOUR_MS + np.arange(100) * 1000
        log_predictions(db, deployment, rows, model.predict(rows), at_ms=times)


def test_drift_against_the_registered_reference_equals_the_explicit_one(db, clock, registry, split):
    train, live, model = split
    version = registry.register("credit-default", model, training_data=train)
    deployments = Deployments(db, actor="ana")
    deployments.deploy("registered", [Variant("stable", "credit-default", version=1)])
    deployments.deploy("explicit", [Variant("stable", "credit-default", version=1)])
    set_reference(db, "explicit", train)
    for deployment in ("registered", "explicit"):
        _shifted_traffic(db, deployment, live, model)
    clock.advance(3 * HOUR_MS)
    registered = evaluate(db, "registered", windowing=WINDOWING)
    explicit = evaluate(db, "explicit", windowing=WINDOWING)

    assert version.version == 1 and len(registered) == len(explicit) == 2
    for ours, theirs in zip(registered, explicit, strict=True):
        assert ours.metrics["reference"] == "registered with credit-default v1"
        assert theirs.metrics["reference"] == "set explicitly"
        assert ours.metrics["drift"] == theirs.metrics["drift"]
        assert ours.metrics["drift_share"] == theirs.metrics["drift_share"]
        assert ours.metrics["out_of_schema_rate"] == theirs.metrics["out_of_schema_rate"]
    # The shift is seen: the 10 moved features drift, against the training data.
    drifted = [f for f, v in registered[0].metrics["drift"].items() if v["drifted"]]
    assert set(train.columns[:10]) <= set(drifted)
    assert monitor_status(db, "registered", WINDOWING)["reference"] == (
        "registered with credit-default v1"
    )
    summary = Monitoring(db).reference("registered")
    assert (summary.rows, summary.sample, summary.origin) == (
        350,
        350,
        "registered with credit-default v1",
    )
    # The registered reference holds what setting the same rows keeps.
    kept, set_one = registry.training_reference("credit-default", 1), get_reference(db, "explicit")
    assert kept.sample.rows.equals(set_one.sample.rows)
    # (Not the profiles' quantile sketches: KLL sketches compact at random.)
    assert [kept.profile[f].numeric.mean for f in train.columns] == [
        set_one.profile[f].numeric.mean for f in train.columns
    ]
    assert [kept.profile[f].numeric.mean for f in train.columns[:3]] == pytest.approx(
        train.iloc[:, :3].mean().tolist(), rel=1e-12
    )
    assert kept.schema.columns == set_one.schema.columns


def test_an_explicit_reference_wins_and_the_alias_decides_the_version(db, registry, split):
    train, live, model = split
    registry.register("credit-default", model, training_data=train)
    registry.register("credit-default", model, training_data=live)
    registry.set_alias("credit-default", "champion", 1)
    deployments = Deployments(db, actor="ana")
    deployments.deploy(
        "api",
        [
            Variant("stable", "credit-default", alias="champion", weight=0.9),
            Variant("canary", "credit-default", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    # The primary (stable) variant's version, not the canary's.
    assert reference_origin(db, "api") == "registered with credit-default v1"
    assert get_reference(db, "api").profile.n_rows == len(train)
    registry.set_alias("credit-default", "champion", 2)
    assert reference_origin(db, "api") == "registered with credit-default v2"
    assert get_reference(db, "api").profile.n_rows == len(live)
    set_reference(db, "api", train.iloc[:50])
    assert reference_origin(db, "api") == "set explicitly"
    assert get_reference(db, "api").profile.n_rows == 50


def test_a_version_registered_without_training_data_gives_no_reference(db, registry, split):
    model = split[2]
    registry.register("credit-default", model)
    Deployments(db, actor="ana").deploy("api", [Variant("stable", "credit-default", version=1)])
    with pytest.raises(NotFoundError, match="register its model version with training_data"):
        get_reference(db, "api")
    assert monitor_status(db, "api")["reference"] is None
    with pytest.raises(NotFoundError, match="version 1 was registered without training data"):
        registry.training_reference("credit-default", 1)


def test_the_registered_sample_is_bounded_as_the_explicit_one(db, registry):
    rows = REFERENCE_SAMPLE_SIZE + 700
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "c": ["a", "b"] * (rows // 2)})
    registry.register("big", b"\x08\x01", flavor="onnx", training_data=frame)
    kept = registry.training_reference("big", 1)
    explicit = set_reference(db, "big-api", frame)
    assert (kept.profile.n_rows, len(kept.sample)) == (rows, REFERENCE_SAMPLE_SIZE)
    assert kept.sample.rows.equals(explicit.sample.rows)


def test_bad_training_data_names_the_field(registry):
    with pytest.raises(InvalidArgumentError, match="training_data: a pandas DataFrame, got list"):
        registry.register("m", b"x", flavor="onnx", training_data=[[1.0]])
    with pytest.raises(InvalidArgumentError, match="training_data: the reference needs at least"):
        registry.register("m", b"x", flavor="onnx", training_data=pd.DataFrame())
    with pytest.raises(InvalidArgumentError, match="training_reference: give the training data"):
        registry.register(
            "m",
            b"x",
            flavor="onnx",
            training_data=pd.DataFrame({"x": [1.0]}),
            training_reference="abc",
        )
    with pytest.raises(InvalidArgumentError, match="training_reference: not base64"):
        registry.register("m", b"x", flavor="onnx", training_reference="not base64!")
    # Nothing of the refused calls was registered.
    assert registry.list_models().empty


@pytest.mark.parametrize("label_column", [None, "target"])
def test_a_label_column_in_training_data_is_no_input_of_the_reference(
    db, clock, registry, split, cancer, label_column
):
    # The training frame as it often is: the inputs and the label side by side.
    train, live, model = split
    frame, target = cancer
    order = np.random.default_rng(3).permutation(len(frame))
    labelled = train.assign(target=target[order[:350]])
    registry.register(
        "credit-default", model, input_schema=train, training_data=labelled,
        label_column=label_column,
    )  # fmt: skip
    kept = registry.training_reference("credit-default", 1)
    assert kept.features == tuple(train.columns)
    assert "target" not in kept.profile.columns and "target" not in kept.schema.columns
    assert kept.has_labels is (label_column is not None)
    if label_column is not None:
        # Kept apart, as the reference's labels, row for row with the inputs (the sample
        # holds all 350 rows, in its own order).
        inputs = list(train.columns)
        expected = labelled.rename(columns={"target": LABEL_COLUMN}).sort_values(inputs)
        got = kept.sample.frame()[[*inputs, LABEL_COLUMN]].sort_values(inputs)
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
        )
    Deployments(db, actor="ana").deploy("api", [Variant("stable", "credit-default", version=1)])
    clean = live.iloc[:100].reset_index(drop=True)
    log_predictions(db, "api", clean, model.predict(clean), at_ms=T0 + np.arange(100) * 1000)
    clock.advance(2 * HOUR_MS)
    (window,) = evaluate(db, "api", windowing=WINDOWING)
    # No value of the 30 inputs is missing, and no label is expected of a request.
    assert window.metrics["missing_share"] == 0.0
    assert sorted(window.metrics["drift"]) == sorted(train.columns)


def test_training_data_must_hold_the_signature_inputs_and_the_label_it_names(registry, split):
    train, _, model = split
    with pytest.raises(InvalidArgumentError, match=r"label_column: 'y' is not a column"):
        registry.register("m", model, input_schema=train, training_data=train, label_column="y")
    with pytest.raises(InvalidArgumentError, match=r"lacks the signature's input column 'mean"):
        registry.register("m", model, input_schema=train, training_data=train.iloc[:, 1:])
    with pytest.raises(InvalidArgumentError, match=r"label_column: names a column of training"):
        registry.register("m", model, label_column="target")
