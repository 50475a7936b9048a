"""A rate gate's baseline settings through ``PUT /api/v1/deployments/NAME/rollout``: the
HTTP client and the local class keep the same rollout, a baseline given by hand or read
from the recorded events, on SQLite and PostgreSQL; a wrong setting is a 422 naming the
field."""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server

from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink

WINDOW_MS = 600_000


def _canary() -> list[Variant]:
    return [
        Variant("stable", "credit", version=1, weight=0.9),
        Variant("canary", "credit", version=2, role="candidate", weight=0.1),
    ]


def _plain(value, name: str):
    """``value`` without its times (``*_ms``), with the deployment's name as ``NAME``."""
    if isinstance(value, dict):
        return {k: _plain(v, name) for k, v in value.items() if not k.endswith("_ms")}
    if isinstance(value, list):
        return [_plain(v, name) for v in value]
    if isinstance(value, str):
        return value.replace(name, "NAME")
    return value


def _recorded(db, name: str, now: int) -> None:
    """1,250 answers of ``name``'s primary in the window, 15 of them failures."""
    StoreEventSink(db, sampler=None).write(
        [
            PredictionEvent(name, "stable", "primary", "credit", 1, f"{name}-{i}", None, [],
                            None if i < 15 else {"predictions": [1]},
                            "boom" if i < 15 else None, 1.0, now - 1_000 - i)
            for i in range(1_250)
        ]
    )  # fmt: skip


GATES = [
    {"errors": {"baseline": [12, 4_000], "baseline_alpha": 0.03, "guard": 1.5}},
    {
        "errors": {
            "baseline": "recorded",
            "baseline_window_ms": WINDOW_MS,
            "baseline_min_requests": 1_250,
            "alpha": 0.01,
            "guard": 2.0,
        }
    },
]


@pytest.mark.parametrize("gates", GATES, ids=["by hand", "recorded"])
def test_baseline_settings_keep_the_same_rollout_locally_and_over_http(registry, gates):
    registry.register("credit", b"model 1", flavor="onnx")
    registry.register("credit", b"model 2", flavor="onnx")
    now = registry.db.clock()
    local = Deployments(registry.db)
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        remote = HttpDeployments(url, token="")
        rollouts = []
        for side, name in ((local, "api-local"), (remote, "api-http")):
            side.deploy(name, _canary(), strategy="canary")
            _recorded(registry.db, name, now)
            rollouts.append(side.set_rollout(name, steps=[0.5, 1.0], gates=gates))
            assert side.rollout(name) == rollouts[-1]
        remote.close()
    mine, theirs = rollouts
    assert _plain(mine, "api-local") == _plain(theirs, "api-http")
    saved = mine["state"]["gates"]["errors"]["params"]
    if gates["errors"]["baseline"] == "recorded":
        assert saved["baseline"] == [15, 1_250]
        for rollout, name in zip(rollouts, ("api-local", "api-http"), strict=True):
            read = rollout["state"]["baseline_sources"]["errors"]
            assert (read["deployment"], read["requests"], read["failures"]) == (name, 1_250, 15)
            assert read["until_ms"] - read["since_ms"] == WINDOW_MS
    else:
        assert saved["baseline"] == [12, 4_000]
    assert (saved["baseline_alpha"], saved["guard"]) == (
        gates["errors"].get("baseline_alpha", 0.9 * gates["errors"].get("alpha", 0.05)),
        gates["errors"]["guard"],
    )
    assert mine["policy"]["gates"] == gates


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"baseline": "stored"}, "baseline"),
        ({"baseline": [1, 2, 3]}, "baseline"),
        ({"baseline": [-1, 2_000]}, "baseline"),
        ({"baseline": "recorded", "baseline_alpha": 1.5}, "baseline_alpha"),
        ({"baseline": "recorded", "guard": -1.0}, "guard"),
        ({"baseline": "recorded", "baseline_window_ms": 0}, "baseline_window_ms"),
        ({"baseline": "recorded", "baseline_window_ms": 2**62}, "baseline_window_ms"),
        ({"baseline": "recorded", "baseline_min_requests": 10}, "baseline_min_requests"),
        ({"baseline": "recorded", "baseline_min_requests": "many"}, "baseline_min_requests"),
    ],
)
def test_a_wrong_baseline_setting_is_a_422_naming_the_field(registry, params, field):
    registry.register("credit", b"model 1", flavor="onnx")
    registry.register("credit", b"model 2", flavor="onnx")
    Deployments(registry.db).deploy("api", _canary(), strategy="canary")
    app = create_app(registry.db, registry.artifacts)
    token = app.state.installation_token
    with (
        running_server(app) as url,
        httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        response = client.put(
            "/api/v1/deployments/api/rollout",
            json={"steps": [0.5, 1.0], "gates": {"errors": params}},
        )
        assert response.status_code == 422, response.text
        located = [".".join(map(str, item["loc"])) for item in response.json()["detail"]]
        assert all(loc.startswith(f"body.gates.errors.{field}") for loc in located), located
        assert client.get("/api/v1/deployments/api/rollout").status_code == 404
