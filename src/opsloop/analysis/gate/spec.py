"""A release gate as a file: ``gate.yaml``, read with ``yaml.safe_load`` and checked field by
field, so a mistake is reported with its place in the file (``checks[1].margin``) and the
rule it breaks. Each entry of ``checks`` becomes one of :mod:`.checks`' dataclasses.

.. code-block:: yaml

    version: 3                 # the gate's own revision: raise it when the checks change
    name: credit release       # optional
    label: default             # the label column of the evaluation data
    positive_label: 1          # the positive class (AUC, F1, fairness); default 1
    baseline: champion         # the alias compared against when none is given; default champion
    checks:
      - kind: non_inferiority  # not worse than the baseline by more than the margin
        metric: auc            # see opsloop.analysis.gate.metrics
        test: delong           # delong (auc), mcnemar (accuracy) or bootstrap; default by metric
        margin: 0.01
        level: 0.05            # one-sided
      - kind: non_inferiority
        metric: f1
        test: bootstrap        # a paired bootstrap: any metric; the only test of auc_ovr and
                               #   auc_ovo, the AUCs of more than two classes (one-vs-rest
                               #   macro, one-vs-one of Hand & Till)
        margin: 0.02
        n_boot: 2000           # bootstrap only
        seed: 0                # bootstrap only
      - kind: floor            # an absolute bound on the candidate's metric
        metric: auc
        min: 0.75              # or max:, for an error
      - kind: slices           # no slice's error rate rises significantly by more than margin
        tags: [region]
        intersections: false
        margin: 0.02
        level: 0.05            # Benjamini-Hochberg adjusted, across the slices
        min_size: 30
      - kind: fairness         # the candidate's disparities within bounds
        sensitive: [sex]
        max: {demographic_parity_difference: 0.1, equalized_odds_difference: 0.15}
        min: {demographic_parity_ratio: 0.8}
      - kind: human_level      # accuracy not below a second labeller's by more than margin,
        human_labels: reviewer #   paired (McNemar with a margin) on the same rows
        margin: 0.01
        level: 0.05
      - kind: budget           # measured in a fresh process on the registered artifact
        max_size_mb: 50
        max_p99_ms: 20         # single-row predict
        max_peak_mb: 1000      # the serving process's peak resident memory
        rows: 200              # single-row predictions timed
      - kind: calibration      # expected calibration error of the candidate's probabilities
        max_ece: 0.05
        bins: 10
      - kind: data_contract    # signature compatible with the baseline's; data valid
        signature: true
        schema: true
        ignore: [out_of_range] # anomaly kinds that do not fail the gate
      - kind: robustness       # accuracy on evaluation rows attacked within a budget
        attack: random_search  # random_search (any model with predict_proba; black box),
                               #   fgsm or pgd (a torch module; gradients)
        epsilon: 0.1           # the largest change of a row, in norm (the model's inputs)
        norm: inf              # inf or l2
        min_accuracy: 0.8      # and/or margin: not below the baseline's accuracy under the
        margin: 0.02           #   same attack by more than this (paired McNemar, level)
        level: 0.05
        rows: 500              # evaluation rows attacked (drawn with seed); default all
        queries: 200           # random_search only: queries per row (pgd: steps, default 40)
        seed: 0
      - kind: privacy          # membership inference: training rows told from evaluation rows
        attack: threshold      # threshold (Yeom et al.) or shadow (Shokri et al.)
        score: loss            # threshold: loss or confidence
        members: train         # the data set logged to the candidate's run that it was
                               #   trained on; its rows are given to the run (--members)
        max_advantage: 0.1     # largest TPR - FPR of the attack
        max_auc: 0.6           # the attack's ROC AUC
      - kind: privacy
        attack: shadow         # shadow models trained on half of the evaluation rows
        max_advantage: 0.1
        shadows: 4             # shadow only: shadow models
        seed: 0                # shadow only: draws the halves of the evaluation rows

>>> gate = parse_gate({"version": 1, "label": "y",
...                    "checks": [{"kind": "floor", "metric": "auc", "min": 0.75}]})
>>> gate.checks[0]
FloorCheck(metric='auc', min=0.75, max=None)
>>> parse_gate({"version": 1, "label": "y", "checks": [{"kind": "floor", "metric": "auc"}]})
Traceback (most recent call last):
...
opsloop.analysis.gate.spec.GateSpecError: gate: checks[0]: give min or max (or both)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opsloop.analysis.gate.checks import (
    CHECK_KINDS,
    PRIVACY_ATTACKS,
    ROBUSTNESS_ATTACKS,
    BudgetCheck,
    CalibrationCheck,
    Check,
    DataContractCheck,
    FairnessCheck,
    FloorCheck,
    HumanLevelCheck,
    NonInferiorityCheck,
    PrivacyCheck,
    RobustnessCheck,
    SlicesCheck,
)
from opsloop.analysis.gate.metrics import METRICS
from opsloop.data.schema.anomaly import ANOMALY_KINDS
from opsloop.errors import InvalidArgumentError


class GateSpecError(InvalidArgumentError):
    """A gate file breaks a rule; the message names the file, the field and the rule."""


@dataclass(frozen=True)
class GateSpec:
    """A parsed, checked gate file. ``sha256`` is the hash of the file's bytes, or for a
    gate built from a mapping the hash of its canonical JSON (sorted keys, no spaces),
    recorded with every result: a protected alias counts only verdicts that carry it.

    >>> spec = parse_gate({"version": 2, "label": "y", "checks": [{"kind": "data_contract"}]})
    >>> spec.version, spec.baseline, spec.positive_label
    (2, 'champion', 1)
    >>> spec.sha256[:12]  # of {"checks":[{"kind":"data_contract"}],"label":"y","version":2}
    '14b46f600e4a'
    """

    version: int
    label: str
    checks: tuple[Check, ...]
    name: str | None = None
    positive_label: Any = 1
    baseline: str = "champion"
    sha256: str | None = None


_TOP = ("version", "name", "label", "positive_label", "baseline", "checks")
_FIELDS = {
    "non_inferiority": ("kind", "metric", "test", "margin", "level", "n_boot", "seed"),
    "floor": ("kind", "metric", "min", "max"),
    "slices": ("kind", "tags", "intersections", "margin", "level", "min_size"),
    "fairness": ("kind", "sensitive", "max", "min"),
    "human_level": ("kind", "human_labels", "margin", "level"),
    "calibration": ("kind", "max_ece", "bins"),
    "budget": ("kind", "max_size_mb", "max_p99_ms", "max_peak_mb", "rows"),
    "data_contract": ("kind", "signature", "schema", "ignore"),
    "robustness": (
        "kind",
        "attack",
        "epsilon",
        "norm",
        "min_accuracy",
        "margin",
        "level",
        "rows",
        "queries",
        "steps",
        "seed",
    ),
    "privacy": (
        "kind",
        "attack",
        "max_advantage",
        "max_auc",
        "members",
        "score",
        "shadows",
        "seed",
    ),
}
_NORMS = {"inf": "inf", "linf": "inf", "l2": "l2", "2": "l2"}


def load_gate(path: str | Path) -> GateSpec:
    """Read and check the gate file at ``path`` (its sha256 kept on the result).

    >>> import tempfile, pathlib
    >>> path = tmp_path / "gate.yaml"
    >>> _ = path.write_text("version: 1\\nlabel: y\\nchecks:\\n  - kind: slices\\n")
    >>> load_gate(path)
    Traceback (most recent call last):
    ...
    opsloop.analysis.gate.spec.GateSpecError: gate.yaml: checks[0].tags is missing
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such gate file")
    data = path.read_bytes()
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as error:
        raise GateSpecError(f"{path.name}: not valid YAML ({error})") from None
    spec = parse_gate(document, source=path.name)
    return GateSpec(**{**spec.__dict__, "sha256": hashlib.sha256(data).hexdigest()})


