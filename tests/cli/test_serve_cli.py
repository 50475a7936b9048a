"""``opsloop serve`` and ``opsloop server --serve`` as processes: they answer predictions for
the store's deployments (``serve`` also on a control plane's URL), and a deployment that does
not exist stops ``serve`` in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.serving.served_models import classifier
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore, Database
from opsloop.store.installation_token import installation_token_path
from opsloop.store.location import artifact_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]
SOURCE = str(Path(__file__).resolve().parents[2] / "src")
RECORD = {"age": 40, "income": 52_000.0}


@pytest.fixture
def deployed(store_uri):
    """The store with ``credit`` version 1 deployed as ``api``; the model."""
    db = Database(store_uri)
    model, frame = classifier()
    ModelRegistry(db, ArtifactStore(artifact_uri())).register("credit", model, input_schema=frame)
    Deployments(db).deploy("api", [Variant("stable", "credit", version=1)])
    db.dispose()
    return model


def _started(*arguments: str, health: str = "/v2/health/live") -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "PYTHONPATH": SOURCE}
    process = subprocess.Popen(
        [sys.executable, "-m", "opsloop", *arguments, "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}{health}", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the server did not answer within 90 s"
        time.sleep(0.05)


@pytest.mark.parametrize("command", [("serve", "api"), ("server", "--serve")])
def test_the_data_plane_process_answers_with_the_deployed_model(deployed, command):
    process, url = _started(*command)
    try:
        token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
        answer = httpx.post(
            f"{url}/v1/deployments/api/predict", json=[RECORD], headers=token, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == deployed.predict(pd.DataFrame([RECORD])).tolist()
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("command", [("serve", "api"), ("server", "--serve")])
def test_the_data_plane_announces_each_shadows_share_of_the_copies(deployed, store_uri, command):
    db = Database(store_uri)
    Deployments(db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "credit", version=1, role="shadow", weight=0, shadow_sample=0.125),
        ],
        strategy="shadow",
    )
    db.dispose()
    process, _ = _started(*command)
    process.terminate()
    output = process.communicate(timeout=30)[0].decode()
    assert "deployment api: shadow copy answers 12.5% of the request copies, in a" in output


def test_serving_an_unknown_deployment_is_one_line_and_exit_code_2(store_uri):
    environment = {**os.environ, "PYTHONPATH": SOURCE}
    found = subprocess.run(
        [sys.executable, "-m", "opsloop", "serve", "ghost", "--port", "5998"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 2
    assert found.stderr.strip() == "error: no deployment named 'ghost'"


def test_serve_on_a_control_planes_url_answers_and_a_refused_token_is_one_line(deployed):
    """``opsloop serve --server URL`` against an ``opsloop server`` process on the store:
    it answers with the deployed model; with a token the server refuses it stops in one
    line with exit code 2."""
    control, control_url = _started("server", health="/api/v1/health")
    try:
        process, url = _started("serve", "api", "--server", control_url)
        try:
            token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
            answer = httpx.post(
                f"{url}/v1/deployments/api/predict", json=[RECORD], headers=token, timeout=60
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == deployed.predict(pd.DataFrame([RECORD])).tolist()
        finally:
            process.terminate()
            process.wait(timeout=30)
        refused = subprocess.run(
            [sys.executable, "-m", "opsloop", "serve", "--server", control_url,
             "--token-env", "WORKER_TOKEN", "--port", "5997"],
            env={**os.environ, "PYTHONPATH": SOURCE, "WORKER_TOKEN": "olp_not-a-token"},
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        control.terminate()
        control.wait(timeout=30)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: {control_url}: unknown or revoked API token"
