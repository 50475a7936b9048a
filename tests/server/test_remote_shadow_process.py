"""Shadows in a process of their own on a data plane with no store: a real control plane on
loopback, a data plane on its URL with an editor's token. The shadow's child loads its
version through the control plane (a tampered artifact is refused there by its sha256) and
records its answers in the control plane's store, sampled as in the serving process."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from tests.server.running import running_server
from tests.serving.served_models import loan_table, poll

from opsloop.errors import InvalidArgumentError
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant, remote_runtime
from opsloop.serving import read_prediction_events as events_of
from opsloop.serving.control_plane_shadow_host import ControlPlaneShadowHost
from opsloop.serving.shadow_process import ShadowProcess
from opsloop.serving.shadow_sampling import in_shadow_sample

# Each test starts a fresh interpreter that imports scikit-learn and pandas.
pytestmark = pytest.mark.slow


@pytest.fixture
def worker(registry):
    """The data plane's token: an editor's (an admin makes the store have users)."""
    add_user(registry.db, "owner", "admin")
    return add_user(registry.db, "worker", "editor")[1]


@pytest.fixture
def control_plane(registry, worker):
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        yield url


def test_a_shadow_process_answers_through_the_control_plane(
    registry, models, worker, control_plane
):
    Deployments(registry.db, actor="owner").deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "credit", version=2, role="shadow", weight=0, shadow_sample=0.5),
        ],
        strategy="shadow",
    )
    runtime = remote_runtime(control_plane, token=worker, trust=True, shadow_isolation="process")
    frame, _ = loan_table(n=30, seed=2)
    try:
        assert runtime.db is None and runtime.shadow_isolation == "process"
        ids = [runtime.predict("api", [r]).request_id for r in frame.to_dict("records")]
        chosen = [n for n, r in enumerate(ids) if in_shadow_sample(r, 0.5)]
        poll(lambda: runtime.shadow_counts("api")["copy"]["answered"] == len(chosen), 180.0)
        assert runtime.shadow_counts("api")["copy"] == {
            "answered": len(chosen),
            "failed": 0,
            "dropped": 0,
            "sampled_out": len(ids) - len(chosen),
        }
        assert isinstance(runtime._mirrors["api", "copy"], ShadowProcess)
    finally:
        runtime.close()
    # The child reported its answers after the control plane kept their events.
    shadow = events_of(registry.db, "api", role="shadow")
    assert sorted(shadow["request_id"]) == sorted(ids[n] for n in chosen)
    assert set(shadow["version"]) == {2}
    by_request = dict(zip(shadow["request_id"], shadow["output"], strict=True))
    expected = models[2].predict(frame.iloc[chosen])
    assert [by_request[ids[n]]["predictions"][0] for n in chosen] == expected.tolist()


def _copy(request_id: str, version: int):
    variant = SimpleNamespace(model_name="credit", version=version)
    record = {"age": 40, "income": 52_000.0}
    return SimpleNamespace(
        variant=variant, request_id=request_id, routing_key=None, records=[record]
    )


def test_the_child_refuses_a_tampered_artifact_by_its_sha256(
    registry, models, worker, control_plane
):
    version = registry.get_version("credit", 2)
    path = registry.artifacts.path(version.artifact_sha256)
    with open(path, "r+b") as handle:  # one byte changed where the artifact is kept
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    host = ControlPlaneShadowHost(control_plane, token=worker, trust=True)
    failures = []
    mirror = ShadowProcess("api/copy", "api", "copy", host, on_failure=failures.append)
    try:
        assert mirror.offer(_copy("r-tampered", 2)) and mirror.offer(_copy("r-intact", 1))
        poll(lambda: mirror.failed + mirror.answered == 2, 180.0)
        assert (mirror.failed, mirror.answered, failures) == (1, 1, ["model_error"])
    finally:
        mirror.close()
    events = events_of(registry.db, "api", role="shadow").set_index("request_id")
    assert version.artifact_sha256 in events.loc["r-tampered", "error"]
    assert pd.isna(events.loc["r-intact", "error"])
    assert (
        events.loc["r-intact", "output"]["predictions"]
        == models[1].predict(pd.DataFrame([{"age": 40, "income": 52_000.0}])).tolist()
    )


def test_the_token_stays_out_of_the_hosts_repr_and_isolation_is_checked():
    host = ControlPlaneShadowHost("http://127.0.0.1:1", token="olp_secret")
    assert "olp_secret" not in repr(host)
    with pytest.raises(InvalidArgumentError, match="shadow_isolation must be"):
        remote_runtime("http://127.0.0.1:1", token="olp_x", shadow_isolation="fork")
