"""opsloop: close the loop of machine learning in production.

Layers (lower never imports higher): ``data``, ``detect``, ``analysis``, ``learn`` (compute);
``reports``; ``store``, ``tracking``, ``registry`` (state); ``serving``, ``monitoring``
(runtime); ``server``, ``ui``, ``cli`` (surfaces). ``datasets`` generates the data the rest
is tested and demonstrated on.

The tracking API is available at the top level, imported on first use so that
``import opsloop`` stays light:

>>> import subprocess, sys
>>> imports = "import opsloop, sys; print('opsloop.tracking' in sys.modules)"
>>> subprocess.run([sys.executable, "-c", imports], capture_output=True, text=True).stdout.split()
['False']
>>> import opsloop
>>> from opsloop.tracking import start_run
>>> opsloop.start_run is start_run
True
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "start_run": "opsloop.tracking",
    "get_run": "opsloop.tracking",
    "search_runs": "opsloop.tracking",
    "compare_runs": "opsloop.tracking",
    "ModelRegistry": "opsloop.registry",
    "open_registry": "opsloop.registry",
    "open_deployments": "opsloop.serving",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
