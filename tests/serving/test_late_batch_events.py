"""A batch keeps the variants it looked up when it started: if its deployment is retired
while it runs, the events of the rows it scores after the retire carry the generation of the
definition that scored them and are kept with the retired deployment's history, never with
a deployment created later under the name. The retire comes between two chunks (or two Dask
partitions) from the progress callback, so the order is fixed without sleeping."""

from __future__ import annotations

import pytest
from tests.clock import FakeClock
from tests.serving.served_models import classifier

from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.batch_scoring import score_file
from opsloop.serving.prediction_events import StoreEventSink

ROWS = 10


@pytest.fixture
def loans(registry, tmp_path):
    """``api`` re-created once (generation 1) on a logistic regression, and ten loan rows
    as a CSV file and as a Parquet file of three row groups (4, 4 and 2 rows)."""
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    deployments = Deployments(registry.db)
    variants = [Variant("stable", "credit", version=1)]
    deployments.deploy("api", variants)
    deployments.retire("api")
    deployments.deploy("api", variants)
    assert deployments.get("api").generation == 1
    rows = frame.head(ROWS)
    rows.to_csv(tmp_path / "in.csv", index=False)
    rows.to_parquet(tmp_path / "in.parquet", index=False, row_group_size=4)
    registry.db.clock = FakeClock()
    return deployments, variants, tmp_path


def _retire_once(deployments, variants, steps: list):
    """A progress callback that retires and re-creates ``api`` after the first step."""

    def on_step(step) -> None:
        steps.append(step.rows)
        if len(steps) == 1:
            deployments.retire("api", reason="replaced during the batch")
            deployments.deploy("api", variants)

    return on_step


def _scored_with_a_retire(registry, loans, score):
    """``score(runtime, on_step)`` on a runtime writing to the store, ``api`` retired and
    re-created after its first step: what it returned, the sink and the steps' rows."""
    deployments, variants, _ = loans
    sink = StoreEventSink(registry.db, sampler=None)
    runtime = ServingRuntime(registry.db, registry.artifacts, sink=sink)
    steps: list[int] = []
    try:
        done = score(runtime, _retire_once(deployments, variants, steps))
    finally:
        runtime.close()
    return done, sink, steps


def _batch_events(db, name: str, batch_id: str) -> list[str]:
    found = events_of(db, name)
    return sorted(found.loc[found["request_id"].str.startswith(batch_id), "request_id"].tolist())


def test_a_retire_during_a_batch_homes_its_later_rows_with_the_retired_deployment(registry, loans):
    deployments, _, folder = loans
    done, sink, steps = _scored_with_a_retire(
        registry,
        loans,
        lambda runtime, on_step: score_file(
            runtime, "api", folder / "in.csv", folder / "out.csv", chunk_size=4, on_chunk=on_step
        ),
    )
    assert steps == [4, 8, 10] and done.events == ROWS
    assert deployments.get("api").generation == 2
    ids = sorted(f"{done.batch_id}-{row}" for row in range(ROWS))
    # The first chunk was moved by the retire; the two after it were written after it and
    # went to the same history by their generation (1, retired by the name's 2nd retire).
    assert sink.moved == ROWS - 4
    assert _batch_events(registry.db, "api/retired-2", done.batch_id) == ids
    assert _batch_events(registry.db, "api", done.batch_id) == []
    assert _batch_events(registry.db, "api/retired-1", done.batch_id) == []


def test_a_batch_on_the_standing_deployment_stays_under_its_name(registry, loans):
    folder = loans[2]
    sink = StoreEventSink(registry.db, sampler=None)
    runtime = ServingRuntime(registry.db, registry.artifacts, sink=sink)
    try:
        done = score_file(runtime, "api", folder / "in.csv", folder / "out.csv", chunk_size=4)
    finally:
        runtime.close()
    assert sink.moved == 0
    assert len(_batch_events(registry.db, "api", done.batch_id)) == ROWS


def test_a_retire_during_a_dask_batch_homes_its_later_partitions(dask_client, registry, loans):
    pytest.importorskip("distributed")
    from opsloop.serving.distributed_scoring import score_parquet_dask

    folder = loans[2]
    done, sink, steps = _scored_with_a_retire(
        registry,
        loans,
        lambda runtime, on_step: score_parquet_dask(
            runtime,
            "api",
            folder / "in.parquet",
            folder / "dask",
            client=dask_client,
            on_partition=on_step,
        ),
    )
    assert done.events == ROWS and len(steps) == 3 and steps[-1] == ROWS
    # The partition that finished first (4 or 2 rows) was written before the retire.
    assert sink.moved == ROWS - steps[0]
    ids = sorted(f"{done.batch_id}-{row}" for row in range(ROWS))
    assert _batch_events(registry.db, "api/retired-2", done.batch_id) == ids
    assert _batch_events(registry.db, "api", done.batch_id) == []
