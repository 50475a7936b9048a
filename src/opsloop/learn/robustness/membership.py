"""Membership inference: can an attacker tell the rows a model was trained on from other rows?

A model that fits its training rows better than new ones leaks who was in its training data.
Two attacks put a number on the leak, for any classifier with ``predict_proba`` (scikit-learn's
included; a torch model through a wrapper that has one):

* :func:`threshold_attack` (Yeom et al., 2018): a row whose loss is low (or whose top
  probability is high) is called a member. It needs no training at all.
* :func:`shadow_attack` (Shokri et al., 2017, with one attack model for all classes as in Salem
  et al., 2019): shadow models of the same kind are trained on data the attacker owns, half of it
  in and half out of each shadow's training set; an attack classifier learns to tell "in" from
  "out" by the shadows' outputs, then judges the target's outputs.

Both report the attack's ROC AUC over members against non-members, and its advantage: the largest
:math:`\\mathrm{TPR} - \\mathrm{FPR}` over thresholds of its score (Yeom et al.'s membership
advantage). The advantage is taken at the best threshold on these very rows, so it is an upper
bound of what a threshold chosen beforehand achieves, and is above zero by chance alone: about
:math:`1.36 \\sqrt{1/m + 1/n}` at most, 19 times in 20 (Kolmogorov-Smirnov), for ``m`` members
and ``n`` non-members that the model cannot tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from opsloop.learn.labelled_rows import labelled_rows

SCORES = ("loss", "confidence")
SMALLEST_PROBABILITY = 1e-12


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney, ties halved).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("roc_auc needs both members (1) and non-members (0) among the labels")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def best_advantage(labels: Any, scores: Any) -> tuple[float, float, float, float]:
    """Largest TPR - FPR over thresholds "score >= t", with that threshold, TPR and FPR.

    >>> best_advantage([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    (0.5, 0.8, 0.5, 0.0)
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # a threshold can only fall between distinct scores: keep the last row of each tie
    last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tpr = np.cumsum(sorted_labels)[last] / labels.sum()
    fpr = np.cumsum(~sorted_labels)[last] / (~labels).sum()
    best = int(np.argmax(tpr - fpr))
    return (
        float(tpr[best] - fpr[best]),
        float(sorted_scores[last][best]),
        float(tpr[best]),
        float(fpr[best]),
    )


def class_probabilities(model: Any, X: Any, classes: Any) -> np.ndarray:
    """``model.predict_proba(X)`` with one column per entry of ``classes``, in that order.

    A model that never saw a class (a shadow trained on few rows) gets a column of zeros for it.

    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier(strategy="prior").fit([[0], [0], [0]], ["b", "c", "c"])
    >>> class_probabilities(model, [[0]], ["a", "b", "c"]).round(3).tolist()
    [[0.0, 0.333, 0.667]]
    """
    if not hasattr(model, "predict_proba"):
        raise TypeError(f"model must have predict_proba, got {type(model).__name__}")
    probabilities = np.asarray(model.predict_proba(X), dtype=np.float64)
    own = getattr(model, "classes_", None)
    classes = np.asarray(classes)
    if own is None:
        if probabilities.shape[1] != len(classes):
            raise ValueError(
                f"model gives {probabilities.shape[1]} probabilities per row, "
                f"expected one per class ({len(classes)})"
            )
        return probabilities
    aligned = np.zeros((len(probabilities), len(classes)))
    position = {value: i for i, value in enumerate(classes.tolist())}
    for j, value in enumerate(np.asarray(own).tolist()):
        if value in position:
            aligned[:, position[value]] = probabilities[:, j]
    return aligned


def label_columns(y: Any, classes: np.ndarray) -> np.ndarray:
    """The column of each label of ``y`` among ``classes``; a ValueError names an unknown one.

    >>> label_columns(["b", "a"], np.array(["a", "b"])).tolist()
    [1, 0]
    """
    y = np.asarray(y)
    position = {value: i for i, value in enumerate(classes.tolist())}
    try:
        return np.array([position[value] for value in y.tolist()], dtype=np.intp)
    except KeyError as error:
        raise ValueError(
            f"y holds the label {error.args[0]!r}, which the model does not know"
        ) from None


def model_classes(model: Any, X: Any) -> np.ndarray:
    """``model.classes_``, or ``0..k-1`` for a model without it (``k`` columns of probabilities).

    >>> from opsloop.learn.robustness.torch_classifier import TorchClassifier
    >>> import torch
    >>> model_classes(TorchClassifier(torch.nn.Linear(2, 3)), np.zeros((1, 2))).tolist()
    [0, 1, 2]
    """
    own = getattr(model, "classes_", None)
    if own is not None:
        return np.asarray(own)
    if not hasattr(model, "predict_proba"):
        raise TypeError(f"model must have predict_proba, got {type(model).__name__}")
    return np.arange(np.asarray(model.predict_proba(np.asarray(X)[:1])).shape[1])


def membership_scores(model: Any, X: Any, y: Any, score: str = "loss", classes: Any = None):
    """Each row's membership score: higher means "more likely a training row".

    ``"loss"``: minus the cross-entropy of the row's label, :math:`\\log p_y`;
    ``"confidence"``: the largest probability, which needs no label.

    >>> from sklearn.linear_model import LogisticRegression
    >>> model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> membership_scores(model, [[0.0], [1.0]], [0, 0]).round(3).tolist()
    [-0.588, -0.81]
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    classes = model_classes(model, X) if classes is None else np.asarray(classes)
    probabilities = class_probabilities(model, X, classes)
    if score == "confidence":
        return probabilities.max(axis=1)
    label_probability = probabilities[np.arange(len(probabilities)), label_columns(y, classes)]
    return np.log(np.maximum(label_probability, SMALLEST_PROBABILITY))


@dataclass(frozen=True)
class MembershipResult:
    """How well an attack tells members from non-members.

    ``advantage`` is the largest TPR - FPR over thresholds of the attack's score; ``threshold``,
    ``tpr`` and ``fpr`` are where it is reached (a row scoring at least ``threshold`` is called
    a member). ``chance_advantage`` is the advantage that a model leaking nothing stays below 19
    times in 20 with this many rows.
    """

    attack: str
    auc: float
    advantage: float
    threshold: float
    tpr: float
    fpr: float
    members: int
    non_members: int
    member_scores: np.ndarray = field(repr=False, compare=False)
    non_member_scores: np.ndarray = field(repr=False, compare=False)

    @property
    def chance_advantage(self) -> float:
        """1.36·√(1/m + 1/n): the 95% quantile of the advantage when nothing leaks."""
        return float(1.36 * np.sqrt(1 / self.members + 1 / self.non_members))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the scores left out)."""
        return {
            "attack": self.attack,
            "auc": self.auc,
            "advantage": self.advantage,
            "threshold": self.threshold,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "members": self.members,
            "non_members": self.non_members,
            "chance_advantage": self.chance_advantage,
        }


def _result(attack: str, member_scores: np.ndarray, non_member_scores: np.ndarray):
    labels = np.r_[np.ones(len(member_scores)), np.zeros(len(non_member_scores))]
    scores = np.r_[member_scores, non_member_scores]
    advantage, threshold, tpr, fpr = best_advantage(labels, scores)
    return MembershipResult(
        attack=attack,
        auc=roc_auc(labels, scores),
        advantage=advantage,
        threshold=threshold,
        tpr=tpr,
        fpr=fpr,
        members=len(member_scores),
        non_members=len(non_member_scores),
        member_scores=member_scores,
        non_member_scores=non_member_scores,
    )


def threshold_attack(model: Any, members: Any, non_members: Any, score: str = "loss"):
    """Loss- or confidence-threshold membership attack on a fitted classifier.

    ``members`` and ``non_members`` are pairs ``(X, y)``: rows the model was trained on, and
    rows from the same population it never saw.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X[:500], y[:500])
    >>> result = threshold_attack(tree, (X[:500], y[:500]), (X[500:1000], y[500:1000]))
    >>> round(result.advantage, 3), round(result.auc, 3)  # an unpruned tree remembers its rows
    (0.384, 0.692)

    A member scores 0 (probability 1 for its label); a non-member scores 0 where the tree is right
    and log(1e-12) where it is wrong, so the advantage is the tree's test error, 1 - 0.616.
    """
    X_in, y_in = labelled_rows("members", members, two_d=False)
    X_out, y_out = labelled_rows("non_members", non_members, two_d=False)
    classes = model_classes(model, X_in)
    return _result(
        f"{score} threshold",
        membership_scores(model, X_in, y_in, score, classes),
        membership_scores(model, X_out, y_out, score, classes),
    )


def attack_features(probabilities: np.ndarray, label_columns: np.ndarray) -> np.ndarray:
    """What the shadow attack model sees of one output: sorted probabilities and the label's log.

    >>> attack_features(np.array([[0.2, 0.7, 0.1]]), np.array([0])).round(3).tolist()
    [[0.7, 0.2, 0.1, -1.609]]
    """
    ordered = -np.sort(-probabilities, axis=1)
    label_probability = probabilities[np.arange(len(probabilities)), label_columns]
    return np.column_stack([ordered, np.log(np.maximum(label_probability, SMALLEST_PROBABILITY))])


def shadow_attack(
    model: Any,
    members: Any,
    non_members: Any,
    shadow_data: Any,
    *,
    shadow_model: Any = None,
    n_shadows: int = 4,
    attack_model: Any = None,
    seed: int = 0,
):
    """Shadow-model membership attack (Shokri et al., 2017) on a fitted classifier.

    Parameters
    ----------
    model
        The target: a fitted classifier with ``predict_proba``.
    members, non_members
        Pairs ``(X, y)`` of rows the target was and was not trained on (the attack is scored on
        them; it never trains on them).
    shadow_data
        A pair ``(X, y)`` the attacker owns, from the same population and disjoint from the
        target's training rows; each shadow trains on a random half of it.
    shadow_model
        An unfitted scikit-learn estimator to clone for every shadow; ``None`` clones ``model``
        (the attacker knows the kind of model and its settings).
    n_shadows
        Number of shadow models.
    attack_model
        Unfitted binary classifier telling "in" from "out" by :func:`attack_features`;
        ``None`` is a ``LogisticRegression`` (the features are monotone in membership, and it
        trains in milliseconds).
    seed
        Seeds the halves and every estimator that takes a ``random_state``.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X[:500], y[:500])
    >>> result = shadow_attack(tree, (X[:500], y[:500]), (X[500:1000], y[500:1000]),
    ...                        shadow_data=(X[1000:], y[1000:]), n_shadows=2)
    >>> round(result.advantage, 3), round(result.auc, 3)  # as the threshold attack's
    (0.384, 0.692)
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    X_in, y_in = labelled_rows("members", members, two_d=False)
    X_out, y_out = labelled_rows("non_members", non_members, two_d=False)
    X_shadow, y_shadow = labelled_rows("shadow_data", shadow_data, two_d=False)
    if isinstance(n_shadows, bool) or not isinstance(n_shadows, int) or n_shadows < 1:
        raise ValueError(f"n_shadows must be a positive int, got {n_shadows!r}")
    if len(X_shadow) < 4:
        raise ValueError("shadow_data: needs at least 4 rows to split in and out")
    classes = model_classes(model, X_in)
    template = clone(model) if shadow_model is None else shadow_model
    rng = np.random.default_rng(seed)
    features, is_member = [], []
    for k in range(n_shadows):
        order = rng.permutation(len(X_shadow))
        half = len(order) // 2
        inside, outside = order[:half], order[half:]
        shadow = clone(template)
        if "random_state" in shadow.get_params():
            shadow.set_params(random_state=seed + k)
        shadow.fit(X_shadow[inside], y_shadow[inside])
        for rows, flag in ((inside, 1), (outside, 0)):
            probabilities = class_probabilities(shadow, X_shadow[rows], classes)
            features.append(attack_features(probabilities, label_columns(y_shadow[rows], classes)))
            is_member.append(np.full(len(rows), flag))
    judge = LogisticRegression(max_iter=1000) if attack_model is None else attack_model
    judge = clone(judge).fit(np.vstack(features), np.concatenate(is_member))

    def score(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        probabilities = class_probabilities(model, X, classes)
        return judge.predict_proba(attack_features(probabilities, label_columns(y, classes)))[:, 1]

    return _result("shadow model", score(X_in, y_in), score(X_out, y_out))
