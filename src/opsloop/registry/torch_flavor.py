"""The ``pytorch`` flavor: weights as a ``weights_only`` state dict, architecture by builder.

A PyTorch model is two things: its weights and the code of its architecture. The weights are
saved with ``torch.save(state_dict)`` and read back with ``torch.load(weights_only=True)``,
whose unpickler rebuilds only tensors, storages and plain containers and refuses every other
global, so no code from the artifact runs. (safetensors would do the same, but it is not a
dependency of this package.)

The architecture is not stored as code. A function that builds the ``nn.Module`` is
registered under a name with :func:`torch_builder`; a module it returns remembers the name
and the arguments it was called with, and the artifact records them as JSON next to the
weights. Loading looks the name up among the builders the loading process registered (by
importing the module that defines them), calls it with those arguments, loads the state dict
with ``strict=True`` and returns the module in ``eval()`` mode. The artifact can therefore
choose only among functions the loading process trusts already.

Why not the other ways to save a module, on torch 2.13:

* TorchScript (``torch.jit.script``/``trace``, ``torch.jit.save``/``load``) would carry the
  architecture in the artifact and loads without Python's pickle, but torch 2.13 deprecates
  every one of those calls (each warns "``torch.jit.* is deprecated``. Please switch to
  ``torch.compile`` or ``torch.export``"), so artifacts written with it would outlive the
  ability to read them.
* ``torch.export.save``/``load``: ``torch.export.load`` documents that it uses pickle and must
  never read untrusted data.
* ``torch.save(module)`` pickles the module's class by reference and needs
  ``weights_only=False`` to load: arbitrary code on load.

Registration checks the builder once more: it rebuilds the architecture from the recorded
JSON (on the ``meta`` device, so no memory is allocated) and refuses the model if the state
dict keys or shapes differ, so a module changed after it was built, or arguments that do not
survive JSON, fail at registration rather than at load.

>>> import torch
>>> @torch_builder("doc-mlp")
... def mlp(n_in: int, hidden: int = 4) -> torch.nn.Module:
...     return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.Linear(hidden, 1))
>>> net = mlp(3)
>>> data, loader = dump_torch(net)
>>> loader
{'builder': 'doc-mlp', 'format': 'torch-state-dict'}
>>> x = torch.ones(2, 3)
>>> torch.equal(load_torch(data)(x), net(x))
True
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import pickle
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from opsloop.errors import InvalidArgumentError
from opsloop.learn.torch_import import import_torch as import_torch_for

ARTIFACT_FORMAT = "opsloop.pytorch.state-dict/1"

_builders: dict[str, Callable[..., Any]] = {}
# Which builder call made each live module; weak, so registering never keeps a model alive.
_built: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def import_torch() -> ModuleType:
    """The ``torch`` module, or an ImportError saying how to install it.

    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(sys.modules, {"torch": None}):  # as if torch were not installed
    ...     import_torch()
    Traceback (most recent call last):
    ImportError: the pytorch model flavor needs PyTorch: pip install 'opsloop[torch]'
    >>> import_torch().ones(3).sum().item()
    3.0
    """
    return import_torch_for("the pytorch model flavor")


def is_torch_module(model: object) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` (without importing torch).

    >>> import torch
    >>> is_torch_module(torch.nn.Linear(1, 1)), is_torch_module(abs)
    (True, False)
    """
    return any(
        kind.__name__ == "Module" and kind.__module__ == "torch.nn.modules.module"
        for kind in type(model).__mro__
    )


