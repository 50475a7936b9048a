"""The README's Python examples run, in order, as a newcomer would paste them."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    # The examples point OPSLOOP_HOME at a temporary folder; restore it afterwards.
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "drift.html").stat().st_size > 100_000
    assert namespace["report"].drifted  # the salary shift is found


def test_readme_shows_the_two_commands_first():
    head = README.read_text()[:1200]
    assert "make demo" in head and "make test" in head
