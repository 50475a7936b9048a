"""The checks a release gate can hold, one frozen dataclass per ``kind`` of ``gate.yaml``
(:mod:`.spec` reads them from the file; :mod:`.evaluate` runs them).

>>> FloorCheck("auc", min=0.75).describe(), CHECK_KINDS[0]
('auc >= 0.75', 'non_inferiority')
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The gate checks that exist, by ``kind``.
CHECK_KINDS = (
    "non_inferiority",
    "floor",
    "slices",
    "fairness",
    "human_level",
    "calibration",
    "budget",
    "data_contract",
    "robustness",
    "privacy",
)
#: Checks a gate cannot run yet; a gate result lists them (none left).
NOT_AVAILABLE: tuple[str, ...] = ()
#: The evasion attacks a robustness check runs: a black-box random search on any model with
#: ``predict_proba``, FGSM and PGD (white-box, gradients) on a torch module.
ROBUSTNESS_ATTACKS = ("random_search", "fgsm", "pgd")
#: The membership-inference attacks a privacy check runs.
PRIVACY_ATTACKS = ("threshold", "shadow")


@dataclass(frozen=True)
class NonInferiorityCheck:
    """The candidate's ``metric`` is not below the baseline's by more than ``margin``, by a
    paired test at ``level``.

    >>> NonInferiorityCheck("auc", "delong", 0.01, 0.05).describe()
    'auc not worse than the baseline by more than 0.01 (delong, level 0.05)'
    """

    metric: str
    test: str
    margin: float
    level: float
    n_boot: int = 2000
    seed: int = 0

    def describe(self) -> str:
        """One line for people.

        >>> NonInferiorityCheck("accuracy", "mcnemar", 0.0, 0.01).describe()[:30]
        'accuracy not worse than the ba'
        """
        return (
            f"{self.metric} not worse than the baseline by more than {self.margin:g} "
            f"({self.test}, level {self.level:g})"
        )


@dataclass(frozen=True)
class FloorCheck:
    """The candidate's ``metric`` is at least ``min`` and at most ``max``.

    >>> FloorCheck("auc", 0.75).describe()
    'auc >= 0.75'
    """

    metric: str
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        """One line for people.

        >>> FloorCheck("mae", max=3.0).describe()
        'mae <= 3'
        """
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class SlicesCheck:
    """No slice of ``tags`` has an error rate significantly higher (McNemar, adjusted across
    slices) and more than ``margin`` above the baseline's.

    >>> SlicesCheck(("region",), False, 0.02, 0.05, 30).describe()
    'no slice of region worse by more than 0.02 (level 0.05)'
    """

    tags: tuple[str, ...]
    intersections: bool
    margin: float
    level: float
    min_size: int

    def describe(self) -> str:
        """One line for people.

        >>> SlicesCheck(("a", "b"), True, 0.0, 0.1, 30).describe()[:40]
        'no slice of a, b (and their intersection'
        """
        what = ", ".join(self.tags) + (" (and their intersections)" if self.intersections else "")
        return f"no slice of {what} worse by more than {self.margin:g} (level {self.level:g})"


@dataclass(frozen=True)
class FairnessCheck:
    """The candidate's disparities across each ``sensitive`` column within bounds: each
    ``max`` name (a ``*_difference``) at most its bound, each ``min`` name (a ``*_ratio``)
    at least its bound.

    >>> FairnessCheck(("sex",), {"demographic_parity_difference": 0.1}).describe()
    'demographic_parity_difference <= 0.1 across sex'
    """

    sensitive: tuple[str, ...]
    max: dict[str, float] = field(default_factory=dict)
    min: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for people.

        >>> FairnessCheck(("g",), {}, {"demographic_parity_ratio": 0.8}).describe()
        'demographic_parity_ratio >= 0.8 across g'
        """
        bounds = [f"{k} <= {v:g}" for k, v in self.max.items()]
        bounds += [f"{k} >= {v:g}" for k, v in self.min.items()]
        return f"{', '.join(bounds)} across {', '.join(self.sensitive)}"


@dataclass(frozen=True)
class HumanLevelCheck:
    """The candidate's accuracy is not below that of people (a second labeller's labels in
    the column ``human_labels``) by more than ``margin``: McNemar's test with a margin,
    paired on the same rows, at ``level``.

    >>> HumanLevelCheck("reviewer", 0.01, 0.05).describe()
    'accuracy not worse than human-level (reviewer) by more than 0.01 (level 0.05)'
    """

    human_labels: str
    margin: float
    level: float

    def describe(self) -> str:
        """One line for people.

        >>> HumanLevelCheck("h", 0.0, 0.01).describe()[:35]
        'accuracy not worse than human-level'
        """
        return (
            f"accuracy not worse than human-level ({self.human_labels}) by more than "
            f"{self.margin:g} (level {self.level:g})"
        )


@dataclass(frozen=True)
class CalibrationCheck:
    """The expected calibration error of the candidate's probabilities (``bins`` equal-width
    bins) is at most ``max_ece``.

    >>> CalibrationCheck(0.05).describe()
    'expected calibration error <= 0.05 (10 bins)'
    """

    max_ece: float
    bins: int = 10

    def describe(self) -> str:
        """One line for people.

        >>> CalibrationCheck(0.1, 5).describe()[-8:]
        '(5 bins)'
        """
        return f"expected calibration error <= {self.max_ece:g} ({self.bins} bins)"


