"""The dashboard's audit tables say where each change came from, over HTTP against a real
server on loopback."""

from __future__ import annotations

import socket

import httpx
from tests.server.running import running_server

from opsloop.registry import HttpModelRegistry, ModelRegistry, add_user, token_id
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.store.audit_origin import program_name


def test_the_model_and_deployment_pages_show_each_change_origin(database, artifacts):
    ModelRegistry(database, artifacts).register("m", b"x", flavor="onnx")
    Deployments(database).deploy("api", [Variant("stable", "m", version=1)])
    _, token = add_user(database, "eda", "admin")
    in_process = f"python: {program_name()} on {socket.gethostname()}"
    over_http = f"http from 127.0.0.1, token {token_id(token)}"
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        client = HttpModelRegistry(url, token=token)
        client.set_description("m", "scores")
        client.close()
        headers = {"Authorization": f"Bearer {token}"}
        model = httpx.get(f"{url}/models/m", headers=headers, timeout=60.0)
        deployment = httpx.get(f"{url}/deployments/api", headers=headers, timeout=60.0)
    assert model.status_code == 200 and deployment.status_code == 200
    assert '<th scope="col">from</th>' in model.text
    assert model.text.count(in_process) == 2  # the model's creation and its first version
    assert model.text.count(over_http) == 1  # the description
    assert deployment.text.count(in_process) == 1 and over_http not in deployment.text
