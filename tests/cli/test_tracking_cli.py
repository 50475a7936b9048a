"""``opsloop runs|models|users|server`` through typer's runner on a store per test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import typer
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.tracking import models_app, runs_app, server_command
from opsloop.cli.users import users_app
from opsloop.registry import ModelRegistry, add_user, authenticate, token_id
from opsloop.store import open_database
from opsloop.store.installation_token import installation_token_path
from opsloop.tracking import start_run
from opsloop.tracking.capture import current_user

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]

app = typer.Typer()
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(users_app, name="users")
app.command("server")(server_command)
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def runs(store_uri):
    ids = {}
    for name, depth, auc in (("shallow", 3, 0.75), ("deep", 8, 0.9)):
        with start_run("churn", name=name, capture=False) as run:
            run.log_params({"depth": depth, "seed": 1})
            run.log_metric("auc", auc - 0.1, step=0)
            run.log_metric("auc", auc, step=1)
        ids[name] = run.run_id
    return ids


def test_runs_list_filters_and_prints_json(runs):
    result = invoke("runs", "list", "churn", "--filter", "metrics.auc > 0.8", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], r["metrics.auc"], r["params.depth"]) for r in rows] == [("deep", 0.9, "8")]
    table = invoke("runs", "list", "--order-by", "metrics.auc", "--max-results", "1")
    assert table.exit_code == 0 and "1 run(s)" in table.output and runs["shallow"] in table.output


def test_runs_show_and_compare(runs):
    shown = json.loads(invoke("runs", "show", runs["deep"], "--json").output)
    assert shown["params"] == {"depth": "8", "seed": "1"} and shown["metrics"] == {"auc": 0.9}
    table = invoke("runs", "show", runs["deep"])
    assert table.exit_code == 0 and "depth" in table.output
    compared = invoke("runs", "compare", runs["shallow"], runs["deep"], "--json")
    document = json.loads(compared.output)
    assert document["metrics"] == {runs["shallow"]: {"auc": 0.75}, runs["deep"]: {"auc": 0.9}}
    assert "depth *" in invoke("runs", "compare", runs["shallow"], runs["deep"]).output
    missing = invoke("runs", "show", "nope")
    assert missing.exit_code == 2 and "unknown run id 'nope'" in missing.output


def test_users_add_prints_a_working_token_once(store_uri):
    result = invoke("users", "add", "ana", "--role", "approver")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    user = authenticate(open_database(), token)
    assert (user.name, user.role) == ("ana", "approver")
    again = invoke("users", "add", "ana")
    assert again.exit_code == 2 and "user 'ana' already exists" in again.output
    assert invoke("users", "add", "bo", "--role", "boss").exit_code == 2
    assert "approver" in invoke("users", "list").output


def test_models_alias_show_list_and_approve(runs, store_uri):
    registry = ModelRegistry()
    registry.register("churn", b"\x08\x01", flavor="onnx", run_id=runs["deep"])
    registry.register("churn", b"\x08\x02", flavor="onnx")
    assert invoke("models", "alias", "churn", "challenger", "1").exit_code == 0
    shown = json.loads(invoke("models", "show", "churn", "--alias", "challenger", "--json").output)
    assert shown["version"]["version"] == 1 and shown["lineage"]["run_id"] == runs["deep"]
    listed = json.loads(invoke("models", "list", "--json").output)
    assert [(m["name"], m["latest_version"]) for m in listed] == [("churn", 2)]
    refused = invoke("models", "approve", "churn", "champion", "2")
    assert refused.exit_code == 2 and "approver role" in refused.output
    add_user(open_database(), current_user(), "approver")
    approved = invoke("models", "approve", "churn", "champion", "2", "--comment", "ok")
    assert approved.exit_code == 0 and "1 approval(s) for champion -> version 2" in approved.output
    missing = invoke("models", "show", "ghost")
    assert missing.exit_code == 2 and "unknown model 'ghost'" in missing.output


def test_server_refuses_a_public_address_without_tokens(store_uri):
    result = invoke("server", "--host", "0.0.0.0", "--port", "5999")
    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output


def test_the_server_module_starts_embedded_and_answers(store_uri, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "OPSLOOP_STORE_URI": store_uri}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsloop.server",
            "--port",
            str(port),
            "--allowed-hosts",
            "ops.internal, ops.example",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the server did not answer within 90 s"
            time.sleep(0.05)
        # No users: only a request with the installation token it wrote acts as the owner.
        refused = httpx.post(f"{url}/runs", json={"experiment": "served"})
        assert refused.status_code == 401 and "installation token" in refused.text
        token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
        created = httpx.post(f"{url}/runs", json={"experiment": "served"}, headers=token)
        assert created.status_code == 201
        run = httpx.get(f"{url}/runs/{created.json()['run_id']}", headers=token).json()
        assert run["experiment"] == "served" and run["user"] == current_user()
        # --allowed-hosts adds names to the loopback ones; any other Host is refused.
        named = httpx.get(f"{url}/experiments", headers={**token, "Host": "ops.example"})
        assert named.status_code == 200
        other = httpx.get(f"{url}/experiments", headers={**token, "Host": "attacker.example"})
        assert other.status_code == 400 and "--allowed-hosts" in other.text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_users_tokens_revoke_rotate_disable(store_uri):
    added = invoke("users", "add", "ana", "--role", "editor", "--expires-days", "30")
    assert added.exit_code == 0, added.output
    first = added.output.strip().splitlines()[-1]
    assert f"API token {token_id(first)}, shown once" in added.output
    second = invoke("users", "token", "ana").output.strip().splitlines()[-1]
    listed = invoke("users", "tokens", "ana")
    assert listed.exit_code == 0 and token_id(first) in listed.output
    assert token_id(second) in listed.output
    revoked = invoke("users", "revoke", token_id(first))
    assert revoked.exit_code == 0 and f"revoked API token {token_id(first)}" in revoked.output
    assert authenticate(open_database(), first) is None
    assert authenticate(open_database(), second).name == "ana"
    again = invoke("users", "revoke", token_id(first))
    assert again.exit_code == 2 and "no active API token with id" in again.output
    rotated = invoke("users", "rotate", "ana").output.strip().splitlines()[-1]
    assert authenticate(open_database(), second) is None
    assert authenticate(open_database(), rotated).name == "ana"
    assert invoke("users", "disable", "ana").exit_code == 0
    assert authenticate(open_database(), rotated) is None
    shown = invoke("users", "list")
    assert shown.exit_code == 0 and "ana" in shown.output and "editor" in shown.output
    assert invoke("users", "enable", "ana").exit_code == 0
    assert authenticate(open_database(), rotated).name == "ana"
    bad = invoke("users", "add", "bo", "--expires-days", "-1")
    assert bad.exit_code == 2 and "--expires-days must be positive, got -1.0" in bad.output


def test_runs_list_pages_with_the_token_it_prints_on_stderr(store_uri):
    for index, auc in enumerate((0.8, 0.9, 0.8, 0.9, 0.8)):
        with start_run("paged", name=f"r{index}", capture=False) as run:
            run.log_metric("auc", auc)
    pages, arguments = [], ["runs", "list", "paged", "--order-by", "metrics.auc DESC"]
    token = None
    while True:
        extra = ["--page-token", token] if token else []
        result = CliRunner().invoke(app, [*arguments, "--max-results", "2", "--json", *extra])
        assert result.exit_code == 0, result.output
        pages.append([row["name"] for row in json.loads(result.stdout)])
        lines = [line for line in result.stderr.splitlines() if line.startswith("next page:")]
        if not lines:
            break
        token = lines[0].removeprefix("next page: --page-token ")
    # By hand: AUC 0.9 (r3, r1: newest first), then 0.8 (r4, r2, r0).
    assert pages == [["r3", "r1"], ["r4", "r2"], ["r0"]]
    refused = invoke(*arguments, "--page-token", "garbage")
    assert refused.exit_code == 2 and "page_token" in refused.output
