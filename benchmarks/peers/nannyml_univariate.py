"""Worker: NannyML's univariate drift, in benchmarks/.envs/nannyml.

``UnivariateDriftCalculator`` with its default methods (Jensen-Shannon distance for both
continuous and categorical columns) and default thresholds (an alert above the mean of the
reference chunks' distances plus three standard deviations). Two chunkings:

- ``--chunking default``: no ``chunk_size``, ``chunk_number`` or ``chunk_period``, so NannyML
  uses its default chunker, which splits the reference and the current data into 10 chunks
  each. A column counts as drifted when any current chunk alerts; the worker reports how many
  chunks alerted per column.
- ``--chunking one``: ``chunk_size`` = the number of current rows, so the whole current set
  is one chunk. With a reference of the same size there is one reference chunk too, the
  threshold is that chunk's distance to itself (about 0, or NaN where the estimate fails),
  and NannyML warns that there are too few chunks. Not NannyML's default: the setting a
  one-shot comparison of two whole sets would reach for.

The worker reports the chunker NannyML actually used and the number of chunks on each side,
so the report's labels come from what ran.
"""

from __future__ import annotations

import os

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no usage telemetry

import warnings

import nannyml
import pandas as pd
from measure import measure, parse_args, timed_read

METHOD = "jensen_shannon"


def univariate_drift(
    reference: pd.DataFrame, current: pd.DataFrame, roles: dict, chunking: str
) -> dict:
    columns = roles["numeric"] + roles["categorical"]
    chunk_arguments = {"chunk_size": len(current)} if chunking == "one" else {}
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=columns,
        treat_as_numerical=roles["numeric"],
        treat_as_categorical=roles["categorical"],
        **chunk_arguments,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calculator.fit(reference)
        result = calculator.calculate(current)
    analysis = result.filter(period="analysis").to_df()
    reference_chunks = len(result.filter(period="reference").to_df())
    if chunking == "one" and len(analysis) != 1:
        raise RuntimeError(f"expected one analysis chunk, got {len(analysis)}")
    drifted, scores, thresholds, alerting_chunks = {}, {}, {}, {}
    for column in columns:
        alerts = analysis[(column, METHOD, "alert")].astype(bool)
        alerting_chunks[column] = int(alerts.sum())
        drifted[column] = bool(alerts.any())
        scores[column] = float(analysis[(column, METHOD, "value")].max())
        # The threshold is learnt once from the reference chunks: the same on every chunk.
        thresholds[column] = float(analysis[(column, METHOD, "upper_threshold")].iloc[0])
    warned = sorted({str(w.message) for w in caught})
    return {
        "drifted": drifted,
        "scores": scores,
        "thresholds": thresholds,
        "alerting_chunks": alerting_chunks,
        "chunker": type(calculator.chunker).__name__,
        "reference_chunks": reference_chunks,
        "analysis_chunks": len(analysis),
        "warnings": warned,
    }


def main() -> None:
    args = parse_args(
        lambda parser: parser.add_argument(
            "--chunking",
            choices=("default", "one"),
            default="default",
            help="NannyML's default chunker, or the whole current set as one chunk",
        )
    )
    (reference, current), read_s = timed_read(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
    )
    measure(
        args,
        nannyml.__version__,
        lambda frames: univariate_drift(*frames, args.roles, args.chunking),
        [reference, current],
        read_s,
    )


if __name__ == "__main__":
    main()
