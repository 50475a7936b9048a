"""How a model becomes bytes and back, per flavor: sklearn, onnx, pytorch, python.

* ``sklearn``: saved with skops, which stores the object tree without pickle. The types skops
  cannot vouch for (for example ``sklearn.tree._tree.Tree``) are listed at registration and
  recorded with the version; loading trusts exactly that recorded list, nothing wider.
* ``onnx``: the serialized ONNX model bytes (an ``onnx.ModelProto`` or bytes); loading hands
  back the verified bytes, ready for ``onnxruntime.InferenceSession``.
* ``python``: any picklable callable, saved with pickle. Pickle runs code when loaded, so the
  registry deserialises it only from an artifact whose sha256 it recorded itself.

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
from typing import Any

from opsloop.registry.torch_flavor import dump_torch, is_torch_module, load_torch

FLAVORS = ("sklearn", "onnx", "pytorch", "python")


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
        import skops.io

        data = skops.io.dumps(model)
        return data, {"format": "skops", "trusted_types": skops.io.get_untrusted_types(data=data)}
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
    raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}")


def load_model_bytes(data: bytes, flavor: str, loader: dict[str, Any]) -> object:
    """Rebuild a model from bytes whose hash the caller has already verified.

    Only the registry calls this, after checking the artifact against the sha256 it recorded;
    for ``sklearn`` only the types recorded at registration are trusted.

    >>> load_model_bytes(b"\\x08\\x07", "onnx", {"format": "onnx"})
    b'\\x08\\x07'
    """
    if flavor == "sklearn":
        import skops.io

        return skops.io.loads(data, trusted=list(loader.get("trusted_types", [])))
    if flavor == "onnx":
        return data
    if flavor == "pytorch":
        # The artifact itself names its builder, so the loader record is not needed here.
        return load_torch(data)
    if flavor == "python":
        return pickle.loads(data)
    raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}")
