"""What a run captures about itself: the code version, the environment and the command line.

The code version is read from git in the working directory: the commit, the branch, whether
the tree has uncommitted changes and the sha256 of ``git diff HEAD`` (so two dirty runs on
the same commit can be told apart). Outside a repository, or without git, every field is
``None``. The environment is the Python version, the platform and the sorted list of
installed distributions, identified by the sha256 of that content so it is stored once.
Both are computed once per process: they do not change while it runs.

>>> env = capture_environment()
>>> env.python_version.count(".") == 2 and len(env.sha256) == 64
True
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class CodeVersion:
    """The git state of the code a run executed (all ``None`` outside a repository).

    >>> CodeVersion("ab" * 20, "main", False, None).to_dict()["branch"]
    'main'
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_sha256: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> CodeVersion().to_dict()
        {'commit': None, 'branch': None, 'dirty': None, 'diff_sha256': None}
        """
        return asdict(self)


@dataclass(frozen=True)
class Environment:
    """Python version, platform and installed packages (``name==version``, sorted).

    >>> e = Environment.from_parts("3.11.7", "Linux", ("numpy==2.4.0",))
    >>> e.sha256[:8], e.to_dict()["packages"]
    ('136b83d9', ['numpy==2.4.0'])
    """

    python_version: str
    platform: str
    packages: tuple[str, ...]
    sha256: str

    @classmethod
    def from_parts(cls, python_version: str, platform: str, packages) -> Environment:
        """Build an environment and compute its content hash.

        >>> Environment.from_parts("3.12.0", "x", []).packages
        ()
        """
        packages = tuple(sorted(packages))
        document = json.dumps([python_version, platform, list(packages)], separators=(",", ":"))
        return cls(
            python_version, platform, packages, hashlib.sha256(document.encode()).hexdigest()
        )

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> sorted(Environment.from_parts("3", "p", []).to_dict())
        ['packages', 'platform', 'python_version', 'sha256']
        """
        return {
            "python_version": self.python_version,
            "platform": self.platform,
            "packages": list(self.packages),
            "sha256": self.sha256,
        }


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=directory,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


@functools.lru_cache(maxsize=8)
def capture_code_version(directory: str | None = None) -> CodeVersion:
    """The git commit, branch, dirty flag and diff hash of ``directory`` (default: cwd).

    >>> capture_code_version(tmp_path)
    CodeVersion(commit=None, branch=None, dirty=None, diff_sha256=None)
    """
    where = Path(directory or os.getcwd())
    commit = _git(where, "rev-parse", "HEAD")
    if commit is None:
        return CodeVersion()
    branch = (_git(where, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    status = _git(where, "status", "--porcelain", "--untracked-files=no") or ""
    dirty = bool(status.strip())
    diff_sha256 = None
    if dirty:
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--binary"], cwd=where, capture_output=True, check=False
        ).stdout
        diff_sha256 = hashlib.sha256(diff).hexdigest()
    return CodeVersion(commit.strip(), branch, dirty, diff_sha256)


@functools.lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """This interpreter's version, the platform and every installed distribution.

    >>> any(p.startswith("numpy==") for p in capture_environment().packages)
    True
    """
    packages = {
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return Environment.from_parts(platform.python_version(), platform.platform(), packages)


def capture_command_line() -> str:
    """The process's command line, quoted so that it can be pasted into a shell.

    >>> import shlex
    >>> from unittest import mock
    >>> with mock.patch.object(sys, "argv", ["train.py", "--name", "two words"]):
    ...     line = capture_command_line()
    >>> line.endswith("train.py --name 'two words'"), shlex.split(line)[1:]
    (True, ['train.py', '--name', 'two words'])
    """
    return shlex.join([sys.executable, *sys.argv])


def current_user() -> str:
    """The OS user name: the identity of embedded use.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"LOGNAME": "ana"}):  # the first name getpass reads
    ...     current_user()
    'ana'
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
