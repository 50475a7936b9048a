"""One variant's model version, loaded through the registry and ready to answer.

:func:`load_variant` reads the version's record (flavor and signature) and loads the model
with :meth:`~opsloop.registry.ModelRegistry.load`, which checks the artifact against its
sha256 before anything is deserialised and applies the registry's trust rules
(:mod:`opsloop.registry.model_trust`): a pickle (flavor ``python``) loads only when the
serving user passed ``trust``, a skops file only with types on the allow-list or named in
``trusted_types``. A refusal is an :class:`~opsloop.registry.model_trust.UntrustedModelError`
and nothing is executed.

The runtime serves every flavor the registry stores:

* ``sklearn``: anything with ``predict``, and ``predict_proba`` where the model has it;
* ``python``: a callable given the frame;
* ``onnx``: an onnxruntime session over the verified bytes (:mod:`.onnx_variant`);
* ``pytorch``: the module the registry rebuilt from its ``weights_only`` state dict and a
  registered builder (:mod:`.torch_variant`).

ONNX and PyTorch models take one float tensor whose columns are the signature's, in its
order, so their versions need a signature of numeric (int, float or bool) columns; their
input width and outputs are checked at load, and a version that does not fit is refused
there with what it takes and what the signature has. Their answers follow the same rules
(:mod:`.tensor_heads`): a classifier's labels and probabilities, or one value per row.

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

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError
from opsloop.registry.model_registry import ModelRegistry
from opsloop.serving.record_validation import CheckedRecords, RecordCheck

#: Flavors the runtime can answer with.
SERVED_FLAVORS = ("sklearn", "python", "onnx", "pytorch")
#: Flavors answered as a float tensor of the signature's columns.
TENSOR_FLAVORS = ("onnx", "pytorch")
#: The column types a tensor model's input can hold.
_TENSOR_TYPES = ("int", "float", "bool")


class UnservableModelError(InvalidArgumentError):
    """A model version the runtime cannot answer with: its flavor is not served, or its
    inputs or outputs do not fit its signature."""


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
    # The model given the checked float matrix itself rather than a frame (``None``: the
    # frame), see ``_matrix_model``.
    _matrix_model: Any = field(init=False, repr=False, compare=False)
    # How one model call answers both predictions and probabilities, by the model's own
    # definitions: "probabilities" (``_predicts_by_probabilities``), "decision"
    # (``_logistic_link``: "expit" or "softmax"), or ``None``: two calls.
    _one_call: tuple[str, str | None] | None = field(init=False, repr=False, compare=False)
    # Whether the model is a forest regressor answered tree by tree (``_forest_mean``).
    _averages_trees: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", RecordCheck(self.schema))
        sklearn = self.flavor == "sklearn"
        object.__setattr__(
            self, "_matrix_model", _matrix_model(self.model, self.check.names) if sklearn else None
        )
        one_call = None
        if sklearn and _predicts_by_probabilities(self.model):
            one_call = ("probabilities", None)
        elif sklearn and (link := _logistic_link(self.model)) is not None:
            one_call = ("decision", link)
        object.__setattr__(self, "_one_call", one_call)
        object.__setattr__(self, "_averages_trees", sklearn and _averages_trees(self.model))

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
        if self.flavor in TENSOR_FLAVORS:
            return self.model.has_probabilities
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
        return self._given(checked)[1]

    def _given(self, checked: CheckedRecords | pd.DataFrame) -> tuple[Any, Any]:
        """The model to call and what to give it."""
        if self.flavor in TENSOR_FLAVORS:
            return self.model, self._tensor_input(checked)
        if isinstance(checked, pd.DataFrame):
            return self.model, checked
        if (
            self._matrix_model is not None
            and checked.matrix is not None
            and (self.check.names is None or checked.names == self.check.names)
        ):
            return self._matrix_model, checked.matrix
        return self.model, checked.frame

    def _tensor_input(self, checked: CheckedRecords | pd.DataFrame) -> np.ndarray:
        """The float matrix of the signature's columns in its order (nulls as NaN)."""
        names = self.check.names
        assert names is not None  # a tensor model is loaded with a signature only
        if isinstance(checked, CheckedRecords):
            if checked.matrix is not None and checked.names == names:
                return checked.matrix
            checked = checked.frame
        return checked.loc[:, list(names)].to_numpy(dtype=np.float64, na_value=np.nan)

    def predict(self, checked: CheckedRecords | pd.DataFrame) -> VariantAnswer:
        """The model's answer for ``checked`` records (checked against the schema by
        :attr:`check`, or a frame checked by :func:`~.record_validation.checked_records`).

        >>> import pandas as pd
        >>> double = LoadedVariant("s", "primary", "m", 1, "python", None, lambda f: f.x * 2)
        >>> double.predict(pd.DataFrame({"x": [1, 2]})).predictions
        [2, 4]
        """
        model, given = self._given(checked)
        if self.flavor == "python":
            return VariantAnswer(_plain(model(given)))
        if self.flavor in TENSOR_FLAVORS:
            predictions, probabilities = model.answer(given)
            classes = None if model.classes_ is None else _plain(model.classes_)
            return VariantAnswer(predictions, probabilities, classes)
        if self._one_call is not None:
            way, link = self._one_call
            classes = model.classes_
            if way == "probabilities":
                probabilities = _forest_mean(model, given)
                indices = np.argmax(probabilities, axis=1)
            else:
                indices, probabilities = _from_decision(model.decision_function(given), link)
            predictions = _plain(classes.take(indices, axis=0))
            return VariantAnswer(predictions, probabilities.tolist(), _plain(classes))
        if self._averages_trees:
            return VariantAnswer(_plain(_forest_mean(model, given, regression=True)))
        predictions = _plain(model.predict(given))
        if not self.has_probabilities:
            return VariantAnswer(predictions)
        probabilities = np.asarray(model.predict_proba(given), dtype=float).tolist()
        return VariantAnswer(predictions, probabilities, _plain(model.classes_))


