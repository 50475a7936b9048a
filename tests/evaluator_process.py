"""``opsloop monitor evaluate`` in a process of its own, followed until its first round is in
the store and then stopped with SIGTERM, as a scheduler stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from opsloop.monitoring.evaluation import read_evaluations

ROOT = Path(__file__).resolve().parents[1]
#: How long the process may take to start and evaluate its first round (a loaded machine).
FIRST_ROUND_S = 120
#: What the process prints once a round is done.
ROUND_REPORTED = "window(s) evaluated"


@dataclass(frozen=True)
class StoppedEvaluator:
    """What the process did: the one evaluation it stored, its output and exit status."""

    evaluation: object
    output: str
    returncode: int


def evaluate_until_first_round(
    db, deployment: str, options: list[str], environment: Mapping[str, str] | None = None
) -> StoppedEvaluator:
    """Run ``opsloop monitor evaluate DEPLOYMENT OPTIONS...`` (this checkout's sources, with
    ``environment`` added to this process's) until ``db`` holds one evaluation of
    ``deployment``, then send it SIGTERM and wait for it to exit."""
    command = [sys.executable, "-m", "opsloop", "monitor", "evaluate", deployment, *options]
    python_path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    process = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": python_path, **(environment or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    # The output is read as it comes, so the process is stopped only once it has reported
    # its round (a server stores the round before the process hears back and prints it).
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + FIRST_ROUND_S
        while time.monotonic() < deadline and not (
            any(ROUND_REPORTED in line for line in list(lines)) and read_evaluations(db, deployment)
        ):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.2)  # polling the store and the output for the first round
        (evaluation,) = read_evaluations(db, deployment)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=60)
    return StoppedEvaluator(evaluation, "".join(lines), process.returncode)
