"""Scale-out benchmark: profile, infer_schema, validate and drift on Dask against the
in-memory pandas path.

The data is the drift benchmark's table (``opsloop.datasets.drift_table``: 20 numeric and 5
categorical columns, 7 of them shifted in the current set), written once as partitioned
Parquet under ``benchmarks/out/scale/`` or ``--data`` (one file per ``--partition-rows``
rows; partition ``i`` of the current set is ``drift_table(partition_rows, seed=i)``'s
current frame, of the reference set the reference frame of seed ``1_000_000 + i``) and read
lazily with ``dask.dataframe.read_parquet``.

Each operation runs on a ``LocalCluster`` of ``--workers`` single-threaded worker processes
(opsloop's ``local_cluster``, or Dask's default settings with ``--cluster dask``)
over all ``--rows`` current rows (the reference has ``--reference-rows``), and in memory
on the first ``--baseline-rows`` rows (read with pandas beforehand, untimed). Measured, as
medians of ``--repeats`` runs:

* **rows per CPU-second**: rows processed (both sides for drift) over the CPU seconds spent
  (Dask: every worker's user + system time plus this process's, which holds the scheduler
  and merges the partition summaries; in memory: this process's), and its ratio to the
  in-memory path's: the cost of distribution per core;
* **peak memory per worker** (the largest ``VmHWM`` of the workers, reset before each run)
  and of this process (the client, which holds up to eight columns' sorted values in the
  exact drift mode);
* **drift verdicts**: the drifted columns on Dask against those on the in-memory sample and
  the planted shifts.

Drift runs with ``ks_p_value="fast"`` on both paths (within 1e-11 of scipy's p-value), on
Dask in ``--drift-mode`` (default ``auto``; the in-memory path is always exact).

    python benchmarks/scale.py                          # 5,000,000 rows, 2 workers, 3 repeats
    python benchmarks/scale.py --rows 100000000 --reference-rows 10000000 --repeats 1
    python benchmarks/scale.py --rows 1000000 --repeats 1         # quick check

Prints a markdown section and writes it to ``benchmarks/out/scale.md``, the raw numbers to
``benchmarks/out/scale.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from opsloop.data.distributed import local_cluster, read_parquet_dask
from opsloop.data.drift import compare
from opsloop.data.profile import profile
from opsloop.data.schema import infer_schema, validate
from opsloop.datasets import BENCHMARK_SHIFTS, drift_table

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
REFERENCE_SEED = 1_000_000
OPERATIONS = ("profile", "infer_schema", "validate", "drift")


def generate(folder: Path, rows: int, partition_rows: int, side: str) -> list[Path]:
    """Write ``rows`` rows of one side as Parquet files, unless they are there already."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, start in enumerate(range(0, rows, partition_rows)):
        path = folder / f"part-{index:05d}.parquet"
        files.append(path)
        if path.exists():
            continue
        n = min(partition_rows, rows - start)
        seed = index if side == "current" else REFERENCE_SEED + index
        reference, current, _ = drift_table(n, seed=seed)
        frame = current if side == "current" else reference
        frame.to_parquet(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return files


def peak_rss_reset() -> None:
    """Reset this process's peak resident memory (``VmHWM``) to its current size."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run_in_memory(
    name: str, current: pd.DataFrame, reference: pd.DataFrame, schema, drift_mode="auto"
):
    if name == "profile":
        return profile(current)
    if name == "infer_schema":
        return infer_schema(reference)
    if name == "validate":
        return validate(current, schema)
    return compare(reference, current, ks_p_value="fast", mode=drift_mode)


def rows_of(name: str, n_current: int, n_reference: int) -> int:
    return {"profile": n_current, "infer_schema": n_reference, "validate": n_current}.get(
        name, n_current + n_reference
    )


def measure_memory(name, current, reference, schema, repeats):
    results = []
    for _ in range(repeats):
        peak_rss_reset()
        cpu, wall = cpu_seconds(), time.perf_counter()
        outcome = run_in_memory(name, current, reference, schema)
        results.append(
            {
                "cpu_s": cpu_seconds() - cpu,
                "wall_s": time.perf_counter() - wall,
                "client_peak_bytes": peak_rss_bytes(),
            }
        )
    return results, outcome


def measure_dask(client, name, current, reference, schema, repeats, drift_mode):
    results = []
    for _ in range(repeats):
        client.run(peak_rss_reset)
        before = client.run(cpu_seconds)
        peak_rss_reset()
        cpu, wall = cpu_seconds(), time.perf_counter()
        outcome = run_in_memory(name, current, reference, schema, drift_mode)
        elapsed, client_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        after = client.run(cpu_seconds)
        workers_cpu = sum(after[w] - before[w] for w in after)
        peaks = client.run(peak_rss_bytes)
        results.append(
            {
                "cpu_s": workers_cpu + client_cpu,
                "workers_cpu_s": workers_cpu,
                "client_cpu_s": client_cpu,
                "wall_s": elapsed,
                "worker_peak_bytes": max(peaks.values()),
                "client_peak_bytes": peak_rss_bytes(),
            }
        )
    return results, outcome


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def report(args, figures, verdicts, partition_bytes) -> str:
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("dask", "distributed", "pandas", "numpy")
    )
    lines = [
        f"## Scale-out on Dask: {args.rows:,} rows × 25 columns (issue 18)",
        "",
        f"`python benchmarks/scale.py --rows {args.rows} --reference-rows "
        f"{args.reference_rows} --partition-rows {args.partition_rows} --workers "
        f"{args.workers} --repeats {args.repeats}"
        f"{'' if args.data == OUT / 'scale' else f' --data {args.data}'}"
        f"{'' if args.cluster == 'opsloop' else ' --cluster dask'}"
        f"{'' if args.drift_mode == 'auto' else f' --drift-mode {args.drift_mode}'}`, "
        f"{dt.date.today().isoformat()}, "
        f"{platform.machine()} with {os.cpu_count()} cores; {versions}. Dask: a LocalCluster "
        f"({'opsloop' if args.cluster == 'opsloop' else 'Dask'}'s settings) of {args.workers} "
        f"single-threaded worker processes over {args.rows:,} current rows "
        f"({args.rows // args.partition_rows} Parquet files of {args.partition_rows:,} rows, "
        f"{partition_bytes / 2**20:.0f} MiB each in memory) and {args.reference_rows:,} "
        f"reference rows; in memory: pandas on the first {args.baseline_rows:,} current "
        f"rows and {args.baseline_rows // 10:,} reference rows. Medians of {args.repeats} "
        "runs. CPU is every process's user + system time (workers and the client that holds "
        "the scheduler); rows per CPU-second count both sides for drift.",
        "",
        "| operation | in memory: rows/CPU-s (loaded; incl. reading) | Dask: rows/CPU-s | "
        "Dask / in memory (loaded; incl. reading) | Dask wall s | peak per worker "
        "(idle worker) | client peak: Dask; in memory |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in (name for name in OPERATIONS if name in figures):
        f = figures[name]
        mib = 2**20
        lines.append(
            f"| {name} | {f['memory_rate']:,.0f}; {f['memory_read_rate']:,.0f} | "
            f"{f['dask_rate']:,.0f} | {f['dask_rate'] / f['memory_rate']:.2f}; "
            f"{f['dask_rate'] / f['memory_read_rate']:.2f} | {f['dask_wall_s']:.1f} | "
            f"{f['worker_peak_bytes'] / mib:,.0f} MiB ({f['worker_idle_bytes'] / mib:,.0f} MiB) | "
            f"{f['client_peak_bytes'] / mib:,.0f} MiB; "
            f"{f['memory_client_peak_bytes'] / mib:,.0f} MiB |"
        )
    lines += [
        "",
        f"Drift verdicts: Dask ({args.rows:,} rows) flags {sorted(verdicts['dask'])}; the "
        f"in-memory sample ({args.baseline_rows:,} rows) flags {sorted(verdicts['memory'])}; "
        f"the planted shifts are {sorted(verdicts['truth'])}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--reference-rows", type=int, default=None, help="default rows / 10")
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--baseline-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument(
        "--data",
        type=Path,
        default=OUT / "scale",
        help="folder of the Parquet files (written there once); default benchmarks/out/scale",
    )
    parser.add_argument(
        "--cluster",
        choices=("opsloop", "dask"),
        default="opsloop",
        help="the LocalCluster: opsloop's local_cluster (default) or Dask's defaults",
    )
    parser.add_argument(
        "--drift-mode",
        choices=("auto", "exact", "sketch"),
        default="auto",
        help="compare's mode on Dask (the in-memory path is always exact)",
    )
    args = parser.parse_args()
    args.reference_rows = args.reference_rows or args.rows // 10

    import distributed

    data = args.data
    tag = f"{args.partition_rows}"
    generate(data / f"current-{tag}", args.rows, args.partition_rows, "current")
    generate(data / f"reference-{tag}", args.reference_rows, args.partition_rows, "reference")
    current_files = sorted((data / f"current-{tag}").glob("*.parquet"))
    reference_files = sorted((data / f"reference-{tag}").glob("*.parquet"))
    current_files = current_files[: -(-args.rows // args.partition_rows)]
    reference_files = reference_files[: -(-args.reference_rows // args.partition_rows)]

    def head(files, rows):
        needed = files[: -(-rows // args.partition_rows)]
        return pd.concat([pd.read_parquet(f) for f in needed], ignore_index=True).iloc[:rows]

    cpu = cpu_seconds()
    memory_current = head(current_files, args.baseline_rows)
    memory_reference = head(reference_files, args.baseline_rows // 10)
    # What reading the Parquet files into memory costs per row (Dask's workers pay it too).
    read_cpu_per_row = (cpu_seconds() - cpu) / (len(memory_current) + len(memory_reference))
    partition_bytes = int(pd.read_parquet(current_files[0]).memory_usage(deep=True).sum())
    memory_schema = infer_schema(memory_reference)

    figures: dict[str, dict] = {}
    raw: dict[str, dict] = {}
    verdicts: dict[str, set] = {"truth": set(BENCHMARK_SHIFTS)}
    start_cluster = local_cluster if args.cluster == "opsloop" else distributed.LocalCluster
    with (
        start_cluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        current = read_parquet_dask(data / f"current-{tag}" / "part-*.parquet")
        reference = read_parquet_dask(data / f"reference-{tag}" / "part-*.parquet")
        current = current.partitions[: len(current_files)]
        reference = reference.partitions[: len(reference_files)]
        # Warm-up: every operation once on a few partitions, so that imports, first calls
        # and numba kernels are loaded in every worker before anything is timed.
        small = current.partitions[: args.workers]
        schema = infer_schema(reference)
        for name in args.only:
            run_in_memory(name, small, small, schema, args.drift_mode)
        baseline = max(client.run(peak_rss_bytes).values())
        for name in args.only:
            memory_runs, memory_outcome = measure_memory(
                name, memory_current, memory_reference, memory_schema, args.repeats
            )
            dask_runs, dask_outcome = measure_dask(
                client, name, current, reference, schema, args.repeats, args.drift_mode
            )
            memory_rows = rows_of(name, len(memory_current), len(memory_reference))
            dask_rows = rows_of(name, args.rows, args.reference_rows)
            figures[name] = {
                "memory_rate": memory_rows / median(memory_runs, "cpu_s"),
                "memory_read_rate": memory_rows
                / (median(memory_runs, "cpu_s") + read_cpu_per_row * memory_rows),
                "dask_rate": dask_rows / median(dask_runs, "cpu_s"),
                "dask_wall_s": median(dask_runs, "wall_s"),
                "worker_peak_bytes": max(r["worker_peak_bytes"] for r in dask_runs),
                "worker_idle_bytes": baseline,
                "client_peak_bytes": max(r["client_peak_bytes"] for r in dask_runs),
                "memory_client_peak_bytes": max(r["client_peak_bytes"] for r in memory_runs),
            }
            raw[name] = {"memory": memory_runs, "dask": dask_runs}
            if name == "drift":
                verdicts["dask"] = {c.column for c in dask_outcome.columns if c.drifted}
                verdicts["memory"] = {c.column for c in memory_outcome.columns if c.drifted}
            print(name, json.dumps(figures[name]), flush=True)
    verdicts.setdefault("dask", set())
    verdicts.setdefault("memory", set())
    text = report(args, figures, verdicts, partition_bytes)
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.md").write_text(text)
    (OUT / "scale.json").write_text(
        json.dumps(
            {"args": {**vars(args), "data": str(args.data)}, "figures": figures, "runs": raw},
            indent=2,
        )
    )
    print(text)


if __name__ == "__main__":
    main()
