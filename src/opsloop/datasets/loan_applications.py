"""Loan applications drawn from Agrawal's population, labelled by one of Agrawal's rules.

:func:`credit` is the frame the rest of opsloop is tested and demonstrated on. Its features
are Agrawal et al.'s (1993) nine attributes under credit names (see
:mod:`opsloop.datasets.credit_attributes` for the mapping), plus ``gender`` and ``device``
to slice by, a free-text ``purpose`` (:mod:`opsloop.datasets.purpose`) and an ``applied_at``
timestamp. The label ``default`` is 1 when the row falls in group B of the chosen Agrawal rule
(:mod:`opsloop.datasets.agrawal`), then flipped with probability ``noise``.

The generator is written here rather than taken from River or scikit-multiflow because those
draw one row at a time in Python, and because the knobs monitoring needs (covariate, prior and
concept shift with a known regime per row, missing cells, fixed categories) are not theirs.

Every random quantity comes from its own stream of ``numpy.random.SeedSequence(seed)`` (rows,
timestamps, missing cells, each change's regime draws, prior-shift redraws), so the same seed
gives the same frame bit for bit, and a change never moves the numbers of rows it does not
touch.

>>> import pandas as pd
>>> df = credit(1000, seed=1)
>>> df.shape
(1000, 14)
>>> str(df["region"].dtype), str(df["age"].dtype), pd.api.types.is_string_dtype(df["purpose"])
('category', 'int64', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import pandas as pd
import pyarrow as pa

from opsloop.datasets import credit_attributes as attrs
from opsloop.datasets.agrawal import agrawal_group_b, check_rule
from opsloop.datasets.changes import Change, ConceptShift, CovariateShift, PriorShift
from opsloop.datasets.purpose import PHRASES, purpose_codes

#: The rule :func:`credit` labels with unless told otherwise; see :func:`credit`.
DEFAULT_RULE = 9
#: Timestamps start here.
START_TIME = np.datetime64("2024-01-01T00:00:00", "ns")

_ROWS, _TIME, _MISSING, _REGIME, _PRIOR = range(5)
# A prior shift whose label is this hard to reach is a configuration error, not bad luck.
_MAX_PRIOR_ROUNDS = 10_000
_PHRASES_ARROW = pa.array(list(PHRASES), type=pa.string())
_INT_COLUMNS = ("age", "house_years")
_FLOAT_COLUMNS = ("salary", "commission", "house_value", "loan_amount")


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class _Plan:
    """What every row position is subject to, resolved once before drawing."""

    rule: int
    noise: float
    covariate: tuple[tuple[CovariateShift, np.ndarray], ...]
    concept: tuple[tuple[ConceptShift, np.ndarray], ...]


def _pick(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Category index per row from uniforms ``u``; ``weights`` is one row or one row per u."""
    cumulative = np.cumsum(weights, axis=-1)
    cumulative[..., -1] = 1.0  # rounding must not leave u above the last edge
    if cumulative.ndim == 1:
        return np.searchsorted(cumulative, u, side="right")
    return (u[:, None] >= cumulative).sum(axis=1)


