"""The robustness and privacy checks of a release gate: attacks of
:mod:`opsloop.learn.robustness` run on the candidate (and, for a margin, on the baseline) and
judged against the gate's bounds.

**Robustness.** Evaluation rows are attacked within ``epsilon`` of themselves, in the model's
input space (its input columns, which must be numbers): ``random_search`` queries only
``predict_proba`` (:func:`~opsloop.learn.robustness.random_search_attack`), ``fgsm`` and
``pgd`` follow a torch module's gradients (:func:`~opsloop.learn.robustness.fgsm`,
:func:`~opsloop.learn.robustness.pgd`). A row counts as right under attack when the model
still gives its true label; rows it got wrong to begin with count as wrong. Where the model's
signature records an input schema, :meth:`FeatureConstraints.from_schema
<opsloop.learn.robustness.FeatureConstraints.from_schema>` keeps every attacked row valid
(ranges, whole steps of integer columns, one-hot groups, code columns left alone); a range
that the evaluation rows already exceed is widened to hold them (the data contract check
judges that), and the evidence names those columns. Against
the baseline, the two models' right-under-attack rows are paired: McNemar's test with a margin
(:func:`~opsloop.analysis.paired_tests.mcnemar_noninferiority_test`).

**Privacy.** A membership-inference attack tries to tell the candidate's training rows (the
members) from the evaluation rows (non-members: the evaluation set is taken to be held out).
The registry keeps only the hash of a run's data sets, not their rows, so the members are
given to the gate by its caller; :func:`opsloop.registry.release_gate.run_gate` checks their
sha256 against the data set the gate names in the candidate's lineage. ``threshold`` scores
every row by the candidate's loss (or confidence); ``shadow`` trains copies of the candidate on
half of the evaluation rows and is scored on the other half. The advantage is the largest
TPR - FPR over thresholds on these very rows, so it exceeds zero by chance: the evidence gives
the level a model that leaks nothing stays below 19 times in 20.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> frame = pd.DataFrame({"x": np.linspace(-1, 1, 40)}); frame["y"] = (frame["x"] > 0) * 1
>>> model = _FramedModel(LogisticRegression().fit(frame[["x"]], frame["y"]), ["x"])
>>> model.predict(np.array([[-0.5], [0.5]])).tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from opsloop.analysis.gate.checks import PrivacyCheck, RobustnessCheck
from opsloop.analysis.gate.contract import input_schema
from opsloop.analysis.gate.result import CheckResult
from opsloop.analysis.paired_tests import mcnemar_noninferiority_test
from opsloop.learn.robustness import (
    FeatureConstraints,
    fgsm,
    pgd,
    random_search_attack,
    shadow_attack,
    threshold_attack,
)
from opsloop.learn.robustness.evasion import predict_classes
from opsloop.learn.robustness.membership import class_probabilities, label_columns


class _FramedModel(ClassifierMixin, BaseEstimator):
    """A fitted classifier fed the arrays the attacks make, passed to it as a frame of its
    input ``columns`` (a model fitted on a frame reads columns by name). ``fit`` fits a
    clone, so the shadow attack can train copies; ``random_state`` reaches the clone.

    >>> from sklearn.tree import DecisionTreeClassifier
    >>> framed = _FramedModel(DecisionTreeClassifier(), ["a"], random_state=3)
    >>> framed.fit(np.array([[0.0], [1.0]]), [0, 1]).estimator_.random_state
    3
    """

    def __init__(self, estimator: Any = None, columns: Any = (), random_state: Any = None):
        self.estimator = estimator
        self.columns = columns
        self.random_state = random_state

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        # an array of mixed columns arrives as objects: give pandas its dtypes back
        return pd.DataFrame(np.asarray(X), columns=list(self.columns)).infer_objects()

    def _model(self) -> Any:
        return getattr(self, "estimator_", self.estimator)

    @property
    def classes_(self) -> np.ndarray:
        """The wrapped classifier's classes."""
        return np.asarray(self._model().classes_)

    def fit(self, X: Any, y: Any) -> _FramedModel:
        """Fit a clone of ``estimator`` on ``X`` (as a frame) and ``y``."""
        model = clone(self.estimator)
        if self.random_state is not None and "random_state" in model.get_params():
            model.set_params(random_state=self.random_state)
        self.estimator_ = model.fit(self._frame(X), y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The wrapped classifier's probabilities of ``X``."""
        return np.asarray(self._model().predict_proba(self._frame(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The wrapped classifier's labels of ``X``."""
        return np.asarray(self._model().predict(self._frame(X)))


class _TorchGateModel(ClassifierMixin, BaseEstimator):
    """A torch module that returns logits, seen by a gate as a classifier of the classes
    ``0..k-1`` (``k`` the width of its output, known after its first prediction). FGSM and
    PGD attack ``module`` itself.

    >>> import torch
    >>> model = _TorchGateModel(torch.nn.Identity())
    >>> model.predict(pd.DataFrame({"a": [2.0, 0.0], "b": [1.0, 3.0]})).tolist()
    [0, 1]
    >>> model.classes_.tolist()
    [0, 1]
    """

    def __init__(self, module: Any = None):
        self.module = module

    @property
    def classes_(self) -> np.ndarray:
        """``0..k-1``, once the module has predicted."""
        width = getattr(self, "n_outputs_", None)
        if width is None:
            raise AttributeError("classes_: the module has not predicted yet")
        return np.arange(width)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the module's logits."""
        from opsloop.learn.robustness import TorchClassifier

        probabilities = TorchClassifier(self.module).predict_proba(np.asarray(X, dtype=np.float64))
        self.n_outputs_ = probabilities.shape[1]
        return probabilities

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest logit."""
        return self.predict_proba(X).argmax(axis=1)


def as_gate_model(model: Any) -> Any:
    """``model``, or a torch module as a :class:`_TorchGateModel`.

    >>> from sklearn.dummy import DummyClassifier
    >>> isinstance(as_gate_model(DummyClassifier()), DummyClassifier)
    True
    """
    from opsloop.learn.robustness.torch_classifier import is_torch_module

    return _TorchGateModel(model) if is_torch_module(model) else model


def _numbers(frame: pd.DataFrame, inputs: list[str], where: str) -> np.ndarray:
    for column in inputs:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(
                f"{where}: an evasion attack changes numbers, and the input column "
                f"{column!r} holds {frame[column].dtype} values"
            )
    # a copy: a frame may hand out a read-only view, and torch wants to own its tensors
    return np.array(frame[inputs].to_numpy(dtype=np.float64))


def _constraints(
    signature: Mapping[str, Any] | None, inputs: list[str], X: np.ndarray, where: str
) -> tuple[FeatureConstraints | None, list[str]]:
    """The schema's constraints on the model's inputs, each range widened to hold the
    evaluation rows (a schema inferred from the training rows is narrower than new data, and
    the data contract check is where that is judged), with the features widened."""
    schema = input_schema(signature)
    if schema is None:
        return None, []
    given = FeatureConstraints.from_schema(schema, inputs)
    widened = [
        inputs[j]
        for j in range(len(inputs))
        if len(X) and (X[:, j].min() < given.lower[j] or X[:, j].max() > given.upper[j])
    ]
    constraints = FeatureConstraints(
        given.n_features,
        lower=np.minimum(given.lower, X.min(axis=0)) if len(X) else given.lower,
        upper=np.maximum(given.upper, X.max(axis=0)) if len(X) else given.upper,
        integer=given.integer_steps,
        one_hot=given.one_hot,
        immutable=given.immutable,
        feature_names=given.feature_names,
    )
    try:
        constraints.check(X)
    except ValueError as error:
        raise ValueError(
            f"{where}: the evaluation rows break the model's input schema, so no attack can "
            f"stay in it ({error})"
        ) from None
    return constraints, widened


def attacked_rows(check: RobustnessCheck, n: int) -> np.ndarray:
    """The positions of the evaluation rows a robustness check attacks: all of them, or
    ``check.rows`` drawn without replacement with ``check.seed``, in order.

    >>> attacked_rows(RobustnessCheck("fgsm", 0.1, min_accuracy=0.5, rows=3), 10).tolist()
    [5, 6, 9]
    """
    if check.rows is None or check.rows >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(check.seed).choice(n, check.rows, replace=False))


def right_under_attack(
    check: RobustnessCheck,
    model: Any,
    X: np.ndarray,
    truth: np.ndarray,
    constraints: FeatureConstraints | None,
    name: str,
    where: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per attacked row: whether ``model`` was right before the attack, whether it is still
    right after, and the attack's own numbers."""
    if check.attack == "random_search":
        classes = np.asarray(model.classes_)
        codes = label_columns(truth, classes)
        right = class_probabilities(model, X, classes).argmax(axis=1) == codes
        attack = random_search_attack(
            model,
            X,
            truth,
            eps=check.epsilon,
            norm=check.norm,
            max_queries=check.queries,
            constraints=constraints,
            seed=check.seed,
        )
        return right, right & ~attack.success, attack.to_dict()
    if not isinstance(model, _TorchGateModel):
        raise ValueError(
            f"{where}.attack: {check.attack} follows the model's gradients and needs a torch "
            f"module; {name} is a {type(model).__name__}: use attack: random_search"
        )
    codes = label_columns(truth, np.asarray(model.classes_))
    if check.attack == "fgsm":
        X_adv = fgsm(
            model.module, X, codes, eps=check.epsilon, norm=check.norm, constraints=constraints
        )
    else:
        X_adv = pgd(
            model.module,
            X,
            codes,
            eps=check.epsilon,
            steps=check.steps,
            norm=check.norm,
            constraints=constraints,
        )
    right = predict_classes(model.module, X) == codes
    after = predict_classes(model.module, X_adv) == codes
    change = X_adv.astype(np.float64) - X
    size = np.abs(change).max(axis=1) if check.norm == "inf" else np.linalg.norm(change, axis=1)
    return (
        right,
        after,
        {
            "steps": check.steps if check.attack == "pgd" else 1,
            "mean_perturbation": float(size.mean()) if len(size) else 0.0,
        },
    )


def robustness_result(
    check: RobustnessCheck,
    models: tuple[Any, Any],
    inputs: tuple[list[str], list[str]],
    signatures: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
    names: tuple[str, str],
    frame: pd.DataFrame,
    truth: np.ndarray,
    where: str,
) -> CheckResult:
    """The candidate's accuracy under ``check``'s attack, and with a margin the baseline's
    on the same rows, judged."""
    rows = attacked_rows(check, len(frame))
    sides = (0, 1) if check.margin is not None else (0,)
    found = []
    for side in sides:
        model, columns = models[side], inputs[side]
        if isinstance(model, _TorchGateModel):
            attacked = model
        else:
            attacked = _FramedModel(model, columns)
        X = _numbers(frame.iloc[rows], columns, where)
        constraints, widened = _constraints(signatures[side], columns, X, where)
        right, after, details = right_under_attack(
            check, attacked, X, truth[rows], constraints, names[side], where
        )
        found.append(
            {
                "model": names[side],
                "clean_accuracy": float(right.mean()),
                "accuracy_under_attack": float(after.mean()),
                "constrained_by_schema": constraints is not None,
                "ranges_widened_to_the_data": widened,
                "attack": details,
                "_after": after,
            }
        )
    accuracy = found[0]["accuracy_under_attack"]
    reasons, passed, test = [], True, None
    line = (
        f"accuracy under {check.attack} {accuracy:.4g} (clean {found[0]['clean_accuracy']:.4g}) "
        f"on {len(rows)} rows"
    )
    if check.min_accuracy is not None:
        if accuracy >= check.min_accuracy:
            reasons.append(f"{line} meets the floor {check.min_accuracy:g}")
        else:
            passed = False
            reasons.append(f"{line} is below the floor {check.min_accuracy:g}")
    else:
        reasons.append(line)
    if check.margin is not None:
        after_c, after_b = found[0]["_after"], found[1]["_after"]
        test = mcnemar_noninferiority_test(
            np.ones(len(rows), dtype=np.int64),
            after_c.astype(np.int64),
            after_b.astype(np.int64),
            margin=check.margin,
            level=check.level,
        )
        versus = (
            f"the baseline's {found[1]['accuracy_under_attack']:.4g} (difference "
            f"{test.difference:+.4g}, {1 - 2 * check.level:.0%} interval [{test.ci_low:.4g}, "
            f"{test.ci_high:.4g}])"
        )
        if test.non_inferior:
            reasons.append(
                f"against {versus}: not worse by {check.margin:g} or more (p = {test.p_value:.3g})"
            )
        else:
            passed = False
            reasons.append(
                f"against {versus}: a drop of {check.margin:g} or more is not ruled out "
                f"(p = {test.p_value:.3g} >= {check.level:g})"
            )
    for entry in found:
        del entry["_after"]
    return CheckResult(
        kind="robustness",
        name=check.describe(),
        passed=passed,
        reason="; ".join(reasons),
        statistic=accuracy,
        p_value=None if test is None else test.p_value,
        threshold=check.min_accuracy if check.min_accuracy is not None else check.margin,
        evidence={
            "attack": check.attack,
            "epsilon": check.epsilon,
            "norm": check.norm,
            "rows": len(rows),
            "seed": check.seed,
            "min_accuracy": check.min_accuracy,
            "margin": check.margin,
            "candidate": found[0],
            "baseline": found[1] if len(found) > 1 else None,
            "paired_test": None if test is None else test.to_dict(),
        },
    )


def privacy_result(
    check: PrivacyCheck,
    model: Any,
    inputs: list[str],
    members: pd.DataFrame | None,
    frame: pd.DataFrame,
    label: str,
    where: str,
    members_source: Mapping[str, Any] | None = None,
) -> CheckResult:
    """How well ``check``'s membership attack tells ``members`` (the candidate's training
    rows) from the evaluation rows, judged."""
    if members is None:
        raise ValueError(
            f"{where}: a privacy check needs the candidate's training rows (the data set "
            f"{check.members!r} logged to its run): give them to the gate (evaluate_gate's "
            "members, opsloop gate run --members)"
        )
    missing = [c for c in [*inputs, label] if c not in members.columns]
    if missing:
        raise ValueError(f"{where}: the members lack the column {missing[0]!r}")
    if members[label].isna().any():
        raise ValueError(f"{where}: the members' label column {label!r} holds missing values")
    attacked = model if isinstance(model, _TorchGateModel) else _FramedModel(model, inputs)
    inside = (members[inputs].to_numpy(), members[label].to_numpy())
    X_out, y_out = frame[inputs].to_numpy(), frame[label].to_numpy()
    if check.attack == "threshold":
        result = threshold_attack(attacked, inside, (X_out, y_out), score=check.score)
    else:
        if isinstance(model, _TorchGateModel):
            raise ValueError(
                f"{where}.attack: shadow trains copies of the candidate, and a torch module "
                "cannot be copied untrained here: use attack: threshold"
            )
        if len(frame) < 8:
            raise ValueError(f"{where}: the shadow attack needs at least 8 evaluation rows")
        order = np.random.default_rng(check.seed).permutation(len(frame))
        half = len(order) // 2
        shadow_rows, outside = order[:half], order[half:]
        result = shadow_attack(
            attacked,
            inside,
            (X_out[outside], y_out[outside]),
            (X_out[shadow_rows], y_out[shadow_rows]),
            n_shadows=check.shadows,
            seed=check.seed,
        )
    failing = []
    if check.max_advantage is not None and result.advantage > check.max_advantage:
        failing.append(f"advantage {result.advantage:.4g} is above {check.max_advantage:g}")
    if check.max_auc is not None and result.auc > check.max_auc:
        failing.append(f"AUC {result.auc:.4g} is above {check.max_auc:g}")
    summary = (
        f"{result.attack} attack: advantage {result.advantage:.4g} (TPR {result.tpr:.3g} at "
        f"FPR {result.fpr:.3g}), AUC {result.auc:.4g}, {result.members} members against "
        f"{result.non_members} evaluation rows; chance alone reaches "
        f"{result.chance_advantage:.3g} 19 times in 20"
    )
    source = dict(members_source or {})
    if source.get("verified") is False:
        summary += f" (members not checked against the lineage: {source.get('note')})"
    use_advantage = check.max_advantage is not None
    return CheckResult(
        kind="privacy",
        name=check.describe(),
        passed=not failing,
        reason="; ".join([*failing, summary]),
        statistic=result.advantage if use_advantage else result.auc,
        threshold=check.max_advantage if use_advantage else check.max_auc,
        evidence={
            **result.to_dict(),
            "max_advantage": check.max_advantage,
            "max_auc": check.max_auc,
            "members_data": check.members,
            "members_source": source,
        },
    )
