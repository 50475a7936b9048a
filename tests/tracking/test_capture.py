"""Code version from git and the environment fingerprint."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from opsloop.tracking.capture import CodeVersion, Environment, capture_code_version


def git(directory, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=directory,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repository(tmp_path):
    try:
        git(tmp_path, "init", "-q", "-b", "trunk")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (tmp_path / "train.py").write_text("print(1)\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_clean_and_dirty_trees(repository):
    capture_code_version.cache_clear()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = capture_code_version(str(repository))
    assert clean == CodeVersion(head, "trunk", False, None)
    (repository / "train.py").write_text("print(2)\n")
    capture_code_version.cache_clear()
    dirty = capture_code_version(str(repository))
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--binary"], cwd=repository, capture_output=True, check=True
    ).stdout
    assert dirty == CodeVersion(head, "trunk", True, hashlib.sha256(diff).hexdigest())
    capture_code_version.cache_clear()


def test_outside_a_repository_everything_is_none(tmp_path):
    assert capture_code_version(str(tmp_path)) == CodeVersion()


def test_environment_hash_depends_on_content_not_order():
    a = Environment.from_parts("3.11.7", "Linux", ["b==1", "a==2"])
    b = Environment.from_parts("3.11.7", "Linux", ["a==2", "b==1"])
    c = Environment.from_parts("3.11.7", "Linux", ["a==2", "b==2"])
    assert a == b and a.sha256 != c.sha256
    assert a.packages == ("a==2", "b==1")