def _is_estimator(model: object) -> bool:
    """Whether ``model`` is a scikit-learn estimator (which converts any input to a
    numeric array by the same rules).

    >>> _is_estimator(abs)
    False
    """
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def _name_checked_only() -> tuple[type, ...]:
    """Estimators whose predicting methods use the fitted column names only to check that
    a frame's columns are the fitted ones (``validate_data``), then compute on the float
    matrix. Exact types: no subclass, nor a pipeline that selects columns by name."""
    from sklearn import ensemble, linear_model, tree

    return (
        linear_model.LogisticRegression,
        linear_model.LinearRegression,
        linear_model.Ridge,
        linear_model.Lasso,
        linear_model.ElasticNet,
        ensemble.RandomForestClassifier,
        ensemble.RandomForestRegressor,
        ensemble.ExtraTreesClassifier,
        ensemble.ExtraTreesRegressor,
        tree.DecisionTreeClassifier,
        tree.DecisionTreeRegressor,
    )


def _matrix_model(model: object, names: tuple[str, ...] | None) -> Any:
    """The model to give the checked float matrix, ``None`` when it must get the frame.

    A scikit-learn estimator fitted without column names converts a frame to that very
    matrix, at several times the cost: it gets the matrix. One fitted on a frame whose
    columns are the signature's, in its order, gets the matrix too, through a shallow copy
    without ``feature_names_in_`` (its fitted arrays shared), when it is one of the types
    that use the names only to check a frame's columns (``_name_checked_only``): the frame
    it would be given holds the matrix's float64 columns in that order, so it would convert
    it to the same matrix, and the check it skips holds by construction. Anything else
    keeps getting the frame.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 1.0]})
    >>> fitted = LinearRegression().fit(X, [0.0, 1.0, 2.0])
    >>> unnamed = _matrix_model(fitted, ("a", "b"))
    >>> unnamed.predict(X.to_numpy()[:1]).tolist() == fitted.predict(X[:1]).tolist()
    True
    >>> list(fitted.feature_names_in_)  # the registered model keeps its names
    ['a', 'b']
    >>> _matrix_model(fitted, ("b", "a")) is None  # not the model's order
    True
    """
    if not _is_estimator(model):
        return None
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is None:
        return model
    if type(model) not in _name_checked_only():
        return None
    if names is None or tuple(str(name) for name in fitted_names) != names:
        return None
    unnamed = copy.copy(model)
    del unnamed.feature_names_in_
    return unnamed


