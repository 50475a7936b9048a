"""An ONNX model version served with onnxruntime.

ONNX is a data format: the artifact is a graph of operators that onnxruntime implements
itself, and the weights as tensors. Loading one runs no code from the artifact (no custom
operator library is registered, so a graph that names an operator onnxruntime does not
have is refused). One thing in the format does reach outside the bytes: a tensor stored as
"external data" names a file to read from this machine's disk, so such a model is refused.
The bytes come from :meth:`~opsloop.registry.ModelRegistry.load`, which checks them against
the version's sha256 first.

**Inputs.** The model must take one float tensor (``float`` or ``double``) of shape
``[rows, k]`` with a free first axis, where ``k`` is the number of the signature's columns
(int, float or bool). The records' columns, in the signature's order, are that tensor's
columns: the signature is registered from the frame the model was converted from, so it
names them in the order the model takes them. A fixed width other than ``k`` is refused at
load, naming both; a free width is checked by answering two rows of zeros at load.

**Outputs.** Two layouts are served:

* a classifier as skl2onnx writes one: a label tensor (``[rows]``) and the probabilities,
  a float tensor ``[rows, classes]`` (``zipmap=False``) or a sequence of maps (skl2onnx's
  default ZipMap). The labels are the model's own; the classes, in the probabilities'
  column order, come from the version's ``classes`` tag or else from the graph (its
  ZipMap, or its one classifier operator's ``classlabels_*``);
* one tensor ``[rows]`` or ``[rows, 1]``: one value per row (a regressor), or logits when
  the version's output type says ``"logits"`` (see :mod:`.tensor_heads`).

Anything else is refused at load with what the model answers and what is served.

**Threads.** A session runs ``threads`` intra-op threads (default 1), one inter-op thread
and no spinning: a server answers many requests at once, so each call gets a thread and
idle workers must not burn the cores the other requests need.

>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from skl2onnx import to_onnx
>>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
>>> line = LinearRegression().fit(X, [1.0, 2.0, 5.0])
>>> data = to_onnx(line, X[:1].astype(np.float32)).SerializeToString()
>>> served = onnx_model(data, ("a", "b"), "float", None, "models:/line/1")
>>> predictions, probabilities = served.answer(np.array([[1.0, 1.0]]))
>>> round(predictions[0], 5), round(float(line.predict([[1.0, 1.0]])[0]), 5), probabilities
(2.66667, 2.66667, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from opsloop.errors import InvalidArgumentError
from opsloop.serving.tensor_heads import (
    LOGITS,
    declared_classes,
    logit_answer,
    logit_classes,
    output_width,
    plain,
    value_answer,
)

# onnxruntime's element types that the serving runtime gives as input.
_FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(double)": np.float64}
# The names skl2onnx gives a classifier's outputs, label first.
_LABEL_NAMES = ("label", "output_label")
# The attributes that hold an ONNX-ML classifier's (or ZipMap's) class labels.
_CLASS_ATTRIBUTES = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


class OnnxModel:
    """An ONNX model ready to answer a float matrix: built by :func:`onnx_model`, which
    checks it against the signature. ``classes_`` holds a classifier's classes (``None``
    for one value per row); ``answer`` gives the predictions and, for a classifier, one
    probability per class per row."""

    def __init__(
        self,
        data: bytes,
        session: Any,
        input_name: str,
        dtype: type,
        layout: str,
        positions: tuple[int, int],
        classes: np.ndarray | None,
        settings: tuple,
    ) -> None:
        self.data = data
        self.session = session
        self.input_name = input_name
        self.dtype = dtype
        #: "classifier" (label and probabilities), "logits" or "values".
        self.layout = layout
        # Where the label and the probabilities are among a classifier's outputs.
        self._positions = positions
        self.classes_ = classes
        self._settings = settings

    @property
    def has_probabilities(self) -> bool:
        """Whether answers carry class probabilities."""
        return self.classes_ is not None

    def __reduce__(self) -> tuple:
        # A session does not pickle; another process rebuilds it from the checked bytes.
        return (onnx_model, (self.data, *self._settings))

    def answer(self, matrix: np.ndarray) -> tuple[list, list[list[float]] | None]:
        """The predictions for ``matrix`` (rows by the signature's columns) and, for a
        classifier, the probabilities (rows by ``classes_``)."""
        given = np.ascontiguousarray(matrix, dtype=self.dtype)
        outputs = self.session.run(None, {self.input_name: given})
        if self.layout == "values":
            return value_answer(outputs[0]), None
        if self.layout == LOGITS:
            assert self.classes_ is not None
            return logit_answer(outputs[0], self.classes_)
        labels, probabilities = (outputs[p] for p in self._positions)
        if isinstance(probabilities, list):  # a ZipMap: one {class: probability} per row
            assert self.classes_ is not None
            keys = self.classes_.tolist()
            probabilities = [[float(row[key]) for key in keys] for row in probabilities]
        else:
            probabilities = np.asarray(probabilities, dtype=np.float64).tolist()
        return plain(np.asarray(labels).reshape(-1)), probabilities


def onnx_model(
    data: bytes,
    columns: tuple[str, ...],
    output_type: str | None,
    tags: Mapping[str, str] | None,
    where: str,
    threads: int = 1,
) -> OnnxModel:
    """The ONNX model in ``data`` (bytes already checked against their sha256) as served
    for a signature of ``columns``, with ``threads`` intra-op threads; ``output_type`` and
    ``tags`` are the version's (see the module). ``where`` names the version in errors.

    >>> onnx_model(b"not onnx", ("a",), None, None, "models:/m/1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: models:/m/1: not a readable ONNX model (...)
    """
    import onnxruntime

    graph = _parsed(data, where)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: the server's log is not onnxruntime's
    try:
        session = onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime's own exception types are not importable
        raise InvalidArgumentError(
            f"{where}: onnxruntime cannot load the model: {_first_line(error)}"
        ) from None
    input_name, dtype = _checked_input(session, columns, where)
    outputs = session.get_outputs()
    declared = declared_classes(tags, where)
    if len(outputs) == 2:
        layout = "classifier"
        positions = _classifier_outputs(outputs, where)
        classes = declared if declared is not None else _graph_classes(graph, where)
    elif len(outputs) == 1 and outputs[0].type in _FLOAT_INPUTS:
        layout = LOGITS if output_type == LOGITS else "values"
        positions, classes = (0, 0), None
    else:
        found = ", ".join(f"{o.name!r} ({o.type})" for o in outputs)
        raise InvalidArgumentError(
            f"{where}: the model answers {found}; the serving runtime takes one float tensor "
            f"(values or logits) or two (a label and the probabilities)"
        )
    probe = session.run(None, {input_name: np.zeros((2, len(columns)), dtype=dtype)})
    if layout == "classifier":
        assert classes is not None
        label, probabilities = (probe[p] for p in positions)
        named = (outputs[p].name for p in positions)
        output_width(np.asarray(label).shape, 2, f"label output {next(named)!r}", where)
        width = (
            len(probabilities[0])
            if isinstance(probabilities, list)
            else output_width(probabilities.shape, 2, f"output {next(named)!r}", where)
        )
        if width != len(classes):
            raise InvalidArgumentError(
                f"{where}: the probabilities have {width} columns for {len(classes)} classes "
                f"({plain(classes)})"
            )
    else:
        width = output_width(probe[0].shape, 2, f"output {outputs[0].name!r}", where)
        if layout == LOGITS:
            classes = logit_classes(declared, width, where)
        elif width != 1:
            raise InvalidArgumentError(
                f"{where}: output {outputs[0].name!r} has {width} values per row; serve one "
                f"value per row, or declare the version's output_type 'logits' for a classifier"
            )
    settings = (columns, output_type, dict(tags or {}), where, threads)
    return OnnxModel(data, session, input_name, dtype, layout, positions, classes, settings)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:500]


def _parsed(data: bytes, where: str) -> Any:
    """The model's graph, refused when a tensor is stored outside the bytes."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise InvalidArgumentError(
            f"{where}: not a readable ONNX model ({_first_line(error)})"
        ) from None
    external = onnx.TensorProto.EXTERNAL
    stored_outside = [t.name for t in model.graph.initializer if t.data_location == external]
    if stored_outside:
        raise InvalidArgumentError(
            f"{where}: tensors {stored_outside[:5]} are stored as external data, which names "
            f"files on the loading machine; register the model with its tensors inside"
        )
    return model.graph


def _checked_input(session: Any, columns: tuple[str, ...], where: str) -> tuple[str, type]:
    """The input's name and element type, after checking that it is one float tensor of
    shape ``[rows, len(columns)]``."""
    inputs = session.get_inputs()
    listed = ", ".join(repr(c) for c in columns[:10]) + (", ..." if len(columns) > 10 else "")
    signature = f"the signature's {len(columns)} columns ({listed})"
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs)
        raise InvalidArgumentError(
            f"{where}: the model takes {len(inputs)} inputs ({names}); the serving runtime "
            f"gives one float tensor of {signature}"
        )
    tensor = inputs[0]
    if tensor.type not in _FLOAT_INPUTS:
        raise InvalidArgumentError(
            f"{where}: input {tensor.name!r} is a {tensor.type}; the serving runtime gives a "
            f"float tensor of {signature}"
        )
    shape = list(tensor.shape)
    if len(shape) != 2:
        raise InvalidArgumentError(
            f"{where}: input {tensor.name!r} has shape {shape}; the serving runtime gives "
            f"[rows, {len(columns)}]: {signature}"
        )
    rows, width = shape
    if isinstance(rows, int):
        raise InvalidArgumentError(
            f"{where}: input {tensor.name!r} has a fixed batch size of {rows}; export the model "
            f"with a free first axis"
        )
    if isinstance(width, int) and width != len(columns):
        raise InvalidArgumentError(
            f"{where}: input {tensor.name!r} takes {width} features per row, but the version's "
            f"signature has {len(columns)} columns ({listed})"
        )
    return tensor.name, _FLOAT_INPUTS[tensor.type]


