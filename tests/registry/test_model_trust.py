"""No path loads code a user did not choose to trust: real malicious skops and pickle files,
registered locally and over HTTP, loaded through the registry, the HTTP client and the CLI.

Each payload creates a marker file when it runs, so "the payload did not run" is checked on
disk, not assumed.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io
import sqlalchemy as sa
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tests.server.running import running_server
from typer.testing import CliRunner

from opsloop.cli.analysis import app as analyze_app
from opsloop.registry import HttpModelRegistry, ModelRegistry, PermissionDenied, add_user
from opsloop.registry.model_trust import UntrustedModelError, allowed_type
from opsloop.server import create_app
from opsloop.store import tables


def _text(value: str, node_id: int) -> dict:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": node_id,
    }


def evil_skops(marker) -> bytes:
    """A hand-written skops file whose root node calls ``os.system`` when it is loaded."""
    command = {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": [_text(f"touch {marker}", 2)],
        "__id__": 3,
    }
    root = {
        "__class__": "system",
        "__module__": "os",
        "__loader__": "ConstructorFromReduceNode",
        "content": command,
        "__id__": 1,
        "protocol": 2,
        "_skops_version": skops.__version__,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(root))
    return buffer.getvalue()


class _TouchesMarker:
    """A pickle that creates ``path`` when it is loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def evil_pickle(marker) -> bytes:
    return pickle.dumps(_TouchesMarker(marker))


def test_the_payload_really_runs_when_skops_trusts_the_files_own_list(tmp_path):
    # The old behaviour (trusting what get_untrusted_types reads from the file) runs it.
    marker = tmp_path / "ran"
    data = evil_skops(marker)
    assert skops.io.get_untrusted_types(data=data) == ["os.system"]
    skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    assert marker.exists()


def test_a_skops_file_calling_os_system_is_refused_locally(registry, tmp_path):
    marker = tmp_path / "ran"
    sha256 = registry.artifacts.put_bytes(evil_skops(marker))
    version = registry.register("evil", artifact_sha256=sha256, flavor="sklearn")
    with pytest.raises(UntrustedModelError) as refused:
        registry.load("evil")
    message = str(refused.value)
    assert "models:/evil/1, registered by 'owner'," in message
    assert "os.system" in message and "trusted_types=" in message
    assert not marker.exists()
    # What registration recorded is informational, never a source of trust: the loader
    # record of the old code (the file's own list as trusted types) changes nothing.
    with registry.db.write() as connection:
        connection.execute(
            tables.model_versions.update()
            .where(tables.model_versions.c.artifact_sha256 == version.artifact_sha256)
            .values(loader_json=json.dumps({"format": "skops", "trusted_types": ["os.system"]}))
        )
    with pytest.raises(UntrustedModelError, match=r"os\.system"):
        registry.load("evil")
    assert not marker.exists()


def test_common_models_load_without_trust_and_predict_the_same(registry):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + rng.normal(0, 0.5, 120) > 0).astype(int)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(kind=np.where(y, "p", "q"))
    models = {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y),
        "hgb": HistGradientBoostingClassifier(max_iter=5).fit(x, y),
        "knn": KNeighborsClassifier().fit(x, y),
        "mlp": MLPClassifier(max_iter=50, random_state=0).fit(x, y),
        "calibrated": CalibratedClassifierCV(LogisticRegression()).fit(x, y),
    }
    for name, model in models.items():
        registry.register(name, model)
        loaded = registry.load(name)
        assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x)), name
    pipeline = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["a", "b", "c"]), ("cat", OneHotEncoder(), ["kind"])]
        ),
        HistGradientBoostingClassifier(max_iter=5),
    ).fit(frame, y)
    registry.register("pipeline", pipeline)
    assert np.array_equal(registry.load("pipeline").predict(frame), pipeline.predict(frame))


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("sklearn.neighbors._kd_tree.KDTree", True),
        ("numpy.dtype", True),
        ("scipy.sparse.csr_matrix", True),
        ("opsloop.data.selection.funnel.FeatureFunnel", True),
        ("os.system", False),
        ("builtins.eval", False),
        ("subprocess.Popen", False),
        # Functions of allowed packages: one of numpy's runs a string as code.
        ("numpy.testing._private.utils.runstring", False),
        ("sklearn.base.clone", False),
        # A numpy class whose constructor writes files, and opsloop classes that are not
        # estimators (a Database opens a file where its arguments say).
        ("numpy.memmap", False),
        ("opsloop.store.database.Database", False),
        # Test modules and names that do not resolve.
        ("sklearn.utils._testing.TempMemmap", False),
        ("sklearn.no_such_module.Thing", False),
    ],
)
def test_the_allow_list(name, allowed):
    assert allowed_type(name) is allowed


