"""``opsloop models edit``: a tree model's override registered from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from sklearn.datasets import load_diabetes
from sklearn.tree import DecisionTreeRegressor
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.tracking import models_app
from opsloop.registry import ModelRegistry
from opsloop.store import ArtifactStore, Database
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

app = typer.Typer()
app.add_typer(models_app, name="models")


@pytest.fixture
def registry(store_uri):
    database = Database(store_uri)
    yield ModelRegistry(database, ArtifactStore(artifact_uri()))
    database.dispose()


def test_edit_registers_the_override_and_says_what_it_did(registry):
    X, y = load_diabetes(return_X_y=True)
    tree = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, y)
    registry.register("diabetes", tree)
    result = CliRunner().invoke(
        app, ["models", "edit", "diabetes", "--value", "50", "--where", "x2 > 0.05"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(registry.get_version("diabetes", 2).tags["edit"])
    assert result.output.strip() == (
        f"diabetes: version 2 answers 50.0 where x2 > 0.05 (edited from models:/diabetes/1; "
        f"{record['leaves_overridden']} leaves overridden, {record['nodes_added']} nodes "
        "added in 1 tree(s))"
    )
    edited = registry.load("diabetes", 2)
    inside = X.astype(np.float32)[:, 2] > np.float32(0.05)
    assert (edited.predict(X[inside]) == 50.0).all()
    np.testing.assert_array_equal(edited.predict(X[~inside]), tree.predict(X[~inside]))


def test_edit_refusals_are_one_line(registry):
    X, y = load_diabetes(return_X_y=True)
    registry.register("diabetes", DecisionTreeRegressor(max_depth=2).fit(X, y))
    both = CliRunner().invoke(app, ["models", "edit", "diabetes", "--value", "1"])
    assert both.exit_code == 2
    assert "give the region as --where RULE or --leaf NODE" in both.output
    bad = CliRunner().invoke(
        app, ["models", "edit", "diabetes", "--value", "1", "--where", "x2 > 1 or x3 < 0"]
    )
    assert bad.exit_code == 2
    assert "'or' is not allowed" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
