"""A second, human labeller who copies the true label but errs at rates that differ by slice.

Human-level performance is the yardstick for a model's errors, and it is rarely uniform: in
the credit story documents uploaded from phones are often blurry, and rural branches send
handwritten paperwork. :func:`human_labels` simulates such a labeller so the per-slice human
error rate can be measured, and compared with a model's, later.

Rates are given per column value, ``{"device": {"mobile": 0.08}, "_default": 0.02}``. A row
belongs to the slice ``column == value`` for every configured pair it matches; its error
probability is the **largest** rate among its slices, and ``_default`` when it is in none.
The maximum is used (rather than, say, combining the slices as independent error sources) so
that a configured rate is the floor of its slice's error rate and is exactly its rate for the
rows in no other configured slice; :func:`human_error_rates` returns the per-row probability
so that the expected error rate of any slice is known exactly.

>>> sorted(DEFAULT_ERROR_RATES)
['_default', 'device', 'region']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: Mobile uploads are blurry, tablets a little less; rural branches send handwritten forms.
DEFAULT_ERROR_RATES: dict[str, object] = {
    "_default": 0.02,
    "device": {"mobile": 0.08, "tablet": 0.05},
    "region": {"rural": 0.12},
}

_DEFAULT_KEY = "_default"


def _check_rate(where: str, rate: object) -> float:
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float | np.number)
        or not 0.0 <= float(rate) <= 1.0
    ):
        raise ValueError(f"error_rates{where} must be a number in [0, 1], got {rate!r}")
    return float(rate)


def human_error_rates(
    df: pd.DataFrame, error_rates: Mapping[str, object] | None = None
) -> np.ndarray:
    """Each row's probability of being mislabelled under ``error_rates`` (module rules).

    ``error_rates`` defaults to :data:`DEFAULT_ERROR_RATES`. Every key other than
    ``_default`` must be a column of ``df`` mapping values to rates in [0, 1]; for a
    ``category`` column the values must be among its categories. Missing cells match no slice.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"device": ["mobile", "desktop"], "region": ["rural", "capital"]})
    >>> human_error_rates(df).tolist()
    [0.12, 0.02]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    rates = DEFAULT_ERROR_RATES if error_rates is None else error_rates
    if not isinstance(rates, Mapping):
        raise TypeError(f"error_rates must be a mapping, got {type(rates).__name__}")
    default = _check_rate(f"[{_DEFAULT_KEY!r}]", rates.get(_DEFAULT_KEY, 0.0))
    n = len(df)
    best = np.full(n, -1.0)
    for column, by_value in rates.items():
        if column == _DEFAULT_KEY:
            continue
        if column not in df.columns:
            raise ValueError(f"error_rates names column {column!r}, which df does not have")
        if not isinstance(by_value, Mapping):
            raise TypeError(
                f"error_rates[{column!r}] must map values to rates, got {type(by_value).__name__}"
            )
        series = df[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            unknown = [v for v in by_value if v not in series.cat.categories]
            if unknown:
                raise ValueError(
                    f"error_rates[{column!r}] names values {unknown} that are not categories "
                    f"of column {column!r}"
                )
        for value, rate in by_value.items():
            rate = _check_rate(f"[{column!r}][{value!r}]", rate)
            in_slice = (series == value).to_numpy(dtype=bool, na_value=False)
            best = np.where(in_slice, np.maximum(best, rate), best)
    return np.where(best < 0, default, best)


def human_labels(
    df: pd.DataFrame,
    seed: int = 0,
    error_rates: Mapping[str, object] | None = None,
    *,
    label: str = "default",
) -> np.ndarray:
    """A human labeller's 0/1 labels for ``df``: ``df[label]`` flipped at per-slice rates.

    Each row is flipped independently with the probability :func:`human_error_rates` gives
    it. Returns an int64 array aligned with the rows of ``df``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"device": ["mobile"] * 4, "default": [0, 1, 1, 0]})
    >>> human_labels(df, error_rates={"device": {"mobile": 1.0}}).tolist()
    [1, 0, 0, 1]
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if label not in df.columns:
        raise ValueError(f"df has no label column {label!r}")
    truth = df[label]
    if truth.isna().any() or not truth.isin([0, 1]).all():
        raise ValueError(f"label column {label!r} must hold only 0 and 1, with no missing values")
    probability = human_error_rates(df, error_rates)
    flip = np.random.default_rng(seed).random(len(df)) < probability
    return truth.to_numpy(dtype=np.int64) ^ flip
