"""What every benchmark worker shares: its command line, its inputs and how it is measured.

A worker is a script in this folder that ``benchmarks/drift.py`` runs in a fresh process (in
the main venv or in a peer's own venv, so this module uses the standard library only). It
reads the Parquet files, then measures only the drift work itself: process CPU time (all
threads of the process), wall time, and the process's peak resident memory at the end. The
peak is the whole process's (interpreter, imports and inputs included); ``rss_before_mb``,
taken just before the timed work, tells how much of it the work itself added.

Output is one JSON file (``--out``), never stdout: libraries print progress and warnings.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path


def parse_args(extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """The worker's arguments: input files, column roles (JSON) and the result file."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=Path, required=True, help="reference Parquet file")
    parser.add_argument("--current", type=Path, required=True, help="current Parquet file")
    parser.add_argument(
        "--columns", type=Path, required=True, help='JSON {"numeric": [...], "categorical": [...]}'
    )
    parser.add_argument("--out", type=Path, required=True, help="where the result JSON goes")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    args.roles = json.loads(args.columns.read_text())
    return args


def _rss_now_mb() -> float:
    """Resident memory now (Linux ``/proc``), or the peak so far where that is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_rss_mb()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(args, version: str, work: Callable[[], dict], read_s: float) -> None:
    """Run ``work`` under the clocks and write the result file.

    ``work`` returns ``{"drifted": {column: bool}, ...}`` plus anything else worth keeping
    (per-column statistics, p-values); ``drifted`` is left out by workers that decide nothing.
    """
    rss_before = _rss_now_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = work()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    result = {
        "version": version,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "read_s": read_s,
        **outcome,
    }
    args.out.write_text(json.dumps(result, indent=1, default=_plain))


def _plain(value):
    """JSON for numpy scalars and similar: anything with ``item()``, else its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def timed_read(reader: Callable[[], object]) -> tuple[object, float]:
    """``reader()`` and the wall seconds it took (reported, not part of the measured work)."""
    start = time.perf_counter()
    value = reader()
    return value, time.perf_counter() - start
