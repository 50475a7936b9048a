"""The GitHub Actions example in ``examples/ci`` runs locally, step by step as the workflow
file writes them: a first version becomes the champion, a good candidate passes the gate and
is promoted, a worse one fails it (exit 1) and the champion stays."""

from __future__ import annotations

import runpy
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.registry import open_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ci"


def _steps() -> list[str]:
    workflow = yaml.safe_load((EXAMPLE / "release.yml").read_text())
    runs = [step["run"] for step in workflow["jobs"]["release"]["steps"] if "run" in step]
    # pip install is the runner's business; here the package is already installed
    return [run for run in runs if not run.startswith("pip ")]


def _release(tmp_path: Path, monkeypatch, train_args: str) -> list[int]:
    """Run the workflow's steps as GitHub would: stop at the first that fails. Returns the
    exit codes of the steps that ran."""
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    codes = []
    for step in _steps():
        version = ""
        for line in github_env.read_text().splitlines():
            version = line.removeprefix("VERSION=")
        command = step.replace("${{ env.VERSION }}", version)
        command = command.replace("examples/ci/", f"{EXAMPLE}/")
        args = shlex.split(command)
        if args[0] == "python":
            monkeypatch.setattr(sys, "argv", [*args[1:], *shlex.split(train_args)])
            runpy.run_path(args[1], run_name="__main__")
            codes.append(0)
        else:
            assert args[0] == "opsloop", step
            result = CliRunner().invoke(app, args[1:])
            codes.append(result.exit_code)
            if result.exit_code:
                break
    return codes


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_ci_example_promotes_only_what_passes_the_gate(workspace, monkeypatch):
    assert [s.split()[0:3] for s in _steps()] == [
        ["python", "examples/ci/train.py", "--output"],
        ["opsloop", "gate", "run"],
        ["opsloop", "models", "alias"],
    ]
    assert _release(workspace, monkeypatch, "") == [0, 0, 0]
    registry = open_registry()
    assert registry.get_version("cancer", alias="champion").version == 1
    assert _release(workspace, monkeypatch, "--C 0.3") == [0, 0, 0]
    assert registry.get_version("cancer", alias="champion").version == 2
    weak = "--features 'mean symmetry,mean fractal dimension'"
    assert _release(workspace, monkeypatch, weak) == [0, 1]
    assert registry.get_version("cancer", alias="champion").version == 2
    actions = registry.audit("cancer")
    gates = actions[actions["action"].str.startswith("gate_")]
    assert gates[["action", "entity"]].values.tolist() == [
        ["gate_passed", "model:cancer/version:1"],
        ["gate_passed", "model:cancer/version:2"],
        ["gate_failed", "model:cancer/version:3"],
    ]
    assert "FAILED" in (workspace / "build" / "gate.html").read_text()
