"""HttpTrackingStore against a real server: the same frames, runs and errors as the local store."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.server.running import running_server

from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.tracking import UnknownExperimentError, UnknownRunError, get_run, start_run
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.http_store import ClosedClientError, HttpTrackingStore, ServerConnection
from opsloop.tracking.metric_buffer import MetricBatch


@pytest.fixture
def served(store, tmp_path):
    """(local store, HTTP client) on one database: what one writes, the other must read."""
    with running_server(create_app(store.db, store.artifacts)) as url:
        client = HttpTrackingStore(url)
        yield store, client
        client.close()


def test_search_through_the_server_returns_the_local_frame_exactly(served):
    local, remote = served
    environment = Environment.from_parts("3.11.7", "Linux", ["numpy==2.4.0"])
    parent = remote.create_run("churn", name="parent", start_ms=1_000)
    rng = np.random.default_rng(3)
    for index in range(12):
        run_id = remote.create_run(
            "churn",
            name=f"r{index}",
            parent_run_id=parent if index % 3 == 0 else None,
            tags={"team": "risk"} if index % 2 else None,
            code=CodeVersion("ab" * 20, "main", bool(index % 4 == 1), None) if index % 5 else None,
            environment=environment if index % 2 else None,
            start_ms=2_000 + index,
        )
        keys = ("auc", "loss")[: 1 + index % 2]
        remote.write_batch(
            run_id,
            metrics=MetricBatch(
                keys,
                rng.random(len(keys)),
                np.zeros(len(keys), np.int64),
                np.full(len(keys), 5_000, np.int64),
            ),
            params={"model": ("rf", "gbm")[index % 2]} if index % 4 else {"seed": index},
        )
        if index % 3:
            remote.end_run(run_id, "FINISHED", end_ms=9_000 + index)
    for filter, order in (
        (None, None),
        ("metrics.auc > 0.3 and (params.model = 'rf' or tags.team = 'risk')", ["metrics.auc"]),
        ("metrics.auc > 5", None),
    ):
        expected = local.search_runs("churn", filter, order)
        found = remote.search_runs("churn", filter, order)
        pd.testing.assert_frame_equal(found, expected)
    assert len(remote.search_runs(["churn"], max_results=3)) == 3


def test_histories_and_runs_read_back_alike(served):
    local, remote = served
    run_id = remote.create_run("e")
    remote.write_batch(
        run_id,
        metrics=MetricBatch(
            ("x", "y", "x"), np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1]), np.array([10, 11, 12])
        ),
        params={"lr": 0.1},
        tags={"stage": "dev"},
    )
    pd.testing.assert_frame_equal(
        remote.metric_histories([run_id]), local.metric_histories([run_id])
    )
    pd.testing.assert_frame_equal(
        remote.metric_history(run_id, "x"), local.metric_history(run_id, "x")
    )
    assert remote.get_run(run_id).to_dict() == local.get_run(run_id).to_dict()
    assert remote.get_run(run_id).metric_history("x")["value"].tolist() == [1.0, 3.0]
    assert remote.list_experiments()["name"].tolist() == ["e"]


def test_server_errors_come_back_as_the_local_exceptions(served):
    _, remote = served
    with pytest.raises(UnknownRunError, match="unknown run id 'nope'"):
        remote.get_run("nope")
    with pytest.raises(UnknownRunError):
        remote.write_batch("nope", params={"a": 1})
    with pytest.raises(UnknownExperimentError, match="unknown experiment 'ghost'"):
        remote.search_runs("ghost")
    run_id = remote.create_run("e")
    remote.write_batch(run_id, params={"depth": 3})
    with pytest.raises(ValueError, match=f"param 'depth' of run {run_id} is already '3'"):
        remote.write_batch(run_id, params={"depth": 4})
    with pytest.raises(ValueError, match=r"metrics\.auc compares with a number, got 'x'"):
        remote.search_runs("e", "metrics.auc > 'x'")
    with pytest.raises(ValueError, match=r"status: .*must be one of RUNNING, FINISHED"):
        remote.end_run(run_id, "DONE")
    with pytest.raises(ValueError, match="max_results"):
        remote.search_runs("e", max_results=0)


def test_every_buffered_value_arrives_through_the_server(served, monkeypatch):
    local, remote = served
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", remote.base_url)
    with start_run("bulk", capture=False, flush_interval_s=0.05) as run:
        for step in range(20_000):
            run.log_metric("loss", step / 20_000, step=step)
        run.set_tag("done", "yes")
    history = local.metric_history(run.run_id, "loss")
    assert len(history) == 20_000
    assert np.array_equal(history["value"].to_numpy(), np.arange(20_000) / 20_000)
    assert get_run(run.run_id).tags == {"done": "yes"}


def test_tokens_decide_who_the_run_belongs_to(store, tmp_path):
    database = Database(store.db.uri)
    _, token = add_user(database, "eda", "editor")
    with running_server(create_app(database, ArtifactStore(tmp_path / "a"))) as url:
        with pytest.raises(PermissionError, match="needs an API token"):
            HttpTrackingStore(url, token="").create_run("e")
        with pytest.raises(PermissionError, match="unknown or revoked API token"):
            HttpTrackingStore(url, token="olp_forged").create_run("e")
        client = HttpTrackingStore(url, token=token)
        run_id = client.create_run("e", user="someone-else")
        assert client.get_run(run_id).user == "eda"
    database.dispose()


class LosesTheFirstBatchReply(httpx.HTTPTransport):
    """Carries requests to the real server, but loses the answer to the first batch, as a
    connection cut after the server committed it would."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/batch") and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadError("connection lost after the server answered", request=request)
        return response


