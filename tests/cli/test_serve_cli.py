"""``opsloop serve`` and ``opsloop server --serve`` as processes: they answer predictions for
the store's deployments (``serve`` also on a control plane's URL), and a deployment that does
not exist stops ``serve`` in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
import typer
from tests.server.exposition import metric_value
from tests.server.running import started_process
from tests.serving.served_models import classifier
from tests.store.databases import isolated_home, postgres_store_database, store_uri
from typer.testing import CliRunner

from opsloop.cli.data_plane import serve_command
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


@pytest.mark.parametrize("command", [("serve", "api"), ("server", "--serve")])
def test_the_data_plane_process_answers_with_the_deployed_model(deployed, command):
    process, url = started_process(*command)
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
        process.wait(timeout=120)


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
    process, _ = started_process(*command)
    process.terminate()
    output = process.communicate(timeout=120)[0].decode()
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
    control, control_url = started_process("server", health="/api/v1/health")
    try:
        process, url = started_process("serve", "api", "--server", control_url)
        try:
            token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
            answer = httpx.post(
                f"{url}/v1/deployments/api/predict", json=[RECORD], headers=token, timeout=60
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == deployed.predict(pd.DataFrame([RECORD])).tolist()
            # Without --serve the control plane answers no prediction itself.
            direct = httpx.post(
                f"{control_url}/v1/deployments/api/predict", json=[RECORD], headers=token
            )
            assert direct.status_code == 404, direct.text
        finally:
            process.terminate()
            process.wait(timeout=120)
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
        control.wait(timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: {control_url}: unknown or revoked API token"


def _gauge_ages(url: str) -> list[float | None]:
    """The age of the monitoring gauges that two scrapes in a row of ``url`` show."""
    token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
    ages = []
    for _ in range(2):
        scraped = httpx.get(f"{url}/metrics", headers=token, timeout=60)
        assert scraped.status_code == 200, scraped.text
        ages.append(metric_value(scraped.text, "opsloop_monitoring_gauges_age_seconds", {}))
    return ages


def test_serve_on_a_url_reads_the_monitoring_gauges_as_often_as_gauge_refresh_says(deployed):
    """Each scrape of a worker whose gauges are read at most every microsecond reads them
    afresh (age 0); by default (15 s) the second scrape shows the first one's reading."""
    control, control_url = started_process("server", health="/api/v1/health")
    try:
        for arguments, expected in ((("--gauge-refresh", "0.000001"), "fresh"), ((), "kept")):
            process, url = started_process("serve", "api", "--server", control_url, *arguments)
            try:
                first, second = _gauge_ages(url)
            finally:
                process.terminate()
                process.wait(timeout=120)
            assert first == 0.0
            assert second == 0.0 if expected == "fresh" else second > 0.0
    finally:
        control.terminate()
        control.wait(timeout=120)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--server", "http://127.0.0.1:1", "--gauge-refresh", "0"], "must be a number > 0, got 0"),
        (["--server", "http://127.0.0.1:1", "--gauge-refresh", "-2.5"], "got -2.5"),
        (["--gauge-refresh", "5"], "needs --server"),
    ],
)
def test_a_gauge_refresh_that_is_not_positive_or_has_no_server_is_refused(
    store_uri, arguments, message
):
    app = typer.Typer()
    app.command("serve")(serve_command)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert result.output.startswith("error: --gauge-refresh: ")
    assert message in result.output


