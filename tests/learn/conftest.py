"""Shared fixtures of the learn tests: one thread per test, digits data, a trained teacher."""

import numpy as np
import pytest
from tests.learn.tracked import tracking_home
from threadpoolctl import threadpool_limits

__all__ = ["digits", "digits_mlp", "digits_teacher", "one_thread", "tracking_home"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """BLAS and OpenMP pools limited to one thread (many tiny fits are slower when threaded)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits scaled to [0, 1]: (X_train, X_test, y_train, y_test), 70/30."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(
        (X / 16.0).astype(np.float32), y, test_size=0.3, random_state=0, stratify=y
    )


def digits_mlp(torch, hidden: int):
    """A 64-hidden-hidden-10 ReLU network (the teacher shape)."""
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )


@pytest.fixture(scope="session")
def digits_teacher(digits):
    """A 85k-parameter MLP trained on digits with plain cross-entropy (seeded, ~2 s)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    X_train, _, y_train, _ = digits
    torch.manual_seed(0)
    model = digits_mlp(torch, 256)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets = torch.as_tensor(X_train), torch.as_tensor(y_train)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), 64):
            batch = order[start : start + 64]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            optimiser.step()
    return model.eval()
