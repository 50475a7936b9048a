"""Rounded, top-k and label-only answers: equal to ART's postprocessors and to hand-derived numbers
of the attacks they defend against."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from opsloop.learn.robustness import (
    RestrictedOutput,
    extraction_curve,
    output_defence_effects,
    probability_extraction_curve,
    threshold_attack,
)


@pytest.fixture(scope="module")
def split():
    """An overfit forest on 600 digits, 600 rows it never saw, and the attacker's 597 rows."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    forest = RandomForestClassifier(50, random_state=0, n_jobs=1).fit(X[:600], y[:600])
    return forest, (X[:600], y[:600]), (X[600:1200], y[600:1200]), X[1200:]


def test_rounding_equals_art_rounded(split):
    from art.defences.postprocessor import Rounded

    forest, _, (X, _), _ = split
    probabilities = forest.predict_proba(X)
    for decimals in (1, 2):
        ours = RestrictedOutput(forest, decimals=decimals).predict_proba(X)
        np.testing.assert_array_equal(ours, Rounded(decimals=decimals)(probabilities))
    assert not np.array_equal(RestrictedOutput(forest, decimals=1).predict_proba(X), probabilities)


def test_top_k_and_label_only_by_hand():
    from sklearn.dummy import DummyClassifier

    # prior 0.25, 0.25, 0.5 over the classes "a", "b", "c": a tie for the second place
    model = DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), ["a", "b", "c", "c"])
    X = np.zeros((2, 1))
    assert RestrictedOutput(model, top_k=1).predict_proba(X).tolist() == [[0, 0, 0.5]] * 2
    # of the tied 0.25s, the lower class stays, as argmax would pick it
    assert RestrictedOutput(model, top_k=2).predict_proba(X).tolist() == [[0.25, 0, 0.5]] * 2
    assert RestrictedOutput(model, top_k=3).predict_proba(X).tolist() == [[0.25, 0.25, 0.5]] * 2
    assert RestrictedOutput(model, top_k=1, decimals=0).predict_proba(X).tolist() == [[0, 0, 0]] * 2
    label = RestrictedOutput(model, label_only=True)
    assert label.predict_proba(X).tolist() == [[0, 0, 1]] * 2
    assert label.predict(X).tolist() == ["c", "c"] and label.classes_.tolist() == ["a", "b", "c"]


def test_label_only_answers_are_one_hot_per_row(split):
    forest, _, (X, _), _ = split
    answers = RestrictedOutput(forest, label_only=True).predict_proba(X)
    assert (answers.sum(axis=1) == 1).all() and set(np.unique(answers)) == {0.0, 1.0}
    np.testing.assert_array_equal(forest.classes_[answers.argmax(axis=1)], forest.predict(X))


def test_label_only_leaves_the_loss_attack_the_accuracy_gap(split):
    forest, members, non_members, _ = split
    served = RestrictedOutput(forest, label_only=True)
    loss = threshold_attack(served, members, non_members, score="loss")
    # a right answer scores log 1 = 0, a wrong one log 1e-12: the best threshold is 0, where
    # TPR is the training accuracy and FPR the accuracy on the rows never seen
    train_accuracy = np.mean(forest.predict(members[0]) == members[1])
    test_accuracy = np.mean(forest.predict(non_members[0]) == non_members[1])
    assert loss.advantage == pytest.approx(train_accuracy - test_accuracy, abs=1e-12)
    assert (loss.tpr, loss.fpr) == pytest.approx((train_accuracy, test_accuracy), abs=1e-12)
    # every answer has confidence 1: nothing to tell apart
    confidence = threshold_attack(served, members, non_members, score="confidence")
    assert confidence.advantage == 0.0 and confidence.auc == 0.5
    # the full probabilities leak far more
    assert threshold_attack(forest, members, non_members).advantage > loss.advantage + 0.3


def test_probability_extraction_of_labels_is_the_label_extraction(split):
    forest, _, (X_test, y_test), pool = split
    budgets = [30, 200]
    soft = probability_extraction_curve(
        RestrictedOutput(forest, label_only=True), pool, X_test, y_test, budgets, seed=0
    )
    labels = extraction_curve(forest, pool, X_test, y_test, budgets, seed=0)
    assert soft.fidelity == labels.fidelity and soft.accuracy == labels.accuracy
    # the probabilities say more than the labels from few queries
    full = probability_extraction_curve(forest, pool, X_test, y_test, budgets, seed=0)
    assert full.fidelity[0] > labels.fidelity[0] + 0.03


def test_output_defence_effects(split):
    forest, members, non_members, pool = split
    effects = output_defence_effects(
        forest,
        members,
        non_members,
        pool,
        restrictions=[{"decimals": 2}, {"label_only": True}],
        n_queries=[30],
    )
    rounded, label = effects
    assert rounded.defence == "answers: 2 decimals" and label.defence == "answers: label only"
    # the same undefended numbers before each defence
    assert rounded.before == label.before
    assert rounded.cost == label.cost == 0.0  # the served class never changes
    advantage = "membership advantage (loss threshold)"
    assert label.value(advantage, "before") == pytest.approx(
        threshold_attack(forest, members, non_members).advantage, abs=1e-12
    )
    assert label.value(advantage) < 0.15 < 0.5 < label.value(advantage, "before")
    assert label.value("extraction fidelity @30") < label.value("extraction fidelity @30", "before")
    assert set(label.metrics()) >= {
        "defence/answers_label_only/membership_advantage_loss_threshold/after",
        "defence/answers_label_only/extraction_fidelity_30/before",
    }


def test_bad_settings_name_the_field(split):
    forest = split[0]
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        RestrictedOutput(forest, top_k=0)
    with pytest.raises(ValueError, match="decimals must be an int"):
        RestrictedOutput(forest, decimals=1.5)
    with pytest.raises(TypeError, match="model must have predict_proba"):
        RestrictedOutput(object())
