"""runs:/RUN_ID/PATH reads a run's artifact, checked against its sha256, locally and over HTTP.

Tests taking ``tracking_target`` run on the local store and through a real server.
"""

from __future__ import annotations

import hashlib

import pytest

from opsloop.store import ArtifactStore
from opsloop.store.location import artifact_uri
from opsloop.tracking import load_artifact, start_run


def test_a_reference_reads_the_bytes_the_run_logged(tracking_target):
    with start_run("e", capture=False) as run:
        run.backend.log_artifact(run.run_id, b"auc,0.91\n", "eval/scores.csv")
        run.backend.log_artifact(run.run_id, b"other", "notes.txt")
    assert load_artifact(f"runs:/{run.run_id}/eval/scores.csv") == b"auc,0.91\n"
    assert load_artifact(f"runs:/{run.run_id}/notes.txt") == b"other"
    with pytest.raises(ValueError, match=r"logged no artifact 'gone\.txt'.*eval/scores\.csv"):
        load_artifact(f"runs:/{run.run_id}/gone.txt")
    with pytest.raises(ValueError, match="give runs:/RUN_ID/PATH"):
        load_artifact(f"runs:/{run.run_id}")
    with pytest.raises(ValueError, match="must start with runs:/"):
        load_artifact(f"models:/{run.run_id}/notes.txt")


def test_changed_bytes_are_refused(tracking_target):
    data = b"weights"
    with start_run("e", capture=False) as run:
        run.backend.log_artifact(run.run_id, data, "model.bin")
    sha256 = hashlib.sha256(data).hexdigest()
    with open(ArtifactStore(artifact_uri()).path(sha256), "wb") as handle:
        handle.write(b"swapped")
    found = hashlib.sha256(b"swapped").hexdigest()
    with pytest.raises(ValueError, match=f"expected sha256 {sha256}, found sha256 {found}"):
        load_artifact(f"runs:/{run.run_id}/model.bin")
