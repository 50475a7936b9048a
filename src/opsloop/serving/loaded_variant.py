"""One variant's model version, loaded through the registry and ready to answer.

:func:`load_variant` reads the version's record (flavor and signature) and loads the model
with :meth:`~opsloop.registry.ModelRegistry.load`, which checks the artifact against its
sha256 before anything is deserialised and applies the registry's trust rules
(:mod:`opsloop.registry.model_trust`): a pickle (flavor ``python``) loads only when the
serving user passed ``trust``, a skops file only with types on the allow-list or named in
``trusted_types``. A refusal is an :class:`~opsloop.registry.model_trust.UntrustedModelError`
and nothing is executed.

The runtime serves the ``sklearn`` flavor (anything with ``predict``, and ``predict_proba``
where the model has it) and the ``python`` flavor (a callable given the frame). ONNX and
PyTorch versions are refused with a clear error: their serving is not written yet.

>>> import tempfile
>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> _ = registry.register("m", LogisticRegression().fit(X, [0, 0, 1, 1]), input_schema=X)
>>> loaded = load_variant(registry, "stable", "primary", "m", 1)
>>> answer = loaded.predict(pd.DataFrame({"x": [0.0, 3.0]}))
>>> answer.predictions, answer.classes
([0, 1], [0, 1])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError
from opsloop.registry.model_registry import ModelRegistry
from opsloop.serving.record_validation import CheckedRecords, RecordCheck

#: Flavors the runtime can answer with.
SERVED_FLAVORS = ("sklearn", "python")


class UnservableModelError(InvalidArgumentError):
    """A model version the runtime cannot answer with (its flavor is not served yet)."""


@dataclass(frozen=True)
class VariantAnswer:
    """What a model answered for a frame: one prediction per row and, where the model has
    ``predict_proba``, one probability per class per row (classes in ``classes`` order).

    >>> VariantAnswer([1, 0], [[0.2, 0.8], [0.9, 0.1]], [0, 1]).to_dict()["predictions"]
    [1, 0]
    """

    predictions: list
    probabilities: list[list[float]] | None = None
    classes: list | None = None

    def to_dict(self) -> dict[str, Any]:
        """The answer as a JSON-safe dictionary.

        >>> VariantAnswer([2.5]).to_dict()
        {'predictions': [2.5], 'probabilities': None, 'classes': None}
        """
        return {
            "predictions": self.predictions,
            "probabilities": self.probabilities,
            "classes": self.classes,
        }


def _plain(values: object) -> list:
    """A model's output as plain Python values (numpy scalars do not go to JSON)."""
    array = np.asarray(values)
    if array.dtype.kind in "OUS":
        return [v.item() if isinstance(v, np.generic) else v for v in array.tolist()]
    return array.tolist()


@dataclass(frozen=True)
class LoadedVariant:
    """A deployment variant with its model loaded: names, the version served, its input
    schema (``None`` when registered without one) and the model object.

    >>> LoadedVariant("s", "primary", "m", 1, "python", None, abs).ref
    'm/1'
    """

    name: str
    role: str
    model_name: str
    version: int
    flavor: str
    schema: Schema | None
    model: Any
    #: The signature's record check, compiled once per loaded version.
    check: RecordCheck = field(init=False, repr=False, compare=False)
    # Whether the model is given the checked float matrix itself rather than a frame: a
    # scikit-learn estimator fitted without column names converts a frame to that very
    # matrix, at several times the cost; one fitted on a frame keeps getting a frame.
    _takes_matrix: bool = field(init=False, repr=False, compare=False)
    # Whether the predictions are the argmax of the probabilities by the model's own
    # definition, so one call answers both (see ``_predicts_by_probabilities``).
    _by_probabilities: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", RecordCheck(self.schema))
        sklearn = self.flavor == "sklearn"
        takes_matrix = sklearn and _is_estimator(self.model)
        takes_matrix = takes_matrix and getattr(self.model, "feature_names_in_", None) is None
        object.__setattr__(self, "_takes_matrix", takes_matrix)
        object.__setattr__(
            self, "_by_probabilities", sklearn and _predicts_by_probabilities(self.model)
        )

    @property
    def ref(self) -> str:
        """``MODEL/VERSION``."""
        return f"{self.model_name}/{self.version}"

    @property
    def has_probabilities(self) -> bool:
        """Whether answers carry class probabilities.

        >>> LoadedVariant("s", "primary", "m", 1, "python", None, abs).has_probabilities
        False
        """
        return self.flavor == "sklearn" and hasattr(self.model, "predict_proba")

    def model_input(self, checked: CheckedRecords | pd.DataFrame) -> Any:
        """What the model is given for ``checked``: the float matrix where it takes one
        (and the columns are in its order), else the frame.

        >>> from sklearn.linear_model import LinearRegression
        >>> fitted = LinearRegression().fit(np.array([[0.0], [1.0]]), [0.0, 2.0])
        >>> line = LoadedVariant("s", "primary", "m", 1, "sklearn", None, fitted)
        >>> line.model_input(line.check([{"x": 1.5}]))
             x
        0  1.5
        """
        if isinstance(checked, pd.DataFrame):
            return checked
        if (
            self._takes_matrix
            and checked.matrix is not None
            and (self.check.names is None or checked.names == self.check.names)
        ):
            return checked.matrix
        return checked.frame

    def predict(self, checked: CheckedRecords | pd.DataFrame) -> VariantAnswer:
        """The model's answer for ``checked`` records (checked against the schema by
        :attr:`check`, or a frame checked by :func:`~.record_validation.checked_records`).

        >>> import pandas as pd
        >>> double = LoadedVariant("s", "primary", "m", 1, "python", None, lambda f: f.x * 2)
        >>> double.predict(pd.DataFrame({"x": [1, 2]})).predictions
        [2, 4]
        """
        given = self.model_input(checked)
        if self.flavor == "python":
            return VariantAnswer(_plain(self.model(given)))
        if self._by_probabilities:
            probabilities = np.asarray(self.model.predict_proba(given), dtype=float)
            classes = self.model.classes_
            predictions = _plain(classes.take(np.argmax(probabilities, axis=1), axis=0))
            return VariantAnswer(predictions, probabilities.tolist(), _plain(classes))
        predictions = _plain(self.model.predict(given))
        if not self.has_probabilities:
            return VariantAnswer(predictions)
        probabilities = np.asarray(self.model.predict_proba(given), dtype=float).tolist()
        return VariantAnswer(predictions, probabilities, _plain(self.model.classes_))


