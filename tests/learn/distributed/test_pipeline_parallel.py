import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from tests.learn.distributed.launching import as_single_torchrun_rank, run_two_rank_job
from tests.learn.distributed.stages import built_on_its_rank, stage_layers
from tests.learn.tracked import artifact_bytes, history

torch = pytest.importorskip("torch")

import opsloop  # noqa: E402
from opsloop.learn.distributed import pipeline_fit, pipeline_forward  # noqa: E402
from opsloop.learn.mlp import mlp  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

MODEL = partial(mlp, [6, 32, 32, 4], seed=3)
STAGES = [partial(built_on_its_rank, 0), partial(built_on_its_rank, 1)]


@pytest.fixture(autouse=True)
def stage_processes_find_the_tests(monkeypatch):
    """The spawned stages unpickle builders from ``tests.learn.distributed.stages``."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3]))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0.5)
    return X, y


def train_in_one_process(model, X, y, *, epochs, batch_size, step, loss):
    """The reference: the same batches, the mean loss of each, one step each."""
    generator = torch.Generator().manual_seed(0)
    inputs, targets = torch.as_tensor(X), torch.as_tensor(y)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), batch_size):
            batch = order[start : start + batch_size]
            step.zero_grad()
            value = loss(model(inputs[batch]), targets[batch])
            value.backward()
            step.step()
            losses.append(float(value.detach()))
    return losses


def test_two_stages_give_the_unsplit_models_outputs():
    X = np.random.default_rng(0).normal(size=(23, 6)).astype(np.float32)
    # 23 rows in 4 micro-batches of unequal size (6, 6, 6, 5); stage 0: layers 0-2, stage 1: 3-4
    got = pipeline_forward(MODEL, X, split_at=[3], micro_batches=4)
    with torch.no_grad():
        expected = MODEL()(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_two_stage_training_equals_one_process(data, tracking_home):
    X, y = data
    # 40 rows in batches of 16: steps of 16, 16 and 8 rows, cut into 3 micro-batches each
    with opsloop.start_run("pipeline", capture=False) as run:
        result = pipeline_fit(
            STAGES, data, epochs=2, batch_size=16, micro_batches=3, lr=0.1, run=run
        )
    reference = torch.nn.Sequential(*stage_layers(0), *stage_layers(1))
    step = torch.optim.SGD(reference.parameters(), lr=0.1)
    losses = train_in_one_process(
        reference, X, y, epochs=2, batch_size=16, step=step, loss=torch.nn.functional.cross_entropy
    )
    assert result.stages == 2 and len(result.step_losses) == 6
    np.testing.assert_allclose(result.step_losses, losses, rtol=1e-5)
    trained = [result.load_stage(r, stage_layers(r)) for r in range(2)]
    pipelined = [p for stage in trained for p in stage.parameters()]
    for got, expected in zip(pipelined, reference.parameters(), strict=True):
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-5)
    # the weights moved: equality is not just two untrained copies
    untrained = stage_layers(0)[0].weight.detach().numpy()
    assert np.abs(trained[0][0].weight.detach().numpy() - untrained).max() > 1e-3
    epoch_means = [
        (sum(losses[3 * e : 3 * e + 2]) * 16 + losses[3 * e + 2] * 8) / 40 for e in range(2)
    ]
    np.testing.assert_allclose(result.losses, epoch_means, rtol=1e-5)

    stored = opsloop.get_run(run.run_id)
    assert history(stored, "batch_loss") == ([0, 1, 2, 3, 4, 5], list(result.step_losses))
    assert history(stored, "loss") == ([0, 1], list(result.losses))
    assert stored.params["stages"] == "2" and stored.params["micro_batches"] == "3"
    report = json.loads(artifact_bytes(stored, "pipeline_fit.json"))
    assert report["stage_parameters"] == [6 * 32 + 32 + 32 * 32 + 32, 32 * 4 + 4]


def test_three_stages_with_a_parameterless_middle_one_train_like_one_process(data):
    X = data[0]
    target = (X[:, :1] - X[:, 1:2]).astype(np.float32)
    model = partial(mlp, [6, 16, 1], seed=5)  # Linear | ReLU | Linear
    result = pipeline_fit(
        model,
        (X, target[:, 0]),
        epochs=2,
        split_at=[1, 2],
        batch_size=10,
        micro_batches=4,
        lr=0.01,
        loss="mse",
        optimiser="adam",
    )
    reference = model()
    step = torch.optim.Adam(reference.parameters(), lr=0.01)

    def mse(output, wanted):
        return torch.nn.functional.mse_loss(output, wanted.reshape(output.shape))

    losses = train_in_one_process(
        reference, X, target[:, 0], epochs=2, batch_size=10, step=step, loss=mse
    )
    np.testing.assert_allclose(result.step_losses, losses, rtol=1e-5)
    assert result.stage_state_dicts[1] == {}
    np.testing.assert_allclose(
        result.stage_state_dicts[0]["0.weight"], reference[0].weight.detach().numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        result.stage_state_dicts[2]["0.weight"], reference[2].weight.detach().numpy(), rtol=1e-5
    )


def test_bad_split():
    X = np.zeros((4, 6), dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"split_at must be increasing layer positions within 1\.\.4"
    ):
        pipeline_forward(MODEL, X, split_at=[5])
    with pytest.raises(ValueError, match="split_at must be increasing"):
        pipeline_forward(MODEL, X, split_at=[])
    with pytest.raises(ValueError, match=r"micro_batches must be within 1\.\.4"):
        pipeline_forward(MODEL, X, split_at=[2], micro_batches=5)
    with pytest.raises(ValueError, match="split_at is required when model is one callable"):
        pipeline_forward(MODEL, X)
    with pytest.raises(ValueError, match="split_at applies to one model callable"):
        pipeline_forward(STAGES, X, split_at=[1])
    with pytest.raises(ValueError, match="stages must be a list of at least two callables"):
        pipeline_fit([MODEL], (X, np.zeros(4, int)), 1)
    with pytest.raises(ValueError, match="loss must be one of"):
        pipeline_fit(STAGES, (X, np.zeros(4, int)), 1, loss="hinge")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        pipeline_fit(STAGES, (X, np.zeros(4, int)), 0)


@pytest.mark.slow
def test_a_torchrun_job_trains_one_stage_per_rank(data, tracking_home, tmp_path):
    X, y = data
    np.savez(tmp_path / "data.npz", X=X, y=y)
    answers = run_two_rank_job(Path(__file__).with_name("torchrun_pipeline_job.py"), tmp_path)
    # rank 1 was handed a run too and wrote nothing to it; both ranks return the same result
    assert answers[1]["logged"] == 0
    assert answers[0]["result"] == answers[1]["result"]
    reference = torch.nn.Sequential(*stage_layers(0), *stage_layers(1))
    step = torch.optim.SGD(reference.parameters(), lr=0.1)
    losses = train_in_one_process(
        reference, X, y, epochs=2, batch_size=16, step=step, loss=torch.nn.functional.cross_entropy
    )
    np.testing.assert_allclose(answers[0]["result"]["step_losses"], losses, rtol=1e-5)
    # stage 0 holds layers 0 and 2 of the unsplit model; stage 1's layer 1 is its layer 4
    renamed = {"0": "0", "2": "2", "1": "4"}
    expected = reference.state_dict()
    assert len(answers[0]["weights"]) == len(expected) == 6
    for key, value in answers[0]["weights"].items():
        layer, _, kind = key.partition(".")
        np.testing.assert_allclose(value, expected[f"{renamed[layer]}.{kind}"].numpy(), rtol=1e-5)
    stored = opsloop.get_run(answers[0]["run_id"])
    assert stored.params["stages"] == "2"
    assert history(stored, "batch_loss")[1] == pytest.approx(losses, rel=1e-5)


def test_a_torchrun_job_needs_one_rank_per_stage(data, monkeypatch):
    as_single_torchrun_rank(monkeypatch)
    with pytest.raises(ValueError, match="the torchrun job has 1 ranks but the model has 2 stages"):
        pipeline_fit(MODEL, data, 1, split_at=[3], batch_size=8, micro_batches=2)
    assert not torch.distributed.is_initialized()
