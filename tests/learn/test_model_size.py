import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from opsloop.learn.model_size import count_parameters, median_latency_ms


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_parameters_are_the_learned_arrays():
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = MLPClassifier((5,), max_iter=5, random_state=0).fit(X, np.arange(40) % 3)
    assert count_parameters(model) == 3 * 5 + 5 + 5 * 3 + 3


def test_torch_parameters():
    torch = pytest.importorskip("torch")
    assert count_parameters(torch.nn.Linear(7, 2)) == 16


def test_latency_is_the_median():
    calls = []
    assert median_latency_ms(lambda: calls.append(1), repeats=5, warmup=3) >= 0
    assert len(calls) == 8
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        median_latency_ms(lambda: None, repeats=0)
