"""models:/ and runs:/ references resolve in the library, locally and over HTTP alike."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from opsloop.registry import HttpModelRegistry, UnresolvedReferenceError
from opsloop.registry.model_trust import UntrustedModelError


@pytest.fixture
def populated(registry, tracking):
    """Versions 1-3 of ``credit`` (2 and 3 from one run, 3 registered last), champion at 2."""
    run_id = tracking.create_run("training")
    registry.register("credit", b"v1", flavor="onnx")
    registry.register("credit", b"v2", flavor="onnx", run_id=run_id)
    registry.register("credit", b"v3", flavor="onnx", run_id=run_id)
    registry.set_alias("credit", "champion", 2)
    return run_id


@pytest.fixture(params=["local", "http"])
def either(request, registry, populated):
    if request.param == "local":
        yield registry
        return
    from tests.server.running import running_server

    from opsloop.server import create_app

    with running_server(create_app(registry.db, registry.artifacts, allow_pickle=True)) as url:
        client = HttpModelRegistry(url, token="")
        yield client
        client.close()


def test_references_name_versions_by_alias_number_and_run(either, populated):
    assert either.resolve("models:/credit@champion").version == 2
    assert either.resolve("models:/credit/1").version == 1
    found = either.resolve(f"runs:/{populated}")
    assert (found.model, found.version, found.run_id) == ("credit", 3, populated)
    assert either.load_reference("models:/credit@champion") == b"v2"
    assert either.load_reference(f"runs:/{populated}") == b"v3"


def test_references_that_name_nothing_say_why(either):
    with pytest.raises(UnresolvedReferenceError, match="no registered model version comes from"):
        either.resolve("runs:/0123abcd")
    with pytest.raises(ValueError, match="give models:/NAME/VERSION or models:/NAME@ALIAS"):
        either.resolve("models:/credit")
    with pytest.raises(ValueError, match="must start with models:/"):
        either.resolve("credit/1")
    with pytest.raises(ValueError, match="names a run's artifact"):
        either.resolve("runs:/0123abcd/model.onnx")
    with pytest.raises(ValueError, match="unknown model 'ghost'"):
        either.resolve("models:/ghost@champion")


def test_a_reference_loads_by_the_trust_rules(either, registry):
    registry.register("pickled", abs, flavor="python")
    with pytest.raises(UntrustedModelError, match="pickle"):
        either.load_reference("models:/pickled/1")
    assert either.load_reference("models:/pickled/1", trust=True)(-2) == 2
    tree = DecisionTreeClassifier(random_state=0).fit(np.array([[0.0], [1.0]]), [0, 1])
    registry.register("tree", tree)
    loaded = either.load_reference("models:/tree/1")
    assert loaded.predict(np.array([[1.0]])).tolist() == [1]


def test_the_loader_record_is_a_registry_method(either, registry):
    assert either.loader_record("credit", 2) == {"format": "onnx"}
    assert either.loader_record("credit", alias="champion") == {"format": "onnx"}
    registry.register("fn", abs, flavor="python")
    assert either.loader_record("fn") == {"format": "pickle"}
