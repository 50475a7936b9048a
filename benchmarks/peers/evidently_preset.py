"""Worker: Evidently's data drift preset with its defaults, in benchmarks/.envs/evidently.

``Report([DataDriftPreset()], include_tests=True)``: the preset picks each column's method
and threshold itself (for more than 1,000 reference rows: normed Wasserstein distance ≥ 0.1
for numeric columns with more than 5 distinct values, Jensen-Shannon distance ≥ 0.1 for the
others). ``include_tests`` only
adds Evidently's own pass/fail per column, which is where the verdicts are read from. The
column roles are declared in a ``DataDefinition`` so every contender sees the same roles.
"""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry (there is no network anyway)

import evidently
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
from measure import measure, parse_args, timed_read


def preset_drift(reference: pd.DataFrame, current: pd.DataFrame, roles: dict) -> dict:
    definition = DataDefinition(
        numerical_columns=roles["numeric"], categorical_columns=roles["categorical"]
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    document = snapshot.dict()
    drifted, methods, scores = {}, {}, {}
    for metric in document["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            methods[config["column"]] = f"{config['method']} (threshold {config['threshold']})"
            scores[config["column"]] = metric["value"]
    for test in document["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
    return {"drifted": drifted, "methods": methods, "scores": scores}


def main() -> None:
    args = parse_args()
    (reference, current), read_s = timed_read(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current))
    )
    measure(
        args,
        evidently.__version__,
        lambda frames: preset_drift(*frames, args.roles),
        [reference, current],
        read_s,
    )


if __name__ == "__main__":
    main()
