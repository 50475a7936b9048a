"""ONNX and PyTorch versions served by the runtime: the same answers as the scikit-learn
model they were converted from (to float32's precision) or as the torch module called
directly, refused at load when they do not fit their signature, and answered through
micro-batches, shadows and canaries with their prediction events recorded."""

from __future__ import annotations

import asyncio

import numpy as np
import onnx
import pytest
from tests.serving.served_models import poll
from tests.serving.tensor_models import (
    CANCER_CLASSES,
    cancer,
    classes_tag,
    diabetes,
    forest,
    iris,
    line,
    logistic,
    module_answer,
    onnx_bytes,
    records,
    trained_mlp,
)

from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
from opsloop.serving.loaded_variant import UnservableModelError, load_variant

# float32 arithmetic inside onnxruntime: probabilities agree to a few ulps of float32.
FLOAT32 = {"rtol": 1e-5, "atol": 1e-6}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("data", "fit", "zipmap"),
    [
        (cancer, logistic, False),
        (cancer, forest, False),
        (iris, logistic, True),  # string labels, skl2onnx's default ZipMap output
        (iris, forest, False),
    ],
)
def test_an_onnx_conversion_answers_as_the_scikit_learn_model(registry, data, fit, zipmap):
    frame, label = data()
    model = fit(frame, label)
    registry.register("m", onnx_bytes(model, frame, zipmap=zipmap), input_schema=frame)
    variant = load_variant(registry, "stable", "primary", "m", 1)
    answer = variant.predict(variant.check(records(frame)))
    assert answer.classes == model.classes_.tolist()
    assert answer.predictions == model.predict(frame).tolist()
    np.testing.assert_allclose(answer.probabilities, model.predict_proba(frame), **FLOAT32)
    assert variant.has_probabilities


def test_an_onnx_regressor_answers_one_value_per_row(registry):
    frame, target = diabetes()
    model = line(frame, target)
    registry.register("m", onnx_bytes(model, frame), input_schema=frame, output_type="float")
    variant = load_variant(registry, "stable", "primary", "m", 1)
    answer = variant.predict(variant.check(records(frame.head(50))))
    np.testing.assert_allclose(answer.predictions, model.predict(frame.head(50)), rtol=1e-5)
    assert (answer.probabilities, answer.classes, variant.has_probabilities) == (
        None,
        None,
        False,
    )


@pytest.mark.torch
def test_a_torch_classifier_answers_the_softmax_of_the_modules_logits(registry):
    frame, label = cancer()
    net = trained_mlp(frame, label, n_out=2)
    registry.register(
        "net",
        net,
        input_schema=frame,
        output_type="logits",
        tags=classes_tag(CANCER_CLASSES),
    )
    variant = load_variant(registry, "stable", "primary", "net", 1)
    answer = variant.predict(variant.check(records(frame)))
    logits = module_answer(net, frame)
    assert answer.classes == CANCER_CLASSES
    assert answer.predictions == np.asarray(CANCER_CLASSES)[logits.argmax(axis=1)].tolist()
    np.testing.assert_allclose(answer.probabilities, _softmax(logits.astype(float)), **FLOAT32)
    # It learned the task: the served labels agree with the truth on most rows.
    truth = np.asarray(CANCER_CLASSES)[label]
    assert np.mean(np.asarray(answer.predictions) == truth) > 0.9


@pytest.mark.torch
def test_a_torch_regressor_answers_the_modules_output_exactly(registry):
    frame, target = diabetes()
    net = trained_mlp(frame, target, n_out=1)
    registry.register("net", net, input_schema=frame)
    variant = load_variant(registry, "stable", "primary", "net", 1)
    answer = variant.predict(variant.check(records(frame.head(40))))
    assert answer.predictions == module_answer(net, frame.head(40)).reshape(-1).tolist()
    assert answer.probabilities is None


def test_an_onnx_model_of_another_width_is_refused_at_load_naming_both(registry):
    frame, label = cancer()
    converted = onnx_bytes(logistic(frame, label), frame)
    registry.register("m", converted, input_schema=frame.iloc[:, :29])
    with pytest.raises(UnservableModelError) as refused:
        load_variant(registry, "stable", "primary", "m", 1)
    assert str(refused.value).startswith(
        "variant 'stable': models:/m/1: input 'X' takes 30 features per row, but the "
        "version's signature has 29 columns ('mean radius', 'mean texture', "
    )


@pytest.mark.torch
def test_a_torch_module_of_another_width_is_refused_at_load_naming_its_first_layer(registry):
    frame, label = cancer()
    registry.register("net", trained_mlp(frame.iloc[:, :4], label, 2), input_schema=frame)
    with pytest.raises(UnservableModelError) as refused:
        load_variant(registry, "stable", "primary", "net", 1)
    assert str(refused.value).startswith(
        "variant 'stable': models:/net/1: the module's first layer ('1', a Linear) takes "
        "4 features per row, but the version's signature has 30 columns ('mean radius', "
    )


@pytest.mark.torch
def test_a_classes_tag_that_does_not_match_the_logits_is_refused(registry):
    frame, label = cancer()
    registry.register(
        "net",
        trained_mlp(frame, label, 2),
        input_schema=frame,
        output_type="logits",
        tags=classes_tag(["a", "b", "c"]),
    )
    with pytest.raises(UnservableModelError, match="tag 'classes' names 3 classes, the model's"):
        load_variant(registry, "stable", "primary", "net", 1)


