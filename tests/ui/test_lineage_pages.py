"""What a run recorded and where its model went, on the dashboard's pages over HTTP against
a real server on loopback: the run page's artifacts, code, data and environment versions,
and the lineage from the data's hash and the commit to the deployment serving the version,
on the version's page and the deployment's."""

from __future__ import annotations

import hashlib
import re

import pytest
from tests.server.running import running_server
from tests.ui.test_pages import session

from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.tracking import LocalTrackingStore
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.records import DatasetInput

COMMIT = "0123456789abcdef" * 2 + "01234567"
DIFF = "d1" * 32
DATA = "e2" * 32
ENVIRONMENT = Environment.from_parts("3.11.7", "Linux-x86_64", ("pandas==2.2.3", "numpy==2.4.0"))
WEIGHTS = b"weights of the model"


@pytest.fixture
def served(database, artifacts):
    tracking = LocalTrackingStore(database, artifacts)
    run_id = tracking.create_run(
        "churn",
        name="trial",
        code=CodeVersion(COMMIT, "main", True, DIFF),
        environment=ENVIRONMENT,
    )
    tracking.log_dataset(run_id, DatasetInput("train", DATA, 120, 4))
    tracking.log_artifact(run_id, b"a small report", "notes.txt")
    tracking.end_run(run_id)
    ModelRegistry(database, artifacts).register("m", WEIGHTS, flavor="onnx", run_id=run_id)
    Deployments(database).deploy("api", [Variant("stable", "m", version=1)])
    app = create_app(database, artifacts)
    with running_server(app) as url:
        yield url, app.state.installation_token, run_id


def section(page: str, title: str) -> str:
    """The page's text from the heading ``title`` to the next heading, tags dropped and
    spaces collapsed."""
    part = page.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)).strip()


def test_the_run_page_shows_its_artifacts_code_data_and_environment(served):
    url, token, run_id = served
    with session(url, token) as client:
        page = client.get(f"/runs/{run_id}").text
    notes = hashlib.sha256(b"a small report").hexdigest()
    assert section(page, "Artifacts") == f"path size (bytes) sha256 notes.txt 14 {notes}"
    assert section(page, "Code") == (
        f"commit {COMMIT} branch main uncommitted changes yes diff sha256 {DIFF}"
    )
    assert section(page, "Data") == f"name rows columns sha256 train 120 4 {DATA}"
    assert section(page, "Environment") == (
        f"python 3.11.7 platform Linux-x86_64 sha256 {ENVIRONMENT.sha256} 2 packages "
        "numpy==2.4.0 pandas==2.2.3"
    )


def test_lineage_runs_from_the_data_and_commit_to_the_serving_deployment(served):
    url, token, run_id = served
    with session(url, token) as client:
        version = client.get("/models/m/versions/1").text
        deployment = client.get("/deployments/api").text
    lineage = (
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", version.split('<ol class="lineage">')[1]))
        .split(" Aliases ")[0]
        .strip()
    )
    weights = hashlib.sha256(WEIGHTS).hexdigest()
    assert lineage == (
        f"Data: train {DATA[:12]} Code: commit {COMMIT[:12]} on main with uncommitted changes "
        f"Environment: Python 3.11.7, 2 packages Run: {run_id[:8]} in churn "
        f"Artifact: {weights[:12]} Served by: api (stable, primary, weight 1)"
    )
    assert f'<a href="/runs/{run_id}">' in version and '<a href="/deployments/api">' in version
    assert section(deployment, "Lineage of what it serves") == (
        f"variant version run commit data stable m/1 {run_id[:8]} {COMMIT[:12]} train {DATA[:12]}"
    )
