"""Rollback speed: canary requests a gate needs to fail a canary whose error rate jumps.

The scenario of the serving issue: the primary errs on 1% of requests; the canary errs on 5%
(detection) or on 1% (nothing changed: every failure is a false alarm). For each gate, over
seeded simulated runs:

* **requests to detect**: canary requests read up to and including the one that failed the
  canary, median and 95th percentile (runs that never fail within the horizon count as
  infinite, so a percentile above the share detected reads "not reached");
* **false alarms**: share of runs that failed an unchanged canary within 5,000 canary
  requests.

Gates compared:

* ``RateGate`` (opsloop): SPRT on the arm of each error, ``detect_ratio=3``, ``alpha=0.05``;
  at 5% and 10% canary traffic; and with a margin of 0.5 percentage points over the primary
  (where the unchanged canary stays inside the null and the jump to 5% must exceed 1.5%).
* Wald's SPRT that *knows* both rates (1% against 5%) on the canary's requests alone: the
  floor a test can reach when nothing is estimated; no deployment knows these rates.
* A fixed-threshold analysis as a rollout tool runs it (Flagger's documented canary
  analysis: a check each minute of the canary's error rate in that minute against a
  threshold, rollback at the fifth failed check, ``interval: 1m``, ``threshold: 5``; its
  example threshold is a 99% success rate, i.e. error rate above 1%). Its speed in requests
  depends on the canary's traffic: shown at 60 and 600 canary requests a minute.

    python benchmarks/rollback_speed.py            # about a minute
    python benchmarks/rollback_speed.py --runs 2000 --write-results   # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from opsloop.analysis.sequential import RateGate

PRIMARY_RATE = 0.01
BAD_RATE = 0.05
FALSE_ALARM_HORIZON = 5_000
DETECT_HORIZON = 2_000
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Rollback speed: canary requests to fail a canary whose error rate goes 1% → 5%"


def rate_gate_runs(rng, runs, canary_rate, share, horizon, **params) -> np.ndarray:
    """Canary requests each fresh gate read when it failed (inf where it did not)."""
    per_canary = round((1 - share) / share)
    found = np.full(runs, np.inf)
    full_stream = params.get("margin", 0.0) > 0.0
    for run in range(runs):
        canary_events = rng.random(horizon) < canary_rate
        if full_stream:
            # The margin reads the primary's request count, so every request goes in.
            n = horizon * (per_canary + 1)
            is_canary = np.zeros(n, bool)
            is_canary[per_canary :: per_canary + 1] = True
            event = rng.random(n) < PRIMARY_RATE
            event[is_canary] = canary_events
        else:
            # Requests without an error add nothing to the statistic: feed the primary's
            # errors between canary requests and every canary request.
            primary_events = rng.binomial(per_canary, PRIMARY_RATE, horizon)
            counts = np.column_stack([primary_events, np.ones(horizon, int)]).ravel()
            is_canary = np.repeat(np.tile([False, True], horizon), counts)
            event = ~is_canary
            event[is_canary] = canary_events
        decision = RateGate(**params).update_many(is_canary, event, share=share)
        if decision.verdict == "fail":
            found[run] = decision.n_candidate
    return found


def known_rates_sprt_runs(rng, runs, canary_rate, horizon, alpha=0.05) -> np.ndarray:
    errors = rng.random((runs, horizon)) < canary_rate
    step = np.where(
        errors, np.log(BAD_RATE / PRIMARY_RATE), np.log((1 - BAD_RATE) / (1 - PRIMARY_RATE))
    )
    crossed = np.cumsum(step, axis=1) >= np.log(1 / alpha)
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1.0, np.inf)


def fixed_threshold_runs(
    rng, runs, canary_rate, horizon, per_minute, threshold, failed_checks=5
) -> np.ndarray:
    minutes = horizon // per_minute
    errors = rng.binomial(per_minute, canary_rate, (runs, minutes))
    failed = np.cumsum(errors / per_minute > threshold, axis=1) >= failed_checks
    return np.where(failed.any(axis=1), (failed.argmax(axis=1) + 1.0) * per_minute, np.inf)


def _quantile(found: np.ndarray, q: float) -> str:
    value = np.quantile(found, q)
    return "not reached" if not np.isfinite(value) else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000, help="runs per row (detection)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    runs = args.runs
    rows = []
    start = time.process_time()

    def row(gate, setting, detect, alarms, share="n/a"):
        rows.append(
            f"| {gate} | {setting} | {share} | {_quantile(detect, 0.5)} | "
            f"{_quantile(detect, 0.95)} | {np.isfinite(detect).mean():.1%} | "
            f"{np.isfinite(alarms).mean():.1%} |"
        )

    for share in (0.05, 0.10):
        detect = rate_gate_runs(rng, runs, BAD_RATE, share, DETECT_HORIZON, detect_ratio=3.0)
        alarms = rate_gate_runs(
            rng, runs, PRIMARY_RATE, share, FALSE_ALARM_HORIZON, detect_ratio=3.0
        )
        row("opsloop RateGate", "detect_ratio=3, alpha=0.05", detect, alarms, f"{share:.0%}")
    margin_runs = max(runs // 8, 100)
    detect = rate_gate_runs(
        rng, margin_runs, BAD_RATE, 0.10, DETECT_HORIZON, detect_ratio=3.0, margin=0.005
    )
    alarms = rate_gate_runs(
        rng,
        margin_runs,
        PRIMARY_RATE + 0.005,
        0.10,
        FALSE_ALARM_HORIZON,
        detect_ratio=3.0,
        margin=0.005,
    )
    row(
        "opsloop RateGate",
        f"margin=0.005 (+0.5 points), detect_ratio=3; false alarms at 1.5%, {margin_runs} runs",
        detect,
        alarms,
        "10%",
    )
    floor = detect = known_rates_sprt_runs(rng, runs, BAD_RATE, DETECT_HORIZON)
    alarms = known_rates_sprt_runs(rng, runs, PRIMARY_RATE, FALSE_ALARM_HORIZON)
    row(
        "Wald SPRT knowing both rates (a floor, not deployable)",
        "1% vs 5%, alpha=0.05",
        detect,
        alarms,
    )
    for per_minute in (60, 600):
        for threshold in (0.01, 0.02, 0.03):
            detect = fixed_threshold_runs(
                rng, runs, BAD_RATE, DETECT_HORIZON * 10, per_minute, threshold
            )
            alarms = fixed_threshold_runs(
                rng, runs, PRIMARY_RATE, FALSE_ALARM_HORIZON, per_minute, threshold
            )
            row(
                "fixed threshold, 5 failed one-minute checks (Flagger's analysis)",
                f"error rate > {threshold:.0%}, {per_minute} canary requests/min",
                detect,
                alarms,
            )
    cpu = time.process_time() - start
    header = [
        SECTION,
        "",
        "`benchmarks/rollback_speed.py` (seeded simulation; primary error rate 1%). "
        f"numpy {metadata.version('numpy')}, Python {platform.python_version()}, "
        f"{platform.machine()}; seed {args.seed}, {runs:,} runs per row unless stated.",
        "",
        "*requests to detect*: canary requests read up to the one that failed the canary "
        "after its error rate went to 5%, over all runs (a run that never fails counts as "
        "infinite; 'not reached' when fewer runs than the percentile failed within "
        f"{DETECT_HORIZON:,} canary requests for the sequential gates, "
        f"{DETECT_HORIZON * 10:,} for the fixed thresholds). *false alarms*: runs that failed a "
        f"canary erring at the primary's rate within {FALSE_ALARM_HORIZON:,} canary requests "
        "(for the margin row: at the margin's edge, 1.5%).",
        "",
        "| gate | setting | canary share | requests to detect (median) | (95th pct) "
        "| detected | false alarms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "The SPRT that knows both rates needs "
        f"{_quantile(floor, 0.95)} canary requests at its 95th percentile: the time for a 5% "
        "error rate to show in a handful of errors, which no test can skip. RateGate does not "
        "know the primary's rate (it learns it from the primary's traffic at the same time), "
        "so its figures come nearer the floor the more primary traffic each canary request "
        "has beside it (a 5% step against a 10% step). The fixed thresholds need minutes, "
        "whatever the traffic, and a threshold that does not raise false alarms at low "
        "traffic does not exist: a minute of 60 requests at a 1% error rate holds 2 or more "
        "errors (over 3%) in 12% of minutes.",
        "",
        f"CPU {cpu:.0f} s.",
        "",
    ]
    report = "\n".join(header)
    print(report)
    if args.write_results:
        text = RESULTS.read_text()
        pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
        if pattern.search(text):
            text = pattern.sub(lambda _: report + "\n", text)
        else:
            text = text.rstrip("\n") + "\n\n" + report
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
