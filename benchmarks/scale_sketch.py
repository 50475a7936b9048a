"""Drift on Dask, sketch mode against exact mode on the same partitioned Parquet data.

The data is ``benchmarks/scale.py``'s (the drift benchmark's table: 20 numeric and 5
categorical columns, 7 shifted; one Parquet file per 250,000 rows under
``benchmarks/out/scale/``, written once). On a ``LocalCluster`` of ``--workers``
single-threaded worker processes, ``compare(reference, current)`` runs with ``mode="exact"``
and with ``mode="sketch"`` (KLL, ``--sketch-k``), ``ks_p_value="fast"`` in both, medians of
``--repeats`` runs each. Measured:

* CPU seconds (every worker's user + system time plus this process's, which holds the
  scheduler and merges the summaries), wall seconds, peak memory of this process (the
  client; with its resident size when the run starts, so that what the run adds shows)
  and of the busiest worker;
* accuracy: for every sketched column, ``|D_sketch - D_exact|`` against the stated bound
  ``eps_ref + eps_cur``; whether the exact p-value lies in the stated interval; the verdicts
  of both modes, and how many sketched verdicts are certain within their bounds.

    python benchmarks/scale_sketch.py                     # 2,000,000 + 500,000 rows
    python benchmarks/scale_sketch.py --rows 1000000 --repeats 1

Prints a markdown section and writes it to ``benchmarks/out/scale_sketch.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from importlib import metadata

from opsloop.data.distributed import read_parquet_dask
from opsloop.data.drift import compare
from opsloop.datasets import BENCHMARK_SHIFTS
from scale import OUT, cpu_seconds, generate, peak_rss_bytes, peak_rss_reset


def measure(client, reference, current, mode: str, k: int, repeats: int):
    runs, outcome = [], None
    for _ in range(repeats):
        client.run(peak_rss_reset)
        before = client.run(cpu_seconds)
        peak_rss_reset()
        start = peak_rss_bytes()  # just reset: the client's resident size before the run
        cpu, wall = cpu_seconds(), time.perf_counter()
        outcome = compare(reference, current, ks_p_value="fast", mode=mode, sketch_k=k)
        elapsed, client_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        after = client.run(cpu_seconds)
        runs.append(
            {
                "cpu_s": client_cpu + sum(after[w] - before[w] for w in after),
                "wall_s": elapsed,
                "client_peak_bytes": peak_rss_bytes(),
                "client_start_bytes": start,
                "worker_peak_bytes": max(client.run(peak_rss_bytes).values()),
            }
        )
    return runs, outcome


def accuracy(exact, sketched) -> dict:
    errors, bounds, p_inside, certain, n = [], [], 0, 0, 0
    for column in sketched.columns:
        if not column.sketched:
            continue
        want = exact[column.column]
        n += 1
        errors.append(abs(column.statistic - want.statistic))
        bounds.append(sum(column.rank_errors))
        low, high = column.p_value_bounds
        p_inside += low <= want.p_value <= high
        certain += column.verdict_certain
    return {
        "sketched_columns": n,
        "max_d_error": max(errors),
        "max_error_over_bound": max(e / b for e, b in zip(errors, bounds, strict=True)),
        "bound": max(bounds),
        "p_inside": p_inside,
        "certain": certain,
        "exact_drifted": sorted(c.column for c in exact.columns if c.drifted),
        "sketch_drifted": sorted(c.column for c in sketched.columns if c.drifted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--reference-rows", type=int, default=500_000)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sketch-k", type=int, default=1000)
    parser.add_argument(
        "--sketch-first",
        action="store_true",
        help="run the sketch mode first, so that its client figures are not those the exact "
        "mode's gathered values left resident",
    )
    args = parser.parse_args()

    import distributed

    data = OUT / "scale"
    tag = f"{args.partition_rows}"
    current_files = generate(data / f"current-{tag}", args.rows, args.partition_rows, "current")
    reference_files = generate(
        data / f"reference-{tag}", args.reference_rows, args.partition_rows, "reference"
    )
    with (
        distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        current = read_parquet_dask(data / f"current-{tag}" / "part-*.parquet")
        reference = read_parquet_dask(data / f"reference-{tag}" / "part-*.parquet")
        current = current.partitions[: len(current_files)]
        reference = reference.partitions[: len(reference_files)]
        small = current.partitions[: args.workers]
        figures, outcomes = {}, {}
        order = ("sketch", "exact") if args.sketch_first else ("exact", "sketch")
        for mode in order:
            # Warm-up: imports and numba kernels on every worker.
            compare(small, small, ks_p_value="fast", mode=mode, sketch_k=args.sketch_k)
            runs, outcomes[mode] = measure(
                client, reference, current, mode, args.sketch_k, args.repeats
            )
            figures[mode] = {
                key: statistics.median(r[key] for r in runs)
                if key.endswith("_s")
                else max(r[key] for r in runs)
                for key in runs[0]
            }
            print(mode, json.dumps(figures[mode]), flush=True)
    found = accuracy(outcomes["exact"], outcomes["sketch"])
    print(json.dumps(found), flush=True)
    exact, sketch = figures["exact"], figures["sketch"]
    mib = 2**20
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("dask", "distributed", "datasketches", "pandas")
    )
    rows = f"{args.rows:,} current + {args.reference_rows:,} reference rows"
    lines = [
        f"## Drift on Dask: sketch mode against exact mode, {rows} × 25 columns (issue 18)",
        "",
        f"`python benchmarks/scale_sketch.py --rows {args.rows} --reference-rows "
        f"{args.reference_rows} --repeats {args.repeats} --sketch-k {args.sketch_k}"
        f"{' --sketch-first' if args.sketch_first else ''}`, "
        f"{dt.date.today()}, {platform.machine()} with 2 cores; {versions}. A LocalCluster "
        f"of {args.workers} single-threaded worker processes; Parquet files of "
        f"{args.partition_rows:,} rows; KS p-values `fast` in both modes. Medians of "
        f"{args.repeats} runs; CPU is the workers' and the client's user + system time.",
        "",
        "| mode | CPU s | wall s | client peak (at start) | worker peak | sketch / exact CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| exact | {exact['cpu_s']:.1f} | {exact['wall_s']:.1f} | "
        f"{exact['client_peak_bytes'] / mib:,.0f} MiB ({exact['client_start_bytes'] / mib:,.0f}"
        f" MiB) | {exact['worker_peak_bytes'] / mib:,.0f} MiB | 1 |",
        f"| sketch (k = {args.sketch_k}) | {sketch['cpu_s']:.1f} | {sketch['wall_s']:.1f} | "
        f"{sketch['client_peak_bytes'] / mib:,.0f} MiB "
        f"({sketch['client_start_bytes'] / mib:,.0f} MiB) | "
        f"{sketch['worker_peak_bytes'] / mib:,.0f} MiB | {sketch['cpu_s'] / exact['cpu_s']:.2f} |",
        "",
        f"Accuracy over the {found['sketched_columns']} sketched (numeric) columns: the largest "
        f"|D_sketch - D_exact| is {found['max_d_error']:.5f}, against a stated bound of "
        f"{found['bound']:.5f} (largest error / bound: {found['max_error_over_bound']:.2f}); "
        f"the exact p-value lies in the stated interval for {found['p_inside']} of "
        f"{found['sketched_columns']}; {found['certain']} of {found['sketched_columns']} "
        "sketched verdicts are certain within their bounds. Chi-square columns are exact in "
        f"both modes. Drifted, exact: {found['exact_drifted']}; sketch: "
        f"{found['sketch_drifted']}; planted: {sorted(BENCHMARK_SHIFTS)}.",
        "",
    ]
    text = "\n".join(lines)
    OUT.mkdir(exist_ok=True)
    (OUT / "scale_sketch.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
