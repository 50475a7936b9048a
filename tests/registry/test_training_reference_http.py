"""A version registered over HTTP with its training data keeps the reference the client
built (the rows never travel); a reference sent by hand is checked on the server, each
mistake a 422 naming the field."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from opsloop.data.training_reference import (
    REFERENCE_SAMPLE_SIZE,
    build_reference,
    encode_reference,
)
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.reference import get_reference, reference_origin, set_reference
from opsloop.registry import add_user
from opsloop.serving.deployments import Deployments, Variant

API = "/api/v1"


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer(as_frame=True)
    return data.data.iloc[:300].reset_index(drop=True), data.target.to_numpy()[:300]


def test_registered_over_http_the_reference_equals_the_one_set_locally(registry, remote, cancer):
    frame, target = cancer
    model = LogisticRegression(max_iter=3000).fit(frame, target)
    version = remote.register("credit-default", model, training_data=frame)
    assert version.version == 1
    kept = registry.training_reference("credit-default", 1)
    explicit = set_reference(registry.db, "explicit", frame)
    assert kept.features == tuple(frame.columns)
    assert (kept.profile.n_rows, len(kept.sample)) == (300, 300)
    assert kept.sample.rows.equals(explicit.sample.rows)
    assert kept.schema.columns == explicit.schema.columns
    Deployments(registry.db, actor="owner").deploy(
        "api", [Variant("stable", "credit-default", version=1)]
    )
    assert reference_origin(registry.db, "api") == "registered with credit-default v1"
    assert get_reference(registry.db, "api").sample.rows.equals(explicit.sample.rows)
    entry = registry.audit("credit-default").iloc[-1]
    assert entry["action"] == "register_version"
    assert entry["after"]["training_reference"] == {
        "rows": 300,
        "sample": 300,
        "features": list(frame.columns),
    }


def _post(server_url, token, name, reference):
    artifact = b"\x08\x01"
    digest = hashlib.sha256(artifact).hexdigest()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server_url, headers=headers) as client:
        client.put(
            f"{API}/artifacts/{digest}",
            content=artifact,
            headers={"Content-Type": "application/octet-stream"},
        )
        return client.post(
            f"{API}/models/{name}/versions",
            json={"artifact_sha256": digest, "flavor": "onnx", "training_reference": reference},
        )


def _repacked(reference, change):
    state = json.loads(zlib.decompress(reference.to_bytes()))
    change(state)
    return base64.b64encode(zlib.compress(json.dumps(state).encode())).decode()


def test_a_bad_reference_is_a_422_naming_the_field(registry, server_url):
    token = add_user(registry.db, "eda", "editor")[1]
    frame = np.arange(40.0).reshape(20, 2)
    good = build_reference(pd.DataFrame(frame, columns=["a", "b"]))
    too_big = build_reference(
        pd.DataFrame({"x": np.arange(REFERENCE_SAMPLE_SIZE + 1.0)}),
        sample_size=REFERENCE_SAMPLE_SIZE + 1,
    )
    cases = {
        "not base64!": "training_reference: not base64",
        base64.b64encode(b"plain").decode(): "training_reference: not an encoded reference",
        encode_reference(too_big): (
            f"training_reference.sample: {REFERENCE_SAMPLE_SIZE + 1} rows, more than the "
            f"{REFERENCE_SAMPLE_SIZE} a reference keeps"
        ),
        _repacked(good, lambda s: s.pop("profile")): "training_reference.profile: missing",
        _repacked(good, lambda s: s.update(features=["a"])): (
            "training_reference.sample: columns ['a', 'b'], expected ['a']"
        ),
        _repacked(good, lambda s: s.update(profile={"columns": 3})): (
            "training_reference.profile: not a profile"
        ),
        _repacked(good, lambda s: s.update(has_predictions="yes")): (
            "training_reference.has_predictions: true or false"
        ),
    }
    for sent, message in cases.items():
        response = _post(server_url, token, "m", sent)
        assert response.status_code == 422, (message, response.text)
        assert message in response.text, (message, response.text)
    # Nothing refused was registered; the good one is.
    assert registry.list_models().empty
    assert _post(server_url, token, "m", encode_reference(good)).status_code == 201
    assert registry.training_reference("m", 1).sample.rows.equals(good.sample.rows)


def test_over_http_the_reference_keeps_the_inputs_and_the_named_label_apart(
    registry, remote, cancer
):
    frame, target = cancer
    model = LogisticRegression(max_iter=3000).fit(frame, target)
    labelled = frame.assign(target=target)
    remote.register("c", model, input_schema=frame, training_data=labelled, label_column="target")
    remote.register("c", model, input_schema=frame, training_data=labelled)
    named, unnamed = registry.training_reference("c", 1), registry.training_reference("c", 2)
    assert named.features == unnamed.features == tuple(frame.columns)
    assert (named.has_labels, unnamed.has_labels) == (True, False)
    # What the local registry keeps of the same call, to the row.
    local = registry.register(
        "c", model, input_schema=frame, training_data=labelled, label_column="target"
    )
    assert registry.training_reference("c", local.version).sample.rows.equals(named.sample.rows)
    assert sorted(named.sample.frame()["__label__"]) == sorted(target)
    # A reference built by hand from more than the inputs is refused by the server.
    with pytest.raises(InvalidArgumentError, match=r"training_reference: its column 'target'"):
        remote.register(
            "c", model, input_schema=frame,
            training_reference=encode_reference(build_reference(labelled)),
        )  # fmt: skip