def _logistic_link(model: object) -> str | None:
    """How a scikit-learn ``LogisticRegression``'s ``predict_proba`` turns its
    ``decision_function`` into probabilities, where one call of the latter can answer both
    (``_from_decision``): ``"expit"`` for two classes (the positive class's probability is
    the logistic of the score), ``"softmax"`` for more. ``None`` for any other model, and
    for scikit-learn versions with a ``multi_class`` setting, whose rules differ by it.
    Exact type only, so no subclass's override is missed.

    >>> from sklearn.linear_model import LogisticRegression
    >>> _logistic_link(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    'expit'
    >>> _logistic_link(LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 2]))
    'softmax'
    """
    from sklearn.linear_model import LogisticRegression

    if type(model) is not LogisticRegression or "multi_class" in model.get_params():
        return None
    return "expit" if len(model.classes_) <= 2 else "softmax"


def _from_decision(scores: Any, link: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The class indices and probabilities a ``LogisticRegression`` gives for its decision
    ``scores``, as its own ``predict`` and ``predict_proba`` compute them: two classes, a
    positive score predicts the second class (a score of exactly 0 the first) and the
    probabilities are ``[1 - expit(score), expit(score)]``; more, the class of the highest
    score (the first of equal ones) and the softmax of the scores. The label comes from the
    score, not from the probabilities, which can tie where the scores do not.

    >>> indices, probabilities = _from_decision(np.array([0.0, 1e-20, -2.0]), "expit")
    >>> indices.tolist(), probabilities[1].tolist()
    ([0, 1, 0], [0.5, 0.5])
    """
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    scores = np.asarray(scores)
    if link == "expit":
        positive = expit(scores)
        probabilities = np.stack([1 - positive, positive], axis=1)
        return (scores > 0).astype(np.intp), np.asarray(probabilities, dtype=float)
    return np.argmax(scores, axis=1), np.asarray(softmax(scores, copy=True), dtype=float)


def _forest_mean(forest: Any, given: Any, *, regression: bool = False) -> np.ndarray:
    """A forest's ``predict_proba`` (or a forest regressor's ``predict``): for a float
    matrix of finite values, its trees' answers summed tree by tree in their order and
    divided by their number, as the forest's own method does when it runs in one thread
    (its default), on the float32 matrix its input check makes; anything else goes to the
    forest's own method.

    Why not always its own method: it runs each tree through scikit-learn's parallel
    helper, which on every call copies and resets the process's warning filters, and warns
    when it finds them empty. Python's warning filters are one list for all threads, so
    with two forests answering at once (a primary on the event loop and a shadow in its
    worker) each finds the other's list emptied mid-reset and warns, once per tree:
    thousands of spurious "``delayed`` should be used with ``Parallel``" warnings a minute
    on a busy server. The trees themselves touch no filters.

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, [0, 0, 1, 1])
    >>> bool((_forest_mean(forest, X) == forest.predict_proba(X)).all())
    True
    """
    if (
        not isinstance(given, np.ndarray)
        or given.ndim != 2
        or given.shape[1] != forest.n_features_in_
        or forest.n_jobs not in (None, 1)
        or not np.isfinite(given).all()
    ):
        own = forest.predict(given) if regression else forest.predict_proba(given)
        return np.asarray(own, dtype=float)
    matrix = given.astype(np.float32)
    if regression:
        total = np.zeros(len(matrix), dtype=np.float64)
        for tree in forest.estimators_:
            total += tree.predict(matrix, check_input=False)
    else:
        total = np.zeros((len(matrix), forest.n_classes_), dtype=np.float64)
        for tree in forest.estimators_:
            total += tree.predict_proba(matrix, check_input=False)
    total /= len(forest.estimators_)
    return total


def _averages_trees(model: object) -> bool:
    """Whether ``model`` is a scikit-learn forest regressor with one output (exact types),
    answered by ``_forest_mean``.

    >>> from sklearn.ensemble import RandomForestRegressor
    >>> _averages_trees(RandomForestRegressor(n_estimators=2).fit([[0], [1]], [0.0, 1.0]))
    True
    """
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    return (
        type(model) in (RandomForestRegressor, ExtraTreesRegressor)
        and getattr(model, "n_outputs_", None) == 1
    )


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
    threads: int = 1,
) -> LoadedVariant:
    """Load version ``version`` of ``model`` for the variant ``name`` (sha256 verified, the
    registry's trust rules applied; see the module docstring). ``threads`` bounds the
    intra-op threads of an ONNX or PyTorch model's calls.

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
    return variant_of(
        name,
        role,
        model,
        version,
        record.flavor,
        record.signature,
        loaded,
        tags=record.tags,
        threads=threads,
    )


def variant_of(
    name: str,
    role: str,
    model: str,
    version: int,
    flavor: str,
    signature: Mapping | None,
    loaded: object,
    *,
    tags: Mapping[str, str] | None = None,
    threads: int = 1,
) -> LoadedVariant:
    """The :class:`LoadedVariant` of a model already loaded (sha256 verified by the
    caller), its schema from the version's ``signature`` in the order the model was fitted.
    An ONNX model's bytes or a PyTorch module are checked against the signature and made
    ready to answer (:func:`tensor_model_of`); ``tags`` are the version's (its ``classes``).

    >>> variant_of("s", "primary", "m", 1, "python", None, abs).predict(
    ...     pd.DataFrame({"x": [-1]})).predictions
    [[1]]
    """
    inputs = (signature or {}).get("inputs")
    schema = Schema.from_dict(inputs) if inputs else None
    if flavor in TENSOR_FLAVORS:
        where = f"variant {name!r}: models:/{model}/{version}"
        output = (signature or {}).get("output")
        loaded = tensor_model_of(flavor, loaded, schema, output, tags, where, threads)
    elif schema is not None:
        schema = _in_model_order(schema, getattr(loaded, "feature_names_in_", None))
    return LoadedVariant(name, role, model, version, flavor, schema, loaded)


def tensor_model_of(
    flavor: str,
    loaded: object,
    schema: Schema | None,
    output_type: str | None,
    tags: Mapping[str, str] | None,
    where: str,
    threads: int = 1,
) -> Any:
    """An ONNX model's verified bytes or a registry-loaded PyTorch module, ready to answer
    the float matrix of ``schema``'s columns (:mod:`.onnx_variant`, :mod:`.torch_variant`).
    The signature must name the columns, all numeric, in the model's order.

    >>> from opsloop.data.schema import ColumnSchema
    >>> tensor_model_of("onnx", b"", Schema((ColumnSchema("city", "category"),)), None,
    ...                 None, "models:/m/1")
    Traceback (most recent call last):
    opsloop.serving.loaded_variant.UnservableModelError: models:/m/1: an onnx model takes ...
    """
    if schema is None:
        raise UnservableModelError(
            f"{where}: an {flavor} model takes a float tensor by column position, so its "
            f"version needs an input signature naming the columns in the model's order "
            f"(register it with input_schema=)"
        )
    environment = "serving" if "serving" in schema.environments else None
    columns = schema.expected_columns(environment)
    others = [f"{c.name!r} ({c.type})" for c in columns if c.type not in _TENSOR_TYPES]
    if not columns or others:
        raise UnservableModelError(
            f"{where}: an {flavor} model takes a float tensor of numeric columns "
            f"({', '.join(_TENSOR_TYPES)}); the signature has "
            f"{', '.join(others) if others else 'no columns'}"
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidArgumentError(f"threads must be a positive integer, got {threads!r}")
    names = tuple(column.name for column in columns)
    try:
        if flavor == "onnx":
            from opsloop.serving.onnx_variant import onnx_model

            if not isinstance(loaded, bytes):
                raise TypeError(f"{where}: an onnx model is loaded as bytes, got {type(loaded)}")
            return onnx_model(loaded, names, output_type, tags, where, threads)
        from opsloop.serving.torch_variant import torch_model

        return torch_model(loaded, names, output_type, tags, where, threads)
    except UnservableModelError:
        raise
    except InvalidArgumentError as error:
        raise UnservableModelError(str(error)) from None


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
