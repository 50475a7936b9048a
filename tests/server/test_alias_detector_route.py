"""Moving an alias that a deployment with an input detector follows, through the registry's
HTTP route on a real server: a version the detector cannot score is refused with a 422 that
names the field ``version`` (:mod:`opsloop.registry.alias_move_check`)."""

from __future__ import annotations

import httpx
from sklearn.linear_model import LogisticRegression
from tests.server.running import running_server
from tests.serving.served_models import loan_table

from opsloop.learn.robustness.portable_detector import fit_portable_detector
from opsloop.serving import Deployments, Variant

API = "/api/v1"


def test_an_alias_move_the_detector_cannot_score_is_a_422_naming_version(app, registry, models):
    frame, label = loan_table()
    narrow = frame.drop(columns="income")
    # Version 3 of credit reads only the age: the detector's income is not in its signature.
    age_only = LogisticRegression(max_iter=1000).fit(narrow, label)
    registry.register("credit", age_only, input_schema=narrow)
    registry.set_alias("credit", "champion", 1)
    deployments = Deployments(registry.db)
    deployments.deploy("api", [Variant("stable", "credit", alias="champion")])
    deployments.set_input_detector("api", fit_portable_detector(frame, fpr=0.05))
    moves = len(registry.audit("credit").query("action == 'set_alias'"))

    token = app.state.installation_token
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        refused = client.put(f"{API}/models/credit/aliases/champion", json={"version": 3})
        assert refused.status_code == 422, refused.text
        assert refused.json() == {
            "detail": "version: variant 'stable' of deployment 'api' follows alias 'champion', "
            "and the deployment's input detector could not score version 3 (change or remove "
            "the detector first): 'income' is not a column of the input signature of model "
            "'credit' version 3",
            "code": "invalid_argument",
            "error": "InvalidArgumentError",
        }
        # Nothing moved: the alias, what the deployment serves and the audit log are as before.
        champion = client.get(f"{API}/models/credit/version", params={"alias": "champion"})
        assert champion.json()["version"] == 1
        assert deployments.get("api").serving == {"stable": 1}
        assert len(registry.audit("credit").query("action == 'set_alias'")) == moves

        # A version whose signature has both features moves the alias as before.
        moved = client.put(f"{API}/models/credit/aliases/champion", json={"version": 2})
        assert moved.status_code == 204, moved.text
    assert deployments.get("api").serving == {"stable": 2}