def parse_gate(document: Any, source: str = "gate") -> GateSpec:
    """Check a gate's parsed YAML (a mapping) and build its :class:`GateSpec`; ``source``
    names it in errors.

    >>> parse_gate({"version": 1, "label": "y", "checks": []})
    Traceback (most recent call last):
    ...
    opsloop.analysis.gate.spec.GateSpecError: gate: checks must list at least one check
    """
    at = _Place(source)
    if not isinstance(document, dict):
        raise GateSpecError(f"{source}: expected a mapping of fields, got {_kind(document)}")
    at.known(document, _TOP, "")
    version = at.integer(document, "version", minimum=1, required=True)
    label = at.text(document, "label", required=True)
    name = at.text(document, "name")
    baseline = at.text(document, "baseline") or "champion"
    positive_label = document.get("positive_label", 1)
    if not isinstance(positive_label, str | int) or isinstance(positive_label, bool):
        raise GateSpecError(
            f"{source}: positive_label must be a class label (text or integer), got "
            f"{positive_label!r}"
        )
    checks = document.get("checks")
    if not isinstance(checks, list):
        raise GateSpecError(f"{source}: checks must be a list of checks, got {_kind(checks)}")
    if not checks:
        raise GateSpecError(f"{source}: checks must list at least one check")
    parsed = tuple(at.check(block, f"checks[{i}]") for i, block in enumerate(checks))
    try:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise GateSpecError(f"{source}: not plain data ({error})") from None
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return GateSpec(version, label, parsed, name, positive_label, baseline, digest)