def _classifier_outputs(outputs: list, where: str) -> tuple[int, int]:
    """The positions of the label and of the probabilities among two outputs."""
    probabilities = [
        i
        for i, o in enumerate(outputs)
        if o.type.startswith("seq(map(") or (o.type in _FLOAT_INPUTS and len(o.shape) == 2)
    ]
    labels = [i for i, o in enumerate(outputs) if o.name in _LABEL_NAMES]
    if not labels:
        labels = [i for i in range(2) if i not in probabilities[:1]]
    if not probabilities or labels[0] == probabilities[0]:
        found = ", ".join(f"{o.name!r} ({o.type}, shape {o.shape})" for o in outputs)
        raise InvalidArgumentError(
            f"{where}: of the model's two outputs, {found}, none is the probabilities "
            f"(a float tensor [rows, classes] or a sequence of maps)"
        )
    return labels[0], probabilities[0]


def _graph_classes(graph: Any, where: str) -> np.ndarray:
    """The class labels that the graph's ZipMap, or else its only classifier, holds."""
    import onnx

    found: list[list] = []
    for kinds in (("ZipMap",), None):
        for node in graph.node:
            if node.domain != "ai.onnx.ml":
                continue
            if kinds is None and not node.op_type.endswith("Classifier"):
                continue
            if kinds is not None and node.op_type not in kinds:
                continue
            for attribute in node.attribute:
                if attribute.name in _CLASS_ATTRIBUTES:
                    values = list(onnx.helper.get_attribute_value(attribute))
                    values = [v.decode() if isinstance(v, bytes) else int(v) for v in values]
                    if values and values not in found:
                        found.append(values)
        if found:
            break
    if len(found) != 1:
        raise InvalidArgumentError(
            f"{where}: the classes of the probabilities' columns cannot be read from the "
            f"graph ({len(found)} sets of class labels); declare them with the version's "
            f"'classes' tag, a JSON list"
        )
    labels = found[0]
    return np.array(labels, dtype=object if isinstance(labels[0], str) else np.int64)
