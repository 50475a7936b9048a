"""Peak memory of `opsloop server` taking one large metric batch.

Starts the server in its own process on a fresh SQLite store (the code under ``--src``, so
an older checkout can be measured the same way), reads its peak RSS (``VmHWM``) once it
answers, then sends ``--points`` points of one metric either as one ``POST /batch`` (what a
client did before batches were bounded) or through ``HttpTrackingStore.write_batch`` (which
splits them to fit), and reads the peak again. Prints one JSON line per run.

    python benchmarks/server_batch_memory.py --src src --points 4000000 --mode single
    python benchmarks/server_batch_memory.py --src src --points 4000000 --mode client
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

_SERVER = """
import sys, uvicorn
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
root = sys.argv[1]
app = create_app(Database(f"sqlite:///{root}/store.db"), ArtifactStore(f"{root}/artifacts"))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(url: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", required=True, help="the src folder whose opsloop to serve")
    parser.add_argument("--points", type=int, default=4_000_000)
    parser.add_argument("--mode", choices=("single", "client"), default="single")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="opsloop-bench-")
    port = _free_port()
    environment = {**os.environ, "PYTHONPATH": str(Path(args.src).resolve())}
    environment["OPSLOOP_HOME"] = root
    server = subprocess.Popen([sys.executable, "-c", _SERVER, root, str(port)], env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        run_id = httpx.post(f"{url}/api/v1/runs", json={"experiment": "bench"}).json()["run_id"]
        idle = _peak_rss_mb(server.pid)
        steps = np.arange(args.points)
        values = np.round(np.sin(steps / 1000.0), 6)
        started = time.perf_counter()
        if args.mode == "single":
            body = {
                "metrics": {
                    "keys": ["loss"] * args.points,
                    "values": values.tolist(),
                    "steps": steps.tolist(),
                    "timestamps_ms": (steps + 1_700_000_000_000).tolist(),
                }
            }
            content = json.dumps(body, separators=(",", ":")).encode()
            response = httpx.post(
                f"{url}/api/v1/runs/{run_id}/batch",
                content=content,
                headers={"Content-Type": "application/json"},
                timeout=600,
            )
            status, size_mb = response.status_code, len(content) / 2**20
        else:
            sys.path.insert(0, str(Path(args.src).resolve()))
            from opsloop.tracking.http_store import HttpTrackingStore
            from opsloop.tracking.metric_buffer import MetricBatch

            batch = MetricBatch(("loss",) * args.points, values, steps, steps + 1_700_000_000_000)
            client = HttpTrackingStore(url, timeout_s=600)
            client.write_batch(run_id, batch)
            client.close()
            status, size_mb = 204, None
        seconds = time.perf_counter() - started
        # Read before the check below, which loads the points back and has its own cost.
        peak = _peak_rss_mb(server.pid)
        history = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics/loss", timeout=600)
        stored = len(history.json()["step"])
        print(
            json.dumps(
                {
                    "src": args.src,
                    "mode": args.mode,
                    "points": args.points,
                    "body_mb": None if size_mb is None else round(size_mb, 1),
                    "status": status,
                    "points_stored": stored,
                    "seconds": round(seconds, 2),
                    "idle_peak_rss_mb": round(idle),
                    "peak_rss_mb": round(peak),
                    "added_mb": round(peak - idle),
                }
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
