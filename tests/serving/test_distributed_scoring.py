"""Batch scoring on a real two-worker LocalCluster gives the local path's outputs on the same
Parquet files: scored rows, rejected rows with their reasons, and prediction events."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from tests.clock import FakeClock
from tests.serving.batch_scoring_setup import deploy_scaled_logistic

from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
from opsloop.serving.batch_scoring import score_file

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from opsloop.serving.distributed_scoring import (  # noqa: E402
    ClusterScoringError,
    score_parquet_dask,
    worker_loads,
)

BAD_ROWS = [3, 200, 401]


@pytest.fixture
def cancer_files(registry, tmp_path):
    """The breast cancer rows as three Parquet files of several row groups, three of them
    breaking the signature; a scaled logistic regression deployed as ``api``."""
    model, X = deploy_scaled_logistic(
        registry, load_breast_cancer, model="cancer", deployment="api", variant="stable"
    )
    data = X.copy()
    data.loc[3, "mean radius"] = np.nan  # the signature allows no nulls
    data.loc[200, "mean area"] = 1e9  # far beyond the training range
    data.loc[401, "worst texture"] = np.inf
    folder = tmp_path / "in"
    folder.mkdir()
    for i, start in enumerate((0, 190, 380)):
        part = data.iloc[start : start + 190]
        part.to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=64)
    return model, X, folder


def test_scoring_on_dask_gives_the_local_paths_rows_rejections_and_events(
    dask_client, registry, cancer_files, tmp_path
):
    model, X, folder = cancer_files
    registry.db.clock = FakeClock()
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        local = score_file(runtime, "api", folder, tmp_path / "local.parquet", chunk_size=100)
        on_dask = score_parquet_dask(runtime, "api", folder, tmp_path / "dask", client=dask_client)
    finally:
        runtime.close()
    assert (on_dask.rows, on_dask.scored, on_dask.rejected) == (569, 566, 3)
    assert (local.rows, local.scored, local.rejected, local.events) == (
        on_dask.rows,
        on_dask.scored,
        on_dask.rejected,
        on_dask.events,
    )
    assert on_dask.chunks == 9  # three files of 190, 190 and 189 rows, 64 rows a row group
    got = pd.read_parquet(tmp_path / "dask").sort_values("row", ignore_index=True)
    want = pd.read_parquet(tmp_path / "local.parquet")
    assert got["request_id"].tolist() == [f"{on_dask.batch_id}-{r}" for r in want["row"]]
    pd.testing.assert_frame_equal(got.drop(columns="request_id"), want.drop(columns="request_id"))
    kept = X.drop(index=BAD_ROWS)
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.predict(kept))
    rejected = pd.read_csv(tmp_path / "dask.rejected.csv")
    pd.testing.assert_frame_equal(rejected, pd.read_csv(tmp_path / "local.rejected.csv"))
    assert rejected[["row", "field", "rule"]].values.tolist() == [
        [3, "mean radius", "null_fraction_exceeded"],
        [200, "mean area", "out_of_range"],
        [401, "worst texture", "non_finite"],
    ]
    events = read_prediction_events(registry.db, "api", role="batch")
    batches = {
        batch: frame.assign(row=frame["request_id"].str.split("-").str[1].astype(int))
        .sort_values("row", ignore_index=True)
        .drop(columns=["id", "request_id"], errors="ignore")
        for batch, frame in events.groupby(events["request_id"].str.split("-").str[0])
    }
    assert set(batches) == {local.batch_id, on_dask.batch_id}
    # The same events but for the time each took (a chunk's share of its scoring time).
    assert (batches[on_dask.batch_id]["latency_ms"] > 0).all()
    pd.testing.assert_frame_equal(
        batches[on_dask.batch_id].drop(columns="latency_ms"),
        batches[local.batch_id].drop(columns="latency_ms"),
    )
    assert batches[on_dask.batch_id]["row"].tolist() == kept.index.tolist()
    # Each worker loaded the model once, whatever number of partitions it scored.
    sha256 = registry.get_version("cancer", 1).artifact_sha256
    loads = dask_client.run(worker_loads)
    per_worker = [sum(key[0] == sha256 for key in keys) for keys in loads.values()]
    assert sum(per_worker) >= 1 and max(per_worker) == 1


def test_the_cli_scores_on_dask_into_a_parquet_directory(
    dask_client, registry, store_uri, cancer_files, tmp_path, monkeypatch
):
    import json

    from typer.testing import CliRunner

    from opsloop.cli.app import app

    folder = cancer_files[2]
    monkeypatch.setenv("OPSLOOP_STORE_URI", store_uri)
    monkeypatch.setenv("OPSLOOP_ARTIFACT_URI", str(tmp_path / "artifacts"))
    result = CliRunner().invoke(
        app,
        [
            "score",
            "api",
            str(folder),
            str(tmp_path / "out"),
            "--json",
            "--dask",
            dask_client.scheduler.address,
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (569, 566, 3)
    assert len(pd.read_parquet(tmp_path / "out")) == 566
    assert len(read_prediction_events(registry.db, "api", role="batch")) == 566


def test_one_progress_bar_follows_local_and_dask_scoring_to_every_row(
    dask_client, registry, cancer_files, tmp_path
):
    import io

    from rich.console import Console

    from opsloop.cli.score import ScoringBar

    folder = cancer_files[2]
    runtime = ServingRuntime(registry.db, registry.artifacts)
    seen = {"local": [], "dask": []}
    bars = {}
    try:
        for where in ("local", "dask"):
            with ScoringBar(str(folder), Console(file=io.StringIO())) as bar:

                def advance(step, bar=bar, where=where):
                    seen[where].append((step.rows, step.done, step.total))
                    bar.advance(step)

                if where == "local":
                    score_file(runtime, "api", folder, tmp_path / "l.parquet", on_chunk=advance)
                else:
                    score_parquet_dask(
                        runtime,
                        "api",
                        folder,
                        tmp_path / "d",
                        client=dask_client,
                        on_partition=advance,
                    )
            bars[where] = bar.task
    finally:
        runtime.close()
    # Both count rows of the Parquet input: the bar ends full, on all 569 rows.
    for where, task in bars.items():
        assert (task.completed, task.total, task.fields["rows"]) == (569, 569, 569), where
        assert task.percentage == 100.0
    # On Dask the bar moves once per partition (nine row groups of 64, 64, 62 rows), each
    # step the rows finished so far.
    steps = seen["dask"]
    assert len(steps) == 9 and all(total == 569 for _, _, total in steps)
    assert [done for _, done, _ in steps] == sorted(done for _, done, _ in steps)
    assert all(rows == done for rows, done, _ in steps)
    assert set(np.diff([0, *(rows for rows, _, _ in steps)]).tolist()) <= {64, 62, 61}


class ByValue:
    """A callable model pickled by value, so workers need not import this test module."""

    def __init__(self, function):
        self.function = function

    def __call__(self, frame):
        return self.function(frame)

    def __reduce__(self):
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            return cloudpickle.loads, (cloudpickle.dumps(self.function),)
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def kill_the_worker(frame):
    os._exit(1)


def set_allowed_failures(dask_scheduler, value: int) -> int:
    previous = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = value
    return previous


def test_a_cluster_failure_is_a_clear_error(dask_client, registry, tmp_path):
    registry.register("killer", ByValue(kill_the_worker), flavor="python")
    Deployments(registry.db).deploy("doomed", [Variant("stable", "killer", version=1)])
    folder = tmp_path / "in"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(folder / "a.parquet")
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    previous = dask_client.run_on_scheduler(set_allowed_failures, value=0)
    try:
        with pytest.raises(ClusterScoringError) as caught:
            score_parquet_dask(runtime, "doomed", folder, tmp_path / "out", client=dask_client)
    finally:
        dask_client.run_on_scheduler(set_allowed_failures, value=previous)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        runtime.close()
    message = str(caught.value)
    assert message.startswith(
        f"the Dask cluster failed while scoring {folder / 'a.parquet'} row group 0: KilledWorker:"
    )
    assert "0 of 1 partitions were scored before it" in message
    assert read_prediction_events(registry.db, "doomed").empty
