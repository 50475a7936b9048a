"""Which saved models may be loaded without the loading user's say-so.

A sha256 proves that the bytes are the uploader's, not that they are safe. Two formats can
run code while they load:

* **pickle** (the ``python`` flavor, joblib and cloudpickle files): any code at all. Such a
  model loads only when the loading user passes ``trust=True`` (``--trust``), and the refusal
  names the person who registered it, so the user decides whom they trust.
* **skops** (the ``sklearn`` flavor) stores an object tree without pickle, but a node may name
  any importable type or function, and loading calls it. skops trusts a small set by
  default; everything else a file names is judged here against a fixed allow-list kept in this
  module, never against a list taken from the file (or recorded from it at registration):

  - scikit-learn classes (outside its test modules);
  - numpy's ``dtype`` classes;
  - scipy's sparse matrix and array classes;
  - opsloop's own estimators (subclasses of scikit-learn's ``BaseEstimator``).

  scikit-learn's trees (``sklearn.tree._tree.Tree``, the histogram boosting's
  ``TreePredictor``) are on it although skops itself does not trust them: their node arrays
  are indices that scikit-learn's compiled code follows unchecked, so every loaded model's
  trees are checked before it is handed back (:mod:`.tree_structure`).

  Functions are not on the list, even scikit-learn's, numpy's or scipy's: a function stored in
  a model (a ``FunctionTransformer``'s ``func``) is called with data the file chooses, and
  numpy alone holds functions that run a string as code. Classes are constructed only through
  their own constructors and ``__setstate__``, which in these libraries store values. The
  loading user extends the list explicitly (``trusted_types=``, ``--trust-type``), or trusts
  the whole file with ``trust=True``.

Safe formats need nothing: ONNX (the bytes are handed back for ``onnxruntime``), and PyTorch
state dicts read with ``torch.load(weights_only=True)``.

>>> allowed_type("sklearn.tree._tree.Tree"), allowed_type("os.system")
(True, False)
>>> allowed_type("numpy.testing._private.utils.runstring")  # a function: never by default
False
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

from opsloop.errors import DeniedError
from opsloop.learn.skops_import import import_skops_io

#: Packages whose types the allow-list may admit; a name outside them is never imported.
ALLOWED_PACKAGES = ("sklearn", "numpy", "scipy", "opsloop")

# Module path parts that hold test fixtures rather than model parts.
_TEST_MODULE_PARTS = frozenset({"tests", "testing", "_testing"})


class UntrustedModelError(DeniedError, PermissionError):
    """A model would run code its loading user did not choose to trust.

    >>> str(UntrustedModelError("models:/m/1 is a pickle"))
    'models:/m/1 is a pickle'
    """


def _resolve(name: str) -> object | None:
    """The object ``name`` (``module.attribute``) names, importing only allowed packages."""
    module_name, _, attribute = name.rpartition(".")
    if module_name.partition(".")[0] not in ALLOWED_PACKAGES or not attribute:
        return None
    if _TEST_MODULE_PARTS.intersection(module_name.split(".")):
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, attribute, None)


def allowed_type(name: str) -> bool:
    """Whether a type that a skops file names is on the fixed allow-list.

    >>> allowed_type("numpy.dtype"), allowed_type("scipy.sparse.csr_matrix")
    (True, True)
    >>> allowed_type("sklearn.base.clone")  # a function, even scikit-learn's
    False
    >>> allowed_type("opsloop.store.database.Database")  # opsloop, but not an estimator
    False
    """
    found = _resolve(name)
    if not inspect.isclass(found):
        return False
    package = name.partition(".")[0]
    if package == "sklearn":
        return True
    if package == "numpy":
        import numpy as np

        return found is np.dtype or found.__module__ == "numpy.dtypes"
    if package == "scipy":
        import scipy.sparse

        return issubclass(found, scipy.sparse.sparray | scipy.sparse.spmatrix)
    from sklearn.base import BaseEstimator

    return issubclass(found, BaseEstimator)


def skops_types_to_trust(
    data: bytes,
    *,
    trusted_types: Iterable[str] = (),
    trust: bool = False,
    source: str = "the model",
    registered_by: str | None = None,
) -> list[str]:
    """The types to pass to ``skops.io.loads`` for ``data``, or an :class:`UntrustedModelError`.

    Every type the file names beyond skops' defaults must be on the allow-list, be named in
    ``trusted_types``, or ``trust`` must be given; otherwise nothing is loaded and the error
    names the types, the model and who registered it.

    >>> import numpy as np, skops.io
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> tree = DecisionTreeClassifier().fit(np.array([[0.0], [1.0]]), [0, 1])
    >>> skops_types_to_trust(skops.io.dumps(tree))
    ['sklearn.tree._tree.Tree']
    """
    skops_io = import_skops_io()

    named = skops_io.get_untrusted_types(data=data)
    chosen = set(trusted_types)
    beyond = [name for name in named if name not in chosen and not allowed_type(name)]
    if beyond and not trust:
        who = f", registered by {registered_by!r}," if registered_by else ""
        raise UntrustedModelError(
            f"{source}{who} names types that are not on opsloop's allow-list for skops and "
            f"could run code when loaded: {', '.join(beyond)}. Load it only if you trust "
            "them: name them in trusted_types= (--trust-type) or pass trust=True (--trust)"
        )
    return list(named)


def refuse_pickle(source: str, registered_by: str | None, trust: bool) -> None:
    """Raise :class:`UntrustedModelError` unless the loading user trusts a pickled model.

    >>> refuse_pickle("models:/m/1", "eve", trust=True)
    >>> refuse_pickle("models:/m/1", "eve", trust=False)
    Traceback (most recent call last):
    ...
    opsloop.registry.model_trust.UntrustedModelError: models:/m/1 is a pickle ...by 'eve'; ...
    """
    if trust:
        return
    who = f", registered by {registered_by!r}" if registered_by else ""
    whom = repr(registered_by) if registered_by else "its author"
    raise UntrustedModelError(
        f"{source} is a pickle (flavor 'python'){who}; loading it runs whatever code it "
        f"holds. Load it only if you trust {whom}: pass trust=True (--trust)"
    )
