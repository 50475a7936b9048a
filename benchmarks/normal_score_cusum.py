"""The false-alarm rate of CUSUM's ``"normal_scores"`` preset, simulated on standard normal values.

The preset's threshold comes from Siegmund's approximation of the one-sided CUSUM's average
run length (ARL) on a N(0, 1) stream (Siegmund 1985, *Sequential Analysis*, p. 27):

    ARL(h) = (exp(2 k b) - 2 k b - 1) / (2 k²),  b = h + 1.166,

halved for the two-sided chart (its two sides alarm independently, nearly). This script reads
``--items`` standard normal values (in chunks, seeded) through ``CUSUM.preset("normal_scores")``
and counts its alarms: with the chart restarting at zero after each, the count over the items is
the rate the approximation predicts, 1 / ARL per value. It also reports the mean delay of a
shift of half a standard deviation from a chart at zero, against the approximation's.

    python benchmarks/normal_score_cusum.py --items 1000000000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from opsloop.detect import CUSUM
from opsloop.detect.presets import preset_params


def siegmund_arl(h: float, k: float, shift: float = 0.0) -> float:
    """Siegmund's approximation of a one-sided CUSUM's ARL for a N(shift, 1) stream."""
    delta, b = shift - k, h + 1.166
    if delta == 0.0:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000_000)
    parser.add_argument("--chunk", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delays", type=int, default=2_000)
    args = parser.parse_args()
    params = preset_params("CUSUM", "normal_scores")
    k, h = params["k"], params["h"]
    arl = siegmund_arl(h, k) / 2
    print(f"CUSUM normal_scores: k={k}, h={h}; Siegmund two-sided ARL {arl:,.0f}")
    rng = np.random.default_rng(args.seed)
    detector, alarms, done, start = CUSUM.preset("normal_scores"), 0, 0, time.perf_counter()
    while done < args.items:
        size = min(args.chunk, args.items - done)
        alarms += detector.update_many(rng.standard_normal(size)).n_drifts
        done += size
    expected = done / arl
    low, high = stats.poisson.ppf([0.005, 0.995], expected)
    print(
        f"{done:,} N(0,1) values: {alarms} alarms ({alarms / done * 1e5:.4f} per 100,000); "
        f"expected {expected:.1f} (99% Poisson range {low:.0f} to {high:.0f}); "
        f"{time.perf_counter() - start:.0f} s"
    )
    delays = []
    for _ in range(args.delays):
        detector = CUSUM.preset("normal_scores")
        hit = detector.update_many(rng.normal(0.5, 1.0, 2_000)).drift_indices
        delays.append(int(hit[0]) + 1 if len(hit) else 2_001)
    print(
        f"0.5 SD shift from zero, {args.delays} trials: mean delay {np.mean(delays):.1f} "
        f"(Siegmund: {siegmund_arl(h, k, 0.5):.1f})"
    )


if __name__ == "__main__":
    main()