def test_trusted_types_and_trust_are_the_loading_users_choice(registry, tmp_path):
    marker = tmp_path / "ran"
    sha256 = registry.artifacts.put_bytes(evil_skops(marker))
    registry.register("evil", artifact_sha256=sha256, flavor="sklearn")
    with pytest.raises(UntrustedModelError):
        registry.load("evil", trusted_types=["builtins.eval"])
    assert not marker.exists()
    registry.load("evil", trusted_types=["os.system"])
    assert marker.exists()


def test_a_pickle_loads_only_with_trust_and_the_refusal_names_its_author(registry, tmp_path):
    marker = tmp_path / "ran"
    sha256 = registry.artifacts.put_bytes(evil_pickle(marker))
    ModelRegistry(registry.db, registry.artifacts, actor="mallory").register(
        "scorer", artifact_sha256=sha256, flavor="python"
    )
    with pytest.raises(UntrustedModelError) as refused:
        registry.load("scorer")
    assert "models:/scorer/1 is a pickle (flavor 'python'), registered by 'mallory'" in str(
        refused.value
    )
    assert "only if you trust 'mallory'" in str(refused.value)
    assert not marker.exists()
    registry.load("scorer", trust=True)
    assert marker.exists()


def test_a_registry_that_refuses_pickles_or_takes_them_from_admins_only(registry):
    users = {
        name: add_user(registry.db, name, role)
        for name, role in (("root", "admin"), ("eda", "editor"))
    }
    assert set(users) == {"root", "eda"}
    refusing = ModelRegistry(registry.db, registry.artifacts, actor="root", pickle_policy="refuse")
    with pytest.raises(PermissionDenied, match="does not accept it"):
        refusing.register("f", abs)
    admins = {
        who: ModelRegistry(registry.db, registry.artifacts, actor=who, pickle_policy="admins")
        for who in ("root", "eda")
    }
    with pytest.raises(PermissionDenied, match="only admins may register one here, and 'eda'"):
        admins["eda"].register("f", abs)
    assert admins["root"].register("f", abs).created_by == "root"
    assert admins["eda"].register("g", b"\x08\x01", flavor="onnx").version == 1
    # Nothing of the refused calls was stored.
    assert registry.list_models()["name"].tolist() == ["f", "g"]
    with pytest.raises(ValueError, match="pickle_policy must be one of allow, admins, refuse"):
        ModelRegistry(registry.db, registry.artifacts, pickle_policy="sometimes")


