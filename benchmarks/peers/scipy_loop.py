"""Worker: the plain per-column scipy loop a user would write, in the main venv.

Numeric columns: ``ks_2samp`` (decides, at p < 0.05 with no correction for the number of
columns, as such a loop usually does) and ``wasserstein_distance``; categorical columns:
``chi2_contingency`` on the 2×k table of value counts (the table ``pd.crosstab`` builds,
from the two ``value_counts``, which costs less than cross-tabulating two million rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy
from measure import measure, parse_args, timed_read
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

ALPHA = 0.05


def drift_loop(reference: pd.DataFrame, current: pd.DataFrame, roles: dict) -> dict:
    drifted, tests, p_values, wasserstein = {}, {}, {}, {}
    for column in roles["numeric"]:
        a = reference[column].to_numpy(dtype="float64", na_value=np.nan)
        b = current[column].to_numpy(dtype="float64", na_value=np.nan)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        p_values[column] = float(ks_2samp(a, b).pvalue)
        tests[column] = "ks"
        wasserstein[column] = float(wasserstein_distance(a, b))
    for column in roles["categorical"]:
        # Levels in the order pd.crosstab gives them (category order, else sorted labels).
        counts = (
            pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1)
            .fillna(0)
            .sort_index()
        )
        counts = counts[counts.sum(axis=1) > 0]  # unused levels of a pandas Categorical
        p_values[column] = float(chi2_contingency(counts.to_numpy().T).pvalue)
        tests[column] = "chi2"
    for column, p in p_values.items():
        drifted[column] = bool(p < ALPHA)
    return {"drifted": drifted, "tests": tests, "p_values": p_values, "wasserstein": wasserstein}


def main() -> None:
    args = parse_args()
    (reference, current), read_s = timed_read(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
    )
    measure(
        args,
        scipy.__version__,
        lambda frames: drift_loop(*frames, args.roles),
        [reference, current],
        read_s,
    )


if __name__ == "__main__":
    main()
