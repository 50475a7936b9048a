"""python -m opsloop.server starts from the server package alone, with the CLI's refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parents[2] / "src")


def _python(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OPSLOOP_HOME": str(tmp_path), "PYTHONPATH": SOURCE}
    environment.pop("OPSLOOP_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, env=environment, timeout=120
    )


def test_a_network_address_without_users_is_refused_in_one_line(tmp_path):
    found = _python(tmp_path, "-m", "opsloop.server", "--host", "0.0.0.0", "--port", "5999")
    assert found.returncode == 2
    assert found.stderr.startswith("error: refusing to bind 0.0.0.0: ")
    assert found.stderr.count("\n") == 1


def test_starting_the_server_loads_nothing_of_the_command_line(tmp_path):
    code = (
        "import sys, opsloop.server.launch, opsloop.server.__main__; "
        "print(sorted(m for m in sys.modules if m.startswith('opsloop.cli')))"
    )
    found = _python(tmp_path, "-c", code)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
