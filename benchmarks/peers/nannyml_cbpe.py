"""Worker: NannyML's CBPE on the windows of ``benchmarks/performance_estimation.py``, in
benchmarks/.envs/nannyml.

Reads one ``.npz`` (``reference_score``, ``reference_label``, ``window_score`` of shape
windows × rows), fits ``nannyml.CBPE`` (binary, accuracy and ROC AUC, its default isotonic
calibration) on the reference and estimates the windows as its chunks (``chunk_size`` = rows
per window, so chunk i is window i). Writes the estimates, NannyML's sampling errors and the
wall time of each of ``--repeats`` fits + estimates, as JSON to ``--out``.

    benchmarks/.envs/nannyml/bin/python benchmarks/peers/nannyml_cbpe.py IN.npz --out OUT.json
"""

from __future__ import annotations

import os

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no usage telemetry

import argparse
import json
import time
import warnings

import nannyml
import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=1, help="timed fit + estimate runs")
    args = parser.parse_args()
    data = np.load(args.data)
    windows = data["window_score"]
    reference = pd.DataFrame(
        {
            "p": data["reference_score"],
            "pred": (data["reference_score"] >= args.threshold).astype(int),
            "y": data["reference_label"],
        }
    )
    analysis = pd.DataFrame({"p": windows.ravel()})
    analysis["pred"] = (analysis["p"] >= args.threshold).astype(int)
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):
            started = time.perf_counter()
            cbpe = nannyml.CBPE(
                y_pred_proba="p",
                y_pred="pred",
                y_true="y",
                metrics=["accuracy", "roc_auc"],
                problem_type="classification_binary",
                chunk_size=windows.shape[1],
            )
            cbpe.fit(reference)
            result = cbpe.estimate(analysis).filter(period="analysis").to_df()
            seconds.append(time.perf_counter() - started)
    out = {"nannyml": nannyml.__version__, "seconds": seconds}
    for metric in ("accuracy", "roc_auc"):
        out[metric] = result[(metric, "value")].astype(float).tolist()
        out[metric + "_sampling_error"] = result[(metric, "sampling_error")].astype(float).tolist()
    with open(args.out, "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
