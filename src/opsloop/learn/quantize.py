"""Post-training compression of PyTorch models: int8 (dynamic and static), float16, ONNX export.

The int8 variants use torchao's ``quantize_`` (``torch.ao.quantization`` is deprecated); both
configurations below run on the CPU, so no fallback to the old API is needed:

* dynamic: ``Int8DynamicActivationInt8WeightConfig``: int8 weights per output row, activations
  quantized per row at run time;
* static: ``Int8StaticActivationInt8WeightConfig``: int8 weights, and one activation scale per
  linear layer fixed in advance from calibration data (largest absolute input / 127).

float16 casts the weights and wraps the model so that callers keep passing float32.
:func:`compare_variants` reports per variant the serialized size, the latency of one batch and the
accuracy change; :func:`export_onnx` writes an ONNX file and checks it with onnxruntime. Given a
run, :func:`compare_variants` logs each variant's numbers as ``<variant>/<column>``, the report
``quantization.json`` and each compressed model: ``<variant>.pt`` (its state dict) or
``model.onnx``.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.learn.eval_mode import in_eval_mode
from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.model_size import median_latency_ms
from opsloop.learn.run_log import RunLog, checked_run, log_json, log_metrics, log_state_dict
from opsloop.learn.torch_import import import_torch

VARIANTS = ("float32", "float16", "int8_dynamic", "int8_static", "onnx")


def _torchao_quantization() -> Any:
    import_torch()
    try:
        from torchao import quantization
    except ImportError as error:  # pragma: no cover - torchao ships with the torch extra
        raise ImportError(
            "int8 quantization needs torchao: pip install 'opsloop[torch]'"
        ) from error
    return quantization


def quantize_dynamic_int8(model: Any) -> Any:
    """A copy of ``model`` whose linear layers hold int8 weights and quantize inputs on the fly.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model, x = torch.nn.Linear(4, 2), torch.ones(3, 4)
    >>> q = quantize_dynamic_int8(model)
    >>> q.weight.qdata.dtype, (q(x) - model(x)).abs().max().item() < 0.01
    (torch.int8, True)
    """
    quantization = _torchao_quantization()
    quantized = copy.deepcopy(model).eval()
    quantization.quantize_(quantized, quantization.Int8DynamicActivationInt8WeightConfig())
    return quantized


def _input_ranges(model: Any, calibration: Any) -> dict[str, tuple[float, int]]:
    """Largest absolute input (and its number of dimensions) of every linear layer."""
    torch = import_torch()
    ranges: dict[str, tuple[float, int]] = {}

    def record(name: str):
        def hook(module, inputs):
            largest = float(inputs[0].detach().abs().max())
            ranges[name] = (max(largest, ranges.get(name, (0.0, 0))[0]), inputs[0].ndim)

        return hook

    handles = [
        module.register_forward_pre_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    try:
        with torch.no_grad():
            model(torch.as_tensor(calibration, dtype=torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    return ranges


def quantize_static_int8(model: Any, calibration: np.ndarray) -> Any:
    """A copy of ``model`` with int8 linear layers whose activation scales come from calibration.

    ``calibration`` is a batch of typical inputs; each linear layer's activation scale is the
    largest absolute value it saw divided by 127 (symmetric, per tensor).

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model, x = torch.nn.Linear(4, 2), torch.ones(3, 4)
    >>> q = quantize_static_int8(model, np.ones((8, 4), dtype="float32"))
    >>> q.weight.qdata.dtype, (q(x) - model(x)).abs().max().item() < 0.01
    (torch.int8, True)
    """
    torch = import_torch()
    quantization = _torchao_quantization()
    from torchao.quantization.granularity import PerTensor

    calibration = finite_rows("calibration", calibration, two_d=False, dtype=np.float32)
    check_model_width("calibration", calibration, model)
    quantized = copy.deepcopy(model).eval()
    for name, (largest, ndim) in _input_ranges(quantized, calibration).items():
        # a layer that only ever saw zeros still needs a usable, positive scale
        scale = torch.full((1,) * ndim, max(largest, 1e-8) / 127.0)
        config = quantization.Int8StaticActivationInt8WeightConfig(
            act_quant_scale=scale, granularity=PerTensor()
        )
        quantization.quantize_(quantized, config, filter_fn=lambda _, fqn, name=name: fqn == name)
    return quantized


def to_float16(model: Any) -> Any:
    """A float16 copy of ``model`` that takes and returns float32 tensors.

    >>> import torch
    >>> half = to_float16(torch.nn.Linear(4, 2))
    >>> half(torch.ones(1, 4)).dtype
    torch.float32
    """
    torch = import_torch()

    class Float16Model(torch.nn.Module):
        """Casts inputs to float16 and outputs back, around a float16 copy of the model."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.half()).float()

    return Float16Model(copy.deepcopy(model).eval().half()).eval()


