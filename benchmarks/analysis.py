"""Error analysis at scale: 1,000,000 predictions, 5 tag columns and their 10 pairwise
intersections, against the obvious pandas groupby loop and against Fairlearn's MetricFrame.

Three measurements on the same data, numbers checked equal before timings are written:

* the four numbers with Wilson intervals: ``opsloop.analysis.error_analysis`` vs a pandas
  ``groupby(...).agg(["size", "sum"])`` per tag and pair plus statsmodels' Wilson intervals;
* a scikit-learn metric (``zero_one_loss``) per slice: ``opsloop.analysis.slice_metrics``
  (no bootstrap) vs ``fairlearn.metrics.MetricFrame`` per tag and pair.

    python benchmarks/analysis.py --rows 1000000

Writes ``benchmarks/out/analysis.md``.
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import zero_one_loss
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis import error_analysis, slice_metrics

OUT = Path(__file__).resolve().parent / "out"
TAGS = {"gender": 3, "device": 4, "region": 8, "plan": 5, "age_band": 6}


def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    tags = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(
                rng.integers(0, k, rows), categories=[f"{name}_{i}" for i in range(k)]
            )
            for name, k in TAGS.items()
        }
    )
    y_true = rng.integers(0, 2, rows)
    error_rate = 0.05 + 0.02 * tags["device"].cat.codes.to_numpy()
    y_pred = np.where(rng.random(rows) < error_rate, 1 - y_true, y_true)
    return y_true, y_pred, tags


def groupby_error_analysis(y_true, y_pred, tags: pd.DataFrame) -> pd.DataFrame:
    """The obvious implementation: one groupby per tag and per pair of tags."""
    wrong = pd.Series(y_true != y_pred, name="wrong")
    total_errors, n = int(wrong.sum()), len(wrong)
    keys = [[c] for c in tags.columns] + [list(p) for p in combinations(tags.columns, 2)]
    frames = []
    for key in keys:
        stats = wrong.groupby([tags[c] for c in key], observed=True).agg(["size", "sum"])
        low, high = proportion_confint(stats["sum"], stats["size"], method="wilson")
        frames.append(
            pd.DataFrame(
                {
                    "tag": " × ".join(key),
                    "value": [
                        " × ".join(map(str, v)) if isinstance(v, tuple) else str(v)
                        for v in stats.index
                    ],
                    "n": stats["size"].to_numpy(),
                    "errors": stats["sum"].to_numpy(),
                    "share_of_errors": (stats["sum"] / total_errors).to_numpy(),
                    "error_rate": (stats["sum"] / stats["size"]).to_numpy(),
                    "error_rate_low": np.asarray(low),
                    "error_rate_high": np.asarray(high),
                    "share_of_data": (stats["size"] / n).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def metricframe_slices(y_true, y_pred, tags: pd.DataFrame) -> pd.DataFrame:
    keys = [[c] for c in tags.columns] + [list(p) for p in combinations(tags.columns, 2)]
    frames = []
    for key in keys:
        mf = MetricFrame(
            metrics=zero_one_loss, y_true=y_true, y_pred=y_pred, sensitive_features=tags[key]
        )
        by_group = mf.by_group.dropna()
        frames.append(
            pd.DataFrame(
                {
                    "tag": " × ".join(key),
                    "value": [
                        " × ".join(map(str, v)) if isinstance(v, tuple) else str(v)
                        for v in by_group.index
                    ],
                    "value_of_metric": by_group.to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def timed(function, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    y_true, y_pred, tags = make_data(args.rows, args.seed)

    ours_time, ours = timed(
        lambda: error_analysis(y_true, y_pred, tags, hlp=0.05, intersections=True), args.repeats
    )
    pandas_time, reference = timed(
        lambda: groupby_error_analysis(y_true, y_pred, tags), args.repeats
    )
    got = (
        ours.to_frame()
        .set_index(["tag", "value"])
        .loc[list(zip(reference["tag"], reference["value"], strict=True))]
    )
    for column in [
        "n",
        "errors",
        "share_of_errors",
        "error_rate",
        "error_rate_low",
        "error_rate_high",
        "share_of_data",
    ]:
        np.testing.assert_allclose(got[column].to_numpy(float), reference[column], atol=1e-9)
    assert len(got) == len(ours.rows) == len(reference)

    slices_time, slices = timed(
        lambda: slice_metrics(y_true, y_pred, tags, zero_one_loss, n_boot=0, intersections=True),
        args.repeats,
    )
    mf_time, mf = timed(lambda: metricframe_slices(y_true, y_pred, tags), args.repeats)
    frame = slices.to_frame()
    frame = frame[frame["tag"] != "(all)"].set_index(["tag", "value"])
    np.testing.assert_allclose(
        frame.loc[list(zip(mf["tag"], mf["value"], strict=True)), "value_of_metric"],
        mf["value_of_metric"],
        atol=1e-12,
    )
    assert len(frame) == len(mf)

    lines = [
        "# Error analysis benchmark",
        "",
        f"{args.rows:,} predictions, {len(TAGS)} tag columns and their "
        f"{len(list(combinations(TAGS, 2)))} pairwise intersections ({len(ours.rows)} slices); "
        f"best of {args.repeats}; numbers checked equal (1e-9) before timing is reported.",
        "",
        "| work | opsloop | peer | peer time | peer / opsloop |",
        "| --- | ---: | --- | ---: | ---: |",
        f"| four numbers + Wilson intervals | {ours_time:.3f} s | pandas groupby loop + "
        f"statsmodels | {pandas_time:.3f} s | {pandas_time / ours_time:.1f}× |",
        f"| zero_one_loss per slice | {slices_time:.3f} s | Fairlearn MetricFrame | "
        f"{mf_time:.3f} s | {mf_time / slices_time:.1f}× |",
        "",
    ]
    OUT.mkdir(exist_ok=True)
    (OUT / "analysis.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
