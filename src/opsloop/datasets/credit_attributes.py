"""The columns of :func:`opsloop.datasets.credit` and the fixed category lists behind them.

Categories are fixed here, not taken from the drawn rows, so every frame has the same pandas
categories whatever its size or seed: a category missing from a small frame is still a
category, and two frames compare column by column.

Agrawal attribute to credit column:

=========== ============== =================================================================
Agrawal     credit column  drawn as
=========== ============== =================================================================
salary      salary         uniform 20,000-150,000 (rounded to cents)
commission  commission     0 if salary >= 75,000, else uniform 10,000-75,000
age         age            integer uniform 20-80
elevel      education      level 0-4 uniform: ``EDUCATION[elevel]``
car         car_make       make 1-20 uniform: ``CAR_MAKES[car - 1]``
zipcode     region         zipcode 0-8 uniform: ``REGIONS[zipcode]``
hvalue      house_value    uniform ``k * 50,000`` to ``k * 150,000`` with ``k = 9 - zipcode``
hyears      house_years    integer uniform 1-30
loan        loan_amount    uniform 0-500,000
=========== ============== =================================================================

``gender`` and ``device`` are not in Agrawal's population; no rule reads them, so they only
matter as slices. ``gender`` is independent of everything: female 0.49, male 0.49,
non_binary 0.02. ``device`` (the channel the application came through) depends on age, as
it does in real traffic, which makes a model's errors differ by device even though the
rule never reads it:

========== ======= ====== ======
age        desktop mobile tablet
========== ======= ====== ======
20-39      0.25    0.65   0.10
40-59      0.45    0.40   0.15
60-80      0.55    0.20   0.25
========== ======= ====== ======

>>> REGIONS[0], EDUCATION[4]
('capital', 'doctorate')
"""

from __future__ import annotations

import numpy as np

GENDERS: tuple[str, ...] = ("female", "male", "non_binary")
GENDER_WEIGHTS: tuple[float, ...] = (0.49, 0.49, 0.02)

DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
#: Rows: ages 20-39, 40-59, 60-80; columns follow ``DEVICES``.
DEVICE_WEIGHTS_BY_AGE: np.ndarray = np.array(
    [[0.25, 0.65, 0.10], [0.45, 0.40, 0.15], [0.55, 0.20, 0.25]]
)

#: Agrawal's ``elevel`` 0-4, lowest first. The disposable-income rules subtract 5,000 per
#: level, which the credit story reads as student-debt repayments.
EDUCATION: tuple[str, ...] = ("secondary", "vocational", "bachelor", "master", "doctorate")

#: Agrawal's ``zipcode`` 0-8; house prices fall from the capital to the countryside.
REGIONS: tuple[str, ...] = (
    "capital",
    "north_metro",
    "south_metro",
    "coast",
    "lakeside",
    "midlands",
    "valley",
    "highlands",
    "rural",
)

#: Agrawal's ``car`` 1-20; no rule reads it.
CAR_MAKES: tuple[str, ...] = tuple(f"make_{i:02d}" for i in range(1, 21))

#: Money ranges of the Agrawal population.
SALARY_RANGE: tuple[float, float] = (20_000.0, 150_000.0)
COMMISSION_RANGE: tuple[float, float] = (10_000.0, 75_000.0)
#: Salaries at or above this earn no commission.
COMMISSION_CUTOFF: float = 75_000.0
LOAN_RANGE: tuple[float, float] = (0.0, 500_000.0)
AGE_RANGE: tuple[int, int] = (20, 80)
HOUSE_YEARS_RANGE: tuple[int, int] = (1, 30)

LABEL: str = "default"
#: Columns that ``missing`` may blank: every column except the timestamp and the label.
FEATURES: tuple[str, ...] = (
    "age",
    "gender",
    "education",
    "region",
    "device",
    "salary",
    "commission",
    "house_value",
    "house_years",
    "car_make",
    "loan_amount",
    "purpose",
)
COLUMNS: tuple[str, ...] = ("applied_at", *FEATURES, LABEL)

CATEGORIES: dict[str, tuple[str, ...]] = {
    "gender": GENDERS,
    "education": EDUCATION,
    "region": REGIONS,
    "device": DEVICES,
    "car_make": CAR_MAKES,
}


def category_weights(column: str, weights: object) -> np.ndarray:
    """Turn a ``{category: weight}`` mapping for ``column`` into probabilities in category order.

    Categories left out get weight 0. Raises ``ValueError`` naming the column for an unknown
    category, a negative or non-finite weight, or weights that sum to 0.

    >>> category_weights("device", {"mobile": 3, "desktop": 1}).tolist()
    [0.25, 0.75, 0.0]
    """
    if not isinstance(weights, dict):
        raise TypeError(f"{column} weights must be a dict of category -> weight, got {weights!r}")
    levels = CATEGORIES[column]
    unknown = sorted(str(k) for k in weights if k not in levels)
    if unknown:
        raise ValueError(f"{column} weights name unknown categories {unknown}; known: {levels}")
    out = np.array([float(weights.get(level, 0.0)) for level in levels])
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise ValueError(f"{column} weights must be finite and >= 0, got {weights!r}")
    total = out.sum()
    if total <= 0:
        raise ValueError(f"{column} weights must have a positive sum, got {weights!r}")
    return out / total
