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


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def test_a_tree_ensemble_counts_the_nodes_of_all_its_trees():
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _digits()
    forest = RandomForestClassifier(50, random_state=0).fit(X[:1200], y[:1200])
    nodes = sum(tree.tree_.node_count for tree in forest.estimators_)
    assert nodes > 10_000 and count_parameters(forest) == nodes
    assert count_parameters(forest.estimators_[0]) == forest.estimators_[0].tree_.node_count
    # Gradient boosting keeps one tree per stage and class (a 2-D array of trees).
    boosted = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0)
    boosted.fit(X[:300], y[:300])
    assert boosted.estimators_.shape == (5, 10)
    assert count_parameters(boosted) == sum(t.tree_.node_count for t in boosted.estimators_.flat)
    # A pipeline sums its steps: the scaler's mean_, var_ and scale_ and the forest's nodes.
    pipeline = make_pipeline(StandardScaler(), forest).fit(X[:1200], y[:1200])
    refit = sum(tree.tree_.node_count for tree in pipeline[-1].estimators_)
    assert count_parameters(pipeline) == 3 * 64 + refit


def test_histogram_gradient_boosting_counts_the_nodes_of_its_predictors():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _digits()
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X[:300], y[:300])
    # Each predictor is a binary tree: 2 * leaves - 1 nodes; one per class per iteration.
    leaves = [p.get_n_leaf_nodes() for stage in model._predictors for p in stage]
    assert len(leaves) == 3 * 10
    assert count_parameters(model) == sum(2 * n - 1 for n in leaves)
