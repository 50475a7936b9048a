"""Profiling the same Parquet files: opsloop's ``profile`` on a Dask LocalCluster against
whylogs' Spark profiling (``collect_dataset_profile_view``) on Spark in local mode.

The files are ``benchmarks/scale.py``'s current set (the drift benchmark's table: 20
numeric and 5 categorical columns, one file per ``--partition-rows`` rows), generated there
once and cached under ``benchmarks/out/scale/``. Both engines get the same cores: Dask
``--workers`` single-threaded worker processes, Spark ``local[--workers]``.

Measured per engine after one untimed run (which starts Spark's JVM and Python workers, and
warms Dask's workers): wall time and CPU time of every process involved (Dask: the workers
and this process, which holds the scheduler and merges the profiles; Spark: the driver,
the JVM and the Python workers under it), as medians of ``--repeats`` runs; rows per
CPU-second and the ratio of the two.

whylogs runs in its own environment, ``benchmarks/.envs/whylogs`` (``python
benchmarks/envs.py whylogs``): whylogs 1.6.4's Spark extra needs pyspark < 4 and pyarrow <
13, which clash with opsloop's. Java comes from Debian's ``openjdk-17-jre-headless``.

    python benchmarks/spark_profile.py                       # 5,000,000 rows, 3 repeats
    python benchmarks/spark_profile.py --rows 1000000 --repeats 1    # quick check

Prints a markdown section and writes it to ``benchmarks/out/spark_profile.md``, the raw
numbers to ``benchmarks/out/spark_profile.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path

from envs import PEERS, probe
from opsloop.data.profile import profile
from scale import OUT, cpu_seconds, generate

HERE = Path(__file__).resolve().parent


def measure_dask(files: list[Path], workers: int, repeats: int) -> dict:
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        import dask.dataframe as dd

        paths = [str(f) for f in files]
        profile(dd.read_parquet(paths))  # untimed
        runs = []
        for _ in range(repeats):
            before = client.run(cpu_seconds)
            cpu, wall = cpu_seconds(), time.perf_counter()
            result = profile(dd.read_parquet(paths))
            elapsed, client_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            after = client.run(cpu_seconds)
            runs.append(
                {
                    "wall_s": elapsed,
                    "cpu_s": client_cpu + sum(after[w] - before[w] for w in after),
                }
            )
    first = result.names[0]
    return {
        "rows": result.n_rows,
        "columns": len(result.names),
        "checked_column": first,
        "checked_count": result[first].count,
        "runs": runs,
    }


def measure_whylogs(files: list[Path], workers: int, repeats: int) -> dict:
    peer = PEERS["whylogs"]
    available, reason, _ = probe(peer)
    if not available:
        return {"unavailable": reason}
    done = subprocess.run(
        [
            str(peer.python),
            str(HERE / "peers" / "whylogs_spark.py"),
            *[str(f) for f in files],
            "--cores",
            str(workers),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"unavailable": f"whylogs on Spark failed: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(outcome: dict, key: str) -> float:
    return statistics.median(run[key] for run in outcome["runs"])


def report(args, dask: dict, spark: dict) -> str:
    rows = args.rows
    lines = [
        f"## Profiling on Dask against whylogs on Spark: {rows:,} rows × 25 columns (issue 18)",
        "",
        f"`python benchmarks/spark_profile.py --rows {rows} --partition-rows "
        f"{args.partition_rows} --workers {args.workers} --repeats {args.repeats}`, "
        f"{dt.date.today().isoformat()}, {platform.machine()} with 2 cores shared with other "
        f"work; opsloop on dask {metadata.version('dask')}, distributed "
        f"{metadata.version('distributed')}, pandas {metadata.version('pandas')}: a "
        f"LocalCluster of {args.workers} single-threaded worker processes. "
        + (
            f"whylogs {spark['versions']['whylogs']} on pyspark "
            f"{spark['versions']['pyspark']} (pandas {spark['versions']['pandas']}, pyarrow "
            f"{spark['versions']['pyarrow']}), `local[{args.workers}]`, OpenJDK 17. "
            if "versions" in spark
            else ""
        )
        + f"The same {-(-rows // args.partition_rows)} Parquet files; one untimed run each, "
        f"then medians of {args.repeats} runs. CPU: every process of the engine.",
        "",
        "| engine | wall s | CPU s | rows / CPU-s | rows counted |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, outcome in (("opsloop `profile` on Dask", dask), ("whylogs on Spark", spark)):
        if "unavailable" in outcome:
            lines.append(f"| {name} | not run: {outcome['unavailable']} | | | |")
            continue
        cpu = median(outcome, "cpu_s")
        lines.append(
            f"| {name} | {median(outcome, 'wall_s'):.1f} | {cpu:.1f} | {rows / cpu:,.0f} | "
            f"{outcome['checked_count']:,} of {outcome['rows']:,} ({outcome['checked_column']}) |"
        )
    if "runs" in spark:
        ratio = median(spark, "cpu_s") / median(dask, "cpu_s")
        wall = median(spark, "wall_s") / median(dask, "wall_s")
        lines += [
            "",
            f"whylogs on Spark / opsloop on Dask: CPU {ratio:.2f}, wall {wall:.2f} (above 1: "
            "opsloop spends less).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = OUT / "scale" / f"current-{args.partition_rows}"
    files = generate(folder, args.rows, args.partition_rows, "current")
    dask = measure_dask(files, args.workers, args.repeats)
    spark = measure_whylogs(files, args.workers, args.repeats)
    text = report(args, dask, spark)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "spark_profile.md").write_text(text)
    (OUT / "spark_profile.json").write_text(json.dumps({"dask": dask, "spark": spark}, indent=1))


if __name__ == "__main__":
    main()
