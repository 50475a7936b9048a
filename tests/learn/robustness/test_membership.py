"""Membership inference: about nothing on unseen rows, a clear leak from an unpruned forest."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.tree import DecisionTreeClassifier

from opsloop.learn.robustness import shadow_attack, threshold_attack
from opsloop.learn.robustness.membership import best_advantage, membership_scores, roc_auc


@pytest.fixture(scope="module")
def split():
    """Digits in three disjoint parts: the forest's training rows, unseen rows, the attacker's."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    train, unseen, attacker = order[:600], order[600:1200], order[1200:]
    forest = RandomForestClassifier(50, random_state=0, n_jobs=1).fit(X[train], y[train])
    return forest, (X[train], y[train]), (X[unseen], y[unseen]), (X[attacker], y[attacker])


def unseen_halves(unseen):
    X, y = unseen
    return (X[:300], y[:300]), (X[300:], y[300:])


@pytest.mark.parametrize("score", ["loss", "confidence"])
def test_threshold_attack_finds_the_overfit_forest_and_nothing_on_unseen_rows(split, score):
    forest, train, unseen, _ = split
    leak = threshold_attack(forest, train, unseen, score=score)
    assert leak.advantage > 0.35 and leak.auc > 0.75
    assert leak.advantage > 3 * leak.chance_advantage
    # "members" the forest never saw: nothing to tell apart
    never_seen = threshold_attack(forest, *unseen_halves(unseen), score=score)
    assert never_seen.advantage < never_seen.chance_advantage
    assert abs(never_seen.auc - 0.5) < 0.05


def test_shadow_attack_finds_the_overfit_forest_and_nothing_on_unseen_rows(split):
    forest, train, unseen, attacker = split
    leak = shadow_attack(forest, train, unseen, shadow_data=attacker, n_shadows=2)
    assert leak.advantage > 0.35 and leak.auc > 0.75
    never_seen = shadow_attack(forest, *unseen_halves(unseen), shadow_data=attacker, n_shadows=2)
    assert never_seen.advantage < never_seen.chance_advantage
    assert abs(never_seen.auc - 0.5) < 0.05
    # the same seed gives the same attack
    again = shadow_attack(forest, train, unseen, shadow_data=attacker, n_shadows=2)
    np.testing.assert_array_equal(again.member_scores, leak.member_scores)


def test_auc_and_advantage_equal_scikit_learn_on_the_same_scores(split):
    forest, train, unseen, _ = split
    result = threshold_attack(forest, train, unseen, score="loss")
    labels = np.r_[np.ones(result.members), np.zeros(result.non_members)]
    scores = np.r_[result.member_scores, result.non_member_scores]
    assert result.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = np.argmax(tpr - fpr)
    assert result.advantage == pytest.approx(tpr[best] - fpr[best], abs=1e-12)
    assert (result.tpr, result.fpr, result.threshold) == pytest.approx(
        (tpr[best], fpr[best], thresholds[best])
    )
    # the loss score is log p(label), computed here by hand
    X, y = train
    by_hand = np.log(np.maximum(forest.predict_proba(X)[np.arange(len(y)), y], 1e-12))
    np.testing.assert_allclose(result.member_scores, by_hand)


def test_roc_numbers_by_hand():
    labels, scores = [1, 0, 1, 0, 1], [0.9, 0.8, 0.8, 0.1, 0.05]
    # pairs (member, non-member) ordered right: (.9,.8) (.9,.1) (.8,.1); tied (.8,.8) half
    assert roc_auc(labels, scores) == pytest.approx(3.5 / 6)
    # "score >= 0.9": 1/3 - 0; ">= 0.8": 2/3 - 1/2; ">= 0.1": 2/3 - 1; ">= 0.05": 1 - 1
    assert best_advantage(labels, scores) == pytest.approx((1 / 3, 0.9, 1 / 3, 0.0))


def test_a_tree_that_misses_a_class_in_the_shadow_data_still_scores():
    X, y = load_digits(return_X_y=True)
    keep = y < 9  # the shadows never see class 9
    tree = DecisionTreeClassifier(random_state=0).fit(X[:400], y[:400])
    result = shadow_attack(
        tree,
        (X[:400], y[:400]),
        (X[400:800], y[400:800]),
        shadow_data=(X[800:][keep[800:]], y[800:][keep[800:]]),
        n_shadows=1,
    )
    assert 0 <= result.auc <= 1 and result.members == 400


def test_bad_input_is_named():
    tree = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="score must be one of"):
        membership_scores(tree, [[0.0]], [0], score="entropy")
    with pytest.raises(ValueError, match="label 7, which the model does not know"):
        membership_scores(tree, [[0.0]], [7])
    with pytest.raises(TypeError, match="members must be a pair"):
        threshold_attack(tree, [[0.0]], ([[1.0]], [1]))
    with pytest.raises(TypeError, match="model must have predict_proba"):
        threshold_attack(object(), ([[0.0]], [0]), ([[1.0]], [1]))
    with pytest.raises(ValueError, match="n_shadows must be a positive int"):
        shadow_attack(tree, ([[0.0]], [0]), ([[1.0]], [1]), ([[1.0]] * 4, [0, 1] * 2), n_shadows=0)


def test_a_model_without_classes_has_one_class_per_probability_column():
    torch = pytest.importorskip("torch")
    from opsloop.learn.robustness import TorchClassifier

    X, y = load_digits(return_X_y=True)
    low = y < 5  # the rows scored hold 5 of the 10 classes the network answers for
    torch.manual_seed(0)
    network = TorchClassifier(torch.nn.Linear(64, 10))
    result = threshold_attack(
        network, (X[low][:100], y[low][:100]), (X[low][100:200], y[low][100:200])
    )
    probabilities = network.predict_proba(X[low][:100])
    by_hand = np.log(probabilities[np.arange(100), y[low][:100]])
    np.testing.assert_allclose(result.member_scores, by_hand)