def serialized_size(model: Any) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the weights on disk.

    >>> import torch
    >>> serialized_size(torch.nn.Linear(100, 10)) > 4 * 1010
    True
    """
    torch = import_torch()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@dataclass(frozen=True)
class OnnxExport:
    """Where the ONNX file is, how big it is, and how far onnxruntime's outputs are from torch's."""

    path: str
    size_bytes: int
    max_abs_difference: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {
            "path": self.path,
            "size_bytes": self.size_bytes,
            "max_abs_difference": self.max_abs_difference,
        }


def _onnx_session(path: str) -> Any:
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - part of the torch extra
        raise ImportError(
            "checking ONNX needs onnxruntime: pip install 'opsloop[torch]'"
        ) from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def export_onnx(model: Any, example: np.ndarray, path: str | os.PathLike) -> OnnxExport:
    """Export ``model`` to one ONNX file (batch size left free) and compare it on ``example``.

    >>> import torch, tempfile, os
    >>> _ = torch.manual_seed(0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = export_onnx(torch.nn.Linear(4, 2), np.ones((3, 4), "float32"),
    ...                       os.path.join(folder, "m.onnx"))
    >>> out.max_abs_difference < 1e-5
    True
    """
    torch = import_torch()
    example = finite_rows("example", example, two_d=False, dtype=np.float32)
    check_model_width("example", example, model)
    with in_eval_mode(model):
        return _export_onnx(torch, model, example, path)


def _export_onnx(
    torch: Any, model: Any, example: np.ndarray, path: str | os.PathLike
) -> OnnxExport:
    inputs = torch.as_tensor(np.asarray(example), dtype=torch.float32)
    torch.onnx.export(
        model,
        (inputs,),
        os.fspath(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        verbose=False,
    )
    with torch.no_grad():
        expected = model(inputs).numpy()
    got = _onnx_session(os.fspath(path)).run(None, {"input": inputs.numpy()})[0]
    return OnnxExport(
        path=os.fspath(path),
        size_bytes=os.path.getsize(path),
        max_abs_difference=float(np.abs(got - expected).max()),
    )


@dataclass(frozen=True)
class QuantizationReport:
    """One row per variant: size_bytes, size_ratio, latency_ms, accuracy, accuracy_delta.

    ``accuracy_delta`` is the variant's accuracy minus the float32 model's (in [−1, 1]);
    ``size_ratio`` is float32 bytes divided by the variant's.
    """

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The table, indexed by variant."""
        return self.frame.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{variant: {column: value}}``."""
        return {
            str(variant): {
                k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()
            }
            for variant, row in self.frame.to_dict(orient="index").items()
        }


def compare_variants(
    model: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    calibration: np.ndarray | None = None,
    variants: Sequence[str] = VARIANTS,
    batch_size: int = 256,
    run: RunLog | None = None,
) -> QuantizationReport:
    """Build each of ``variants`` from ``model`` (a classifier returning logits) and measure it.

    ``calibration`` (typical inputs) is needed for ``int8_static``; latency is the median time
    for one batch of ``batch_size`` test rows; ``onnx`` is the float32 model run by onnxruntime.
    ``run`` (see :class:`~opsloop.learn.run_log.RunLog`) receives the params, every number of
    the report, ``quantization.json`` and the file of each compressed variant.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> X = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> report = compare_variants(torch.nn.Linear(8, 2), X, np.zeros(64, int),
    ...                           variants=["float32", "int8_dynamic"])
    >>> report.to_frame().index.tolist()
    ['float32', 'int8_dynamic']
    """
    torch = import_torch()
    run = checked_run(run)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"variants must be among {list(VARIANTS)}, got unknown {unknown}")
    if "int8_static" in variants and calibration is None:
        raise ValueError("calibration data is required for the int8_static variant")
    if (
        isinstance(batch_size, bool | np.bool_)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        # an empty batch would time nothing and report a latency all the same
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batch_size = int(batch_size)
    X = finite_rows("X_test", X_test, two_d=False, dtype=np.float32)
    y = np.asarray(y_test)
    if X.ndim < 2 or len(X) != len(y):
        raise ValueError(
            f"X_test and y_test must have the same number of rows, got {X.shape}, {y.shape}"
        )
    check_model_width("X_test", X, model)
    if calibration is not None:
        calibration = finite_rows("calibration", calibration, two_d=False, dtype=np.float32)
        check_model_width("calibration", calibration, model)
    with in_eval_mode(model):
        return _compare_variants(torch, model, X, y, calibration, variants, batch_size, run)


def _compare_variants(
    torch: Any,
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    calibration: np.ndarray | None,
    variants: Sequence[str],
    batch_size: int,
    run: RunLog | None,
) -> QuantizationReport:
    inputs = torch.as_tensor(X)
    batch = inputs[:batch_size]
    base_size = serialized_size(model)
    if run is not None:
        run.log_params(
            {
                "variants": ",".join(variants),
                "batch_size": batch_size,
                "n_rows": len(X),
                "calibration_rows": 0 if calibration is None else len(calibration),
            }
        )

    def measure(run, size):
        with torch.no_grad():
            accuracy = float((run(inputs).argmax(axis=1) == y).mean())
            latency = median_latency_ms(lambda: run(batch))
        return {"size_bytes": int(size), "latency_ms": latency, "accuracy": accuracy}

    def torch_runner(module):
        return lambda x: module(x).numpy()

    builders = {
        "float32": lambda: model,
        "float16": lambda: to_float16(model),
        "int8_dynamic": lambda: quantize_dynamic_int8(model),
        "int8_static": lambda: quantize_static_int8(model, calibration),
    }
    rows = {}
    for variant in variants:
        if variant == "onnx":
            with tempfile.TemporaryDirectory() as folder:
                exported = export_onnx(model, X[:batch_size], os.path.join(folder, "model.onnx"))
                session = _onnx_session(exported.path)
                rows[variant] = measure(
                    lambda x, s=session: s.run(None, {"input": x.numpy()})[0], exported.size_bytes
                )
                if run is not None:
                    run.log_artifact(exported.path, "model.onnx")
            continue
        built = builders[variant]()
        size = base_size if variant == "float32" else serialized_size(built)
        rows[variant] = measure(torch_runner(built), size)
        if run is not None and variant != "float32":
            log_state_dict(run, built, f"{variant}.pt")
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "variant"
    with torch.no_grad():
        base_accuracy = float((model(inputs).argmax(dim=1).numpy() == y).mean())
    frame["accuracy_delta"] = frame["accuracy"] - base_accuracy
    frame["size_ratio"] = base_size / frame["size_bytes"]
    report = QuantizationReport(frame)
    if run is not None:
        for variant, row in report.to_dict().items():
            log_metrics(run, {f"{variant}/{column}": value for column, value in row.items()})
        log_json(run, report.to_dict(), "quantization.json")
    return report
