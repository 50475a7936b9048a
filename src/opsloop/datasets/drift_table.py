"""A generic two-frame table with known drift, for calibrating and benchmarking drift tests.

:func:`drift_table` returns a reference frame, a current frame and the truth: which columns
were shifted in ``current`` and how. Column ``x<i>_<family>`` is numeric, its family cycling
through :data:`FAMILIES` (normal, lognormal, exponential, uniform, Student t with 3 degrees of
freedom, a two-component normal mixture, a rounded normal, rounded lognormal counts, gamma,
beta; the ``rounded`` ones are integers with many ties); on the k-th pass through the list a
family is scaled by ``2**k`` and offset by ``10 k``. Column ``c<j>_<L>levels`` is categorical
with ``L`` levels from 2 to 50 (geometrically spaced) and Zipf frequencies (level ``i`` has
weight ``1 / (i + 1)``); both frames share the same categories.

A :class:`ColumnShift` changes one column of ``current``:

* ``mean``: numeric, adds ``amount`` standard deviations (of the column's population
  distribution, known in closed form);
* ``scale``: numeric, multiplies the deviation from the population mean by ``amount``;
* ``frequency``: categorical, moves probability ``amount`` from the most frequent level to
  the rarest, so the total variation distance between the two distributions is ``amount``.

Integer columns are shifted before rounding, so a small mean shift still moves them.
Without shifts the two frames are independent samples of the same distribution. Each column
of each frame has its own random stream, so adding columns or shifts never changes the others.

>>> reference, current, truth = drift_table(1000, n_numeric=3, n_categorical=1, shifted={})
>>> list(reference.columns)
['x00_normal', 'x01_lognormal', 'x02_exponential', 'c00_2levels']
>>> truth.shifted
()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

ShiftKind = Literal["mean", "scale", "frequency"]


@dataclass(frozen=True)
class ColumnShift:
    """How one column of ``current`` differs from ``reference`` (see the module list).

    >>> ColumnShift("mean", 0.05).to_dict()
    {'kind': 'mean', 'amount': 0.05}
    """

    kind: ShiftKind
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in ("mean", "scale", "frequency"):
            raise ValueError(
                f"ColumnShift.kind must be 'mean', 'scale' or 'frequency', got {self.kind!r}"
            )
        amount = self.amount
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float | np.number)
            or not math.isfinite(float(amount))
        ):
            raise ValueError(f"ColumnShift.amount must be a finite number, got {amount!r}")
        if self.kind == "scale" and amount <= 0:
            raise ValueError(f"ColumnShift.amount for 'scale' must be > 0, got {amount!r}")
        if self.kind == "frequency" and not 0 <= amount <= 1:
            raise ValueError(
                f"ColumnShift.amount for 'frequency' must be in [0, 1], got {amount!r}"
            )

    def to_dict(self) -> dict:
        """JSON-safe ``{"kind", "amount"}``."""
        return {"kind": self.kind, "amount": float(self.amount)}


@dataclass(frozen=True)
class ColumnTruth:
    """One column of a :func:`drift_table`: its distribution and its shift, if any.

    >>> ColumnTruth("c00_2levels", "categorical", 2, None).shifted
    False
    """

    column: str
    family: str
    levels: int | None
    shift: ColumnShift | None

    @property
    def shifted(self) -> bool:
        """Whether ``current`` differs from ``reference`` in this column."""
        return self.shift is not None

    def to_dict(self) -> dict:
        """JSON-safe dictionary with the shift flattened into ``kind`` and ``amount``."""
        return {
            "column": self.column,
            "family": self.family,
            "levels": self.levels,
            "shifted": self.shifted,
            "kind": None if self.shift is None else self.shift.kind,
            "amount": None if self.shift is None else float(self.shift.amount),
        }


@dataclass(frozen=True)
class DriftTruth:
    """Which columns of a :func:`drift_table` were shifted, and how.

    >>> truth = DriftTruth((ColumnTruth("x00_normal", "normal", None, ColumnShift("mean", 1.0)),))
    >>> truth.shifted, truth.to_frame()["amount"].tolist()
    (('x00_normal',), [1.0])
    """

    columns: tuple[ColumnTruth, ...]

    @property
    def shifted(self) -> tuple[str, ...]:
        """Names of the shifted columns, in column order."""
        return tuple(c.column for c in self.columns if c.shifted)

    def to_dict(self) -> dict:
        """JSON-safe ``{"columns": [...]}``, one entry per column."""
        return {"columns": [c.to_dict() for c in self.columns]}

    def to_frame(self) -> pd.DataFrame:
        """One row per column: column, family, levels, shifted, kind, amount."""
        frame = pd.DataFrame(
            [c.to_dict() for c in self.columns],
            columns=["column", "family", "levels", "shifted", "kind", "amount"],
        )
        return frame.astype({"levels": "Int64", "shifted": bool, "amount": float})


@dataclass(frozen=True)
class _Family:
    name: str
    draw: Callable[[np.random.Generator, int], np.ndarray]
    mean: float
    std: float
    integer: bool = False


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    first = rng.random(n) < 0.6
    z = rng.standard_normal(n)
    return np.where(first, -2.0 + z, 3.0 + 1.5 * z)


def _lognormal_moments(mu: float, sigma: float) -> tuple[float, float]:
    mean = math.exp(mu + sigma**2 / 2)
    return mean, mean * math.sqrt(math.expm1(sigma**2))


#: The numeric families, in the order columns cycle through them, with their population
#: mean and standard deviation.
FAMILIES: tuple[_Family, ...] = (
    _Family("normal", lambda rng, n: rng.normal(100.0, 15.0, n), 100.0, 15.0),
    _Family("lognormal", lambda rng, n: rng.lognormal(3.0, 0.8, n), *_lognormal_moments(3.0, 0.8)),
    _Family("exponential", lambda rng, n: rng.exponential(2.0, n), 2.0, 2.0),
    _Family("uniform", lambda rng, n: rng.uniform(0.0, 10.0, n), 5.0, 10.0 / math.sqrt(12.0)),
    _Family("student_t", lambda rng, n: rng.standard_t(3.0, n), 0.0, math.sqrt(3.0)),
    # 0.6 N(-2, 1) + 0.4 N(3, 1.5^2): mean 0, variance 0.6 (1 + 4) + 0.4 (2.25 + 9) = 7.5
    _Family("bimodal", _bimodal, 0.0, math.sqrt(7.5)),
    _Family("rounded_normal", lambda rng, n: rng.normal(40.0, 12.0, n), 40.0, 12.0, True),
    _Family(
        "counts", lambda rng, n: rng.lognormal(1.0, 0.75, n), *_lognormal_moments(1.0, 0.75), True
    ),
    _Family("gamma", lambda rng, n: rng.gamma(2.0, 3.0, n), 6.0, 3.0 * math.sqrt(2.0)),
    _Family("beta", lambda rng, n: rng.beta(2.0, 5.0, n), 2.0 / 7.0, math.sqrt(10.0 / 392.0)),
)

#: The default shifts: 5 numeric and 2 categorical columns of the 20 + 5 benchmark table,
#: from subtle (a 0.05 sigma mean shift, 1% of mass moved) to obvious (0.5 sigma, 10%).
BENCHMARK_SHIFTS: dict[str, ColumnShift] = {
    "x00_normal": ColumnShift("mean", 0.05),
    "x01_lognormal": ColumnShift("mean", 0.5),
    "x05_bimodal": ColumnShift("mean", 0.2),
    "x06_rounded_normal": ColumnShift("mean", 0.1),
    "x14_student_t": ColumnShift("scale", 1.1),
    "c00_2levels": ColumnShift("frequency", 0.01),
    "c03_22levels": ColumnShift("frequency", 0.1),
}


def _levels(n_categorical: int) -> list[int]:
    if n_categorical == 1:
        return [2]
    return [int(v) for v in np.round(np.geomspace(2, 50, n_categorical))]


def _numeric_column(
    rng: np.random.Generator, n: int, family: _Family, k: int, shift: ColumnShift | None
) -> np.ndarray:
    offset, scale = 10.0 * k, 2.0**k
    mean, std = offset + scale * family.mean, scale * family.std
    values = offset + scale * family.draw(rng, n)
    if shift is not None and shift.kind == "mean":
        values = values + shift.amount * std
    elif shift is not None:
        values = mean + shift.amount * (values - mean)
    return np.rint(values).astype(np.int64) if family.integer else values


def _zipf(levels: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1)
    return weights / weights.sum()


def _categorical_column(
    rng: np.random.Generator, n: int, probabilities: np.ndarray, levels: list[str]
) -> pd.Categorical:
    cumulative = np.cumsum(probabilities)
    cumulative[-1] = 1.0
    codes = np.searchsorted(cumulative, rng.random(n), side="right")
    return pd.Categorical.from_codes(codes, categories=levels)


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def drift_table(
    n: int,
    seed: int = 0,
    n_numeric: int = 20,
    n_categorical: int = 5,
    shifted: Mapping[str, ColumnShift] | Literal["benchmark"] = "benchmark",
) -> tuple[pd.DataFrame, pd.DataFrame, DriftTruth]:
    """``(reference, current, truth)``: two ``n``-row frames and what differs between them.

    ``shifted`` maps column names to :class:`ColumnShift`; ``{}`` gives two samples of one
    distribution. The default, ``"benchmark"``, is :data:`BENCHMARK_SHIFTS`, which needs the
    benchmark's columns (``n_numeric >= 15``, ``n_categorical == 5``): the drift benchmark is
    ``drift_table(1_000_000)``.

    >>> reference, current, truth = drift_table(20_000, seed=1)
    >>> reference.shape, len(truth.shifted)
    ((20000, 25), 7)
    >>> round(float(current["x01_lognormal"].mean() - reference["x01_lognormal"].mean()), -1)
    10.0
    """
    n = _check_count("n", n)
    seed = _check_count("seed", seed)
    n_numeric = _check_count("n_numeric", n_numeric)
    n_categorical = _check_count("n_categorical", n_categorical)
    numeric_names = [f"x{i:02d}_{FAMILIES[i % len(FAMILIES)].name}" for i in range(n_numeric)]
    levels = _levels(n_categorical) if n_categorical else []
    categorical_names = [f"c{j:02d}_{k}levels" for j, k in enumerate(levels)]
    names = numeric_names + categorical_names

    if isinstance(shifted, str):
        if shifted != "benchmark":
            raise ValueError(f"shifted must be a mapping or 'benchmark', got {shifted!r}")
        lacking = [c for c in BENCHMARK_SHIFTS if c not in names]
        if lacking:
            raise ValueError(
                f"shifted='benchmark' shifts columns {lacking} that a table with "
                f"n_numeric={n_numeric}, n_categorical={n_categorical} lacks; "
                "pass shifted={} or a mapping of its own columns"
            )
        shifted = BENCHMARK_SHIFTS
    if not isinstance(shifted, Mapping):
        raise TypeError(f"shifted must be a mapping of column -> ColumnShift, got {shifted!r}")
    for column, shift in shifted.items():
        if column not in names:
            raise ValueError(f"shifted names column {column!r}, which the table does not have")
        if not isinstance(shift, ColumnShift):
            raise TypeError(f"shifted[{column!r}] must be a ColumnShift, got {shift!r}")
        numeric = column in numeric_names
        if numeric == (shift.kind == "frequency"):
            expected = "'mean' or 'scale'" if numeric else "'frequency'"
            raise ValueError(
                f"shifted[{column!r}] has kind {shift.kind!r}; column {column!r} takes {expected}"
            )

    reference: dict[str, object] = {}
    current: dict[str, object] = {}
    truths = []
    for i, name in enumerate(numeric_names):
        family, k = FAMILIES[i % len(FAMILIES)], i // len(FAMILIES)
        shift = shifted.get(name)
        rngs = (
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i))),
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i))),
        )
        reference[name] = _numeric_column(rngs[0], n, family, k, None)
        current[name] = _numeric_column(rngs[1], n, family, k, shift)
        truths.append(ColumnTruth(name, family.name, None, shift))
    for j, (name, count) in enumerate(zip(categorical_names, levels, strict=True)):
        index = n_numeric + j
        shift = shifted.get(name)
        labels = [f"v{v:02d}" for v in range(count)]
        base = _zipf(count)
        moved = base.copy()
        if shift is not None:
            if shift.amount > base[0]:
                raise ValueError(
                    f"shifted[{name!r}] moves {shift.amount} of probability but the most "
                    f"frequent level of {name!r} only has {base[0]:.4f}"
                )
            moved[0] -= shift.amount
            moved[-1] += shift.amount
        rngs = (
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index))),
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index))),
        )
        reference[name] = _categorical_column(rngs[0], n, base, labels)
        current[name] = _categorical_column(rngs[1], n, moved, labels)
        truths.append(ColumnTruth(name, "categorical", count, shift))
    return pd.DataFrame(reference), pd.DataFrame(current), DriftTruth(tuple(truths))
