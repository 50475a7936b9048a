"""A reference's classes are kept beside its bytes (migration 0030), so that logging
probabilities without ``classes=`` names their columns without reading the reference's
sample: the classes read so equal those of the reference read whole, for a reference set
explicitly and for one registered with the version a deployment serves; a reference whose
row has no classes (written by an earlier version) is read whole; and the migration fills
the rows stored before it from their bytes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.store.databases import postgres_store_database, store_uri

from opsloop.data.training_reference import build_reference, encode_reference
from opsloop.errors import NotFoundError
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import get_reference, reference_classes, set_reference
from opsloop.registry import ModelRegistry
from opsloop.serving.deployments import Deployments, Variant
from opsloop.store import ArtifactStore, tables
from opsloop.store.database import Database
from opsloop.store.migrate import alembic_config, current_revision, head_revision, upgrade_to_head

from .conftest import T0

__all__ = ["postgres_store_database", "store_uri"]

NAMES = np.array(["malignant", "benign"])


@pytest.fixture
def store(store_uri, clock):
    db = Database(store_uri, clock=clock)
    yield db
    db.dispose()


@pytest.fixture
def fitted(cancer):
    """Breast cancer with its classes named, a model of it and its probabilities."""
    frame, target = cancer
    names = NAMES[target]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame, names)
    return frame, names, model, model.predict_proba(frame)


def _set(db, deployment, fitted):
    frame, names, model, probabilities = fitted
    set_reference(
        db,
        deployment,
        frame,
        predictions=model.predict(frame),
        probabilities=probabilities,
        labels=names,
        classes=list(model.classes_),
    )


def _statements(db):
    """The SQL statements run on ``db``'s engine while the block runs."""
    seen: list[str] = []

    def record(connection, cursor, statement, *_):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(db.engine, "before_cursor_execute", record)


def test_probabilities_are_named_by_the_classes_read_without_the_sample(store, fitted):
    frame, _, model, probabilities = fitted
    _set(store, "cancer", fitted)
    assert reference_classes(store, "cancer") == get_reference(store, "cancer").scores.classes
    assert reference_classes(store, "cancer") == ("benign", "malignant")
    seen, stop = _statements(store)
    try:
        log_predictions(
            store,
            "cancer",
            frame.iloc[:100],
            model.predict(frame.iloc[:100]),
            probabilities=probabilities[:100],
            at_ms=T0,
        )
    finally:
        stop()
    with store.read() as connection:
        outputs = connection.execute(sa.select(tables.prediction_events.c.output_json)).scalars()
        named = {tuple(json.loads(text)["classes"]) for text in outputs}
    assert named == {("benign", "malignant")}
    references = [s for s in seen if "monitoring_references" in s]
    assert references and all("scored_classes" in s for s in references)
    assert not [s for s in references if "monitoring_references.reference" in s]


def test_a_row_without_its_classes_is_read_whole(store, fitted):
    """A reference another version stored after the migration keeps no classes column:
    its classes are those of its bytes."""
    _set(store, "cancer", fitted)
    set_reference(store, "plain", fitted[0].iloc[:50])
    with store.write() as connection:
        connection.execute(tables.monitoring_references.update().values(scored_classes=None))
    assert reference_classes(store, "cancer") == ("benign", "malignant")
    assert reference_classes(store, "plain") is None
    with pytest.raises(NotFoundError, match="deployment 'nowhere' has no monitoring reference"):
        reference_classes(store, "nowhere")


def test_a_registered_reference_gives_its_classes_too(store, fitted, tmp_path):
    frame, names, model, probabilities = fitted
    scored = build_reference(frame, labels=names, probabilities=probabilities,
                             classes=list(model.classes_))  # fmt: skip
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), actor="ana")
    registry.register("scored", b"m1", flavor="onnx", training_reference=encode_reference(scored))
    registry.register("plain", b"m2", flavor="onnx", training_data=frame)
    deployments = Deployments(store, actor="ana")
    deployments.deploy("scored-api", [Variant("stable", "scored", version=1)])
    deployments.deploy("plain-api", [Variant("stable", "plain", version=1)])
    assert reference_classes(store, "scored-api") == ("benign", "malignant")
    assert reference_classes(store, "plain-api") is None
    # A reference set for the deployment wins over the registered one.
    set_reference(store, "plain-api", frame.iloc[:50], labels=names[:50],
                  probabilities=probabilities[:50, 1], classes=["benign", "malignant"])  # fmt: skip
    assert reference_classes(store, "plain-api") == ("benign", "malignant")


def test_migration_0030_fills_the_classes_of_the_references_stored_before(store, fitted, tmp_path):
    frame, names, model, probabilities = fitted
    _set(store, "cancer", fitted)
    set_reference(store, "plain", frame.iloc[:50])
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), actor="ana")
    scored = build_reference(
        frame.iloc[:80],
        labels=names[:80],
        probabilities=probabilities[:80],
        classes=list(model.classes_),
    )
    registry.register("scored", b"m1", flavor="onnx", training_reference=encode_reference(scored))
    registry.register("plain", b"m2", flavor="onnx", training_data=frame.iloc[:50])

    def kept(connection):
        return {
            "set": dict(
                connection.execute(
                    sa.select(
                        tables.monitoring_references.c.deployment,
                        tables.monitoring_references.c.scored_classes,
                    )
                ).all()
            ),
            "registered": sorted(
                connection.execute(sa.select(tables.version_references.c.scored_classes)).scalars()
            ),
        }

    with store.read() as connection:
        written = kept(connection)
    assert written == {
        "set": {"cancer": '["benign","malignant"]', "plain": "null"},
        "registered": ['["benign","malignant"]', "null"],
    }
    with store.write() as connection:
        command.downgrade(alembic_config(connection), "0029")
        assert current_revision(connection) == "0029"
        columns = {c["name"] for c in sa.inspect(connection).get_columns("monitoring_references")}
        assert "scored_classes" not in columns
    with store.write() as connection:
        upgrade_to_head(connection)
        assert current_revision(connection) == head_revision()
        assert kept(connection) == written
    assert reference_classes(store, "cancer") == ("benign", "malignant")
