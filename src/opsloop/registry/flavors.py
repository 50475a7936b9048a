"""How a model becomes bytes and back, per flavor: sklearn, onnx, pytorch, python.

* ``sklearn``: saved with skops, which stores the object tree without pickle. The types skops
  does not trust by default (for example ``sklearn.tree._tree.Tree``) are listed at
  registration for information; loading judges the file's own types against the fixed
  allow-list of :mod:`.model_trust`, never against a list taken from the file.
* ``onnx``: the serialized ONNX model bytes (an ``onnx.ModelProto`` or bytes); loading hands
  back the verified bytes, ready for ``onnxruntime.InferenceSession``.
* ``python``: any picklable callable, saved with pickle. Pickle runs any code it holds when
  loaded, so loading one needs ``trust=True`` from the loading user (:mod:`.model_trust`).

* ``pytorch``: a ``torch.nn.Module`` made by a function registered with
  :func:`~opsloop.registry.torch_flavor.torch_builder`; the state dict is saved with
  ``torch.save`` and read with ``torch.load(weights_only=True)``, the architecture is rebuilt
  by that builder from arguments recorded as JSON, so loading runs no code from the artifact
  (:mod:`.torch_flavor` explains the choice). torch stays optional: it is imported only when
  a pytorch model is saved or loaded.

>>> from sklearn.linear_model import LinearRegression
>>> import numpy as np
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0]))
>>> data, loader = dump_model(model, "sklearn")
>>> load_model_bytes(data, "sklearn", loader).predict(np.array([[2.0]])).round(6).tolist()
[5.0]
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable
from typing import Any

from opsloop.errors import InvalidArgumentError
from opsloop.learn.skops_import import import_skops_io
from opsloop.registry.model_trust import refuse_pickle, skops_types_to_trust
from opsloop.registry.torch_flavor import dump_torch, is_torch_module, load_torch
from opsloop.registry.tree_structure import tree_problem

FLAVORS = ("sklearn", "onnx", "pytorch", "python")

#: Flavors whose loading runs code from the artifact: registering one on a server needs the
#: admin's consent, loading one needs the loading user's ``trust``.
CODE_FLAVORS = frozenset({"python"})


class CorruptModelError(InvalidArgumentError):
    """The artifact's bytes are not a readable file of its flavor's format."""


def infer_flavor(model: object) -> str:
    """The flavor a model object is saved with.

    >>> from sklearn.dummy import DummyClassifier
    >>> infer_flavor(DummyClassifier()), infer_flavor(len), infer_flavor(b"onnx bytes")
    ('sklearn', 'python', 'onnx')
    """
    module = type(model).__module__ or ""
    if module.startswith("sklearn") or (hasattr(model, "fit") and hasattr(model, "get_params")):
        return "sklearn"
    if isinstance(model, bytes | bytearray) or module.startswith("onnx"):
        return "onnx"
    # Before the callable test: a Module is callable, and must never fall through to pickle.
    if is_torch_module(model):
        return "pytorch"
    if callable(model):
        return "python"
    raise TypeError(
        f"cannot tell how to save a {type(model).__name__}: pass flavor= one of "
        f"{', '.join(FLAVORS)}"
    )


def dump_model(model: object, flavor: str) -> tuple[bytes, dict[str, Any]]:
    """Serialize ``model``; return the bytes and what loading needs (the ``loader`` record).

    >>> dump_model(len, "python")[1]
    {'format': 'pickle'}
    """
    if flavor == "sklearn":
        skops_io = import_skops_io()

        data = skops_io.dumps(model)
        return data, skops_loader(data)
    if flavor == "onnx":
        if isinstance(model, bytes | bytearray):
            return bytes(model), {"format": "onnx"}
        if hasattr(model, "SerializeToString"):
            return model.SerializeToString(), {"format": "onnx"}
        raise TypeError(
            f"onnx flavor needs bytes or an onnx.ModelProto, got {type(model).__name__}"
        )
    if flavor == "pytorch":
        return dump_torch(model)
    if flavor == "python":
        if not callable(model):
            raise TypeError(f"python flavor needs a callable, got {type(model).__name__}")
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), {"format": "pickle"}
    raise InvalidArgumentError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}")


def skops_loader(data: bytes) -> dict[str, Any]:
    """The loader record of a skops artifact: its format and, for information, the types it
    names beyond skops' defaults (loading never trusts them because they are recorded).

    >>> import numpy as np, skops.io
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> tree = DecisionTreeRegressor().fit(np.array([[0.0], [1.0]]), [0.0, 1.0])
    >>> skops_loader(skops.io.dumps(tree))
    {'format': 'skops', 'types': ['sklearn.tree._tree.Tree']}
    """
    skops_io = import_skops_io()

    try:
        types = skops_io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as error:
        raise CorruptModelError(f"the artifact is not a readable skops file ({error})") from None
    return {"format": "skops", "types": types}


def load_model_bytes(
    data: bytes,
    flavor: str,
    loader: dict[str, Any],
    *,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    source: str = "the model",
    registered_by: str | None = None,
) -> object:
    """Rebuild a model from bytes whose hash the caller has already verified.

    The registry calls this after checking the artifact against the sha256 it recorded. What
    may run code is refused unless the loading user says otherwise (:mod:`.model_trust`):
    a pickle needs ``trust``; a skops file's types beyond the allow-list need
    ``trusted_types`` naming them, or ``trust``. ``source`` and ``registered_by`` name the
    model and its author in a refusal. The ``loader`` record (what registration noted) is
    never a source of trust.

    >>> load_model_bytes(b"\\x08\\x07", "onnx", {"format": "onnx"})
    b'\\x08\\x07'
    >>> load_model_bytes(pickle.dumps(abs), "python", {"format": "pickle"}, source="models:/m/1")
    Traceback (most recent call last):
    ...
    opsloop.registry.model_trust.UntrustedModelError: models:/m/1 is a pickle ...
    """
    if flavor == "sklearn":
        skops_io = import_skops_io()

        try:
            types = skops_types_to_trust(
                data,
                trusted_types=trusted_types,
                trust=trust,
                source=source,
                registered_by=registered_by,
            )
            model = skops_io.loads(data, trusted=types)
        except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as error:
            raise CorruptModelError(
                f"{source}: the artifact is not a readable skops file ({error})"
            ) from None
        # Trees are on the allow-list only because their node arrays are checked here:
        # scikit-learn's compiled code follows them without bounds checks.
        problem = tree_problem(model)
        if problem:
            raise CorruptModelError(f"{source}: not loaded, {problem}")
        return model
    if flavor == "onnx":
        return data
    if flavor == "pytorch":
        # The artifact itself names its builder, so the loader record is not needed here.
        return load_torch(data)
    if flavor == "python":
        refuse_pickle(source, registered_by, trust)
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, EOFError) as error:
            raise CorruptModelError(
                f"{source}: the artifact is not a readable pickle ({error})"
            ) from None
    raise InvalidArgumentError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}")