def _draw_rows(rng: np.random.Generator, positions: np.ndarray, plan: _Plan) -> dict:
    """Draw complete rows (features as codes and numbers, plus the label) at ``positions``."""
    m = len(positions)
    u = rng.random((14, m))
    salary_scale, loan_scale = np.ones(m), np.ones(m)
    age_low = np.full(m, attrs.AGE_RANGE[0])
    age_high = np.full(m, attrs.AGE_RANGE[1])
    device_mix: list[tuple[np.ndarray, np.ndarray]] = []
    region_mix: list[tuple[np.ndarray, np.ndarray]] = []
    for shift, regime in plan.covariate:
        rows = regime[positions]
        if shift.salary_scale != 1.0:
            salary_scale[rows] = shift.salary_scale
        if shift.loan_scale != 1.0:
            loan_scale[rows] = shift.loan_scale
        if shift.age_range is not None:
            age_low[rows], age_high[rows] = shift.age_range
        if shift.device_mix is not None:
            device_mix.append((rows, attrs.category_weights("device", dict(shift.device_mix))))
        if shift.region_mix is not None:
            region_mix.append((rows, attrs.category_weights("region", dict(shift.region_mix))))

    low, high = attrs.SALARY_RANGE
    salary = np.round((low + (high - low) * u[0]) * salary_scale, 2)
    low, high = attrs.COMMISSION_RANGE
    commission = np.where(
        salary >= attrs.COMMISSION_CUTOFF, 0.0, np.round(low + (high - low) * u[1], 2)
    )
    age = age_low + (u[2] * (age_high - age_low + 1)).astype(np.int64)
    elevel = (u[3] * len(attrs.EDUCATION)).astype(np.int64)
    car = (u[4] * len(attrs.CAR_MAKES)).astype(np.int64)
    zipcode = (u[5] * len(attrs.REGIONS)).astype(np.int64)
    for rows, weights in region_mix:
        zipcode[rows] = _pick(u[5][rows], weights)
    house_value = np.round((len(attrs.REGIONS) - zipcode) * 100_000.0 * (0.5 + u[6]), 2)
    low_years, high_years = attrs.HOUSE_YEARS_RANGE
    house_years = low_years + (u[7] * (high_years - low_years + 1)).astype(np.int64)
    loan = np.round(attrs.LOAN_RANGE[1] * u[8] * loan_scale, 2)
    gender = _pick(u[9], np.array(attrs.GENDER_WEIGHTS))
    age_band = (age >= 40).astype(np.int64) + (age >= 60)
    device = _pick(u[10], attrs.DEVICE_WEIGHTS_BY_AGE[age_band])
    for rows, weights in device_mix:
        device[rows] = _pick(u[10][rows], weights)
    purpose = purpose_codes(loan, u[11], u[12])

    numbers = {
        "salary": salary,
        "commission": commission,
        "age": age,
        "elevel": elevel,
        "hvalue": house_value,
        "hyears": house_years,
        "loan": loan,
    }
    group_b = agrawal_group_b(plan.rule, **numbers)
    for shift, regime in plan.concept:
        rows = regime[positions]
        if rows.any():
            group_b[rows] = agrawal_group_b(shift.rule, **{k: v[rows] for k, v in numbers.items()})
    label = (group_b ^ (u[13] < plan.noise)).astype(np.int64)
    return {
        "age": age,
        "gender": gender,
        "education": elevel,
        "region": zipcode,
        "device": device,
        "salary": salary,
        "commission": commission,
        "house_value": house_value,
        "house_years": house_years,
        "car_make": car,
        "loan_amount": loan,
        "purpose": purpose,
        attrs.LABEL: label,
    }


def _apply_prior_shifts(
    columns: dict, prior: list[tuple[PriorShift, np.ndarray]], plan: _Plan, seed: int
) -> None:
    """Redraw rows in a prior-shift regime until they carry the label drawn for them."""
    n = len(columns[attrs.LABEL])
    target = np.full(n, np.nan)
    for shift, regime in prior:
        target[regime] = shift.default_rate
    rows = np.flatnonzero(~np.isnan(target))
    if rows.size == 0:
        return
    rng = _stream(seed, _PRIOR)
    wanted = (rng.random(rows.size) < target[rows]).astype(np.int64)
    mismatch = columns[attrs.LABEL][rows] != wanted
    pending, wanted = rows[mismatch], wanted[mismatch]
    for _ in range(_MAX_PRIOR_ROUNDS):
        if pending.size == 0:
            return
        fresh = _draw_rows(rng, pending, plan)
        ok = fresh[attrs.LABEL] == wanted
        for name, values in fresh.items():
            columns[name][pending[ok]] = values[ok]
        pending, wanted = pending[~ok], wanted[~ok]
    raise ValueError(
        f"PriorShift could not reach its default_rate: rows needing default={int(wanted[0])} "
        f"stayed unlabelled after {_MAX_PRIOR_ROUNDS} redraws; that label is (almost) "
        "impossible under this rule and noise"
    )


