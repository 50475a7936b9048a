"""Worker: whylogs' Spark profiling of Parquet files, in benchmarks/.envs/whylogs.

``collect_dataset_profile_view(df)`` (``whylogs.api.pyspark.experimental``) profiles every
column of a Spark DataFrame: each partition profiled in a Python worker (``mapInPandas``),
the partition profiles merged into one view. Spark runs as ``local[CORES]``.

One untimed run first (Spark's JVM, its Python workers and whylogs' imports start there),
then ``repeats`` timed runs. Printed as one JSON line: per run the wall time and the CPU
time of this process, the JVM and every process under it (Python workers included), read
from ``/proc`` before and after; the versions; and a few figures of the profile to check
that every row was counted.

    python whylogs_spark.py FILE.parquet ... --cores 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata

os.environ.setdefault("WHYLABS_NO_ANALYTICS", "True")  # no usage telemetry
# Spark's Python workers must be this environment's interpreter, which has whylogs.
os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its living descendants (and the children they
    reaped), from ``/proc``."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.sql import SparkSession
    from whylogs.api.pyspark.experimental import collect_dataset_profile_view

    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .appName("whylogs-profile")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    jvm = spark.sparkContext._gateway.proc.pid
    frame = spark.read.parquet(*args.files)
    rows = frame.count()
    view = collect_dataset_profile_view(frame)  # untimed: starts the Python workers
    runs = []
    for _ in range(args.repeats):
        cpu = tree_cpu_seconds(os.getpid()) + 0.0
        wall = time.perf_counter()
        view = collect_dataset_profile_view(frame)
        runs.append(
            {
                "wall_s": time.perf_counter() - wall,
                "cpu_s": tree_cpu_seconds(os.getpid()) - cpu,
            }
        )
    columns = view.get_columns()
    first = sorted(columns)[0]
    counts = view.get_column(first).get_metric("counts").to_summary_dict()
    print(
        json.dumps(
            {
                "rows": rows,
                "columns": len(columns),
                "checked_column": first,
                "checked_count": counts["n"],
                "runs": runs,
                "jvm_pid_seen": jvm > 0,
                "versions": {
                    name: metadata.version(name)
                    for name in ("whylogs", "pyspark", "pandas", "pyarrow")
                },
                "partitions": frame.rdd.getNumPartitions(),
            }
        )
    )
    spark.stop()


if __name__ == "__main__":
    main()
