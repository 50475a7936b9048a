"""The docstring examples under ``src/opsloop`` run behaviour, so each one can fail.

An example that prints a function's name or docstring, asks ``callable``/``hasattr``, or
checks only the type of a result passes whatever the code does. This test finds such
examples, and examples that build their own temporary store folder with
``tempfile.mkdtemp()`` (never removed; ``src/conftest.py`` gives every example a fresh
``tmp_path``, ``db``, ``registry``, ``tracking`` and ``server_url`` instead).
"""

from __future__ import annotations

import ast
import doctest
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "opsloop"

#: What an example must not do, each with the reason given when one does.
FORBIDDEN: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\.__(name|qualname|doc|module|mro)__\b"),
        "prints a name, docstring or class hierarchy back: it cannot fail",
    ),
    (re.compile(r"\bcallable\("), "asks callable(): true of any function, right or wrong"),
    (re.compile(r"\bhasattr\("), "asks hasattr(): says nothing of what the attribute does"),
    (
        re.compile(r"\bisinstance\(.+,\s*\(?(bool|str|int|float|bytes|tuple|list|dict)\)?\)\s*$"),
        "checks only the type of a result, not its value",
    ),
    (
        re.compile(r"\btempfile\.mkdtemp\("),
        "makes a folder that is never removed: use tmp_path from src/conftest.py",
    ),
)

#: Files another change rewrites, each with why it is left for now. An entry must still
#: name a file with an offending example, so it is removed once that file is clean.
PENDING: dict[str, str] = {}


def _docstrings(tree: ast.Module):
    """``(name, first line, text)`` of the module's, its classes' and functions' docstrings."""
    nodes = [tree, *ast.walk(tree)]
    seen: set[int] = set()
    for node in nodes:
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if not isinstance(node, kinds) or id(node) in seen:
            continue
        seen.add(id(node))
        text = ast.get_docstring(node, clean=False)
        if text:
            yield getattr(node, "name", "<module>"), node.body[0].lineno, text


def offences(text: str) -> list[tuple[int, str, str]]:
    """``(line within text, example source, reason)`` for every forbidden example in ``text``.

    >>> offences(">>> HttpModelRegistry.alias_at.__name__\\n'alias_at'\\n")[0][2]
    'prints a name, docstring or class hierarchy back: it cannot fail'
    >>> offences(">>> registry.alias_at('m', 'prod', 0)\\n")
    []
    """
    found = []
    for example in doctest.DocTestParser().get_examples(text):
        for line in example.source.splitlines():
            for pattern, reason in FORBIDDEN:
                if pattern.search(line):
                    found.append((example.lineno, line.strip(), reason))
    return found


def file_offences(path: Path) -> list[str]:
    """Every forbidden example of the file at ``path``, as ``path:line: source (reason)``."""
    text = path.read_text(encoding="utf-8")
    found = []
    for name, first_line, docstring in _docstrings(ast.parse(text)):
        for line, source, reason in offences(docstring):
            where = f"{path.relative_to(SOURCE.parent)}:{first_line + line}"
            found.append(f"{where} [{name}]: {source}  ({reason})")
    return found


@pytest.mark.parametrize(
    ("example", "flagged"),
    [
        (">>> HttpModelRegistry.alias_at.__name__\n'alias_at'\n", True),
        (">>> caller.__doc__.split()[1]\n'user'\n", True),
        (">>> type(open_registry()).__name__\n'ModelRegistry'\n", True),
        (">>> DriftReport.__mro__[1]\n", True),
        (">>> callable(opsloop.start_run)\nTrue\n", True),
        (">>> hasattr(run, 'log_metric')\nTrue\n", True),
        (">>> isinstance(current_user(), str)\nTrue\n", True),
        (">>> store = ArtifactStore(tempfile.mkdtemp())\n", True),
        (">>> remote.alias_at('churn', 'champion', 0)\n", False),
        (">>> isinstance(restored, PageHinkley), restored.n_seen\n(True, 301)\n", False),
        ("A prose mention of __name__ is not an example.\n", False),
    ],
)
def test_the_check_tells_examples_that_cannot_fail_from_those_that_can(example, flagged):
    assert bool(offences(example)) is flagged


def test_no_docstring_example_in_the_package_cannot_fail():
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.relative_to(SOURCE).as_posix() not in PENDING:
            found.extend(file_offences(path))
    assert not found, "examples that cannot fail:\n" + "\n".join(found)


def test_each_pending_file_still_needs_its_exception():
    for relative in sorted(PENDING):
        path = SOURCE / relative
        assert path.is_file(), f"{relative} is gone: remove it from PENDING"
        assert file_offences(path), f"{relative} has no forbidden example: remove it from PENDING"
