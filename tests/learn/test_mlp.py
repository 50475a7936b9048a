import pytest

torch = pytest.importorskip("torch")

from opsloop.learn.mlp import mlp  # noqa: E402

pytestmark = pytest.mark.torch


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = mlp([3, 4, 2], seed=5), mlp([3, 4, 2], seed=5)
    assert torch.rand(1).item() == before.item()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(mlp([3, 4, 2], seed=6)[0].weight, a[0].weight)


def test_layers():
    model = mlp([3, 4, 5, 2])
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError, match="layer_sizes must hold at least two positive sizes"):
        mlp([3])