def test_an_onnx_version_without_a_signature_or_with_external_tensors_is_refused(registry):
    frame, label = cancer()
    converted = onnx_bytes(logistic(frame, label), frame)
    registry.register("bare", converted)
    with pytest.raises(UnservableModelError, match="needs an input signature naming the columns"):
        load_variant(registry, "stable", "primary", "bare", 1)
    model = onnx.load_from_string(converted)
    # skl2onnx keeps a linear model's weights in its nodes' attributes: a tensor is added.
    model.graph.initializer.append(onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [1], [0]))
    weights = model.graph.initializer[-1]
    del weights.float_data[:]
    weights.data_location = onnx.TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../etc/passwd")
    registry.register("outside", model.SerializeToString(), input_schema=frame)
    with pytest.raises(UnservableModelError, match="stored as external data, which names files"):
        load_variant(registry, "stable", "primary", "outside", 1)


@pytest.fixture
def runtime(registry):
    served = ServingRuntime(registry.db, registry.artifacts)
    yield served
    served.close()


@pytest.mark.torch
def test_onnx_and_torch_variants_serve_canaries_and_shadows_with_events(registry, runtime):
    frame, label = cancer()
    model = logistic(frame, label)
    net = trained_mlp(frame, label, 2)
    registry.register("sk", model, input_schema=frame)
    registry.register("ox", onnx_bytes(model, frame), input_schema=frame)
    registry.register(
        "net", net, input_schema=frame, output_type="logits", tags=classes_tag([0, 1])
    )
    Deployments(registry.db).deploy(
        "api",
        [
            Variant("stable", "sk", version=1, weight=0.5),
            Variant("canary", "ox", version=1, role="candidate", weight=0.5),
            Variant("mirror", "net", version=1, role="shadow", weight=0),
        ],
        strategy="canary",
    )
    rows = frame.head(60)
    answered = {}
    for position, record in enumerate(records(rows)):
        answer = runtime.predict("api", [record], routing_key=f"user-{position}")
        answered[position] = answer
    by_variant = {a.variant for a in answered.values()}
    assert by_variant == {"stable", "canary"}
    expected = model.predict_proba(rows)
    for position, answer in answered.items():
        assert answer.predictions == [model.predict(rows.iloc[[position]])[0]]
        np.testing.assert_allclose(answer.answer.probabilities, expected[[position]], **FLOAT32)

    def shadow_events():
        runtime.recorder.flush()
        return read_prediction_events(registry.db, "api", role="shadow")

    poll(lambda: len(shadow_events()) == len(rows), 20.0)
    shadows = shadow_events()
    assert set(shadows["variant"]) == {"mirror"} and shadows["error"].isna().all()
    logits = module_answer(net, rows).astype(float)
    by_request = {a.request_id: position for position, a in answered.items()}
    for request_id, output in zip(shadows["request_id"], shadows["output"], strict=True):
        position = by_request[request_id]
        assert output["predictions"] == [int(logits[position].argmax())]
        np.testing.assert_allclose(output["probabilities"], _softmax(logits[[position]]), **FLOAT32)
    canary = read_prediction_events(registry.db, "api", variant="canary")
    served = {a.request_id: a.predictions for a in answered.values() if a.variant == "canary"}
    assert dict(zip(canary["request_id"], canary["output"].str["predictions"], strict=True)) == (
        served
    )


@pytest.mark.torch
@pytest.mark.parametrize("flavor", ["onnx", "pytorch"])
def test_micro_batched_answers_equal_one_by_one_answers(registry, runtime, flavor):
    frame, label = cancer()
    if flavor == "onnx":
        registry.register("m", onnx_bytes(forest(frame, label), frame), input_schema=frame)
    else:
        net = trained_mlp(frame, label, 2)
        registry.register("m", net, input_schema=frame, output_type="logits")
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    deployments.configure("api", batching={"max_batch_size": 16, "max_wait_ms": 1_000})
    batch = records(frame.head(40))

    async def concurrently():
        tokens = [runtime.arrivals.start() for _ in batch]
        return await asyncio.gather(
            *(
                runtime.predict_async("api", [record], arrival=token)
                for token, record in zip(tokens, batch, strict=True)
            )
        )

    together = asyncio.run(concurrently())
    alone = [runtime.predict("api", [record]) for record in batch]
    assert [a.predictions for a in together] == [a.predictions for a in alone]
    np.testing.assert_allclose(
        [a.answer.probabilities[0] for a in together],
        [a.answer.probabilities[0] for a in alone],
        **FLOAT32,
    )
    calls = _batch_calls(runtime.metrics.exposition().decode())
    assert calls == 3  # 40 requests that began together: calls of 16, 16 and 8 records


def _batch_calls(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        if family.name == "opsloop_batch_records":
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels["deployment"] == "api":
                    return sample.value
    raise AssertionError("no batch histogram")


@pytest.mark.torch
def test_a_scoring_worker_loads_a_torch_classifier_with_its_declared_classes(registry, runtime):
    # Distributed batch scoring ships the version to its workers: the classes tag travels
    # with it, so a worker labels rows as the data plane does.
    from opsloop.serving.distributed_scoring import _shipped, worker_variant

    frame, label = cancer()
    net = trained_mlp(frame, label, 2)
    registry.register(
        "net", net, input_schema=frame, output_type="logits", tags=classes_tag(CANCER_CLASSES)
    )
    Deployments(registry.db).deploy("api", [Variant("stable", "net", version=1)])
    served = runtime.served("api").loaded["stable"]
    (shipped,), (data,) = _shipped(runtime, [served])
    worker = worker_variant(shipped, data)
    rows = records(frame.head(10))
    assert worker.predict(worker.check(rows)) == served.predict(served.check(rows))
    assert worker.predict(worker.check(rows)).classes == CANCER_CLASSES
