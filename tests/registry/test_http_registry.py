"""The registry over HTTP against a real server: the same scenario, records, frames and errors
as the local registry, and artifacts verified by the client before anything is loaded."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from opsloop.registry import (
    HttpModelRegistry,
    ModelRegistry,
    PermissionDenied,
    UnknownModelError,
    add_user,
    open_registry,
)
from opsloop.store import TamperedArtifactError
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.records import DatasetInput

AUC = 0.9123456789012345  # more digits than a 10-digit JSON encoder keeps


@pytest.fixture
def forest():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), x


@pytest.fixture
def run_id(tracking):
    environment = Environment.from_parts("3.11.7", "Linux", ["scikit-learn==1.9.0"])
    run = tracking.create_run(
        "churn", code=CodeVersion("c" * 40, "main", False, None), environment=environment
    )
    tracking.log_dataset(run, DatasetInput("train", "a" * 64, 60, 3))
    tracking.log_dataset(run, DatasetInput("eval", "b" * 64, 20, 3))
    return run


def test_the_same_governed_scenario_locally_and_over_http(acting, run_id, forest):
    model, x = forest
    eda, owner, ana, bo, vic = (acting(user) for user in ("eda", "owner", "ana", "bo", "vic"))
    first = eda.register(
        "churn",
        model,
        run_id=run_id,
        # Not in name order: the signature keeps the columns in the model's order.
        input_schema=pd.DataFrame(x, columns=["c", "a", "b"]),
        output_type="int",
        metrics={"auc": AUC},
        tags={"team": "risk"},
        description="first forest",
    )
    assert (first.model, first.version, first.flavor, first.created_by) == (
        "churn",
        1,
        "sklearn",
        "eda",
    )
    assert (first.run_id, first.metrics, first.tags) == (run_id, {"auc": AUC}, {"team": "risk"})
    assert list(first.signature["inputs"]["columns"]) == ["c", "a", "b"]
    assert list(vic.get_version("churn", 1).signature["inputs"]["columns"]) == ["c", "a", "b"]
    assert first.signature["output"] == "int"
    assert eda.register("churn", model, metrics={"auc": 0.95}).version == 2
    eda.set_alias("churn", "challenger", 2, reason="try it")
    assert vic.get_version("churn", alias="challenger").version == 2
    assert vic.get_version("churn").version == 2

    with pytest.raises(PermissionDenied, match="user 'eda' has role 'editor'; this needs 'admin'"):
        eda.protect_alias("churn", "champion", 2)
    owner.protect_alias("churn", "champion", 2, reason="production")
    with pytest.raises(
        PermissionDenied,
        match=r"needs 2 approval\(s\) from distinct approvers other than 'eda', who moves it "
        r"\(an applier's own approval does not count\), has 0",
    ):
        eda.set_alias("churn", "champion", 1)
    with pytest.raises(
        PermissionDenied, match="user 'vic' has role 'viewer'; this needs 'approver'"
    ):
        vic.approve("churn", "champion", 1)
    assert ana.approve("churn", "champion", 1, comment="auc holds") == 1
    with pytest.raises(ValueError, match="'ana' already approved alias 'champion' -> version 1"):
        ana.approve("churn", "champion", 1)
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        eda.set_alias("churn", "champion", 1)
    assert bo.approve("churn", "champion", 1) == 2
    eda.set_alias("churn", "champion", 1, reason="approved twice")
    champion = vic.get_version("churn", alias="champion")
    assert (champion.version, champion.aliases) == (1, ("champion",))

    assert vic.lineage("churn", alias="champion").to_dict() == {
        "model": "churn",
        "version": 1,
        "alias": "champion",
        "artifact_sha256": first.artifact_sha256,
        "run_id": run_id,
        "experiment": "churn",
        "git_commit": "c" * 40,
        "git_branch": "main",
        "git_dirty": False,
        "git_diff_sha256": None,
        "python_version": "3.11.7",
        "environment_sha256": Environment.from_parts(
            "3.11.7", "Linux", ["scikit-learn==1.9.0"]
        ).sha256,
        "packages": ["scikit-learn==1.9.0"],
        "datasets": {"eval": "b" * 64, "train": "a" * 64},
    }
    loaded = vic.load("churn", alias="champion")
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))

    audit = vic.audit("churn")
    assert list(zip(audit["actor"], audit["action"], strict=True)) == [
        ("eda", "create_model"),
        ("eda", "register_version"),
        ("eda", "register_version"),
        ("eda", "set_alias"),
        ("owner", "protect_alias"),
        ("ana", "approve"),
        ("bo", "approve"),
        ("eda", "set_alias"),
    ]
    # The protected move names who approved it; its actor is who moved it.
    assert audit["after"].iloc[-1] == {"version": 1, "approved_by": ["ana", "bo"]}
    assert vic.verify_audit_log().to_dict() == {
        "ok": True,
        "entries": 14,  # the eight above and the six users added
        "first_bad_id": None,
        "problem": None,
        "head": audit["hash"].iloc[-1],
        "keyed_entries": 14,
        "state_problems": [],
    }
    moved_ms = int(audit["time"].iloc[-1].value // 1_000_000)
    assert vic.alias_at("churn", "champion", moved_ms - 1) is None
    assert vic.alias_at("churn", "champion", moved_ms) == 1
    found = vic.search(min_metrics={"auc": 0.92})
    assert list(zip(found["model"], found["version"], strict=True)) == [("churn", 2)]
    assert vic.list_models().to_dict("records") == [
        {
            "name": "churn",
            "description": None,
            "latest_version": 2,
            "aliases": {"challenger": 2, "champion": 1},
        }
    ]
    with pytest.raises(UnknownModelError, match="unknown model 'ghost'"):
        vic.get_version("ghost")
    with pytest.raises(UnknownModelError, match="model 'churn' has no version 9"):
        eda.set_alias("churn", "challenger", 9)
    with pytest.raises(UnknownModelError, match="model 'churn' has no alias 'prod'"):
        vic.load("churn", alias="prod")


def test_http_answers_equal_local_answers_on_one_store(registry, remote, run_id, forest):
    model, x = forest
    schema = pd.DataFrame(x, columns=["a", "b", "c"])
    remote.register("churn", model, run_id=run_id, input_schema=schema, metrics={"auc": AUC})
    registry.register("churn", b"\x08\x01", flavor="onnx", tags={"team": "risk"})
    remote.register("fraud", abs, description="absolute", metrics={"auc": 0.5})
    remote.set_alias("churn", "champion", 1, reason="first")
    registry.set_alias("churn", "challenger", 2)
    remote.set_description("fraud", "card fraud scorer")

    for name, version in (("churn", 1), ("churn", 2), ("fraud", 1)):
        assert remote.get_version(name, version) == registry.get_version(name, version)
        assert remote.lineage(name, version) == registry.lineage(name, version)
    assert remote.get_version("churn") == registry.get_version("churn")
    assert remote.lineage("churn", alias="champion") == registry.lineage("churn", alias="champion")
    assert remote.lineage("churn").version == 2
    for query in (
        {},
        {"text": "fraud"},
        {"tags": {"team": "risk"}},
        {"alias": "champion"},
        {"min_metrics": {"auc": 0.6}, "max_metrics": {"auc": 1.0}},
        {"text": "nothing like it"},
    ):
        pd.testing.assert_frame_equal(remote.search(**query), registry.search(**query))
    assert remote.search(alias="champion")["metrics"].tolist() == [{"auc": AUC}]
    pd.testing.assert_frame_equal(remote.list_models(), registry.list_models())
    pd.testing.assert_frame_equal(remote.audit(), registry.audit())
    pd.testing.assert_frame_equal(remote.audit("fraud"), registry.audit("fraud"))
    assert remote.verify_audit_log() == registry.verify_audit_log()
    expected = model.predict_proba(x)
    assert np.array_equal(remote.load("churn", alias="champion").predict_proba(x), expected)
    assert np.array_equal(registry.load("churn", 1).predict_proba(x), expected)
    assert remote.load("churn", 2) == b"\x08\x01"
    assert remote.load("fraud", trust=True)(-4) == 4


def test_an_artifact_changed_on_the_server_is_refused_with_both_hashes(registry, remote, forest):
    model, _ = forest
    version = remote.register("churn", model)
    changed = b"PK\x03\x04 not the forest"
    registry.artifacts.fs.pipe(registry.artifacts.path(version.artifact_sha256), changed)
    found = hashlib.sha256(changed).hexdigest()
    with pytest.raises(
        TamperedArtifactError,
        match=f"expected sha256 {version.artifact_sha256}, found sha256 {found}",
    ) as refused:
        remote.load("churn")
    assert (refused.value.expected, refused.value.found) == (version.artifact_sha256, found)


class _WritesAFile:
    """A pickle that creates ``path`` when it is loaded: proof of code running on load."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_the_client_checks_the_bytes_itself_before_deserialising(
    registry, remote, monkeypatch, tmp_path
):
    version = remote.register("scorer", abs)
    marker = tmp_path / "code-ran"
    evil = pickle.dumps(_WritesAFile(marker))
    stored = registry.artifacts.path(version.artifact_sha256)
    registry.artifacts.fs.pipe(stored, evil)
    sent = []

    def unchecked(sha256: str) -> bytes:
        # A server that skips its own check (or bytes changed on the way).
        sent.append(sha256)
        return registry.artifacts.fs.cat(registry.artifacts.path(sha256))

    monkeypatch.setattr(registry.artifacts, "get_bytes", unchecked)
    found = hashlib.sha256(evil).hexdigest()
    with pytest.raises(
        TamperedArtifactError,
        match=f"expected sha256 {version.artifact_sha256}, found sha256 {found}",
    ):
        remote.load("scorer", trust=True)
    assert sent == [version.artifact_sha256]
    assert not marker.exists()


