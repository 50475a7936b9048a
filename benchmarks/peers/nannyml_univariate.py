"""Worker: NannyML's univariate drift with its defaults, in benchmarks/.envs/nannyml.

``UnivariateDriftCalculator`` with its default methods (Jensen-Shannon distance for both
continuous and categorical columns) and default thresholds, and ``chunk_size`` set to the
number of current rows so that the whole current set is one chunk. The reference is split by
the same chunk size: NannyML's default threshold is the mean of the reference chunks'
values plus three standard deviations, so with a reference no larger than the current set
there is one reference chunk, the threshold is that chunk's distance to itself (0), and
NannyML warns that the number of chunks is too low. That is what the defaults do in a
one-shot comparison, so it is measured as it is.
"""

from __future__ import annotations

import os

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no usage telemetry

import warnings

import nannyml
import pandas as pd
from measure import measure, parse_args, timed_read


def univariate_drift(reference: pd.DataFrame, current: pd.DataFrame, roles: dict) -> dict:
    columns = roles["numeric"] + roles["categorical"]
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=columns,
        treat_as_numerical=roles["numeric"],
        treat_as_categorical=roles["categorical"],
        chunk_size=len(current),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calculator.fit(reference)
        result = calculator.calculate(current)
    table = result.filter(period="analysis").to_df()
    if len(table) != 1:
        raise RuntimeError(f"expected one analysis chunk, got {len(table)}")
    row = table.iloc[0]
    drifted, scores, thresholds = {}, {}, {}
    for column in columns:
        method = "jensen_shannon"
        drifted[column] = bool(row[(column, method, "alert")])
        scores[column] = float(row[(column, method, "value")])
        thresholds[column] = row[(column, method, "upper_threshold")]
    warned = sorted({str(w.message) for w in caught})
    return {"drifted": drifted, "scores": scores, "thresholds": thresholds, "warnings": warned}


def main() -> None:
    args = parse_args()
    (reference, current), read_s = timed_read(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
    )
    measure(
        args,
        nannyml.__version__,
        lambda frames: univariate_drift(*frames, args.roles),
        [reference, current],
        read_s,
    )


if __name__ == "__main__":
    main()
