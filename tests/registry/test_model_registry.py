"""Registering, aliasing, approving, loading, lineage and discovery."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.ensemble import RandomForestClassifier

from opsloop.registry import ModelRegistry, PermissionDenied, UnknownModelError, add_user
from opsloop.store import Database, TamperedArtifactError, tables
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.records import DatasetInput


@pytest.fixture
def forest():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y), x


def test_sklearn_versions_round_trip_through_skops(registry, forest):
    model, x = forest
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    v = registry.register(
        "churn",
        model,
        input_schema=frame,
        output_type="int",
        metrics={"auc": 0.9},
        tags={"team": "risk"},
        description="first forest",
    )
    assert (v.model, v.version, v.flavor, v.created_by) == ("churn", 1, "sklearn", "owner")
    assert v.signature["output"] == "int"
    assert list(v.signature["inputs"]["columns"]) == ["a", "b", "c"]
    assert (v.metrics, v.tags) == ({"auc": 0.9}, {"team": "risk"})
    data = registry.artifacts.get_bytes(v.artifact_sha256)
    assert hashlib.sha256(data).hexdigest() == v.artifact_sha256 and v.artifact_size == len(data)
    assert data[:2] == b"PK"  # a skops zip, not a pickle
    loaded = registry.load("churn", 1)
    assert (loaded.predict(x) == model.predict(x)).all()
    assert registry.register("churn", model).version == 2


def test_the_signature_keeps_the_columns_in_the_models_order(registry, forest):
    # A model fitted on a matrix, an ONNX graph or a torch module takes its inputs by
    # position: the stored signature is the only record of which column goes where.
    model, x = forest
    frame = pd.DataFrame(x, columns=["zeta", "alpha", "mid"])
    registry.register("churn", model, input_schema=frame)
    stored = registry.get_version("churn", 1).signature["inputs"]
    assert list(stored["columns"]) == ["zeta", "alpha", "mid"]


def test_a_period_input_is_served_as_its_text(registry):
    # A schema reads a Period column as datetime, but a JSON request carries '2024Q2':
    # the signature keeps such a column a string, so those requests are accepted.
    from opsloop.data.schema import Schema
    from opsloop.serving.record_validation import checked_records

    quarters = pd.Series(pd.period_range("2020Q1", periods=40, freq="Q"))
    objects = pd.Series([pd.Period("2024Q1", "Q")] * 39 + [None], dtype=object)
    frame = pd.DataFrame({"q": quarters, "o": objects, "x": np.arange(40.0)})
    registry.register("periods", b"weights", flavor="onnx", input_schema=frame)
    stored = registry.get_version("periods", 1).signature["inputs"]
    assert stored["columns"]["q"] == {"type": "string", "required": True, "max_null_fraction": 0}
    assert stored["columns"]["o"]["type"] == "string"
    assert stored["columns"]["x"]["type"] == "float"
    served = checked_records([{"q": "2024Q2", "o": "2024Q1", "x": 1.0}], Schema.from_dict(stored))
    assert served.to_dict("records") == [{"q": "2024Q2", "o": "2024Q1", "x": 1.0}]


def test_a_tampered_artifact_is_refused_before_loading(registry):
    v = registry.register("f", abs)
    registry.artifacts.fs.pipe(registry.artifacts.path(v.artifact_sha256), b"not a pickle")
    found = hashlib.sha256(b"not a pickle").hexdigest()
    with pytest.raises(
        TamperedArtifactError, match=f"expected sha256 {v.artifact_sha256}, found sha256 {found}"
    ):
        registry.load("f")


def test_aliases_move_and_their_history_answers_which_version_at_time_t(registry):
    for _ in range(3):
        registry.register("m", b"onnx", flavor="onnx")
    registry.set_alias("m", "champion", 1, reason="first")
    registry.set_alias("m", "champion", 3, reason="better")
    assert registry.get_version("m", alias="champion").version == 3
    assert registry.get_version("m", 3).aliases == ("champion",)
    assert registry.get_version("m", 1).aliases == ()
    entries = registry.audit("m")
    moves = entries[entries["action"] == "set_alias"]
    assert moves["before"].tolist() == [None, {"version": 1}]
    assert moves["after"].tolist() == [{"version": 1}, {"version": 3}]
    assert moves["reason"].tolist() == ["first", "better"]
    first_at, second_at = (int(t.value // 1_000_000) for t in moves["time"])
    assert registry.alias_at("m", "champion", first_at - 1) is None
    assert registry.alias_at("m", "champion", first_at) in (1, 3)
    assert registry.alias_at("m", "champion", second_at) == 3


def test_protected_aliases_need_distinct_approvers(registry):
    add_user(registry.db, "owner", "admin")
    add_user(registry.db, "ana", "approver")
    add_user(registry.db, "bo", "approver")
    add_user(registry.db, "cy", "editor")
    registry.register("m", b"x", flavor="onnx")
    registry.register("m", b"y", flavor="onnx")
    registry.protect_alias("m", "champion", 2, reason="production")
    with pytest.raises(
        PermissionDenied,
        match=r"needs 2 approval\(s\) from distinct approvers other than 'owner', who moves it "
        r"\(an applier's own approval does not count\), has 0$",
    ):
        registry.set_alias("m", "champion", 2)
    assert registry.approve("m", "champion", 2, actor="ana", comment="auc up") == 1
    with pytest.raises(ValueError, match="'ana' already approved alias 'champion' -> version 2"):
        registry.approve("m", "champion", 2, actor="ana")
    with pytest.raises(
        PermissionDenied, match="user 'cy' has role 'editor'; this needs 'approver'"
    ):
        registry.approve("m", "champion", 2, actor="cy")
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        registry.set_alias("m", "champion", 2)
    # An approval of another version does not count for this one.
    registry.approve("m", "champion", 1, actor="bo")
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        registry.set_alias("m", "champion", 2)
    assert registry.approve("m", "champion", 2, actor="bo") == 2
    registry.set_alias("m", "champion", 2, actor="cy", reason="approved")
    assert registry.get_version("m", alias="champion").version == 2
    # The approvals were used up: moving away and back needs new ones.
    registry.approve("m", "champion", 1, actor="ana")
    registry.set_alias("m", "champion", 1)
    with pytest.raises(PermissionDenied, match="has 0"):
        registry.set_alias("m", "champion", 2)
    with pytest.raises(PermissionDenied, match="user 'cy' has role 'editor'; this needs 'admin'"):
        registry.protect_alias("m", "champion", 0, actor="cy")
    with pytest.raises(PermissionDenied, match="'zed' is not a registered user of this store"):
        registry.register("m", b"z", flavor="onnx", actor="zed")


def test_the_audit_log_is_a_verifiable_chain_and_tampering_is_found(registry):
    registry.register("m", b"x", flavor="onnx")
    registry.set_alias("m", "champion", 1, reason="go")
    registry.register("m", b"y", flavor="onnx")
    verified = registry.verify_audit_log().to_dict()
    assert verified == {
        "ok": True,
        "entries": 4,
        "first_bad_id": None,
        "problem": None,
        "head": registry.audit()["hash"].iloc[-1],
        "keyed_entries": 4,
        "state_problems": [],
    }
    log = tables.audit_log
    with registry.db.write() as connection:
        connection.execute(log.update().where(log.c.id == 3).values(reason="rewritten"))
    result = registry.verify_audit_log()
    assert (result.ok, result.first_bad_id, result.entries) == (False, 3, 2)
    assert "entry 3 was changed, or written without this audit key" in result.problem
    with registry.db.write() as connection:
        connection.execute(log.delete().where(log.c.id == 3))
    result = registry.verify_audit_log()
    assert (result.ok, result.first_bad_id) == (False, 4)
    assert "an entry was removed or inserted" in result.problem


def test_lineage_reaches_commit_packages_and_data_in_one_query(registry, tracking):
    environment = Environment.from_parts("3.11.7", "Linux", ["scikit-learn==1.9.0"])
    run_id = tracking.create_run(
        "churn", code=CodeVersion("c" * 40, "main", False, None), environment=environment
    )
    tracking.log_dataset(run_id, DatasetInput("train", "a" * 64, 10, 2))
    tracking.log_dataset(run_id, DatasetInput("eval", "b" * 64, 5, 2))
    registry.register("churn", abs, run_id=run_id)
    registry.set_alias("churn", "champion", 1)
    statements = []
    sa.event.listen(registry.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    lineage = registry.lineage("churn", alias="champion")
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 1
    assert lineage.to_dict() == {
        "model": "churn",
        "version": 1,
        "alias": "champion",
        "artifact_sha256": registry.get_version("churn", 1).artifact_sha256,
        "run_id": run_id,
        "experiment": "churn",
        "git_commit": "c" * 40,
        "git_branch": "main",
        "git_dirty": False,
        "git_diff_sha256": None,
        "python_version": "3.11.7",
        "environment_sha256": environment.sha256,
        "packages": ["scikit-learn==1.9.0"],
        "datasets": {"eval": "b" * 64, "train": "a" * 64},
    }


def test_discovery_by_text_tag_alias_and_metric(registry):
    registry.register("churn", b"1", flavor="onnx", metrics={"auc": 0.8}, tags={"team": "risk"})
    registry.register(
        "churn", b"2", flavor="onnx", metrics={"auc": 0.9}, description="Gradient boosting"
    )
    registry.register("fraud", b"3", flavor="onnx", metrics={"auc": 0.95}, tags={"team": "risk"})
    registry.set_description("fraud", "card fraud scorer")
    registry.set_alias("churn", "champion", 2)

    def found(**kwargs):
        frame = registry.search(**kwargs)
        return list(zip(frame["model"], frame["version"], strict=True))

    assert found(text="boosting") == [("churn", 2)]
    assert found(text="FRAUD") == [("fraud", 1)]
    assert found(tags={"team": "risk"}) == [("fraud", 1), ("churn", 1)]
    assert found(alias="champion") == [("churn", 2)]
    assert found(min_metrics={"auc": 0.85}, max_metrics={"auc": 0.92}) == [("churn", 2)]
    assert found(text="churn", tags={"team": "risk"}) == [("churn", 1)]
    listing = registry.list_models()
    assert listing.to_dict("records") == [
        {"name": "churn", "description": None, "latest_version": 2, "aliases": {"champion": 2}},
        {"name": "fraud", "description": "card fraud scorer", "latest_version": 1, "aliases": {}},
    ]


def test_bad_input_gets_clear_errors(registry):
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        registry.get_version("nope")
    registry.register("m", b"x", flavor="onnx")
    with pytest.raises(UnknownModelError, match="model 'm' has no version 7"):
        registry.set_alias("m", "champion", 7)
    with pytest.raises(UnknownModelError, match="model 'm' has no alias 'prod'"):
        registry.load("m", alias="prod")
    with pytest.raises(ValueError, match="unknown run id 'r0'"):
        registry.register("m", b"x", flavor="onnx", run_id="r0")
    with pytest.raises(
        ValueError, match="flavor must be one of sklearn, onnx, pytorch, python, got 'keras'"
    ):
        registry.register("m", artifact_sha256="0" * 64, flavor="keras")
    with pytest.raises(FileNotFoundError, match=r"no artifact with sha256 0{64} is stored"):
        registry.register("m", artifact_sha256="0" * 64, flavor="onnx")
    with pytest.raises(ValueError, match="metric 'auc': value must be a finite number, got nan"):
        registry.register("m", b"x", flavor="onnx", metrics={"auc": float("nan")})
    with pytest.raises(TypeError, match="cannot tell how to save a int"):
        registry.register("m", 3)
    with pytest.raises(TypeError, match="input_schema must be a Schema, a DataFrame or a schema"):
        registry.register("m", b"x", flavor="onnx", input_schema=[1])


def test_registering_an_existing_artifact_by_hash(registry):
    sha = registry.artifacts.put_bytes(json.dumps({"w": 1}).encode())
    v = registry.register("m", artifact_sha256=sha, flavor="onnx")
    assert registry.load("m", v.version) == b'{"w": 1}'


def test_search_rows_equal_each_version_read_alone_in_two_queries(registry):
    for index in range(12):
        registry.register(
            f"m{index % 3}",
            f"w{index}".encode(),
            flavor="onnx",
            metrics={"auc": index / 20, "loss": 1 - index / 20} if index % 4 else None,
            tags={"team": f"t{index % 2}", "n": index},
            description=f"version {index}",
        )
    registry.set_alias("m1", "champion", 2)
    registry.set_alias("m1", "backup", 2)
    statements = []
    sa.event.listen(registry.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    frame = registry.search(text="version")
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 2
    assert len(frame) == 12
    for row in frame.to_dict("records"):
        alone = registry.get_version(row["model"], row["version"])
        assert row["metrics"] == alone.metrics
        assert row["tags"] == alone.tags
        assert row["aliases"] == alone.aliases
        assert (row["flavor"], row["description"], row["artifact_sha256"], row["run_id"]) == (
            alone.flavor,
            alone.description,
            alone.artifact_sha256,
            alone.run_id,
        )
    assert frame.loc[frame["model"].eq("m1") & frame["version"].eq(2), "aliases"].item() == (
        "backup",
        "champion",
    )


def test_out_of_range_numbers_and_nul_are_refused_naming_the_field(registry, acting):
    registry.register("m", b"x", flavor="onnx", actor="owner")
    owner = acting("owner")
    # Each was an OverflowError (a 500 over HTTP) or text PostgreSQL refuses.
    with pytest.raises(ValueError, match="version"):
        owner.set_alias("m", "champion", 2**40)
    with pytest.raises(ValueError, match="required_approvals"):
        owner.protect_alias("m", "champion", 2**31)
    with pytest.raises(ValueError, match="at_ms"):
        owner.alias_at("m", "champion", 10**19)
    with pytest.raises(ValueError, match="description"):
        owner.set_description("m", "a\x00b")
    with pytest.raises(ValueError, match="reason"):
        owner.set_alias("m", "champion", 1, reason="x" * 10_001)
    assert registry.get_version("m").aliases == ()
    assert registry.list_models()["description"].tolist() == [None]


def test_audit_of_a_model_holds_its_entries_only(registry):
    registry.register("m", b"x", flavor="onnx")
    registry.register("m2", b"y", flavor="onnx")
    registry.register("m/x", b"z", flavor="onnx")
    registry.set_alias("m", "prod/eu", 1)
    registry.register("m", b"w", flavor="onnx")
    log = registry.audit("m")
    assert log["entity"].tolist() == [
        "model:m",
        "model:m/version:1",
        "model:m/alias:prod/eu",
        "model:m/version:2",
    ]
    assert registry.audit("m/x")["entity"].tolist() == ["model:m/x", "model:m/x/version:1"]
    assert len(registry.audit()) == 8
    # a name holding what follows a model's name in its entities would make them ambiguous
    for name in ("m/version:3", "m/alias:prod"):
        with pytest.raises(ValueError, match=r"model name .* may not contain"):
            registry.register(name, b"v", flavor="onnx")
    assert registry.list_models()["name"].tolist() == ["m", "m/x", "m2"]


def _register_concurrently(uri: str, artifacts, name: str, workers: int) -> list[int]:
    """Register ``workers`` versions of ``name`` at once, each worker on its own database
    connection (its own engine), all released together by a barrier."""
    barrier = threading.Barrier(workers)
    databases = [Database(uri) for _ in range(workers)]

    def register(index: int) -> int:
        registry = ModelRegistry(databases[index], artifacts, actor="owner")
        barrier.wait()
        return registry.register(name, f"model {index}".encode(), flavor="onnx").version

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(register, range(workers)))
    finally:
        for database in databases:
            database.dispose()


@pytest.mark.parametrize("existing", [False, True], ids=["new-model", "existing-model"])
def test_concurrent_registrations_get_distinct_gap_free_versions(registry, existing):
    first = [registry.register("race", b"first", flavor="onnx").version] if existing else []
    versions = _register_concurrently(registry.db.uri, registry.artifacts, "race", 8)
    assert sorted(first + versions) == list(range(1, len(first) + 9))
    listed = registry.search("race")["version"].tolist()
    assert sorted(listed) == list(range(1, len(first) + 9))
    assert registry.audit("race")["action"].tolist().count("create_model") == 1
    assert registry.verify_audit_log().ok


def test_search_sees_the_source_runs_latest_metrics_and_registered_ones_win(registry, tracking):
    with ActiveRun(tracking, tracking.create_run("churn")) as run:
        run.log_metrics({"auc": 0.7, "loss": 0.5}, step=0)
        run.log_metrics({"auc": 0.9}, step=3)  # the latest auc: the highest step
    registry.register("churn", b"1", flavor="onnx", run_id=run.run_id)
    registry.register("churn", b"2", flavor="onnx", run_id=run.run_id, metrics={"auc": 0.8})
    registry.register("churn", b"3", flavor="onnx")

    def found(**kwargs):
        frame = registry.search(**kwargs)
        return dict(zip(frame["version"], frame["metrics"], strict=True))

    assert found(min_metrics={"auc": 0.85}) == {1: {"auc": 0.9, "loss": 0.5}}
    assert found(max_metrics={"auc": 0.85}) == {2: {"auc": 0.8, "loss": 0.5}}
    assert found(min_metrics={"auc": 0.75}, max_metrics={"loss": 0.5}) == {
        2: {"auc": 0.8, "loss": 0.5},
        1: {"auc": 0.9, "loss": 0.5},
    }
    assert found(min_metrics={"f1": 0.0}) == {}
    assert found()[3] == {}
    # a metric the run logs after registration counts as soon as it is logged
    with ActiveRun(tracking, run.run_id) as again:
        again.log_metric("auc", 0.95, step=4)
    assert sorted(found(min_metrics={"auc": 0.93})) == [1]
    assert registry.get_version("churn", 2).metrics == {"auc": 0.8}


def test_register_refuses_overlong_or_nul_text_and_stores_nothing(registry):
    with pytest.raises(ValueError, match="description: NUL characters are not allowed"):
        registry.register("m", b"\x08\x01", flavor="onnx", description="a\x00b")
    with pytest.raises(ValueError, match="reason: 10001 characters; the limit is 10000"):
        registry.register("m", b"\x08\x01", flavor="onnx", reason="x" * 10_001)
    assert registry.list_models().empty


def test_the_longest_model_and_alias_names_fit_their_audit_entity(registry):
    # model: + 250 + /alias: + 250 = 513 characters; PostgreSQL enforces the column's length.
    name, alias = "m" * 250, "a" * 250
    registry.register(name, b"\x08\x01", flavor="onnx")
    registry.set_alias(name, alias, 1)
    entities = registry.audit(name)["entity"].tolist()
    assert f"model:{name}/alias:{alias}" in entities
    assert max(len(entity) for entity in entities) == 513
    assert registry.verify_audit_log().ok