def test_bad_input_over_http_names_the_field(registry, remote):
    remote.register("m", b"\x08\x01", flavor="onnx")
    with pytest.raises(ValueError, match="required_approvals"):
        remote.protect_alias("m", "champion", -1)
    with pytest.raises(ValueError, match="required_approvals: Input should be a valid integer"):
        remote.protect_alias("m", "champion", True)
    with pytest.raises(ValueError, match=r"body\.version: Input should be greater than or equal"):
        remote.set_alias("m", "champion", 0)
    with pytest.raises(ValueError, match="unknown run id 'r0'"):
        remote.register("m", b"x", flavor="onnx", run_id="r0")
    with pytest.raises(ValueError, match="flavor must be one of sklearn, onnx, pytorch, python"):
        remote.register("m", artifact_sha256="0" * 64, flavor="keras")
    with pytest.raises(FileNotFoundError, match=r"no artifact with sha256 0{64} is stored"):
        remote.register("m", artifact_sha256="0" * 64, flavor="onnx")
    with pytest.raises(ValueError, match="artifact_sha256 must be 64 lowercase hex digits"):
        remote.register("m", artifact_sha256="abc", flavor="onnx")
    with pytest.raises(ValueError, match="metric 'auc': value must be a finite number, got nan"):
        remote.register("m", b"x", flavor="onnx", metrics={"auc": float("nan")})
    with pytest.raises(ValueError, match=r"alias: .*use letters, digits, spaces and _"):
        remote.set_alias("m", "a,b", 1)
    with pytest.raises(ValueError, match="actor: over HTTP the acting user is the owner"):
        remote.approve("m", "champion", 1, actor="ana")
    with pytest.raises(ValueError, match="give a version or an alias, not both"):
        remote.load("m", 1, "champion")
    # Nothing of the refused calls reached the store.
    assert registry.list_models()["latest_version"].tolist() == [1]