def torch_builder(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function that builds an ``nn.Module`` under ``name`` (a decorator).

    Modules returned by the decorated function can be registered with the ``pytorch``
    flavor; loading calls the function again with the same arguments, which must survive a
    round trip through JSON (numbers, strings, booleans, None, lists, string-keyed dicts).
    A name can be registered again only by the same function (a module reloaded).

    >>> import torch
    >>> @torch_builder("doc-linear")
    ... def linear(n: int) -> torch.nn.Module:
    ...     return torch.nn.Linear(n, 1)
    >>> "doc-linear" in registered_torch_builders()
    True
    >>> torch_builder("doc-linear")(lambda n: torch.nn.Linear(n, 2))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: torch builder 'doc-linear' is already registered by...
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"torch builder name must be a non-empty string, got {name!r}")

    def register(build: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(build):
            raise TypeError(f"torch builder {name!r} must be callable, got {build!r}")
        signature = inspect.signature(build)

        @functools.wraps(build)
        def built(*args: Any, **kwargs: Any) -> Any:
            module = build(*args, **kwargs)
            if not is_torch_module(module):
                raise TypeError(
                    f"torch builder {name!r} must return a torch.nn.Module, got "
                    f"{type(module).__name__}"
                )
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _built[module] = (name, bound.args, bound.kwargs)
            return module

        known = _builders.get(name)
        if known is not None and _origin(known) != _origin(built):
            raise InvalidArgumentError(
                f"torch builder {name!r} is already registered by {_where(known)}"
            )
        _builders[name] = built
        return built

    return register


def _where(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _origin(function: Callable[..., Any]) -> tuple[str, str]:
    # The same file imported under two module names (a script also imported as a module,
    # pytest's importlib mode) defines the same builder twice: the file and the qualified
    # name say whether it is the same function, where the module's name does not.
    try:
        source = inspect.getfile(inspect.unwrap(function))
    except TypeError:  # a built-in or a callable object: its module is all there is
        source = function.__module__
    return source, function.__qualname__


def registered_torch_builders() -> tuple[str, ...]:
    """The names of the builders this process registered, sorted.

    >>> import torch
    >>> for name in ("doc-order-b", "doc-order-a"):
    ...     _ = torch_builder(name)(lambda n: torch.nn.Linear(n, 1))
    >>> [name for name in registered_torch_builders() if name.startswith("doc-order-")]
    ['doc-order-a', 'doc-order-b']
    """
    return tuple(sorted(_builders))


def _to_json(name: str, what: str, value: object) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"pytorch model: the {what} given to torch builder {name!r} must be JSON values "
            f"(numbers, strings, booleans, None, lists, string-keyed dicts): {error}"
        ) from None


def _state_shapes(state: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    return {key: (tuple(value.shape), str(value.dtype)) for key, value in state.items()}


def _rebuild(name: str, args: list, kwargs: dict) -> Any:
    build = _builders.get(name)
    if build is None:
        known = ", ".join(registered_torch_builders()) or "none"
        raise InvalidArgumentError(
            f"pytorch model: builder {name!r} is not registered in this process (registered: "
            f"{known}); import the module that defines it with @torch_builder({name!r})"
        )
    return build(*args, **kwargs)


def _check_rebuilds(name: str, args: list, kwargs: dict, state: dict) -> None:
    torch = import_torch()
    try:
        with torch.device("meta"):
            twin = _rebuild(name, args, kwargs)
    except (RuntimeError, NotImplementedError):
        # A builder that computes on its weights (data-dependent init) cannot run on meta.
        twin = _rebuild(name, args, kwargs)
    expected, found = _state_shapes(state), _state_shapes(twin.state_dict())
    if expected != found:
        # In load_state_dict's words: what the rebuilt module lacks, and what it has extra.
        missing = sorted(set(found) - set(expected))
        unexpected = sorted(set(expected) - set(found))
        changed = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise InvalidArgumentError(
            f"pytorch model: builder {name!r} with the recorded arguments builds a different "
            f"architecture (missing {missing}, unexpected {unexpected}, other shape or dtype "
            f"{changed}); was the module changed after it was built?"
        )


def dump_torch(module: object) -> tuple[bytes, dict[str, Any]]:
    """The artifact bytes of a module made by a :func:`torch_builder`, and its loader record.

    >>> import torch
    >>> dump_torch(torch.nn.Linear(2, 1))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: pytorch model: this Linear was not made by a registered...
    """
    torch = import_torch()
    if not is_torch_module(module):
        raise TypeError(f"pytorch flavor needs a torch.nn.Module, got {type(module).__name__}")
    spec = _built.get(module)
    if spec is None:
        raise InvalidArgumentError(
            f"pytorch model: this {type(module).__name__} was not made by a registered builder; "
            "build it with a function decorated with @opsloop.registry.torch_builder(name)"
        )
    name, args, kwargs = spec
    args_json, kwargs_json = (
        _to_json(name, "arguments", list(args)),
        _to_json(name, "keyword arguments", kwargs),
    )
    state = {key: value.detach() for key, value in module.state_dict().items()}  # type: ignore[attr-defined]
    _check_rebuilds(name, json.loads(args_json), json.loads(kwargs_json), state)
    buffer = io.BytesIO()
    torch.save(
        {
            "format": ARTIFACT_FORMAT,
            "builder": name,
            "args": args_json,
            "kwargs": kwargs_json,
            "state_dict": state,
        },
        buffer,
    )
    return buffer.getvalue(), {"builder": name, "format": "torch-state-dict"}


def load_torch(data: bytes) -> Any:
    """Rebuild the module from verified artifact bytes, in ``eval()`` mode, on the CPU.

    >>> load_torch(b"PK\\x03\\x04 not a zip")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: pytorch model: the artifact is not a torch.save archive...
    """
    torch = import_torch()
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        # torch's first paragraph suggests weights_only=False; the reason is the second one.
        paragraphs = [part.strip() for part in str(error).split("\n\n") if part.strip()]
        reason = paragraphs[1] if len(paragraphs) > 1 else type(error).__name__
        raise InvalidArgumentError(
            f"pytorch model: torch.load(weights_only=True) refused the artifact: {reason}"
        ) from None
    except (RuntimeError, EOFError) as error:
        first = str(error).split(". ")[0] or type(error).__name__
        raise InvalidArgumentError(
            f"pytorch model: the artifact is not a torch.save archive: {first}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InvalidArgumentError(
            f"pytorch model: artifact format must be {ARTIFACT_FORMAT!r}, got {found!r}"
        )
    module = _rebuild(
        payload["builder"], json.loads(payload["args"]), json.loads(payload["kwargs"])
    )
    module.load_state_dict(payload["state_dict"], strict=True)
    return module.eval()
