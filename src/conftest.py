"""What the docstring examples under ``src/opsloop`` find ready, so each example shows the
call it documents rather than the same store setup again.

Every example runs with its own ``OPSLOOP_HOME`` (an empty folder) and no store, server or
token taken from the environment, so :func:`opsloop.start_run`, :func:`open_registry` and the
like use a fresh local store. An example that uses one of these names gets it fresh:

``tmp_path``
    an empty folder (a :class:`pathlib.Path`), removed by pytest later.
``db``
    an empty in-memory SQLite store: ``Database("sqlite://")``.
``artifacts``
    an empty artifact store in a folder: ``ArtifactStore(tmp_path / "artifacts")``.
``registry``
    ``ModelRegistry(db, artifacts)``, acting as the OS user.
``tracking``
    ``LocalTrackingStore(db, artifacts)``, the same store as ``registry``.
``server_url``
    the URL of a real opsloop server on loopback serving ``db`` and ``artifacts`` (no users:
    the server acts as the OS user), stopped after the example.

This file lives outside the package, so the wheel does not ship it.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

_PROVIDED = ("tmp_path", "db", "artifacts", "registry", "tracking", "server_url")
_SOURCES = Path(__file__).resolve().parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Import the package of a module named on the command line the usual way before
    pytest imports the module from its file.

    Otherwise, with ``--import-mode=importlib``, pytest imports the package from its
    ``__init__.py`` first, which imports the module (``opsloop.monitoring`` imports
    ``.policy``), and then executes the file again as a second module of the same name:
    code bound to the first (``evaluation``'s ``Policy``) and code importing it later (a
    test's ``Policy``) would hold different classes. Once the package is imported, pytest
    takes the module from ``sys.modules``.
    """
    if file_path.suffix != ".py" or _SOURCES not in file_path.resolve().parents:
        return
    package = file_path.resolve().parent.relative_to(_SOURCES).parts
    if package and all(part.isidentifier() for part in package):
        # A package that fails to import is reported when pytest imports the module.
        with contextlib.suppress(ImportError):
            importlib.import_module(".".join(package))


def _names_used(item: pytest.Item) -> set[str]:
    """The provided names that ``item``'s examples mention (so an example that needs no
    store does not pay for one)."""
    dtest = getattr(item, "dtest", None)
    if dtest is None:
        return set()
    source = "\n".join(example.source for example in dtest.examples)
    return {name for name in _PROVIDED if re.search(rf"\b{name}\b", source)}


@pytest.fixture(autouse=True)
def doctest_stores(
    request: pytest.FixtureRequest,
    doctest_namespace: dict[str, object],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for variable in (
        "OPSLOOP_STORE_URI",
        "OPSLOOP_TRACKING_URI",
        "OPSLOOP_ARTIFACT_URI",
        "OPSLOOP_TRACKING_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    used = _names_used(request.node)
    if used & {"db", "artifacts", "registry", "tracking", "server_url"}:
        used |= {"db", "artifacts"}
    provided: dict[str, object] = {}
    if "tmp_path" in used:
        provided["tmp_path"] = tmp_path
    database = None
    if "db" in used:
        from opsloop.store import ArtifactStore, Database

        database = Database("sqlite://")
        provided["db"] = database
        provided["artifacts"] = ArtifactStore(tmp_path / "artifacts")
    if "registry" in used:
        from opsloop.registry import ModelRegistry

        provided["registry"] = ModelRegistry(database, provided["artifacts"])
    if "tracking" in used:
        from opsloop.tracking.local_store import LocalTrackingStore

        provided["tracking"] = LocalTrackingStore(database, provided["artifacts"])
    # The namespace dict lives for the whole session: names are set for this example only.
    doctest_namespace.update(provided)
    try:
        if "server_url" in used:
            from tests.server.running import running_server

            from opsloop.server import create_app

            app = create_app(database, provided["artifacts"])
            with running_server(app) as url:
                doctest_namespace["server_url"] = url
                yield
        else:
            yield
    finally:
        for name in (*provided, "server_url"):
            doctest_namespace.pop(name, None)
        if database is not None:
            database.dispose()
