"""What every benchmark worker shares: its command line, its inputs and how it is measured.

A worker is a script in this folder that ``benchmarks/drift.py`` runs in a fresh process (in
the main venv or in a peer's own venv, so this module uses the standard library only). It
reads the Parquet files, then measures only the drift work itself: process CPU time (all
threads of the process), wall time, and resident memory.

Memory comes from Linux's ``/proc/self/status``, not ``ru_maxrss``: a child's ``ru_maxrss``
starts at its parent's peak (Linux keeps it across ``exec``), so under a parent that once
held the data frames every worker would report at least the parent's peak. ``VmHWM``, the
peak of this process's own memory, starts afresh at ``exec``. Just before the timed work the
peak is reset (``/proc/self/clear_refs``), so ``work_peak_rss_mb`` is the peak during the
work alone, and ``work_peak_rss_mb - rss_before_mb`` is the memory the work added;
``peak_rss_mb`` is the whole process's peak (interpreter, imports, reading the inputs and
the work). Where the peak cannot be reset, the work's peak is the whole process's and
``peak_reset`` is false.

Before the measurement, pyarrow's memory pool hands back the pages it keeps unused after
reading the Parquet files, so the memory before the work is the same from run to run.

With ``--warm`` the worker first runs the same work once on the first ``WARM_ROWS`` rows of
each frame it read, then collects garbage, then measures as above: lazy imports, compiled
kernels loaded from disk and other one-time costs are then paid before the clocks start.

The size of the inputs, ``input_bytes``, is the ``nbytes`` of every column of both frames as
a numpy array (``Series.to_numpy()``), computed after the measurement so that it costs the
measured work nothing.

Output is one JSON file (``--out``), never stdout: libraries print progress and warnings.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: Rows of each frame that the warm-up runs the work on.
WARM_ROWS = 1_000


def parse_args(extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """The worker's arguments: input files, column roles (JSON), the result file, warm-up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=Path, required=True, help="reference Parquet file")
    parser.add_argument("--current", type=Path, required=True, help="current Parquet file")
    parser.add_argument(
        "--columns", type=Path, required=True, help='JSON {"numeric": [...], "categorical": [...]}'
    )
    parser.add_argument("--out", type=Path, required=True, help="where the result JSON goes")
    parser.add_argument(
        "--warm",
        action="store_true",
        help=f"run the work once on the first {WARM_ROWS:,} rows of each frame before measuring",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    args.roles = json.loads(args.columns.read_text())
    return args


def _status_mb(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _ru_maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_now_mb() -> float:
    """Resident memory now, or the peak so far where that is unavailable."""
    now = _status_mb("VmRSS")
    return _ru_maxrss_mb() if now is None else now


def _peak_mb() -> float:
    """This process's peak resident memory since ``exec`` or the last reset."""
    peak = _status_mb("VmHWM")
    return _ru_maxrss_mb() if peak is None else peak


def _reset_peak() -> bool:
    """Reset the peak to the current resident memory (Linux >= 4.0); False if it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _release_pooled_memory() -> None:
    """Return to the system what pyarrow's allocator holds unused after reading the files.

    Reading Parquet leaves a varying 100-200 MB of freed but still resident pages in
    pyarrow's pool; left there they inflate the memory before the work by a different
    amount in every process, and may be handed back during the work, hiding what it adds.
    """
    pyarrow = sys.modules.get("pyarrow")  # only if the worker loaded it: stdlib stays enough
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()


def input_bytes(frames: list) -> int:
    """Bytes of every column of ``frames`` as a numpy array (``Series.to_numpy().nbytes``)."""
    return sum(int(frame[column].to_numpy().nbytes) for frame in frames for column in frame)


def measure(
    args,
    version: str,
    work: Callable[[list], dict],
    frames: list,
    read_s: float,
    sized: Callable[[], list] | None = None,
) -> None:
    """Run ``work(frames)`` under the clocks and write the result file.

    ``work`` returns ``{"drifted": {column: bool}, ...}`` plus anything else worth keeping
    (per-column statistics, p-values); ``drifted`` is left out by workers that decide nothing.
    ``frames`` are the data frames the worker read; with ``--warm`` the work first runs on
    their first ``WARM_ROWS`` rows. ``sized`` gives the reference and current frames when
    ``frames`` are not both of them; it is called after the measurement, to size the inputs.
    """
    if args.warm:
        work([frame.head(WARM_ROWS) for frame in frames])
        gc.collect()
    _release_pooled_memory()
    rss_before = _rss_now_mb()
    peak_before = _peak_mb()  # the interpreter, imports, reading the inputs, any warm-up
    peak_reset = _reset_peak()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = work(frames)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    work_peak = _peak_mb()
    result = {
        "version": version,
        "warm": args.warm,
        "warm_rows": WARM_ROWS if args.warm else 0,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_mb": max(peak_before, work_peak),
        "work_peak_rss_mb": work_peak,
        "rss_before_mb": rss_before,
        "peak_reset": peak_reset,
        "read_s": read_s,
        "input_bytes": input_bytes(frames if sized is None else sized()),
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