def _answers_per_worker(directory: Path) -> dict[int, dict[str, float]]:
    """Per worker process (by pid), the answers each variant gave, read from the files its
    counters write in the multiprocess directory."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[int, dict[str, float]] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        values = MmapedDict(str(path), read_mode=True)
        try:
            for key, value, _ in values.read_all_values():
                _metric, sample, labels, _ = json.loads(key)
                if sample == "opsloop_predictions_total" and labels["role"] == "primary":
                    per_variant = counts.setdefault(pid, {})
                    per_variant[labels["variant"]] = per_variant.get(labels["variant"], 0) + value
        finally:
            values.close()
    return counts


def _send_until_each_worker_answered(url: str, variant: str, directory: Path) -> list[str]:
    """Send requests, 8 at a time on fresh connections, until two worker processes each
    answered with ``variant``; the variant of every answer (at most 2,000)."""
    token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}

    def one(_) -> str:
        answer = httpx.post(
            f"{url}/v1/deployments/api/predict", json=[RECORD], headers=token, timeout=60
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["variant"]

    answered: list[str] = []
    with ThreadPoolExecutor(8) as pool:
        while len(answered) < 2_000:
            answered += list(pool.map(one, range(40)))
            workers = [c for c in _answers_per_worker(directory).values() if c.get(variant)]
            if len(workers) >= 2:
                return answered
    raise AssertionError(f"fewer than two workers answered with {variant} in 2,000 requests")


def test_two_workers_count_every_request_once_and_follow_a_weight_change(
    deployed, store_uri, tmp_path, monkeypatch
):
    """``opsloop serve --workers 2``: both worker processes answer; one scrape of /metrics,
    whichever worker gives it, counts every request sent; after a switch the store
    acknowledged, no request reaches the variant whose weight became 0, in either worker."""
    directory = tmp_path / "counts"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    db = Database(store_uri)
    deployments = Deployments(db)

    def switch(blue: float) -> None:
        variants = [
            Variant("blue", "credit", version=1, weight=blue),
            Variant("green", "credit", version=1, role="candidate", weight=1.0 - blue),
        ]
        deployments.deploy("api", variants, strategy="blue_green")

    switch(1.0)
    process, url = started_process("serve", "api", "--workers", "2")
    try:
        before = _send_until_each_worker_answered(url, "blue", directory)
        assert set(before) == {"blue"}
        switch(0.0)  # returned: the change is committed
        after = _send_until_each_worker_answered(url, "green", directory)
        assert set(after) == {"green"}
        per_worker = _answers_per_worker(directory)
        assert sum(c.get("blue", 0) for c in per_worker.values()) == len(before)
        token = {"Authorization": f"Bearer {installation_token_path().read_text()}"}
        for _ in range(4):  # scrapes land on either worker; each counts all requests
            scraped = httpx.get(f"{url}/metrics", headers=token, timeout=60).text
            labels = {"deployment": "api", "role": "primary"}
            blue = metric_value(scraped, "opsloop_predictions_total", {**labels, "variant": "blue"})
            green = metric_value(
                scraped, "opsloop_predictions_total", {**labels, "variant": "green"}
            )
            assert (blue, green) == (len(before), len(after))
    finally:
        process.terminate()
        process.wait(timeout=60)
        db.dispose()


def test_two_server_workers_answer_both_planes_and_follow_a_weight_change_made_over_http(
    deployed, store_uri, tmp_path, monkeypatch
):
    """``opsloop server --serve --workers 2``: both worker processes answer predictions;
    a weight change made through the server's own REST API (so answered by one of its
    workers) is followed by both, no request reaching the variant whose weight became 0;
    one scrape of /metrics, whichever worker gives it, counts every request sent."""
    from opsloop.serving import HttpDeployments

    directory = tmp_path / "counts"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    db = Database(store_uri)
    Deployments(db).deploy(
        "api",
        [
            Variant("blue", "credit", version=1, weight=1.0),
            Variant("green", "credit", version=1, role="candidate", weight=0.0),
        ],
        strategy="blue_green",
    )
    db.dispose()
    # Two fresh interpreters import the app and load the variant: on a loaded machine,
    # more than the default minute and a half.
    process, url = started_process(
        "server", "--serve", "--workers", "2", health="/api/v1/health", deadline_s=300
    )
    token = installation_token_path().read_text()
    control = HttpDeployments(url, token=token)
    try:
        before = _send_until_each_worker_answered(url, "blue", directory)
        assert set(before) == {"blue"}
        switched = control.switch("api")  # returned: the change is committed
        assert [(v.name, v.weight) for v in switched.variants] == [("blue", 0.0), ("green", 1.0)]
        after = _send_until_each_worker_answered(url, "green", directory)
        assert set(after) == {"green"}
        per_worker = _answers_per_worker(directory)
        assert len(per_worker) == 2
        assert sum(c.get("blue", 0) for c in per_worker.values()) == len(before)
        assert sum(c.get("green", 0) for c in per_worker.values()) == len(after)
        labels = {"deployment": "api", "role": "primary"}
        for _ in range(4):  # scrapes land on either worker; each counts all requests
            scraped = httpx.get(
                f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=60
            ).text
            blue = metric_value(scraped, "opsloop_predictions_total", {**labels, "variant": "blue"})
            green = metric_value(
                scraped, "opsloop_predictions_total", {**labels, "variant": "green"}
            )
            assert (blue, green) == (len(before), len(after))
    finally:
        control.close()
        process.terminate()
        process.wait(timeout=60)


def test_server_workers_on_a_store_in_memory_are_refused(monkeypatch):
    """Each worker would open an empty in-memory store of its own: refused in one line,
    before anything listens."""
    from opsloop.cli.tracking import server_command

    monkeypatch.setenv("OPSLOOP_STORE_URI", "sqlite://")
    app = typer.Typer()
    app.command("server")(server_command)
    result = CliRunner().invoke(app, ["--serve", "--workers", "2", "--port", "5999"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: workers: an in-memory store is each process's own")
    result = CliRunner().invoke(app, ["--workers", "0"])
    assert (result.exit_code, result.output.strip()) == (
        2,
        "error: --workers: must be a whole number >= 1, got 0",
    )
