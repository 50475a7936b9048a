"""Every attack of this package on one model and its data, as one result.

:func:`assess_robustness` runs what applies to the model and says why it skipped the rest:

=============  ===========================================  =====================================
part           what it measures                             needs
=============  ===========================================  =====================================
white_box      accuracy under FGSM and PGD over ``eps``      a torch module
black_box      random-search success rate, perturbation     ``predict_proba`` (a torch module is
                                                            wrapped); HopSkipJump from labels
                                                            for a model with ``predict`` only
membership     loss/confidence threshold and shadow AUC,     ``predict_proba``; the shadow attack
               advantage                                    also ``shadow_data`` and a model to
                                                            clone
extraction     surrogate fidelity and accuracy against N    ``shadow_data`` (the attacker's rows)
poisoning      clean accuracy against the flip rate; the    a scikit-learn model to refit (the
               flipped rows found again                     model itself, or ``estimator``)
inversion      each class's reconstructed representative:   a torch module
               correlation with the class's mean
backdoor       clean accuracy and trigger success against   a scikit-learn model to refit, and
               the poisoned share; the poisoned rows found  ``trigger`` with ``backdoor_target``
               again by spectral signatures
=============  ===========================================  =====================================

:func:`opsloop.reports.robustness.robustness_report` renders the result as HTML and logs it to
a run. The ``backdoor`` part runs only when ``parts`` names it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.learn.labelled_rows import labelled_rows
from opsloop.learn.robustness.backdoor import (
    BackdoorCurve,
    BackdoorDetection,
    BackdoorTrigger,
    backdoor_curve,
    backdoor_detection,
)
from opsloop.learn.robustness.blackbox import BlackBoxResult, random_search_attack
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.decision_based import hop_skip_jump_attack
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.evasion import AttackCurve, accuracy_under_attack, check_norm
from opsloop.learn.robustness.extraction import ExtractionCurve, extraction_curve
from opsloop.learn.robustness.inversion import InversionResult, invert_classes
from opsloop.learn.robustness.membership import MembershipResult, shadow_attack, threshold_attack
from opsloop.learn.robustness.poisoning import (
    DetectionResult,
    PoisoningCurve,
    label_flip_curve,
    label_flip_detection,
)
from opsloop.learn.robustness.torch_classifier import TorchClassifier, is_torch_module

PARTS = ("white_box", "black_box", "membership", "extraction", "poisoning", "inversion")
# run only when named in ``parts``: they need settings no default can guess (a trigger)
OPTIONAL_PARTS = ("backdoor",)


@dataclass(frozen=True)
class RobustnessResult(Mapping):
    """The numbers of every attack run on one model; read it like a dict of JSON-ready parts.

    ``skipped`` maps each part not run to the reason. ``defences`` holds the measured effect of
    each defence tried on the model (:func:`~.adversarial_training.adversarial_training`,
    :func:`~.defensive_distillation.defensive_distillation`,
    :func:`~.output_defences.output_defence_effects`,
    :func:`~.private_training.private_training`), added by whoever ran them.
    """

    model: str
    train_rows: int
    test_rows: int
    clean_accuracy: float
    white_box: tuple[AttackCurve, ...] = ()
    black_box: BlackBoxResult | None = None
    membership: tuple[MembershipResult, ...] = ()
    extraction: ExtractionCurve | None = None
    poisoning: PoisoningCurve | None = None
    detection: DetectionResult | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    defences: tuple[DefenceEffect, ...] = ()
    inversion: InversionResult | None = None
    backdoor: BackdoorCurve | None = None
    backdoor_detection: BackdoorDetection | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "model": self.model,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "clean_accuracy": self.clean_accuracy,
            "white_box": [curve.to_dict() for curve in self.white_box],
            "black_box": None if self.black_box is None else self.black_box.to_dict(),
            "membership": [result.to_dict() for result in self.membership],
            "extraction": None if self.extraction is None else self.extraction.to_dict(),
            "poisoning": None if self.poisoning is None else self.poisoning.to_dict(),
            "detection": None if self.detection is None else self.detection.to_dict(),
            "skipped": dict(self.skipped),
            "defences": [effect.to_dict() for effect in self.defences],
            "inversion": None if self.inversion is None else self.inversion.to_dict(),
            "backdoor": None if self.backdoor is None else self.backdoor.to_dict(),
            "backdoor_detection": (
                None if self.backdoor_detection is None else self.backdoor_detection.to_dict()
            ),
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def metrics(self) -> dict[str, float]:
        """The headline numbers, flat, as a run logs them.

        ``white_box/<attack>_<norm>/accuracy@<eps>``, ``black_box/success_rate``,
        ``membership/<attack>/auc`` and ``/advantage``, ``extraction/fidelity@<n>``,
        ``poisoning/accuracy@<rate>``, ``detection/precision`` and ``/recall``, and each
        defence's ``defence/<defence>/<measure>/before`` and ``/after``;
        ``inversion/mean_similarity`` and ``inversion/identified``;
        ``backdoor/accuracy@<rate>`` and ``backdoor/success@<rate>``,
        ``backdoor_detection/precision`` and ``/recall``.
        """
        out: dict[str, float] = {"clean_accuracy": self.clean_accuracy}
        for curve in self.white_box:
            for eps, accuracy in zip(curve.eps, curve.accuracy, strict=True):
                out[f"white_box/{curve.attack}_{curve.norm}/accuracy@{eps:g}"] = accuracy
        if self.black_box is not None:
            out["black_box/success_rate"] = self.black_box.success_rate
            if self.black_box.median_perturbation is not None:
                out["black_box/median_perturbation"] = self.black_box.median_perturbation
        for result in self.membership:
            name = result.attack.replace(" ", "_")
            out[f"membership/{name}/auc"] = result.auc
            out[f"membership/{name}/advantage"] = result.advantage
        if self.extraction is not None:
            for n, fidelity in zip(
                self.extraction.n_queries, self.extraction.fidelity, strict=True
            ):
                out[f"extraction/fidelity@{n}"] = fidelity
        if self.poisoning is not None:
            for rate, accuracy in zip(self.poisoning.rates, self.poisoning.accuracy, strict=True):
                out[f"poisoning/accuracy@{rate:g}"] = accuracy
        if self.detection is not None:
            out["detection/precision"] = self.detection.precision
            out["detection/recall"] = self.detection.recall
        if self.inversion is not None:
            out["inversion/mean_similarity"] = self.inversion.mean_similarity
            out["inversion/identified"] = self.inversion.identified
        if self.backdoor is not None:
            b = self.backdoor
            for rate, accuracy, success in zip(b.rates, b.accuracy, b.success, strict=True):
                out[f"backdoor/accuracy@{rate:g}"] = accuracy
                out[f"backdoor/success@{rate:g}"] = success
        if self.backdoor_detection is not None:
            out["backdoor_detection/precision"] = self.backdoor_detection.precision
            out["backdoor_detection/recall"] = self.backdoor_detection.recall
        for effect in self.defences:
            out.update(effect.metrics())
        return out


def _refittable(model: Any) -> bool:
    try:
        from sklearn.base import clone

        clone(model)
    except Exception:  # anything clone cannot copy is not a scikit-learn estimator
        return False
    return True


def assess_robustness(
    model: Any,
    train: Any,
    test: Any,
    *,
    parts: Any = PARTS,
    eps: Any = (0.0, 0.05, 0.1, 0.2),
    norm: Any = "inf",
    steps: int = 20,
    constraints: FeatureConstraints | None = None,
    black_box_eps: float | None = None,
    max_queries: int = 200,
    attack_rows: int = 200,
    shadow_data: Any = None,
    n_queries: Any = (50, 200, 1000),
    flip_rates: Any = (0.0, 0.1, 0.3),
    detection_rate: float = 0.1,
    estimator: Any = None,
    seed: int = 0,
    model_name: str = "model",
    trigger: BackdoorTrigger | None = None,
    backdoor_target: Any = None,
    backdoor_rates: Any = (0.0, 0.05, 0.1),
) -> RobustnessResult:
    """Run the attacks in ``parts`` on a fitted ``model`` trained on ``train``.

    Parameters
    ----------
    model
        A fitted classifier: a torch module returning logits, or anything with ``predict`` and
        ``predict_proba`` (scikit-learn's included). A model with ``predict`` only (labels) gets
        the decision-based black-box attack (HopSkipJump), and no membership inference.
    train, test
        Pairs ``(X, y)``: the rows the model was trained on (the members) and held-out rows
        (non-members, and the rows attacked).
    parts
        Which of :data:`PARTS` to run, and of :data:`OPTIONAL_PARTS` (``"backdoor"``), which
        run only when named.
    eps, norm, steps, constraints
        Budgets of the white-box curves (FGSM and PGD with ``steps`` steps), their norm, and
        the domain every attack stays in.
    black_box_eps, max_queries, attack_rows
        Budget of the black-box attack (``None``: the largest ``eps``), its queries per row,
        and how many test rows it attacks.
    shadow_data
        The attacker's own labelled rows ``(X, y)``, disjoint from ``train``: the shadow
        models' data and the extraction's query pool.
    n_queries
        Extraction budgets (each at most the rows of ``shadow_data``).
    flip_rates, detection_rate
        Shares of training labels flipped for the poisoning curve, and for the detection.
    estimator
        Unfitted scikit-learn classifier to retrain for poisoning and shadows; ``None`` clones
        ``model`` where it can be cloned.
    seed
        Seeds every attack.
    model_name
        Name shown in the result.
    trigger, backdoor_target, backdoor_rates
        The backdoor part: the trigger a poisoner stamps (checked against ``constraints``), the
        class it relabels the rows to, and the shares of training rows poisoned for the curve;
        the detection poisons ``detection_rate`` of the rows.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X[:500], y[:500])
    >>> result = assess_robustness(tree, (X[:500], y[:500]), (X[500:800], y[500:800]),
    ...                            parts=["membership"])
    >>> result["membership"][0]["attack"], round(result["membership"][0]["advantage"], 3)
    ('loss threshold', 0.45)
    >>> result["skipped"]["white_box"]
    'not asked for'
    """
    if trigger is not None and not isinstance(trigger, BackdoorTrigger):
        raise TypeError(f"trigger must be a BackdoorTrigger, got {type(trigger).__name__}")
    if (trigger is None) != (backdoor_target is None):
        raise ValueError("trigger and backdoor_target: give both or neither")
    unknown = sorted(set(parts) - set(PARTS) - set(OPTIONAL_PARTS))
    if unknown:
        raise ValueError(f"parts: {unknown[0]!r} is not one of {PARTS + OPTIONAL_PARTS}")
    X_train, y_train = labelled_rows("train", train)
    X_test, y_test = labelled_rows("test", test)
    shadow = None if shadow_data is None else labelled_rows("shadow_data", shadow_data)
    norm = check_norm(norm)
    torch_model = is_torch_module(model)
    classifier = TorchClassifier(model) if torch_model else model
    scores = hasattr(classifier, "predict_proba")
    if not scores and not hasattr(classifier, "predict"):
        raise TypeError(f"model must be a torch module or have predict, got {model!r}")
    if estimator is None and not torch_model and _refittable(model):
        from sklearn.base import clone

        estimator = clone(model)
    skipped: dict[str, str] = {part: "not asked for" for part in PARTS if part not in parts}
    found: dict[str, Any] = {}
    budgets = [float(e) for e in np.atleast_1d(eps)]
    rows = slice(0, attack_rows)

    if "white_box" in parts:
        if torch_model:
            found["white_box"] = tuple(
                accuracy_under_attack(
                    model,
                    X_test,
                    y_test,
                    budgets,
                    attack=attack,
                    norm=norm,
                    steps=steps,
                    constraints=constraints,
                )
                for attack in ("fgsm", "pgd")
            )
        else:
            skipped["white_box"] = "needs a torch module (gradients); use black_box"
    if "black_box" in parts and not scores:
        found["black_box"] = hop_skip_jump_attack(
            classifier,
            X_test[rows],
            y_test[rows],
            eps=black_box_eps if black_box_eps is not None else max(budgets),
            norm=norm,
            max_queries=max_queries,
            constraints=constraints,
            seed=seed,
        )
    elif "black_box" in parts:
        found["black_box"] = random_search_attack(
            classifier,
            X_test[rows],
            y_test[rows],
            eps=black_box_eps if black_box_eps is not None else max(budgets),
            norm=norm,
            max_queries=max_queries,
            constraints=constraints,
            seed=seed,
        )
    if "membership" in parts and not scores:
        skipped["membership"] = "needs predict_proba (scores to threshold)"
    elif "membership" in parts:
        results = [
            threshold_attack(classifier, (X_train, y_train), (X_test, y_test), score=score)
            for score in ("loss", "confidence")
        ]
        if shadow is None:
            skipped["membership (shadow model)"] = "needs shadow_data"
        elif estimator is None:
            skipped["membership (shadow model)"] = "needs estimator (a model to train shadows)"
        else:
            results.append(
                shadow_attack(
                    classifier,
                    (X_train, y_train),
                    (X_test, y_test),
                    shadow,
                    shadow_model=estimator,
                    seed=seed,
                )
            )
        found["membership"] = tuple(results)
    if "extraction" in parts:
        if shadow is None:
            skipped["extraction"] = "needs shadow_data (the attacker's rows to query with)"
        else:
            budgets_n = [n for n in np.atleast_1d(n_queries) if n <= len(shadow[0])]
            found["extraction"] = extraction_curve(
                classifier, shadow[0], X_test, y_test, budgets_n or [len(shadow[0])], seed=seed
            )
    if "poisoning" in parts:
        if estimator is None:
            skipped["poisoning"] = "needs estimator (a scikit-learn model to retrain)"
        else:
            found["poisoning"] = label_flip_curve(
                estimator, X_train, y_train, X_test, y_test, flip_rates, seed=seed
            )
            found["detection"] = label_flip_detection(
                estimator, X_train, y_train, detection_rate, seed=seed
            )
    if "inversion" in parts:
        if not torch_model:
            skipped["inversion"] = "needs a torch module (gradients)"
        elif not np.issubdtype(y_train.dtype, np.integer):
            skipped["inversion"] = "needs class indices 0..k-1 as labels"
        else:
            found["inversion"] = invert_classes(model, X_train, y_train, constraints=constraints)
    if "backdoor" in parts:
        if estimator is None:
            skipped["backdoor"] = "needs estimator (a scikit-learn model to retrain)"
        elif trigger is None:
            skipped["backdoor"] = "needs trigger (a BackdoorTrigger) and backdoor_target"
        else:
            found["backdoor"] = backdoor_curve(
                estimator,
                X_train,
                y_train,
                X_test,
                y_test,
                trigger,
                backdoor_target,
                backdoor_rates,
                constraints=constraints,
                seed=seed,
            )
            found["backdoor_detection"] = backdoor_detection(
                X_train, y_train, trigger, backdoor_target, detection_rate, seed=seed
            )
    clean = float(np.mean(np.asarray(classifier.predict(X_test)) == y_test))
    return RobustnessResult(
        model=model_name,
        train_rows=len(X_train),
        test_rows=len(X_test),
        clean_accuracy=clean,
        skipped=tuple(skipped.items()),
        **found,
    )
