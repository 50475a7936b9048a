import socket
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

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
def test_two_processes_equal_one_on_the_same_global_batch(data):
    # 90 rows in batches of 25: the last batch (15 rows) and odd batches split unevenly
    single = fit(MODEL, data, epochs=3, batch_size=25, lr=0.1)
    double = fit(MODEL, data, epochs=3, batch_size=25, lr=0.1, world_size=2)
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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(key, value)
    under_torchrun = fit(MODEL, data, epochs=1, batch_size=30, world_size=4)
    monkeypatch.delenv("RANK")
    plain = fit(MODEL, data, epochs=1, batch_size=30)
    assert under_torchrun.world_size == 1  # the launcher's world, not the argument
    assert not torch.distributed.is_initialized()
    for name, weights in plain.state_dict.items():
        np.testing.assert_allclose(under_torchrun.state_dict[name], weights, rtol=1e-6)


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