@dataclass(frozen=True)
class BudgetCheck:
    """What serving the candidate costs, measured in a fresh process: its artifact at most
    ``max_size_mb``, the 99th percentile of ``rows`` single-row predictions at most
    ``max_p99_ms``, the process's peak memory at most ``max_peak_mb`` (each optional).

    >>> BudgetCheck(max_p99_ms=20.0).describe()
    'p99 single-row predict <= 20 ms'
    """

    max_size_mb: float | None = None
    max_p99_ms: float | None = None
    max_peak_mb: float | None = None
    rows: int = 200

    def describe(self) -> str:
        """One line for people.

        >>> BudgetCheck(max_size_mb=5.0, max_peak_mb=900.0).describe()
        'artifact <= 5 MB, peak memory <= 900 MB'
        """
        parts = []
        if self.max_size_mb is not None:
            parts.append(f"artifact <= {self.max_size_mb:g} MB")
        if self.max_p99_ms is not None:
            parts.append(f"p99 single-row predict <= {self.max_p99_ms:g} ms")
        if self.max_peak_mb is not None:
            parts.append(f"peak memory <= {self.max_peak_mb:g} MB")
        return ", ".join(parts)


@dataclass(frozen=True)
class DataContractCheck:
    """The candidate's signature is compatible with the baseline's (``signature``) and the
    evaluation data validates against the candidate's input schema (``schema``), anomalies
    of the ``ignore`` kinds aside.

    >>> DataContractCheck().describe()
    'signature compatible with the baseline; data valid against the input schema'
    """

    signature: bool = True
    schema: bool = True
    ignore: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for people.

        >>> DataContractCheck(schema=False).describe()
        'signature compatible with the baseline'
        """
        parts = []
        if self.signature:
            parts.append("signature compatible with the baseline")
        if self.schema:
            parts.append("data valid against the input schema")
        return "; ".join(parts)


@dataclass(frozen=True)
class RobustnessCheck:
    """The candidate's accuracy on evaluation rows attacked by ``attack`` within ``epsilon``
    (in ``norm``) is at least ``min_accuracy``, and, with ``margin``, not below the
    baseline's accuracy under the same attack on the same rows by more than ``margin``
    (McNemar with a margin on the rows each model still gets right, at ``level``).

    ``rows`` evaluation rows are attacked (all when ``None``; else drawn with ``seed``);
    ``queries`` bounds the random search per row, ``steps`` the steps of PGD.

    >>> RobustnessCheck("random_search", 0.1, min_accuracy=0.8).describe()
    'accuracy under random_search (L-inf, epsilon 0.1) >= 0.8'
    """

    attack: str
    epsilon: float
    norm: str = "inf"
    min_accuracy: float | None = None
    margin: float | None = None
    level: float = 0.05
    rows: int | None = None
    queries: int = 200
    steps: int = 40
    seed: int = 0

    def describe(self) -> str:
        """One line for people.

        >>> RobustnessCheck("pgd", 0.05, "l2", margin=0.02).describe()[-58:]
        'not worse than the baseline by more than 0.02 (level 0.05)'
        """
        norm = "L-inf" if self.norm == "inf" else "L2"
        parts = []
        if self.min_accuracy is not None:
            parts.append(f">= {self.min_accuracy:g}")
        if self.margin is not None:
            parts.append(
                f"not worse than the baseline by more than {self.margin:g} (level {self.level:g})"
            )
        return f"accuracy under {self.attack} ({norm}, epsilon {self.epsilon:g}) " + ", ".join(
            parts
        )


@dataclass(frozen=True)
class PrivacyCheck:
    """A membership-inference ``attack`` on the candidate tells its training rows (the data
    set logged as ``members`` to the candidate's run) from the evaluation rows with an
    advantage (largest TPR - FPR) at most ``max_advantage`` and a ROC AUC at most
    ``max_auc`` (each optional).

    ``threshold`` scores rows by ``score`` (``loss`` or ``confidence``); ``shadow`` trains
    ``shadows`` copies of the candidate on half of the evaluation rows (drawn with
    ``seed``) and is scored on the other half.

    >>> PrivacyCheck("threshold", max_advantage=0.1).describe()
    'membership advantage (threshold, loss) <= 0.1, members: train'
    """

    attack: str
    max_advantage: float | None = None
    max_auc: float | None = None
    members: str = "train"
    score: str = "loss"
    shadows: int = 4
    seed: int = 0

    def describe(self) -> str:
        """One line for people.

        >>> PrivacyCheck("shadow", max_auc=0.6).describe()
        'membership AUC (shadow) <= 0.6, members: train'
        """
        how = f"{self.attack}, {self.score}" if self.attack == "threshold" else self.attack
        bounds = []
        if self.max_advantage is not None:
            bounds.append(f"membership advantage ({how}) <= {self.max_advantage:g}")
        if self.max_auc is not None:
            bounds.append(f"membership AUC ({how}) <= {self.max_auc:g}")
        return ", ".join(bounds) + f", members: {self.members}"


Check = (
    NonInferiorityCheck
    | FloorCheck
    | SlicesCheck
    | FairnessCheck
    | HumanLevelCheck
    | CalibrationCheck
    | BudgetCheck
    | DataContractCheck
    | RobustnessCheck
    | PrivacyCheck
)
