"""Release gates: are the accuracy gate's verdicts right, and how long does a whole gate take?

1. Calibration and power of the accuracy non-inferiority check (McNemar with a margin,
   Tango's score test) at n = 20,000 rows, margin 0.01, level 0.05. Each row's pair of
   outcomes (candidate right?, baseline right?) is drawn from fixed cell probabilities:
   A/A (both 90% accurate, 10% of rows discordant) should pass; a candidate one point worse
   (89.5% against 90.5%, same discordance) should be blocked. Reported: the share of false
   blocks in A/A runs and the share of blocks of the worse candidate, over ``--seeds`` runs.
2. Speed of a whole gate (AUC by DeLong, accuracy by McNemar, a floor, slices of two tags
   and their intersections, fairness, data contract) on ``--rows`` rows x 100 columns,
   two logistic regressions, each repeat in a fresh process; the median wall time.

    python benchmarks/gate.py --seeds 2000 --rows 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from opsloop.analysis.paired_tests import mcnemar_noninferiority_test

# Cells: (candidate right & baseline right, candidate right only, baseline right only, both
# wrong).
SAME = (0.85, 0.05, 0.05, 0.05)
ONE_POINT_WORSE = (0.85, 0.045, 0.055, 0.05)


def blocked_share(cells, n: int, seeds: int, margin: float, level: float) -> float:
    """The share of runs whose candidate the accuracy check blocks."""
    y = np.ones(n, dtype=np.int8)
    blocked = 0
    for seed in range(seeds):
        cell = np.random.default_rng(seed).choice(4, size=n, p=cells)
        candidate = np.isin(cell, (0, 1)).astype(np.int8)
        baseline = np.isin(cell, (0, 2)).astype(np.int8)
        result = mcnemar_noninferiority_test(y, candidate, baseline, margin=margin, level=level)
        blocked += not result.non_inferior
    return blocked / seeds


def one_gate(rows: int) -> float:
    """Wall seconds of one whole gate on ``rows`` x 100 columns (models fitted beforehand)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from opsloop.analysis.gate import evaluate_gate, parse_gate
    from opsloop.data.schema import infer_schema

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 100)), columns=[f"x{i}" for i in range(100)])
    y = (X["x0"] + 0.5 * X["x1"] + rng.normal(size=rows) > 0).astype(int)
    frame = X.assign(
        y=y,
        region=rng.choice(["n", "s", "e", "w"], rows),
        device=rng.choice(["mobile", "desktop", "tablet"], rows),
    )
    baseline = LogisticRegression(max_iter=500).fit(X, y)
    candidate = LogisticRegression(C=0.1, max_iter=500).fit(X, y)
    signature = {"inputs": infer_schema(X).to_dict(), "output": "int"}
    gate = parse_gate(
        {
            "version": 1,
            "label": "y",
            "checks": [
                {"kind": "non_inferiority", "metric": "auc", "margin": 0.01},
                {"kind": "non_inferiority", "metric": "accuracy", "margin": 0.01},
                {"kind": "floor", "metric": "auc", "min": 0.7},
                {"kind": "slices", "tags": ["region", "device"], "intersections": True},
                {
                    "kind": "fairness",
                    "sensitive": ["region"],
                    "max": {"demographic_parity_difference": 0.1},
                },
                {"kind": "data_contract"},
            ],
        }
    )
    started = time.perf_counter()
    result = evaluate_gate(
        gate,
        candidate,
        baseline,
        frame,
        candidate_signature=signature,
        baseline_signature=signature,
    )
    seconds = time.perf_counter() - started
    assert result.passed, result.to_frame().to_string()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="rows per calibration run")
    parser.add_argument("--seeds", type=int, default=2_000)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--level", type=float, default=0.05)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed gate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-gate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_gate:
        print(json.dumps({"seconds": one_gate(args.one_gate)}))
        return
    same = blocked_share(SAME, args.n, args.seeds, args.margin, args.level)
    worse = blocked_share(ONE_POINT_WORSE, args.n, args.seeds, args.margin, args.level)
    print(
        f"accuracy check, n={args.n}, margin {args.margin}, level {args.level}, {args.seeds} seeds"
    )
    print(f"  A/A false blocks: {same:.2%}")
    print(f"  one point worse, blocked: {worse:.2%}")
    times = []
    for _ in range(args.repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--one-gate", str(args.rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(json.loads(done.stdout)["seconds"])
    print(f"whole gate, {args.rows} rows x 100 columns: median {np.median(times):.2f} s {times}")


if __name__ == "__main__":
    main()
