"""start_run / ActiveRun: buffering, background flushes, statuses, nesting, resuming.

Tests taking ``tracking_target`` run on the local store and through a real server.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from opsloop.tracking import compare_runs, get_run, search_runs, start_run
from opsloop.tracking.active_run import ActiveRun
from opsloop.tracking.metric_buffer import MetricBatch


def test_a_run_ends_finished_with_everything_written(tracking_target):
    with start_run("churn", name="rf", tags={"team": "risk"}) as run:
        run.log_params({"model": "rf", "depth": 3})
        run.set_tag("stage", "dev")
        for step in range(2_500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"auc": 0.91, "f1": 0.5}, step=2_499)
    stored = get_run(run.run_id)
    assert stored.status == "FINISHED" and stored.end_ms >= stored.start_ms
    assert stored.params == {"depth": "3", "model": "rf"}
    assert stored.tags == {"stage": "dev", "team": "risk"}
    assert stored.metrics == {"auc": 0.91, "f1": 0.5, "loss": 1.0 / 2_500}
    history = stored.metric_history("loss")
    assert len(history) == 2_500
    assert history["value"].tolist() == [1.0 / (s + 1) for s in range(2_500)]


def test_failed_and_killed_blocks_set_the_status(tracking_target):
    with pytest.raises(RuntimeError, match="boom"), start_run("e") as failed:
        failed.log_metric("x", 1.0)
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), start_run("e") as killed:
        raise KeyboardInterrupt
    assert get_run(failed.run_id).status == "FAILED"
    assert get_run(failed.run_id).metrics == {"x": 1.0}
    assert get_run(killed.run_id).status == "KILLED"


def test_each_run_captures_code_environment_command_and_user(tracking_target):
    with start_run("e") as run:
        pass
    stored = get_run(run.run_id)
    assert stored.environment is not None
    assert any(p.startswith("pandas==") for p in stored.environment.packages)
    assert stored.command and stored.user
    # This suite runs from a git checkout: a commit of 40 hex digits and a dirty flag.
    assert stored.code.commit is None or len(stored.code.commit) == 40
    assert stored.code.commit is None or stored.code.dirty in (True, False)


def test_nested_runs_and_resuming(tracking_target):
    with start_run("tune") as parent:
        with start_run("tune", nested=True) as child:
            child.log_metric("loss", 0.5)
        with start_run("tune", nested=True) as second:
            pass
    assert get_run(child.run_id).parent_run_id == parent.run_id
    assert get_run(second.run_id).parent_run_id == parent.run_id
    with pytest.raises(ValueError, match="nested=True needs an active run"):
        start_run("tune", nested=True)
    with start_run(run_id=child.run_id) as resumed:
        resumed.log_metric("loss", 0.25, step=1)
    again = get_run(child.run_id)
    assert again.status == "FINISHED"
    assert again.metric_history("loss")["value"].tolist() == [0.5, 0.25]


def test_logging_after_the_end_or_with_bad_values_is_refused(tracking_target):
    with start_run("e") as run:
        with pytest.raises(ValueError, match="metric 'x': value must be a finite number, got nan"):
            run.log_metric("x", float("nan"))
        with pytest.raises(TypeError, match=r"metric .x.: step must be an integer, got 1\.5"):
            run.log_metric("x", 1.0, step=1.5)
        with pytest.raises(TypeError, match="metric 'x': value must be a number, got str"):
            run.log_metric("x", "1")
        run.log_param("p", 1)
        with pytest.raises(ValueError, match="param 'p' is already '1'; cannot change it to '2'"):
            run.log_param("p", 2)
    with pytest.raises(ValueError, match=f"run {run.run_id} has ended"):
        run.log_metric("x", 1.0)


def test_the_background_flusher_writes_without_being_asked(store):
    run = ActiveRun(store, store.create_run("e"), flush_interval_s=0.05)
    run.log_metric("x", 1.0)
    deadline = time.monotonic() + 10
    while store.get_run(run.run_id).metrics != {"x": 1.0}:
        assert time.monotonic() < deadline, "the buffered point was never flushed"
        time.sleep(0.01)
    run.end()


def test_a_full_buffer_is_written_by_the_logging_call_itself(store):
    run = ActiveRun(store, store.create_run("e"), flush_interval_s=3600, max_buffered=10)
    for step in range(9):
        run.log_metric("x", float(step), step=step)
    assert len(store.metric_history(run.run_id, "x")) == 0
    run.log_metric("x", 9.0, step=9)
    # No waiting: the tenth call returned only once its points were stored.
    assert store.metric_history(run.run_id, "x")["step"].tolist() == list(range(10))
    run.log_metrics({"a": 1.0, "b": 2.0}, step=10)
    assert len(run._metrics) == 2
    run.end()


class FlakyBackend:
    """Delegates to a store but fails the first write, as a dropped connection would."""

    def __init__(self, store) -> None:
        self.store = store
        self.failures = 1

    def write_batch(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database went away")
        return self.store.write_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_failed_flush_loses_nothing_and_is_reported(store):
    run = ActiveRun(FlakyBackend(store), store.create_run("e"), flush_interval_s=3600)
    run.log_param("a", 1)
    run.log_metric("x", 1.0, step=0)
    with pytest.raises(ConnectionError, match="database went away"):
        run.flush()
    run.log_metric("x", 2.0, step=1)
    run.end()
    stored = store.get_run(run.run_id)
    assert stored.params == {"a": "1"}
    assert store.metric_history(run.run_id, "x")["value"].tolist() == [1.0, 2.0]


def test_a_failed_write_of_a_full_buffer_raises_at_the_call_and_loses_nothing(store):
    backend = FlakyBackend(store)
    run = ActiveRun(backend, store.create_run("e"), flush_interval_s=3600, max_buffered=3)
    run.log_metric("x", 0.0, step=0)
    run.log_metric("x", 1.0, step=1)
    with pytest.raises(ConnectionError, match="database went away"):
        run.log_metric("x", 2.0, step=2)
    run.log_metric("x", 3.0, step=3)
    assert store.metric_history(run.run_id, "x")["value"].tolist() == [0.0, 1.0, 2.0, 3.0]
    run.end()


def test_log_dataset_records_hash_schema_and_profile(tracking_target):
    frame = pd.DataFrame({"age": [31, 45, 27], "plan": ["free", "pro", "free"]})
    with start_run("e") as run:
        dataset = run.log_dataset(frame, name="train")
    stored = get_run(run.run_id).datasets
    assert stored == (dataset,)
    assert dataset.n_rows == 3 and dataset.n_columns == 2
    assert dataset.schema["columns"]["plan"]["type"] == "category"
    assert dataset.profile["columns"]["age"]["numeric"]["max"] == 45


def test_log_artifact_from_a_path(tracking_target, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    with start_run("e") as run:
        record = run.log_artifact(source, name="docs/notes.txt")
        with pytest.raises(FileNotFoundError, match="is not a file"):
            run.log_artifact(tmp_path / "absent.txt")
    assert get_run(run.run_id).artifacts == (record,)
    assert record.path == "docs/notes.txt" and record.size == 5


def test_search_and_compare_through_the_top_level_functions(tracking_target):
    ids = []
    for model, auc in (("rf", 0.8), ("gbm", 0.9)):
        with start_run("churn") as run:
            run.log_params({"model": model, "seed": 1})
            for step, value in enumerate((auc - 0.1, auc)):
                run.log_metric("auc", value, step=step)
            ids.append(run.run_id)
    found = search_runs("churn", "params.model = 'rf' or metrics.auc > 0.85", ["metrics.auc DESC"])
    assert found["run_id"].tolist() == [ids[1], ids[0]]
    comparison = compare_runs(ids)
    assert comparison.params.loc["model"].tolist() == ["rf", "gbm"]
    assert comparison.differing_params() == ["model"]
    assert comparison.metrics.loc["auc"].tolist() == [0.8, 0.9]
    assert len(comparison.histories) == 4
    document = comparison.to_dict()
    assert document["metrics"] == {ids[0]: {"auc": 0.8}, ids[1]: {"auc": 0.9}}
    assert [h["value"] for h in document["histories"] if h["run_id"] == ids[0]] == pytest.approx(
        [0.7, 0.8]
    )
    with pytest.raises(TypeError, match="run_ids must be a list"):
        compare_runs(ids[0])


def test_a_database_tracking_uri_is_used(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", uri)
    with start_run("e", capture=False) as run:
        run.log_metric("x", 1.0)
    assert (tmp_path / "elsewhere.db").is_file()
    assert get_run(run.run_id, tracking_uri=uri).metrics == {"x": 1.0}


class CountingBackend:
    """Delegates to a store and records which write methods a run calls."""

    def __init__(self, store) -> None:
        self.store = store
        self.calls: list[tuple[str, object]] = []

    def write_batch(self, run_id, **kwargs):
        self.calls.append(("write_batch", kwargs.get("status")))
        return self.store.write_batch(run_id, **kwargs)

    def end_run(self, run_id, status="FINISHED", end_ms=None):
        self.calls.append(("end_run", status))
        return self.store.end_run(run_id, status, end_ms)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_the_last_flush_carries_the_final_status_in_one_write(store):
    backend = CountingBackend(store)
    with ActiveRun(backend, store.create_run("e"), flush_interval_s=3600) as run:
        run.log_metric("x", 1.0)
    assert backend.calls == [("write_batch", "FINISHED")]
    assert store.get_run(run.run_id).status == "FINISHED"
    assert store.get_run(run.run_id).metrics == {"x": 1.0}
    idle = CountingBackend(store)
    ActiveRun(idle, store.create_run("e"), flush_interval_s=3600).end("KILLED")
    assert idle.calls == [("end_run", "KILLED")]


def test_a_failed_last_flush_still_ends_the_run(store):
    run = ActiveRun(FlakyBackend(store), store.create_run("e"), flush_interval_s=3600)
    run.log_metric("x", 1.0)
    with pytest.raises(ConnectionError, match="database went away"):
        run.end("FINISHED")
    assert store.get_run(run.run_id).status == "FINISHED"


def test_a_background_failure_is_raised_after_the_callers_value_is_buffered(store):
    backend = FlakyBackend(store)
    run = ActiveRun(backend, store.create_run("e"), flush_interval_s=0.01)
    run.log_metric("x", 0.0, step=0)
    deadline = time.monotonic() + 30
    while run._error is None:  # the background flusher's write failed
        assert time.monotonic() < deadline, "the background write never ran"
        time.sleep(0.005)
    with pytest.raises(ConnectionError, match="database went away"):
        run.log_metric("x", 1.0, step=1)
    run.end()
    # The failing call's own point is kept, and the failed batch is stored once.
    assert store.metric_history(run.run_id, "x")["step"].tolist() == [0, 1]


def test_a_batch_sent_again_under_its_key_is_stored_once(store):
    run_id = store.create_run("e")
    batch = MetricBatch(("x",) * 3, np.arange(3.0), np.arange(3), np.full(3, 1_000))
    for _ in range(2):
        store.write_batch(run_id, metrics=batch, params={"a": 1}, batch_id="k-1")
    store.write_batch(run_id, metrics=batch, batch_id="k-2")
    assert store.metric_history(run_id, "x")["step"].tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="batch_id must be 1 to 64 letters"):
        store.write_batch(run_id, metrics=batch, batch_id="has space")