def _is_estimator(model: object) -> bool:
    """Whether ``model`` is a scikit-learn estimator (which converts any input to a
    numeric array by the same rules).

    >>> _is_estimator(abs)
    False
    """
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def _predicts_by_probabilities(model: object) -> bool:
    """Whether ``model``'s ``predict`` is, in its own code, the class of highest
    ``predict_proba``: scikit-learn's random forests and extra trees with one output
    (``ForestClassifier.predict``). Exact types only, so no subclass's override is missed.

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> _predicts_by_probabilities(RandomForestClassifier(n_estimators=2).fit([[0], [1]], [0, 1]))
    True
    >>> _predicts_by_probabilities(abs)
    False
    """
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    return (
        type(model) in (RandomForestClassifier, ExtraTreesClassifier)
        and getattr(model, "n_outputs_", None) == 1
    )


def load_variant(
    registry: ModelRegistry,
    name: str,
    role: str,
    model: str,
    version: int,
    *,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
) -> LoadedVariant:
    """Load version ``version`` of ``model`` for the variant ``name`` (sha256 verified, the
    registry's trust rules applied; see the module docstring).

    >>> import tempfile
    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.store import ArtifactStore, Database
    >>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path),
    ...                          actor="eve")
    >>> _ = registry.register("m", abs)
    >>> load_variant(registry, "stable", "primary", "m", 1)
    Traceback (most recent call last):
    opsloop.registry.model_trust.UntrustedModelError: models:/m/1 is a pickle (flavor 'python'), registered by 'eve'; ...
    >>> load_variant(registry, "stable", "primary", "m", 1, trust=True).model(-2)
    2
    """  # noqa: E501
    record = registry.get_version(model, version)
    if record.flavor not in SERVED_FLAVORS:
        raise UnservableModelError(
            f"variant {name!r}: {record.uri} has flavor {record.flavor!r}; the serving runtime "
            f"answers with {', '.join(SERVED_FLAVORS)} models only"
        )
    loaded = registry.load(model, version, trust=trust, trusted_types=trusted_types)
    return variant_of(name, role, model, version, record.flavor, record.signature, loaded)


def variant_of(
    name: str,
    role: str,
    model: str,
    version: int,
    flavor: str,
    signature: dict | None,
    loaded: object,
) -> LoadedVariant:
    """The :class:`LoadedVariant` of a model already loaded (sha256 verified by the
    caller), its schema from the version's ``signature`` in the order the model was fitted.

    >>> variant_of("s", "primary", "m", 1, "python", None, abs).predict(
    ...     pd.DataFrame({"x": [-1]})).predictions
    [[1]]
    """
    inputs = (signature or {}).get("inputs")
    schema = Schema.from_dict(inputs) if inputs else None
    if schema is not None:
        schema = _in_model_order(schema, getattr(loaded, "feature_names_in_", None))
    return LoadedVariant(name, role, model, version, flavor, schema, loaded)


def _in_model_order(schema: Schema, names: object) -> Schema:
    """The schema with its columns in the order the model was fitted on (the stored
    signature keeps them by name), so frames built from it are what the model expects.

    >>> from opsloop.data.schema import ColumnSchema
    >>> schema = Schema((ColumnSchema("a", "int"), ColumnSchema("b", "int")))
    >>> _in_model_order(schema, np.array(["b", "a"], dtype=object)).names
    ('b', 'a')
    """
    if names is None:
        return schema
    order = {str(name): position for position, name in enumerate(names)}
    columns = sorted(schema.columns, key=lambda c: order.get(c.name, len(order)))
    return replace(schema, columns=tuple(columns))
