"""A gate's verdict on a registered version: recorded in the audit log, by whom it may be."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from opsloop.analysis.gate import parse_gate
from opsloop.errors import InvalidArgumentError
from opsloop.registry import PermissionDenied, add_user, verify_audit_log
from opsloop.registry.release_gate import run_gate

GATE = parse_gate(
    {
        "version": 1,
        "label": "y",
        "checks": [{"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05}],
    }
)


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    data["y"] = (data["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    return data


@pytest.fixture
def versions(registry, frame):
    good = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    blind = LogisticRegression().fit(frame[["z"]], frame["y"])
    registry.register("m", good, input_schema=frame[["x", "z"]], output_type="int")
    registry.register("m", blind, input_schema=frame[["z"]], output_type="int")
    registry.set_alias("m", "champion", 1)
    return registry


def test_a_failed_gate_is_recorded_on_the_candidate(versions, frame):
    result = run_gate(versions, GATE, "models:/m/2", frame, data_name="holdout")
    assert not result.passed
    entry = versions.audit("m").iloc[-1]
    assert (entry["action"], entry["entity"], entry["actor"]) == (
        "gate_failed",
        "model:m/version:2",
        "owner",
    )
    assert entry["after"]["failed"] == ["accuracy non-inferiority (mcnemar)"]
    assert entry["after"]["data"] == "holdout" and entry["after"]["n_rows"] == 300
    assert verify_audit_log(versions.db).ok


def test_recording_needs_an_editor(versions):
    add_user(versions.db, "owner", "admin")
    add_user(versions.db, "vic", "viewer")
    with pytest.raises(PermissionDenied):
        versions.record_gate("m", 1, passed=True, gate={}, actor="vic")
    with pytest.raises(InvalidArgumentError, match="passed must be true or false"):
        versions.record_gate("m", 1, passed="yes", gate={})
    with pytest.raises(InvalidArgumentError, match="gate must be plain JSON values"):
        versions.record_gate("m", 1, passed=True, gate={"auc": float("nan")})


def test_over_http_the_gate_runs_and_the_server_records_it(versions, remote, frame):
    result = run_gate(remote, GATE, "models:/m/1", frame, baseline="models:/m/2", record=False)
    assert result.passed and result.baseline == "m v2"
    assert versions.audit("m")["action"].iloc[-1] == "set_alias"
    run_gate(remote, GATE, "models:/m/1", frame, baseline="models:/m/2")
    entry = versions.audit("m").iloc[-1]
    assert (entry["action"], entry["entity"]) == ("gate_passed", "model:m/version:1")
    assert entry["after"]["baseline"] == {"model": "m", "version": 2}
    assert entry["after"]["n_rows"] == len(frame)
    assert verify_audit_log(versions.db).ok


PRIVACY = parse_gate(
    {
        "version": 1,
        "label": "y",
        "checks": [{"kind": "privacy", "attack": "threshold", "max_advantage": 0.3}],
    }
)


def test_a_privacy_check_attacks_only_the_rows_the_candidate_was_trained_on(
    registry, tracking, frame
):
    from opsloop.tracking import DatasetInput
    from opsloop.tracking.dataset_digest import dataset_sha256

    train, held_out = frame.iloc[:200], frame.iloc[200:]
    model = LogisticRegression().fit(train[["x", "z"]], train["y"])
    run = tracking.create_run("credit")
    tracking.log_dataset(run, DatasetInput("train", dataset_sha256(train), 200, 3))
    registry.register("m", model, run_id=run, input_schema=train[["x", "z"]])
    registry.register("m", model)  # no run: its training rows cannot be checked
    registry.set_alias("m", "champion", 1)
    result = run_gate(registry, PRIVACY, "models:/m/1", held_out, members=train)
    source = result.checks[0].evidence["members_source"]
    assert source["verified"] is True and source["run_id"] == run
    assert source["sha256"] == dataset_sha256(train)
    assert registry.audit("m").iloc[-1]["after"]["members_sha256"] == dataset_sha256(train)
    # Other rows than the ones logged to the run are refused, naming both hashes.
    with pytest.raises(
        ValueError,
        match=r"members: these rows \(sha256 [0-9a-f]{12}\.\.\.\) "
        r"are not the data set 'train' logged to m v1's run",
    ):
        run_gate(registry, PRIVACY, "models:/m/1", held_out, members=held_out)
    # A data set the run never logged is named.
    named = parse_gate(
        {
            **_document(PRIVACY),
            "checks": [
                {"kind": "privacy", "attack": "threshold", "max_advantage": 0.3, "members": "fit"}
            ],
        }
    )
    with pytest.raises(ValueError, match="logged no data set 'fit' \\(it logged train\\)"):
        run_gate(registry, named, "models:/m/1", held_out, members=train)
    # A version with no run runs the check and says its members were not checked.
    unchecked = run_gate(registry, PRIVACY, "models:/m/2", held_out, members=train)
    assert "members not checked against the lineage: the version has no run" in (
        unchecked.checks[0].reason
    )


def _document(gate):
    return {"version": gate.version, "label": gate.label}


def test_the_recorded_verdict_keeps_each_checks_numbers(versions, frame):
    gate = parse_gate(
        {
            "version": 1,
            "label": "y",
            "checks": [
                {"kind": "floor", "metric": "accuracy", "min": 0.9},
                {"kind": "non_inferiority", "metric": "accuracy", "margin": 0.05},
            ],
        }
    )
    run_gate(versions, gate, "models:/m/2", frame)
    floor, inferiority = versions.audit("m").iloc[-1]["after"]["results"]
    blind = versions.load("m", 2)
    accuracy = accuracy_score(frame["y"], blind.predict(frame[["z"]]))
    assert (floor["kind"], floor["verdict"], floor["threshold"]) == ("floor", "fail", 0.9)
    assert floor["statistic"] == pytest.approx(accuracy) and accuracy < 0.9
    assert (inferiority["kind"], inferiority["verdict"]) == ("non_inferiority", "fail")
    assert inferiority["threshold"] == 0.05 and inferiority["p_value"] == pytest.approx(1.0)
    assert set(floor) == {"kind", "name", "verdict", "reason", "statistic", "p_value", "threshold"}