def _upload(url: str, token: str, data: bytes) -> str:
    import hashlib

    sha256 = hashlib.sha256(data).hexdigest()
    response = httpx.put(
        f"{url}/api/v1/artifacts/{sha256}",
        content=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code in (200, 201), response.text
    return sha256


def _register(url: str, token: str, name: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/models/{name}/versions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def team(registry):
    """Tokens of an admin, an editor and a viewer on the registry's store."""
    return {
        name: add_user(registry.db, name, role)[1]
        for name, role in (("root", "admin"), ("eda", "editor"), ("vic", "viewer"))
    }


def test_over_http_an_editors_malicious_files_never_run_on_an_admin(registry, team, tmp_path):
    skops_marker, pickle_marker = tmp_path / "skops-ran", tmp_path / "pickle-ran"
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        evil = _upload(url, team["eda"], evil_skops(skops_marker))
        answer = _register(url, team["eda"], "evil", {"flavor": "sklearn", "artifact_sha256": evil})
        assert answer.status_code == 201, answer.text
        # The pickle is refused by a server whose admin did not allow pickles, even to admins.
        pickled = _upload(url, team["eda"], evil_pickle(pickle_marker))
        for who in ("eda", "root"):
            answer = _register(
                url, team[who], "scorer", {"flavor": "python", "artifact_sha256": pickled}
            )
            assert answer.status_code == 403, answer.text
            assert "does not accept it" in answer.json()["detail"]
        admin = HttpModelRegistry(url, token=team["root"])
        with pytest.raises(UntrustedModelError, match=r"registered by 'eda'.*os\.system"):
            admin.load("evil")
        with pytest.raises(PermissionDenied, match="flavor 'python' is a pickle"):
            admin.register("abs", abs)
        admin.close()
    assert registry.list_models()["name"].tolist() == ["evil"]
    assert not skops_marker.exists() and not pickle_marker.exists()


def test_a_server_allowing_pickles_takes_them_from_admins_and_loading_needs_trust(
    registry, team, tmp_path
):
    marker = tmp_path / "ran"
    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        pickled = _upload(url, team["eda"], evil_pickle(marker))
        answer = _register(
            url, team["eda"], "scorer", {"flavor": "python", "artifact_sha256": pickled}
        )
        assert answer.status_code == 403
        assert "only admins may register one here, and 'eda' is not an admin" in answer.text
        answer = _register(
            url, team["root"], "scorer", {"flavor": "python", "artifact_sha256": pickled}
        )
        assert answer.status_code == 201, answer.text
        viewer = HttpModelRegistry(url, token=team["vic"])
        with pytest.raises(UntrustedModelError, match="registered by 'root'"):
            viewer.load("scorer")
        assert not marker.exists()
        viewer.load("scorer", trust=True)
        assert marker.exists()
        viewer.close()


def test_the_cli_never_runs_a_registered_payload_without_trust(
    registry, team, tmp_path, monkeypatch
):
    skops_marker, pickle_marker = tmp_path / "skops-ran", tmp_path / "pickle-ran"
    registry = ModelRegistry(registry.db, registry.artifacts, actor="root")
    registry.register(
        "evil",
        artifact_sha256=registry.artifacts.put_bytes(evil_skops(skops_marker)),
        flavor="sklearn",
    )
    registry.register(
        "scorer",
        artifact_sha256=registry.artifacts.put_bytes(evil_pickle(pickle_marker)),
        flavor="python",
    )
    data = tmp_path / "data.csv"
    pd.DataFrame({"x": [0.0, 1.0], "y": [0, 1]}).to_csv(data, index=False)
    (tmp_path / "evil.skops").write_bytes(evil_skops(skops_marker))
    (tmp_path / "evil.pkl").write_bytes(evil_pickle(pickle_marker))
    runner = CliRunner()

    def analyze(*arguments: str):
        return runner.invoke(analyze_app, [*arguments, str(data), "--label", "y"])

    with running_server(create_app(registry.db, registry.artifacts)) as url:
        monkeypatch.setenv("OPSLOOP_TRACKING_URI", url)
        monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", team["vic"])
        for reference, expected in (
            ("models:/evil/1", "registered by 'root', names types"),
            ("models:/scorer/1", "is a pickle (flavor 'python'), registered by 'root'"),
            ("runs:/none", "no registered model version comes from run none"),
            (str(tmp_path / "evil.skops"), "os.system"),
            (str(tmp_path / "evil.pkl"), "is a pickle"),
        ):
            result = analyze(reference)
            assert result.exit_code == 2, result.output
            assert expected in result.output
            assert len(result.output.strip().splitlines()) == 1
    assert not skops_marker.exists() and not pickle_marker.exists()
    # The lookup itself is fine: the database holds both versions untouched.
    with registry.db.read() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(tables.model_versions))
        assert count.scalar() == 2
