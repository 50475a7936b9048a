"""``opsloop deployments set-input-detector`` through typer's runner on a store per test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.deployments import deployments_app
from opsloop.learn.robustness.portable_detector import fit_portable_detector
from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, open_database
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

runner = CliRunner()


@pytest.fixture
def deployed(store_uri, tmp_path):
    """Deployment ``api`` of a model whose signature reads ``a`` and ``b``, and a CSV of
    clean rows with a label column beside them."""
    db = open_database()
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 2)), columns=["a", "b"])
    registry = ModelRegistry(db, ArtifactStore(artifact_uri()))
    registry.register("m", LinearRegression().fit(X, X["a"]), input_schema=X)
    Deployments(db).deploy("api", [Variant("stable", "m", version=1)])
    path = tmp_path / "clean.csv"
    X.assign(label=1.0).to_csv(path, index=False)
    return db, X, path


def test_set_input_detector_fits_on_the_data_and_stores_it(deployed):
    db, X, path = deployed
    args = ["set-input-detector", "api", "--fit-on", str(path), "--features", "a,b"]
    found = runner.invoke(deployments_app, [*args, "--fpr", "0.05", "--action", "review"])
    assert found.exit_code == 0, found.output
    stored = Deployments(db).input_detector("api")
    assert stored.action == "review"
    assert stored.detector == fit_portable_detector(X, fpr=0.05)
    assert found.output.startswith("api: input detector on 2 features, fpr 0.05, threshold ")

    removed = runner.invoke(deployments_app, ["set-input-detector", "api", "--remove", "--json"])
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output) == {"detector": None, "action": "flag", "revision": 2}


def test_a_column_outside_the_signature_is_refused_in_one_line(deployed):
    _, _, path = deployed
    found = runner.invoke(
        deployments_app, ["set-input-detector", "api", "--fit-on", str(path), "--fpr", "0.05"]
    )
    assert found.exit_code == 2
    assert "detector.features: 'label' is not a column of the input signature" in found.output
    neither = runner.invoke(deployments_app, ["set-input-detector", "api"])
    assert neither.exit_code == 2 and "give --fit-on DATA" in neither.output
