"""Starting torchrun jobs from the tests: a free port, a one-rank environment, a 2-rank job."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_single_torchrun_rank(monkeypatch) -> None:
    """Make this process look like rank 0 of a one-rank torchrun job."""
    for key, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }.items():
        monkeypatch.setenv(key, value)


def run_two_rank_job(job: Path, folder: Path) -> list[dict]:
    """Run ``job FOLDER`` under ``torch.distributed.run`` with 2 ranks; each rank's answer."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2"]
    command += ["--master-addr=127.0.0.1", f"--master-port={free_port()}", str(job), str(folder)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]
