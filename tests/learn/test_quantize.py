import io
import json

import numpy as np
import pytest
from tests.learn.frozen_batch_norm import FROZEN_MODES, frozen_batch_norm
from tests.learn.tracked import artifact_bytes

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")

import opsloop  # noqa: E402
from opsloop.learn.quantize import (  # noqa: E402
    _input_ranges,
    compare_variants,
    export_onnx,
    quantize_dynamic_int8,
    quantize_static_int8,
    serialized_size,
    to_float16,
)

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::FutureWarning")]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def report(digits, digits_teacher):
    X_train, X_test, _, y_test = digits
    return compare_variants(digits_teacher, X_test, y_test, calibration=X_train[:256])


def test_int8_keeps_accuracy_within_one_point_at_half_the_size(report):
    frame = report.to_frame()
    for variant in ["int8_dynamic", "int8_static"]:
        assert abs(frame.loc[variant, "accuracy_delta"]) <= 0.01, frame
        assert frame.loc[variant, "size_ratio"] >= 2.0, frame


def test_float16_and_onnx_match_float(report):
    frame = report.to_frame()
    assert abs(frame.loc["float16", "accuracy_delta"]) <= 0.005
    assert frame.loc["float16", "size_ratio"] > 1.8
    assert frame.loc["onnx", "accuracy_delta"] == 0.0


def test_report_rows_are_measured(report, digits, digits_teacher):
    _, X_test, _, y_test = digits
    frame = report.to_frame()
    assert frame.index.tolist() == ["float32", "float16", "int8_dynamic", "int8_static", "onnx"]
    with torch.no_grad():
        accuracy = (digits_teacher(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean()
    assert frame.loc["float32", "accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert frame.loc["float32", "size_bytes"] == serialized_size(digits_teacher)
    assert (frame["latency_ms"] > 0).all()
    assert json.loads(json.dumps(report.to_dict()))["float32"]["size_ratio"] == 1.0


def test_int8_outputs_stay_close_to_float(digits, digits_teacher):
    X_test = torch.as_tensor(digits[1][:64])
    with torch.no_grad():
        expected = digits_teacher(X_test)
        spread = float(expected.abs().max())
        for quantized in [
            quantize_dynamic_int8(digits_teacher),
            quantize_static_int8(digits_teacher, digits[0][:256]),
        ]:
            assert float((quantized(X_test) - expected).abs().max()) < 0.05 * spread
        assert float((to_float16(digits_teacher)(X_test) - expected).abs().max()) < 1e-2


def test_calibration_ranges_are_the_largest_layer_inputs(digits, digits_teacher):
    calibration = digits[0][:100]
    ranges = _input_ranges(digits_teacher, calibration)
    x = torch.as_tensor(calibration)
    with torch.no_grad():
        hidden1 = torch.relu(digits_teacher[0](x))
        hidden2 = torch.relu(digits_teacher[2](hidden1))
    assert ranges["0"] == (pytest.approx(float(np.abs(calibration).max())), 2)
    assert ranges["2"][0] == pytest.approx(float(hidden1.max()))
    assert ranges["4"][0] == pytest.approx(float(hidden2.max()))


def test_the_original_model_is_left_alone(digits_teacher):
    before = digits_teacher[0].weight.detach().clone()
    quantize_dynamic_int8(digits_teacher)
    assert type(digits_teacher[0].weight).__name__ == "Parameter"
    assert torch.equal(digits_teacher[0].weight.detach(), before)


def test_onnx_export_matches_torch(tmp_path, digits, digits_teacher):
    exported = export_onnx(digits_teacher, digits[1][:10], tmp_path / "teacher.onnx")
    assert exported.max_abs_difference < 1e-4
    assert exported.size_bytes > 4 * 85002  # the weights are inside the one file


def test_bad_arguments(digits, digits_teacher):
    _, X_test, _, y_test = digits
    with pytest.raises(ValueError, match="variants must be among"):
        compare_variants(digits_teacher, X_test, y_test, variants=["int4"])
    with pytest.raises(ValueError, match="calibration data is required"):
        compare_variants(digits_teacher, X_test, y_test, variants=["int8_static"])
    with pytest.raises(ValueError, match="same number of rows"):
        compare_variants(digits_teacher, X_test, y_test[:3], variants=["float32"])
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        compare_variants(digits_teacher, X_test, y_test, variants=["float32"], batch_size=0)


def test_a_model_in_training_mode_is_measured_in_eval_and_handed_back_training(digits):
    _, X_test, _, y_test = digits
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    model.train()
    report = compare_variants(model, X_test, y_test, variants=["float32", "onnx"])
    assert model.training and model[1].training
    # in eval mode dropout is off, so the accuracy is the deterministic one
    with torch.no_grad():
        expected = float((model.eval()(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean())
    assert report.to_frame().loc["float32", "accuracy"] == expected
    assert report.to_frame().loc["onnx", "accuracy"] == expected


def test_a_run_gets_every_number_of_the_report_and_the_compressed_models(
    digits, digits_teacher, tracking_home
):
    import onnxruntime

    _, X_test, _, y_test = digits
    with opsloop.start_run("quantize", capture=False) as run:
        report = compare_variants(
            digits_teacher, X_test, y_test, variants=["float32", "int8_dynamic", "onnx"], run=run
        )
    stored = opsloop.get_run(run.run_id)
    frame = report.to_frame()
    for variant in frame.index:
        for column in ["size_bytes", "latency_ms", "accuracy", "accuracy_delta", "size_ratio"]:
            assert stored.metrics[f"{variant}/{column}"] == frame.loc[variant, column]
    assert stored.params["variants"] == "float32,int8_dynamic,onnx"
    assert json.loads(artifact_bytes(stored, "quantization.json")) == report.to_dict()
    assert {a.path for a in stored.artifacts} == {
        "quantization.json",
        "int8_dynamic.pt",
        "model.onnx",
    }
    weights = torch.load(io.BytesIO(artifact_bytes(stored, "int8_dynamic.pt")), weights_only=True)
    fresh = quantize_dynamic_int8(digits_teacher)
    assert torch.equal(weights["0.weight"].dequantize(), fresh[0].weight.dequantize())
    session = onnxruntime.InferenceSession(
        artifact_bytes(stored, "model.onnx"), providers=["CPUExecutionProvider"]
    )
    predicted = session.run(None, {"input": X_test})[0].argmax(axis=1)
    assert (predicted == y_test).mean() == frame.loc["onnx", "accuracy"]


def test_a_frozen_batch_norm_is_handed_back_frozen(digits):
    _, X_test, _, y_test = digits
    model = frozen_batch_norm(32)
    compare_variants(model, X_test, y_test, variants=["float32"])
    assert [m.training for m in model.modules()] == FROZEN_MODES


def test_a_numpy_integer_batch_size_is_a_batch_size(digits, digits_teacher, tracking_home):
    _, X_test, _, y_test = digits
    with opsloop.start_run("quantize", capture=False) as run:
        report = compare_variants(
            digits_teacher, X_test, y_test, variants=["float32"], batch_size=np.int64(32), run=run
        )
    assert opsloop.get_run(run.run_id).params["batch_size"] == "32"
    with torch.no_grad():
        expected = float(
            (digits_teacher(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean()
        )
    assert report.to_frame().loc["float32", "accuracy"] == expected
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got np\.True_"):
        compare_variants(digits_teacher, X_test, y_test, variants=["float32"], batch_size=np.True_)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 32\.0"):
        compare_variants(digits_teacher, X_test, y_test, variants=["float32"], batch_size=32.0)
