import io
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from tests.learn.distributed.launching import as_single_torchrun_rank, run_two_rank_job
from tests.learn.tracked import artifact_bytes, history

torch = pytest.importorskip("torch")

import opsloop  # noqa: E402
from opsloop.learn.distributed import fit  # noqa: E402
from opsloop.learn.mlp import mlp  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

MODEL = partial(mlp, [5, 16, 3], seed=1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return X, y


@pytest.mark.slow
def test_two_processes_equal_one_on_the_same_global_batch(data, tracking_home):
    # 90 rows in batches of 25: the last batch (15 rows) and odd batches split unevenly
    single = fit(MODEL, data, epochs=3, batch_size=25, lr=0.1)
    with opsloop.start_run("ddp", capture=False) as run:
        double = fit(MODEL, data, epochs=3, batch_size=25, lr=0.1, world_size=2, run=run)
    assert double.world_size == 2 and single.world_size == 1
    for name, weights in single.state_dict.items():
        np.testing.assert_allclose(double.state_dict[name], weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(double.losses, single.losses, rtol=1e-5)
    # each rank saw about half the rows; their losses average to the overall one
    rank = np.array(double.rank_losses)
    assert rank.shape == (2, 3)
    assert not np.allclose(rank[0], rank[1])
    seen = np.array([13 * 3 + 8, 12 * 3 + 7])  # 25 rows -> 13 + 12; the last 15 -> 8 + 7
    np.testing.assert_allclose((rank * seen[:, None]).sum(0) / 90, double.losses, rtol=1e-6)
    assert double.rank_samples == ((47, 47, 47), (43, 43, 43))

    # the spawned ranks' numbers, brought back to this process, are all in the one run
    stored = opsloop.get_run(run.run_id)
    assert stored.params["world_size"] == "2" and stored.params["launcher"] == "spawn"
    assert stored.params["batch_size"] == "25" and stored.params["n_rows"] == "90"
    for r in range(2):
        steps, values = history(stored, f"rank{r}/loss")
        assert steps == [0, 1, 2]
        np.testing.assert_allclose(values, double.rank_losses[r], rtol=1e-12)
        assert history(stored, f"rank{r}/samples")[1] == [seen[r]] * 3
        seconds = history(stored, f"rank{r}/epoch_time_s")[1]
        np.testing.assert_allclose(seconds, double.rank_epoch_seconds[r], rtol=1e-12)
        assert min(seconds) > 0
    np.testing.assert_allclose(history(stored, "loss")[1], double.losses, rtol=1e-12)
    assert history(stored, "samples")[1] == [90.0] * 3
    np.testing.assert_allclose(
        history(stored, "epoch_time_s")[1], np.max(double.rank_epoch_seconds, axis=0)
    )
    report = json.loads(artifact_bytes(stored, "distributed_fit.json"))
    assert report["rank_losses"] == [list(r) for r in double.rank_losses]
    weights = torch.load(io.BytesIO(artifact_bytes(stored, "model.pt")), weights_only=True)
    for name, value in double.state_dict.items():
        np.testing.assert_array_equal(weights[name].numpy(), value)


def test_single_process_equals_a_plain_training_loop(data):
    X, y = data
    result = fit(MODEL, data, epochs=2, batch_size=32, lr=0.1, seed=7)
    model = MODEL()
    step = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(7)
    inputs, targets = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(2):
        order = torch.randperm(90, generator=generator)
        for start in range(0, 90, 32):
            batch = order[start : start + 32]
            step.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            step.step()
    for name, weights in model.state_dict().items():
        np.testing.assert_allclose(result.state_dict[name], weights.numpy(), rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        np.testing.assert_allclose(
            result.model(inputs).numpy(), model(inputs).numpy(), rtol=1e-5, atol=1e-6
        )


def test_joins_a_torchrun_job_from_the_environment(data, monkeypatch):
    as_single_torchrun_rank(monkeypatch)
    under_torchrun = fit(MODEL, data, epochs=1, batch_size=30, world_size=4)
    monkeypatch.delenv("RANK")
    plain = fit(MODEL, data, epochs=1, batch_size=30)
    assert under_torchrun.world_size == 1  # the launcher's world, not the argument
    assert not torch.distributed.is_initialized()
    for name, weights in plain.state_dict.items():
        np.testing.assert_allclose(under_torchrun.state_dict[name], weights, rtol=1e-6)


def test_one_process_logs_every_epoch_to_the_run(data, tracking_home):
    with opsloop.start_run("fit", capture=False) as run:
        result = fit(MODEL, data, epochs=2, batch_size=32, lr=0.1, run=run)
    stored = opsloop.get_run(run.run_id)
    assert history(stored, "rank0/samples") == ([0, 1], [90.0, 90.0])
    # one rank: its loss is the overall loss
    assert history(stored, "rank0/loss")[1] == pytest.approx(list(result.losses), rel=1e-12)
    assert history(stored, "loss")[1] == pytest.approx(list(result.losses), rel=1e-12)
    assert stored.params["launcher"] == "none" and stored.params["lr"] == "0.1"
    assert {a.path for a in stored.artifacts} == {"distributed_fit.json", "model.pt"}
    with pytest.raises(TypeError, match="run must have log_params, log_metric and log_artifact"):
        fit(MODEL, data, epochs=1, run="fit")


@pytest.mark.slow
def test_under_torchrun_rank_zero_logs_every_ranks_metrics(data, tracking_home, tmp_path):
    np.savez(tmp_path / "data.npz", X=data[0], y=data[1])
    answers = run_two_rank_job(Path(__file__).with_name("torchrun_job.py"), tmp_path)
    # rank 1 was handed a run too, and wrote nothing to it
    assert answers[1]["logged"] == {"params": 0, "metrics": 0, "artifacts": 0}
    # every rank returns the same result, holding both ranks' numbers
    assert answers[0]["result"] == answers[1]["result"]
    result = answers[0]["result"]
    assert result["world_size"] == 2 and result["rank_samples"] == [[45, 45], [45, 45]]
    single = fit(MODEL, data, epochs=2, batch_size=30, lr=0.1)
    np.testing.assert_allclose(result["losses"], single.losses, rtol=1e-5)

    stored = opsloop.get_run(answers[0]["run_id"])
    assert stored.status == "FINISHED"
    assert stored.params["launcher"] == "torchrun" and stored.params["world_size"] == "2"
    for r in range(2):
        assert history(stored, f"rank{r}/loss") == ([0, 1], result["rank_losses"][r])
        assert history(stored, f"rank{r}/samples") == ([0, 1], [45.0, 45.0])
        assert history(stored, f"rank{r}/epoch_time_s")[1] == result["rank_epoch_seconds"][r]
    assert history(stored, "loss")[1] == pytest.approx(result["losses"], rel=1e-12)
    assert {a.path for a in stored.artifacts} == {"distributed_fit.json", "model.pt"}


def test_mse_and_adam(data):
    X, _ = data
    target = X[:, :1] * 2.0
    result = fit(
        partial(mlp, [5, 8, 1]),
        (X, target[:, 0]),
        epochs=20,
        batch_size=30,
        lr=0.01,
        loss="mse",
        optimiser="adam",
    )
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert result.to_dict()["parameters"] == 5 * 8 + 8 + 8 + 1


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="loss must be one of"):
        fit(MODEL, data, epochs=1, loss="hinge")
    with pytest.raises(ValueError, match="optimiser must be one of"):
        fit(MODEL, data, epochs=1, optimiser="lbfgs")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(MODEL, data, epochs=0)
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        fit(MODEL, data, epochs=1, world_size=0)
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        fit(MODEL, (data[0], data[1][:3]), epochs=1)