def test_names_with_slashes_and_dots_travel_intact(registry, remote):
    remote.register("risk/churn", abs)
    remote.register("risk/../churn", len)
    remote.set_alias("risk/churn", "prod/eu", 1)
    assert remote.get_version("risk/churn", alias="prod/eu").model == "risk/churn"
    assert remote.load("risk/churn", alias="prod/eu", trust=True)(-2) == 2
    assert remote.load("risk/../churn", trust=True)("abc") == 3
    assert remote.lineage("risk/churn", alias="prod/eu").alias == "prod/eu"
    assert remote.alias_at("risk/churn", "prod/eu", 2**62) == 1
    assert registry.list_models()["name"].tolist() == ["risk/../churn", "risk/churn"]


def test_tokens_decide_who_acts(registry, server_url):
    _, token = add_user(registry.db, "eda", "editor")
    with pytest.raises(PermissionDenied, match="needs an API token"):
        HttpModelRegistry(server_url, token="").list_models()
    with pytest.raises(PermissionDenied, match="unknown or revoked API token"):
        HttpModelRegistry(server_url, token="olp_forged").list_models()
    editor = HttpModelRegistry(server_url, token=token)
    assert editor.register("m", b"\x08\x01", flavor="onnx").created_by == "eda"
    editor.close()


def test_open_registry_follows_the_tracking_uri(registry, server_url, monkeypatch, store_uri):
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", server_url)
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", "")
    served = open_registry()
    assert isinstance(served, HttpModelRegistry) and served.base_url == server_url
    served.register("m", abs)
    assert registry.get_version("m").version == 1
    served.close()
    monkeypatch.delenv("OPSLOOP_TRACKING_URI")
    local = open_registry(actor="ana")
    assert isinstance(local, ModelRegistry) and local.actor == "ana"
    assert local.db.uri == store_uri
    assert isinstance(open_registry(store_uri), ModelRegistry)


def test_search_over_http_sees_the_source_runs_metrics(registry, remote, tracking):
    with ActiveRun(tracking, tracking.create_run("churn")) as run:
        run.log_metric("auc", AUC)
    remote.register("churn", b"\x08\x01", flavor="onnx", run_id=run.run_id)
    remote.register("churn", b"\x08\x02", flavor="onnx", run_id=run.run_id, metrics={"auc": 0.5})
    found = remote.search(min_metrics={"auc": 0.9})
    assert found[["version", "metrics"]].values.tolist() == [[1, {"auc": AUC}]]
    pd.testing.assert_frame_equal(found, registry.search(min_metrics={"auc": 0.9}))
    assert remote.search(max_metrics={"auc": 0.6})["version"].tolist() == [2]