class _Place:
    """Field checks that name where in ``source`` the field is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> GateSpecError:
        return GateSpecError(f"{self.source}: {where}{message}")

    def known(self, block: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in block:
            if key not in allowed:
                raise self.fail(
                    f"{where}: " if where else "",
                    f"unknown field {key!r}; allowed: {', '.join(allowed)}",
                )

    def _get(self, block: dict, key: str, prefix: str, required: bool) -> Any:
        if key not in block or block[key] is None:
            if required:
                raise self.fail(f"{prefix}{key}", " is missing")
            return None
        return block[key]

    def integer(
        self, block: dict, key: str, prefix: str = "", *, minimum: int = 0, required: bool = False
    ) -> int | None:
        value = self._get(block, key, prefix, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{prefix}{key}", f" must be an integer >= {minimum}, got {value!r}")
        return value

    def number(
        self,
        block: dict,
        key: str,
        prefix: str = "",
        *,
        low: float = -math.inf,
        high: float = math.inf,
        rule: str = "a finite number",
    ) -> float | None:
        value = self._get(block, key, prefix, False)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise self.fail(f"{prefix}{key}", f" must be {rule}, got {value!r}")
        return float(value)

    def flag(self, block: dict, key: str, prefix: str, default: bool) -> bool:
        value = self._get(block, key, prefix, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"{prefix}{key}", f" must be true or false, got {value!r}")
        return value

    def text(self, block: dict, key: str, prefix: str = "", *, required: bool = False):
        value = self._get(block, key, prefix, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{prefix}{key}", f" must be non-empty text, got {value!r}")
        return value

    def names(self, block: dict, key: str, prefix: str) -> tuple[str, ...]:
        value = self._get(block, key, prefix, True)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(f"{prefix}{key}", f" must be a list of column names, got {value!r}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.fail(f"{prefix}{key}", f" must hold column names, got {item!r}")
        return tuple(value)

    def bounds(self, block: dict, key: str, prefix: str, suffix: str) -> dict[str, float]:
        value = self._get(block, key, prefix, False)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{prefix}{key}", f" must map disparity names to bounds, got {value!r}")
        for name in value:
            if not isinstance(name, str) or not name.endswith(suffix):
                raise self.fail(
                    f"{prefix}{key}",
                    f": {name!r} is not a disparity ending in {suffix} (e.g. "
                    f"demographic_parity{suffix})",
                )
            self.number(value, name, f"{prefix}{key}.", low=0.0, rule="a number >= 0")
        return {name: float(bound) for name, bound in value.items()}

    def metric(self, block: dict, prefix: str) -> str:
        name = self.text(block, "metric", prefix, required=True)
        if name not in METRICS:
            raise self.fail(
                f"{prefix}metric", f": unknown metric {name!r}; known: {', '.join(METRICS)}"
            )
        return name

    def check(self, block: Any, where: str) -> Check:
        if not isinstance(block, dict):
            raise self.fail(where, f": expected a mapping with a kind, got {_kind(block)}")
        kind = block.get("kind")
        if kind not in CHECK_KINDS:
            raise self.fail(f"{where}.kind", f": {kind!r} is not one of {', '.join(CHECK_KINDS)}")
        prefix = f"{where}."
        self.known(block, _FIELDS[kind], where)
        margin = {"low": 0.0, "rule": "a number >= 0"}
        level = {"low": 1e-12, "high": 0.5 - 1e-12, "rule": "a number strictly between 0 and 0.5"}
        if kind == "non_inferiority":
            metric = self.metric(block, prefix)
            tests = METRICS[metric].tests
            test = self.text(block, "test", prefix) or tests[0]
            if test not in tests:
                raise self.fail(
                    f"{prefix}test", f": {test!r} does not judge {metric}; use {' or '.join(tests)}"
                )
            if test != "bootstrap":
                for key in ("n_boot", "seed"):
                    if key in block:
                        raise self.fail(f"{prefix}{key}", " applies to test: bootstrap only")
            return NonInferiorityCheck(
                metric,
                test,
                self.number(block, "margin", prefix, **margin) or 0.0,
                self.number(block, "level", prefix, **level) or 0.05,
                self.integer(block, "n_boot", prefix, minimum=100) or 2000,
                self.integer(block, "seed", prefix) or 0,
            )
        if kind == "floor":
            metric = self.metric(block, prefix)
            low, high = self.number(block, "min", prefix), self.number(block, "max", prefix)
            if low is None and high is None:
                raise self.fail(where, ": give min or max (or both)")
            if low is not None and high is not None and low > high:
                raise self.fail(f"{prefix}min", f" {low:g} is above max {high:g}")
            return FloorCheck(metric, low, high)
        if kind == "slices":
            level_value = self.number(block, "level", prefix, **level)
            return SlicesCheck(
                self.names(block, "tags", prefix),
                self.flag(block, "intersections", prefix, False),
                self.number(block, "margin", prefix, low=0.0, high=1.0, rule="a number in [0, 1]")
                or 0.0,
                0.05 if level_value is None else level_value,
                self.integer(block, "min_size", prefix, minimum=1) or 30,
            )
        if kind == "fairness":
            check = FairnessCheck(
                self.names(block, "sensitive", prefix),
                self.bounds(block, "max", prefix, "_difference"),
                self.bounds(block, "min", prefix, "_ratio"),
            )
            if not check.max and not check.min:
                raise self.fail(where, ": give max (differences) or min (ratios) bounds")
            return check
        if kind == "human_level":
            level_value = self.number(block, "level", prefix, **level)
            return HumanLevelCheck(
                self.text(block, "human_labels", prefix, required=True),
                self.number(block, "margin", prefix, low=0.0, high=1.0, rule="a number in [0, 1]")
                or 0.0,
                0.05 if level_value is None else level_value,
            )
        if kind == "budget":
            positive = {"low": 1e-12, "rule": "a number > 0"}
            check = BudgetCheck(
                self.number(block, "max_size_mb", prefix, **positive),
                self.number(block, "max_p99_ms", prefix, **positive),
                self.number(block, "max_peak_mb", prefix, **positive),
                self.integer(block, "rows", prefix, minimum=1) or 200,
            )
            if (check.max_size_mb, check.max_p99_ms, check.max_peak_mb) == (None, None, None):
                raise self.fail(where, ": give max_size_mb, max_p99_ms or max_peak_mb")
            return check
        if kind == "calibration":
            if block.get("max_ece") is None:
                raise self.fail(f"{prefix}max_ece", " is missing")
            return CalibrationCheck(
                self.number(block, "max_ece", prefix, low=0.0, high=1.0, rule="a number in [0, 1]"),
                self.integer(block, "bins", prefix, minimum=1) or 10,
            )
        if kind == "robustness":
            return self.robustness(block, where)
        if kind == "privacy":
            return self.privacy(block, where)
        ignore = block.get("ignore") or []
        if not isinstance(ignore, list):
            raise self.fail(f"{prefix}ignore", f" must be a list of anomaly kinds, got {ignore!r}")
        for item in ignore:
            if item not in ANOMALY_KINDS:
                raise self.fail(
                    f"{prefix}ignore",
                    f": {item!r} is not an anomaly kind; kinds: {', '.join(ANOMALY_KINDS)}",
                )
        check = DataContractCheck(
            self.flag(block, "signature", prefix, True),
            self.flag(block, "schema", prefix, True),
            tuple(ignore),
        )
        if not check.signature and not check.schema:
            raise self.fail(where, ": signature and schema are both off, so it checks nothing")
        return check

    def choice(self, block: dict, key: str, prefix: str, allowed: tuple[str, ...]) -> str:
        value = self.text(block, key, prefix, required=True)
        if value not in allowed:
            raise self.fail(f"{prefix}{key}", f": {value!r} is not one of {', '.join(allowed)}")
        return value

    def only_for(self, block: dict, keys: tuple[str, ...], prefix: str, what: str) -> None:
        for key in keys:
            if key in block:
                raise self.fail(f"{prefix}{key}", f" applies to {what} only")

    def robustness(self, block: dict, where: str) -> RobustnessCheck:
        prefix = f"{where}."
        attack = self.choice(block, "attack", prefix, ROBUSTNESS_ATTACKS)
        if block.get("epsilon") is None:
            raise self.fail(f"{prefix}epsilon", " is missing")
        epsilon = self.number(block, "epsilon", prefix, low=1e-300, rule="a number > 0")
        norm = _NORMS.get(str(block.get("norm", "inf")).lower())
        if norm is None:
            raise self.fail(f"{prefix}norm", f" must be inf or l2, got {block['norm']!r}")
        if attack != "random_search":
            self.only_for(block, ("queries",), prefix, "attack: random_search")
        if attack != "pgd":
            self.only_for(block, ("steps",), prefix, "attack: pgd")
        share = {"low": 0.0, "high": 1.0, "rule": "a number in [0, 1]"}
        min_accuracy = self.number(block, "min_accuracy", prefix, **share)
        margin = self.number(block, "margin", prefix, **share)
        if min_accuracy is None and margin is None:
            raise self.fail(where, ": give min_accuracy or margin (or both)")
        if margin is None:
            self.only_for(block, ("level",), prefix, "a margin")
        level = self.number(
            block,
            "level",
            prefix,
            low=1e-12,
            high=0.5 - 1e-12,
            rule="a number strictly between 0 and 0.5",
        )
        return RobustnessCheck(
            attack,
            epsilon,
            norm,
            min_accuracy,
            margin,
            0.05 if level is None else level,
            self.integer(block, "rows", prefix, minimum=1),
            self.integer(block, "queries", prefix, minimum=2) or 200,
            self.integer(block, "steps", prefix, minimum=1) or 40,
            self.integer(block, "seed", prefix) or 0,
        )

    def privacy(self, block: dict, where: str) -> PrivacyCheck:
        prefix = f"{where}."
        attack = self.choice(block, "attack", prefix, PRIVACY_ATTACKS)
        if attack != "threshold":
            self.only_for(block, ("score",), prefix, "attack: threshold")
        else:
            self.only_for(block, ("shadows", "seed"), prefix, "attack: shadow")
        share = {"low": 0.0, "high": 1.0, "rule": "a number in [0, 1]"}
        check = PrivacyCheck(
            attack,
            self.number(block, "max_advantage", prefix, **share),
            self.number(block, "max_auc", prefix, **share),
            self.text(block, "members", prefix) or "train",
            self.choice(block, "score", prefix, ("loss", "confidence"))
            if "score" in block
            else "loss",
            self.integer(block, "shadows", prefix, minimum=1) or 4,
            self.integer(block, "seed", prefix) or 0,
        )
        if check.max_advantage is None and check.max_auc is None:
            raise self.fail(where, ": give max_advantage or max_auc (or both)")
        return check


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
