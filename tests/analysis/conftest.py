import numpy as np
import pytest

from opsloop.datasets import credit, human_labels


@pytest.fixture(scope="session")
def loans():
    """2,000 loan applications with a human labeller's labels and a noisy model's predictions."""
    df = credit(2000, seed=7)
    human = human_labels(df, seed=7)
    rng = np.random.default_rng(7)
    # the model errs more on mobile, so the error analysis has a slice to find
    flip_rate = np.where(df["device"].astype(str) == "mobile", 0.3, 0.1)
    predicted = df["default"].to_numpy() ^ (rng.random(len(df)) < flip_rate)
    return df, human, predicted
