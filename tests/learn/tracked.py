"""Reading back what a training tool logged to a real run: metric histories and artifact bytes."""

from __future__ import annotations

import pytest

from opsloop.store import ArtifactStore
from opsloop.store.location import artifact_uri


@pytest.fixture
def tracking_home(tmp_path, monkeypatch):
    """Runs go to an empty store under ``tmp_path``; no store or server from the environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("OPSLOOP_HOME", str(home))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    return home


def history(stored, key: str) -> tuple[list[int], list[float]]:
    """Steps and values of one metric of a stored run, in step order."""
    frame = stored.metric_history(key)
    return frame["step"].tolist(), frame["value"].tolist()


def artifact_bytes(stored, name: str) -> bytes:
    """The content of the artifact ``name`` of a stored run, checked against its sha256."""
    records = {record.path: record for record in stored.artifacts}
    if name not in records:
        raise KeyError(f"run has no artifact {name!r}; it has {sorted(records)}")
    return ArtifactStore(artifact_uri()).get_bytes(records[name].sha256)
