"""Import ``skops.io`` without importing PyTorch, Dask or CuPy along with it.

``import skops.io`` computes skops' default trusted types with scikit-learn's
``all_estimators()``, which walks every scikit-learn package with ``pkgutil.walk_packages``.
The walk imports each package to look inside it, including the array-API wrappers vendored
under ``sklearn.externals.array_api_compat``; their ``torch`` wrapper imports torch (1.5 CPU
seconds here, half of loading a small model from the command line), and their ``dask`` and
``cupy`` wrappers import those libraries when installed. ``all_estimators()`` then drops
everything under ``externals``, so the wrappers contribute no type: skipping them leaves
skops' trusted types unchanged.

:func:`import_skops_io` therefore refuses those wrapper packages, and nothing else, to the
importing thread while skops is first imported (a refused package is one
``pkgutil.walk_packages`` passes over). Other threads import as usual, the refusal ends with
the import, and a process that already imported a wrapper keeps it.

>>> skops_io = import_skops_io()
>>> import sys
>>> skops_io is sys.modules["skops.io"]
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from types import ModuleType

#: The vendored array-API wrappers whose import would import their array library.
ARRAY_LIBRARY_WRAPPERS = frozenset(
    f"sklearn.externals.array_api_compat.{library}" for library in ("torch", "dask", "cupy")
)

_first_import = threading.Lock()


class _SkipArrayLibraryWrappers(importlib.abc.MetaPathFinder):
    """Refuses :data:`ARRAY_LIBRARY_WRAPPERS` to one thread; finds nothing itself."""

    def __init__(self, thread: int) -> None:
        self.thread = thread

    def find_spec(self, name, path=None, target=None):
        if name in ARRAY_LIBRARY_WRAPPERS and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{name} is skipped while skops.io loads", name=name)
        return None


def import_skops_io() -> ModuleType:
    """The ``skops.io`` module, imported without the array libraries scikit-learn's package
    walk would import (see the module's docstring).

    >>> skops_io = import_skops_io()
    >>> skops_io.loads(skops_io.dumps([1.5, "a"]))
    [1.5, 'a']
    """
    if "skops.io" in sys.modules:
        # through the import system, which waits for another thread still importing it
        return importlib.import_module("skops.io")
    with _first_import:
        skip = _SkipArrayLibraryWrappers(threading.get_ident())
        sys.meta_path.insert(0, skip)
        try:
            return importlib.import_module("skops.io")
        finally:
            sys.meta_path.remove(skip)
