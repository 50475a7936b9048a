"""A module named on the command line before its package's other modules is collected as
the one module its package imports, so its doctests and the tests after it share its
classes (``--import-mode=importlib``, the project's mode; ``src/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run after policy.py's doctests: the Policy a test imports is the one the package's
# evaluation checks parsed rules against, and the module pytest collected is that one.
_CHECK = """
import sys

from opsloop.monitoring import evaluation
from opsloop.monitoring.policy import Policy


def test_one_policy_module():
    assert evaluation.Policy is Policy
    assert sys.modules["opsloop.monitoring.policy"].Policy is Policy
    rule = Policy.parse("drift_share > 0.3 -> alert")
    assert evaluation._parsed([rule]) == [rule]
"""


def test_a_module_named_before_the_package_that_imports_it_is_loaded_once(tmp_path):
    check = tmp_path / "test_one_policy_module.py"
    check.write_text(_CHECK)
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    environment.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "src/opsloop/monitoring/policy.py",
            str(check),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # policy.py's examples and the check all ran.
    assert " passed" in done.stdout and "failed" not in done.stdout