def _check_fraction(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_changes(changes: object) -> list[Change]:
    if isinstance(changes, CovariateShift | PriorShift | ConceptShift):
        changes = [changes]
    if not isinstance(changes, Sequence):
        raise TypeError(f"changes must be a list of shifts, got {type(changes).__name__}")
    for i, change in enumerate(changes):
        if not isinstance(change, CovariateShift | PriorShift | ConceptShift):
            raise TypeError(
                f"changes[{i}] must be a CovariateShift, PriorShift or ConceptShift, "
                f"got {type(change).__name__}"
            )
    return list(changes)


def _regime_names(changes: list[Change]) -> list[str]:
    names: list[str] = []
    for change in changes:
        base = change.name or change.kind
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def _frame(columns: dict, times: np.ndarray, missing: np.ndarray | None) -> pd.DataFrame:
    def hole(name: str) -> np.ndarray | None:
        return None if missing is None else missing[attrs.FEATURES.index(name)]

    out: dict[str, object] = {"applied_at": times}
    for name in attrs.FEATURES:
        values, mask = columns[name], hole(name)
        if name in attrs.CATEGORIES:
            codes = values if mask is None else np.where(mask, -1, values)
            out[name] = pd.Categorical.from_codes(codes, categories=list(attrs.CATEGORIES[name]))
        elif name == "purpose":
            indices = pa.array(values, mask=mask)
            out[name] = pd.Series(_PHRASES_ARROW.take(indices), dtype="str")
        elif name in _INT_COLUMNS:
            out[name] = values if mask is None else pd.arrays.IntegerArray(values, mask)
        else:
            out[name] = values if mask is None else np.where(mask, np.nan, values)
    out[attrs.LABEL] = columns[attrs.LABEL]
    return pd.DataFrame(out)


@overload
def credit(
    n: int,
    seed: int = ...,
    *,
    rule: int = ...,
    noise: float = ...,
    missing: float = ...,
    changes: Sequence[Change] = ...,
    rows_per_day: float = ...,
    return_regime: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def credit(
    n: int,
    seed: int = ...,
    *,
    rule: int = ...,
    noise: float = ...,
    missing: float = ...,
    changes: Sequence[Change] = ...,
    rows_per_day: float = ...,
    return_regime: Literal[True],
) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def credit(
    n: int,
    seed: int = 0,
    *,
    rule: int = DEFAULT_RULE,
    noise: float = 0.05,
    missing: float = 0.0,
    changes: Sequence[Change] = (),
    rows_per_day: float = 1000.0,
    return_regime: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` loan applications, in time order, labelled ``default`` 0/1.

    Columns: ``applied_at`` (datetime64[ns], arrivals at ``rows_per_day`` on average from
    2024-01-01, Poisson, whole seconds); ``age`` and ``house_years`` (int64); ``salary``,
    ``commission``, ``house_value``, ``loan_amount`` (float64, cents); ``gender``,
    ``education``, ``region``, ``device``, ``car_make`` (category, fixed category lists);
    ``purpose`` (pandas ``str``); ``default`` (int64 0/1).

    Parameters:

    * ``rule``: the Agrawal rule (1-10) whose group B defaults. The default, 9, is the
      credit reading of the paper (default when disposable income after the loan and
      student-debt repayments is not positive); it reads salary, commission, education and
      loan amount and gives about 51% defaults, so both classes are well represented in
      small test frames. Rules 8 and 10 default only about 2% and 0.2% of rows; rule 7 about
      51%. A :class:`PriorShift` moves the rate when a realistic one is wanted.
    * ``noise``: probability that a row's label is flipped after the rule (label noise).
    * ``missing``: probability that each feature cell (every column but ``applied_at`` and
      ``default``) is blanked, independently. When ``missing > 0`` the integer columns are
      pandas ``Int64`` (nullable) in every frame, whether or not a cell was blanked, so the
      dtype depends only on the parameters. Labels are computed before blanking.
    * ``changes``: :class:`CovariateShift`, :class:`PriorShift` and :class:`ConceptShift`
      objects (see :mod:`opsloop.datasets.changes`), applied together.
    * ``return_regime``: also return a frame with one bool column per change (named by the
      change's ``name``, else its kind, numbered on repeats) telling which rows follow the
      change's new regime. The data frame is the same either way.

    Without changes and noise, :func:`agrawal_default` recomputes the label from the frame.

    >>> df = credit(2000, seed=3, noise=0.0)
    >>> bool((df["default"] == agrawal_default(df)).all())
    True
    >>> df, regime = credit(2000, seed=3, changes=[ConceptShift(1000, rule=2)],
    ...                     return_regime=True)
    >>> int(regime["concept_shift"].sum())
    1000
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    rule = check_rule(rule)
    noise = _check_fraction("noise", noise)
    missing = _check_fraction("missing", missing)
    if (
        isinstance(rows_per_day, bool)
        or not isinstance(rows_per_day, int | float | np.number)
        or not math.isfinite(rows_per_day)
        or rows_per_day <= 0
    ):
        raise ValueError(f"rows_per_day must be a finite number > 0, got {rows_per_day!r}")
    changes = _check_changes(changes)
    n = int(n)

    positions = np.arange(n)
    regimes = [
        _stream(seed, _REGIME, j).random(n) < change.probability(positions)
        for j, change in enumerate(changes)
    ]
    pairs = list(zip(changes, regimes, strict=True))
    plan = _Plan(
        rule=rule,
        noise=noise,
        covariate=tuple((c, r) for c, r in pairs if isinstance(c, CovariateShift)),
        concept=tuple((c, r) for c, r in pairs if isinstance(c, ConceptShift)),
    )
    columns = _draw_rows(_stream(seed, _ROWS), positions, plan)
    _apply_prior_shifts(
        columns, [(c, r) for c, r in pairs if isinstance(c, PriorShift)], plan, seed
    )

    gaps = _stream(seed, _TIME).exponential(86_400.0 / rows_per_day, n)
    seconds = np.floor(np.cumsum(gaps)).astype(np.int64)
    times = START_TIME + seconds.astype("timedelta64[s]").astype("timedelta64[ns]")
    holes = None
    if missing > 0:
        holes = _stream(seed, _MISSING).random((len(attrs.FEATURES), n)) < missing
    frame = _frame(columns, times, holes)
    if not return_regime:
        return frame
    regime_frame = pd.DataFrame(
        dict(zip(_regime_names(changes), regimes, strict=True)), index=frame.index
    )
    return frame, regime_frame


def agrawal_default(df: pd.DataFrame, rule: int = DEFAULT_RULE) -> np.ndarray:
    """The noise-free ``default`` label (int64 0/1) that Agrawal rule ``rule`` gives each row.

    Reads the credit columns ``salary``, ``commission``, ``age``, ``education``,
    ``house_value``, ``house_years`` and ``loan_amount`` (``education`` is turned back into
    Agrawal's level 0-4); they must be present and complete.

    >>> df = credit(500, seed=0, noise=0.0, rule=3)
    >>> bool((agrawal_default(df, rule=3) == df["default"]).all())
    True
    """
    rule = check_rule(rule)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    needed = (
        "salary",
        "commission",
        "age",
        "education",
        "house_value",
        "house_years",
        "loan_amount",
    )
    for name in needed:
        if name not in df.columns:
            raise ValueError(f"df has no column {name!r}, which the Agrawal rules read")
        if df[name].isna().any():
            raise ValueError(f"column {name!r} has missing values; the rule needs every value")
    education = pd.Categorical(df["education"], categories=list(attrs.EDUCATION))
    if (education.codes < 0).any():
        raise ValueError(f"column 'education' has values outside {attrs.EDUCATION}")

    def number(name: str) -> np.ndarray:
        return df[name].to_numpy(dtype=float)

    group_b = agrawal_group_b(
        rule,
        salary=number("salary"),
        commission=number("commission"),
        age=number("age"),
        elevel=education.codes.astype(float),
        hvalue=number("house_value"),
        hyears=number("house_years"),
        loan=number("loan_amount"),
    )
    return group_b.astype(np.int64)
