"""Are opsloop's default drift verdicts right? False positives on unchanged data, power on
a small shift.

For each seed, a reference and a current table are drawn from the same distribution
(``opsloop.datasets.drift_table`` with no shift) and compared with opsloop's defaults. Each
column's false-positive rate at alpha = 0.05 should be 0.05 (per-column tests uncorrected),
and the dataset-level verdict should keep its family-wise error (Holm, Bonferroni) or false
discovery rate (Benjamini-Hochberg) at alpha. Then a 0.05-sigma mean shift is planted in
every numeric column and the share detected is reported.

    python benchmarks/calibration.py --rows 1000000 --seeds 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import stats

from opsloop.data.drift import adjust_p_values, compare
from opsloop.datasets import drift_table

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    alpha = args.alpha
    flags, p_values, names, kinds = [], [], None, None
    dataset = {"holm": 0, "bonferroni": 0, "bh": 0, "none": 0}
    started = time.perf_counter()
    for seed in range(args.seeds):
        ref, cur, _ = drift_table(args.rows, seed=seed, shifted={})
        result = compare(ref, cur, correction="none", alpha=alpha, plots=False)
        names = [c.column for c in result.columns]
        kinds = [f"{c.kind}/{c.test}" for c in result.columns]
        p = np.array([c.p_value for c in result.columns])
        p_values.append(p)
        flags.append(p < alpha)
        for method in dataset:
            dataset[method] += bool((adjust_p_values(p, method) < alpha).any())
        print(
            f"seed {seed}: {int((p < alpha).sum())} flagged, {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    flags_arr, p_arr = np.array(flags), np.array(p_values)
    rates = flags_arr.mean(axis=0)
    pooled = flags_arr.mean()
    uniform = stats.kstest(p_arr.ravel(), "uniform")
    lines = [
        f"## Calibration: {args.seeds} seeds × {args.rows:,} rows, no change, alpha = {alpha}",
        "",
        "| column | kind / test | false-positive rate | binomial p (rate = alpha) |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, kind, rate, column_flags in zip(names, kinds, rates, flags_arr.T, strict=True):
        test = stats.binomtest(int(column_flags.sum()), args.seeds, alpha)
        lines.append(f"| {name} | {kind} | {rate:.2f} | {test.pvalue:.3f} |")
    lines += [
        "",
        f"Pooled false-positive rate over {flags_arr.size} column tests: **{pooled:.4f}** "
        f"(binomial 95% interval for alpha: "
        f"{stats.binom.ppf(0.025, flags_arr.size, alpha) / flags_arr.size:.4f}-"
        f"{stats.binom.ppf(0.975, flags_arr.size, alpha) / flags_arr.size:.4f}).",
        f"Pooled p-values against uniform(0, 1): KS statistic {uniform.statistic:.4f}, "
        f"p = {uniform.pvalue:.3f}.",
        "",
        "| dataset verdict | seeds with a (false) dataset drift | rate |",
        "| --- | ---: | ---: |",
    ]
    for method, count in dataset.items():
        lines.append(f"| {method} | {count} / {args.seeds} | {count / args.seeds:.2f} |")
    ref, cur, _ = drift_table(args.rows, seed=10_000, shifted={})
    numeric = [c for c in ref.columns if str(ref[c].dtype) not in ("category", "str", "object")]
    moved = cur.copy()
    for column in numeric:
        values = moved[column].astype("float64")
        moved[column] = values + 0.05 * float(ref[column].astype("float64").std())
    result = compare(ref, moved, plots=False)
    found = [c.column for c in result.columns if c.column in numeric and c.drifted]
    lines += [
        "",
        f"0.05σ mean shift in each of {len(numeric)} numeric columns at {args.rows:,} rows "
        f"(Holm-corrected): detected in {len(found)} of {len(numeric)}.",
    ]
    OUT.mkdir(exist_ok=True)
    (OUT / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