def test_a_batch_whose_reply_was_lost_is_resent_and_stored_once(served):
    local, _ = served
    with running_server(create_app(local.db, local.artifacts)) as url:
        transport = LosesTheFirstBatchReply()
        client = HttpTrackingStore(url, transport=transport)
        run_id = client.create_run("e")
        batch = MetricBatch(("x",) * 3, np.arange(3.0), np.arange(3), np.full(3, 1_000))
        client.write_batch(run_id, metrics=batch, params={"a": 1})
        assert transport.lost == 1
        assert local.metric_history(run_id, "x")["step"].tolist() == [0, 1, 2]
        # Without a retry window the loss is the caller's to see, and nothing is resent.
        once = HttpTrackingStore(url, transport=LosesTheFirstBatchReply(), retry_s=0)
        with pytest.raises(httpx.ReadError):
            once.write_batch(run_id, metrics=batch)
        assert len(local.metric_history(run_id, "x")) == 6
        client.close()
        once.close()


def test_a_closed_client_refuses_requests_naming_itself(served):
    """close() is final: a request after it is refused at once, naming the client, and a
    metric batch is not retried against a pool that will never open again."""
    _, remote = served
    run_id = remote.create_run("churn")
    remote.close()
    closed = (
        f"HttpTrackingStore({remote.base_url!r}) is closed: create a new client to send requests"
    )
    with pytest.raises(ClosedClientError) as raised:
        remote.get_run(run_id)
    assert str(raised.value) == closed
    batch = MetricBatch(("auc",), np.array([0.5]), np.zeros(1, np.int64), np.ones(1, np.int64))
    with pytest.raises(ClosedClientError) as raised:
        remote.write_batch(run_id, metrics=batch)
    assert str(raised.value) == closed
    remote.close()  # closing again does nothing

    connection = ServerConnection(remote.base_url)
    assert connection.call("GET", f"/runs/{run_id}").json()["experiment"] == "churn"
    connection.close()
    with pytest.raises(ClosedClientError, match=r"^ServerConnection\('http://127\.0\.0\.1:"):
        connection.call("GET", f"/runs/{run_id}")
