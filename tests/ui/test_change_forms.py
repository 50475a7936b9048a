"""Changes from the dashboard's forms over HTTP against a real server on loopback: each form
calls the same audited operation as the REST API, only for the roles that may, and only
with this session's CSRF token; a refused change is a page naming the field, and changes
nothing."""

from __future__ import annotations

import re

import httpx
import pandas as pd
import pytest
from tests.server.running import running_server
from tests.ui.signing_in import TIMEOUT_S, page_csrf, session

from opsloop.registry import ModelRegistry, add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant

ROLES = {"ada": "admin", "ed": "editor", "apo": "approver", "abe": "approver", "vic": "viewer"}


@pytest.fixture
def served(database, artifacts):
    """A server with users of each role, model ``m`` (versions 1 and 2, ``champion`` at 1)
    and deployment ``api``: a canary of version 2 beside the champion."""
    tokens = {name: add_user(database, name, role)[1] for name, role in ROLES.items()}
    registry = ModelRegistry(database, artifacts, actor="ada")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    registry.set_alias("m", "champion", 1)
    deployments = Deployments(database, actor="ada")
    deployments.deploy(
        "api",
        [
            Variant("stable", "m", alias="champion", weight=0.9),
            Variant("cand", "m", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
        reason="launch",
    )
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url, tokens, registry, deployments


def weights(deployments, name: str = "api") -> dict[str, float]:
    return {v.name: v.weight for v in deployments.get(name).variants}


def shown(client: httpx.Client, name: str, variant: str | None = None) -> dict[str, str]:
    """What the deployment page's forms carry of what it showed: the definition's revision
    and, with ``variant``, the version its promote form names (absent for those without)."""
    page = client.get(f"/deployments/{name}").text
    found = dict(re.findall(r'name="(revision)" value="(\d+)"', page)[:1])
    if variant is not None:
        version = re.search(
            rf'name="variant" value="{variant}">\s*<input type="hidden" name="revision" '
            r'value="\d+">\s*<input type="hidden" name="version" value="(\d+)"',
            page,
        )
        if version:
            found["version"] = version.group(1)
    return found


def post(client: httpx.Client, path: str, token: str | None, **fields) -> httpx.Response:
    """Post a deployment page's form as a browser does: with what the page showed when the
    test gives none of it, and the session's CSRF token unless ``token`` is ``None`` (or
    the fields carry one)."""
    form = re.fullmatch(r"/deployments/([^/]+)/(weights|promote|restore|switch)", path)
    data = {} if form is None else shown(client, form.group(1), fields.get("variant"))
    data.update(fields)
    if token is not None and "csrf_token" not in fields:
        data["csrf_token"] = page_csrf(client, "/models")
    return client.post(path, data=data, follow_redirects=False)


def test_buttons_appear_only_for_the_roles_that_may_use_them(served):
    url, tokens, _, _ = served
    seen = {}
    for name in ("vic", "ed", "apo"):
        with session(url, tokens[name]) as client:
            page = client.get("/deployments/api").text + client.get("/models/m/versions/2").text
        seen[name] = sorted(set(re.findall(r'name="do" value="(\w+)"', page)))
    assert seen == {"vic": [], "ed": ["deploy", "move"], "apo": ["approve", "deploy", "move"]}


def test_a_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing(served):
    url, tokens, registry, deployments = served
    before = (weights(deployments), len(deployments.history("api")), len(registry.audit()))
    fields = {"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy"}
    # None, a made-up one, and the token of another user's session.
    with session(url, tokens["ada"]) as other:
        others = page_csrf(other)
    for given in (None, "0" * 64, others):
        posted = fields if given is None else {**fields, "csrf_token": given}
        with session(url, tokens["ed"]) as client:
            refused = client.post("/deployments/api/weights", data=posted, follow_redirects=False)
            alias = client.post(
                "/models/m/versions/2/alias",
                data={**posted, "alias": "champion", "do": "move"},
                follow_redirects=False,
            )
        for response in (refused, alias):
            assert response.status_code == 403, given
            assert "csrf_token: missing or not this session&#39;s" in response.text
    after = (weights(deployments), len(deployments.history("api")), len(registry.audit()))
    assert after == before and registry.get_version("m", alias="champion").version == 1


def test_a_post_without_a_session_goes_to_log_in_and_back_to_its_page(served):
    url, _, _, deployments = served
    response = httpx.post(
        f"{url}/deployments/api/weights",
        data={"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy"},
        headers={"Referer": f"{url}/deployments/api?at=x"},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdeployments%2Fapi"
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}


def test_a_cross_site_post_is_refused_even_with_the_token(served):
    url, tokens, _, deployments = served
    with session(url, tokens["ed"]) as client:
        refused = client.post(
            "/deployments/api/weights",
            data={"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy",
                  "csrf_token": page_csrf(client)},
            headers={"Origin": "http://evil.example"},
            follow_redirects=False,
        )  # fmt: skip
    assert refused.status_code == 403 and "posted from this server" in refused.text
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}


def test_new_weights_are_the_rest_apis_audited_deploy(served):
    url, tokens, _, deployments = served
    token = tokens["ed"]
    with session(url, token) as client:
        done = post(
            client, "/deployments/api/weights", token,
            **{"weight.stable": "0.5", "weight.cand": "0.5", "note": "half", "do": "deploy"},
        )  # fmt: skip
        assert (
            done.status_code == 303 and done.headers["location"] == "/deployments/api?done=deployed"
        )
        assert "The new definition is deployed" in client.get(done.headers["location"]).text
    assert weights(deployments) == {"stable": 0.5, "cand": 0.5}
    entries = len(deployments.history("api"))

    def rest_deploy(shares: dict[str, float]) -> httpx.Response:
        variants = [
            v.with_weight(shares[v.name]).to_dict() for v in deployments.get("api").variants
        ]
        return httpx.put(
            f"{url}/api/v1/deployments/api",
            json={"variants": variants, "strategy": "canary", "reason": "half"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )

    # The REST API's deploy of the definition the form deployed changes nothing: the same
    # definition, and no entry; so does the form's, which says so.
    assert rest_deploy({"stable": 0.5, "cand": 0.5}).status_code == 200
    assert len(deployments.history("api")) == entries
    with session(url, token) as client:
        again = post(
            client, "/deployments/api/weights", token,
            **{"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy"},
        )  # fmt: skip
        assert again.headers["location"] == "/deployments/api?done=unchanged"
        page = client.get(again.headers["location"]).text
    assert "Nothing changed: the deployment serves that definition already" in page
    assert "The new definition is deployed" not in page
    assert len(deployments.history("api")) == entries
    # A change through the REST API writes the same kind of entry.
    assert rest_deploy({"stable": 0.4, "cand": 0.6}).status_code == 200
    by_form, by_rest = deployments.history("api").tail(2).to_dict("records")
    assert by_form["actor"] == by_rest["actor"] == "ed"
    assert by_form["action"] == by_rest["action"] == "deploy"
    assert by_form["reason"] == by_rest["reason"] == "half"
    assert [(v["name"], v["weight"]) for v in by_form["after"]["variants"]] == [
        ("stable", 0.5), ("cand", 0.5)
    ]  # fmt: skip
    assert [(v["name"], v["weight"]) for v in by_rest["after"]["variants"]] == [
        ("stable", 0.4), ("cand", 0.6)
    ]  # fmt: skip
    # Apart from the weights, the REST API's entry records what the form's did.
    assert [
        {k: x for k, x in v.items() if k != "weight"} for v in by_rest["after"]["variants"]
    ] == [{k: x for k, x in v.items() if k != "weight"} for v in by_form["after"]["variants"]]
    assert weights(deployments) == {"stable": 0.4, "cand": 0.6}


#: Refused weights: the fields, the page's message, and the field marked invalid.
REFUSED_WEIGHTS = [
    ({"weight.stable": "0.9", "weight.cand": "lots"},
     "weight.cand: must be a number from 0 to 1, got &#39;lots&#39;", "weight.cand"),
    ({"weight.stable": "0.9", "weight.cand": "0.3"},
     "variants: the live weights must sum to 1, got 1.2", None),
    ({"weight.stable": "1", "weight.cand": "0"}, "strategy &#39;canary&#39;: ", None),
]  # fmt: skip


def test_a_refused_change_is_shown_beside_its_form_naming_the_field(served):
    url, tokens, _, deployments = served
    for fields, message, invalid in REFUSED_WEIGHTS:
        with session(url, tokens["ed"]) as client:
            page = post(client, "/deployments/api/weights", tokens["ed"], do="deploy", **fields)
        assert page.status_code == 422
        assert re.search(
            r'<p class="error" role="alert" id="problem-weights">' + message, page.text
        )
        if invalid is not None:
            assert re.search(rf'name="{invalid}"[^>]*aria-invalid="true"', page.text)
        # What was typed is filled in again.
        assert f'value="{fields["weight.cand"]}"' in page.text
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}


def test_a_viewer_cannot_change_anything_even_with_a_valid_form(served):
    url, tokens, _, deployments = served
    with session(url, tokens["vic"]) as client:
        page = post(
            client, "/deployments/api/weights", tokens["vic"],
            **{"weight.stable": "0.5", "weight.cand": "0.5", "do": "deploy"},
        )  # fmt: skip
    assert page.status_code == 403
    assert "user &#39;vic&#39; has role &#39;viewer&#39;; this needs &#39;editor&#39;" in page.text
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}


def test_roll_back_to_the_previous_definition(served):
    url, tokens, _, deployments = served
    token = tokens["ed"]
    with session(url, token) as client:
        post(
            client, "/deployments/api/weights", token,
            **{"weight.stable": "0.2", "weight.cand": "0.8", "do": "deploy"},
        )  # fmt: skip
        page = client.get("/deployments/api").text
        launch = int(deployments.history("api")["id"].iloc[0])
        assert f'name="entry" value="{launch}"' in page
        done = post(client, "/deployments/api/restore", token, entry=str(launch), do="deploy")
        assert done.status_code == 303
        missing = post(client, "/deployments/api/restore", token, entry="999999", do="deploy")
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}
    last = deployments.history("api").iloc[-1]
    assert (last["actor"], last["reason"]) == (
        "ed",
        f"restored the definition of history entry #{launch}",
    )
    assert missing.status_code == 404
    assert "entry: the deployment&#39;s history has no definition #999999" in missing.text


def test_a_protected_change_needs_two_approvers_then_deploys(served):
    url, tokens, _, deployments = served
    deployments.protect("api", 2, actor="ada")
    half = {"weight.stable": "0.5", "weight.cand": "0.5"}
    with session(url, tokens["ed"]) as editor:
        refused = post(editor, "/deployments/api/weights", tokens["ed"], do="deploy", **half)
    assert refused.status_code == 403
    assert "deployment &#39;api&#39; is protected" in refused.text
    with session(url, tokens["apo"]) as first:
        assert post(first, "/deployments/api/weights", tokens["apo"], do="approve", **half
                    ).headers["location"] == "/deployments/api?done=approved"  # fmt: skip
        again = post(first, "/deployments/api/weights", tokens["apo"], do="approve", **half)
        assert again.status_code == 409 and "already approved" in again.text
    approval = int(deployments.history("api")["id"].iloc[-1])
    own_note = "(your own approval is not counted: it never counts toward a deploy you make)"
    with session(url, tokens["abe"]) as second:
        assert "1 of 2</td>" in second.get("/deployments/api").text
        post(second, "/deployments/api/restore", tokens["abe"], entry=str(approval), do="approve")
        # Two approvals, of which abe's own would not count if abe deployed it.
        assert f"1 of 2 {own_note}" in second.get("/deployments/api").text
    with session(url, tokens["ed"]) as editor:
        page = editor.get("/deployments/api").text
        assert "2 of 2</td>" in page and own_note not in page
    # Four eyes: apo's button deploys it with only abe's approval counting, as the page says.
    with session(url, tokens["apo"]) as first:
        assert f"1 of 2 {own_note}" in first.get("/deployments/api").text
        own = post(first, "/deployments/api/restore", tokens["apo"], entry=str(approval),
                   do="deploy")  # fmt: skip
    assert own.status_code == 403
    assert (
        "other than &#39;apo&#39;, who applies it (an applier&#39;s own approval does not "
        "count), has 1 (abe); &#39;apo&#39; approved it too"
    ) in " ".join(own.text.split())
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}
    with session(url, tokens["ed"]) as editor:
        done = post(
            editor, "/deployments/api/restore", tokens["ed"], entry=str(approval), do="deploy"
        )
    assert done.status_code == 303
    assert weights(deployments) == {"stable": 0.5, "cand": 0.5}
    assert deployments.history("api").iloc[-1]["after"]["approved_by"] == ["abe", "apo"]


def test_an_alias_moves_from_the_version_page_and_a_protected_one_after_approval(served):
    url, tokens, registry, _ = served
    with session(url, tokens["ed"]) as editor:
        moved = post(editor, "/models/m/versions/2/alias", tokens["ed"], alias="staging", do="move")
        assert moved.headers["location"] == "/models/m/versions/2?done=moved"
        empty = post(editor, "/models/m/versions/2/alias", tokens["ed"], alias=" ", do="move")
        assert empty.status_code == 422 and "alias: give the alias to move" in empty.text
        assert re.search(r'name="alias"[^>]*aria-invalid="true"', empty.text)
    assert registry.get_version("m", alias="staging").version == 2
    registry.protect_alias("m", "champion", 1, actor="ada")
    with session(url, tokens["ed"]) as editor:
        refused = post(
            editor, "/models/m/versions/2/alias", tokens["ed"], alias="champion", do="move"
        )
        assert refused.status_code == 403 and "protected" in refused.text
        assert registry.get_version("m", alias="champion").version == 1
    with session(url, tokens["apo"]) as approver:
        approved = post(approver, "/models/m/versions/2/alias", tokens["apo"],
                        alias="champion", note="checked the gate", do="approve")  # fmt: skip
        assert approved.headers["location"] == "/models/m/versions/2?done=approved"
        # Four eyes: the approver's own move finds no approval but theirs.
        own = post(approver, "/models/m/versions/2/alias", tokens["apo"], alias="champion",
                   do="move")  # fmt: skip
        assert own.status_code == 403
        assert "other than &#39;apo&#39;, who moves it" in own.text
        assert registry.get_version("m", alias="champion").version == 1
    with session(url, tokens["ed"]) as editor:
        post(editor, "/models/m/versions/2/alias", tokens["ed"], alias="champion", do="move")
    assert registry.get_version("m", alias="champion").version == 2
    actions = registry.audit("m")[["actor", "action"]].tail(2).values.tolist()
    assert actions == [["apo", "approve"], ["ed", "set_alias"]]
    assert registry.audit("m").iloc[-1]["after"] == {"version": 2, "approved_by": ["apo"]}


def test_the_switch_button_is_an_editors_and_switches_blue_green(served):
    url, tokens, _, deployments = served
    deployments.deploy(
        "bg",
        [
            Variant("blue", "m", alias="champion", weight=1.0),
            Variant("green", "m", version=2, role="candidate", weight=0.0),
        ],
        strategy="blue_green",
    )
    shown = {}
    for name in ("vic", "ed"):
        with session(url, tokens[name]) as client:
            page = client.get("/deployments/bg").text
        shown[name] = "Switch blue/green" in page and 'action="/deployments/bg/switch"' in page
    assert shown == {"vic": False, "ed": True}
    # A deployment that is not blue/green has no switch to offer.
    with session(url, tokens["ed"]) as client:
        assert "Switch blue/green" not in client.get("/deployments/api").text
    # A viewer's post is refused before anything changes.
    with session(url, tokens["vic"]) as client:
        refused = post(client, "/deployments/bg/switch", tokens["vic"], do="switch")
    assert refused.status_code == 403 and weights(deployments, "bg") == {"blue": 1.0, "green": 0.0}
    with session(url, tokens["ed"]) as client:
        done = post(client, "/deployments/bg/switch", tokens["ed"], note="green live", do="switch")
        assert done.status_code == 303
        assert done.headers["location"] == "/deployments/bg?done=switched"
        assert "The blue/green switch is made" in client.get(done.headers["location"]).text
        assert weights(deployments, "bg") == {"blue": 0.0, "green": 1.0}
        back = post(client, "/deployments/bg/switch", tokens["ed"], do="switch")
        assert back.status_code == 303
        # A canary posted to the switch is refused on its page, naming the strategy.
        wrong = post(client, "/deployments/api/switch", tokens["ed"], do="switch")
    assert weights(deployments, "bg") == {"blue": 1.0, "green": 0.0}
    assert wrong.status_code == 409 and "strategy: deployment &#39;api&#39; is" in wrong.text
    history = deployments.history("bg")
    assert history[["actor", "reason"]].values.tolist()[1:] == [
        ["ed", "green live"],
        ["ed", "switch blue/green: green -> blue"],
    ]
    assert history["after"].iloc[1]["switched"] == {"from": "blue", "to": "green"}


def test_promote_a_candidate_is_the_rest_apis_audited_deploy_of_it_alone(served):
    url, tokens, registry, deployments = served
    shown = {}
    for name in ("vic", "ed"):
        with session(url, tokens[name]) as client:
            page = client.get("/deployments/api").text
        shown[name] = re.findall(r'name="variant" value="(\w+)"', page)
    # Only the challenger is offered, and only to an editor; no approval on an open deployment.
    assert shown == {"vic": [], "ed": ["cand"]}
    assert "Approve promoting" not in page and "serves m v2 to all the traffic" in page
    with session(url, tokens["ed"]) as client:
        done = post(client, "/deployments/api/promote", tokens["ed"], variant="cand", do="deploy")
        assert done.headers["location"] == "/deployments/api?done=promoted"
        assert "The challenger is promoted" in client.get(done.headers["location"]).text
    promoted = deployments.get("api")
    assert (promoted.strategy, promoted.serving) == ("single", {"stable": 2})
    only = promoted.variants[0]
    assert (only.name, only.model, only.version, only.alias, only.role, only.weight) == (
        "stable", "m", 2, None, "primary", 1.0
    )  # fmt: skip
    last = deployments.history("api").iloc[-1]
    assert (last["actor"], last["action"], last["reason"]) == (
        "ed",
        "deploy",
        "promoted 'cand' (m v2) to serve all traffic",
    )
    # The aliases stay where they were: that is the version page's change.
    assert registry.get_version("m", alias="champion").version == 1
    # The REST API's deploy of the same definition changes nothing (no entry): the form
    # deployed exactly that definition.
    entries = len(deployments.history("api"))
    rest = httpx.put(
        f"{url}/api/v1/deployments/api",
        json={"variants": [{"name": "stable", "model": "m", "version": 2}],
              "strategy": "single", "reason": "by hand"},
        headers={"Authorization": f"Bearer {tokens['ed']}"},
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert rest.status_code == 200
    assert rest.json()["revision"] == deployments.get("api").revision
    assert len(deployments.history("api")) == entries
    assert last["after"]["strategy"] == "single"


def test_a_refused_promotion_names_the_variant_and_changes_nothing(served):
    url, tokens, _, deployments = served
    with session(url, tokens["ed"]) as client:
        primary = post(client, "/deployments/api/promote", tokens["ed"], variant="stable",
                       do="deploy")  # fmt: skip
        absent = post(client, "/deployments/api/promote", tokens["ed"], variant="nope",
                      do="deploy")  # fmt: skip
    with session(url, tokens["vic"]) as client:
        viewer = post(client, "/deployments/api/promote", tokens["vic"], variant="cand",
                      do="deploy")  # fmt: skip
    assert primary.status_code == 422
    assert (
        '<p class="error" role="alert" id="problem-promote">variant: &#39;stable&#39; is the '
        "primary of &#39;api&#39;: nothing to promote"
    ) in primary.text
    assert absent.status_code == 404
    assert "variant: deployment &#39;api&#39; has no variant &#39;nope&#39;" in absent.text
    assert viewer.status_code == 403
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}
    assert len(deployments.history("api")) == 1


def test_a_protected_promotion_is_approved_by_two_then_deployed(served):
    url, tokens, _, deployments = served
    deployments.protect("api", 2, actor="ada")
    with session(url, tokens["ed"]) as editor:
        refused = post(editor, "/deployments/api/promote", tokens["ed"], variant="cand",
                       do="deploy")  # fmt: skip
    assert refused.status_code == 403 and "deployment &#39;api&#39; is protected" in refused.text
    for name in ("apo", "abe"):
        with session(url, tokens[name]) as approver:
            assert "Approve promoting cand" in approver.get("/deployments/api").text
            approved = post(approver, "/deployments/api/promote", tokens[name], variant="cand",
                            do="approve")  # fmt: skip
        assert approved.headers["location"] == "/deployments/api?done=approved"
    assert weights(deployments) == {"stable": 0.9, "cand": 0.1}
    with session(url, tokens["ed"]) as editor:
        done = post(editor, "/deployments/api/promote", tokens["ed"], variant="cand",
                    do="deploy")  # fmt: skip
    assert done.headers["location"] == "/deployments/api?done=promoted"
    assert deployments.get("api").serving == {"stable": 2}
    assert deployments.history("api").iloc[-1]["after"]["approved_by"] == ["abe", "apo"]


def test_weights_posted_after_another_change_are_refused_and_change_nothing(served):
    url, tokens, registry, deployments = served
    with session(url, tokens["ed"]) as client:
        seen = shown(client, "api")  # the page as the editor loaded it
        # A ramping canary (or another editor) deploys before the form is submitted.
        moved = deployments.deploy(
            "api",
            [
                Variant("stable", "m", alias="champion", weight=0.7),
                Variant("cand", "m", version=2, role="candidate", weight=0.3),
            ],
            strategy="canary",
            actor="ada",
            reason="ramp to 30%",
        )
        before = (len(deployments.history("api")), len(registry.audit()))
        refused = post(
            client, "/deployments/api/weights", tokens["ed"], do="deploy", **seen,
            **{"weight.stable": "0.5", "weight.cand": "0.5"},
        )  # fmt: skip
    assert refused.status_code == 409
    assert (
        '<p class="error" role="alert" id="problem-weights">revision: deployment &#39;api&#39; '
        f"changed after this page showed it (revision {seen['revision']}): ada changed it at "
    ) in refused.text
    assert (
        f"(revision {moved.revision}); nothing was changed: reload the page to see the change, "
        'then submit again <a href="/deployments/api">Reload the page</a></p>'
    ) in refused.text
    # The page refused shows the definition as it is now, its form filled from it.
    assert f'name="revision" value="{moved.revision}"' in refused.text
    assert 'name="weight.stable" type="number" min="0" max="1" step="any" required value="0.7"' in (
        refused.text
    )
    assert weights(deployments) == {"stable": 0.7, "cand": 0.3}
    assert (len(deployments.history("api")), len(registry.audit())) == before


def test_a_promotion_of_a_version_the_page_did_not_show_is_refused(served):
    url, tokens, registry, deployments = served
    registry.set_alias("m", "challenger", 2)
    deployments.deploy(
        "api",
        [
            Variant("stable", "m", alias="champion", weight=0.9),
            Variant("cand", "m", alias="challenger", role="candidate", weight=0.1),
        ],
        strategy="canary",
        actor="ada",
    )
    with session(url, tokens["ed"]) as client:
        seen = shown(client, "api", "cand")
        assert seen["version"] == "2"
        registry.set_alias("m", "challenger", 1)  # moved after the page showed v2
        before = (len(deployments.history("api")), len(registry.audit()))
        refused = post(client, "/deployments/api/promote", tokens["ed"], variant="cand",
                       do="deploy", **seen)  # fmt: skip
    assert refused.status_code == 409
    assert (
        '<p class="error" role="alert" id="problem-promote">version: &#39;cand&#39; serves m v1 '
        "now, not v2 as this page showed; nothing was changed"
    ) in refused.text
    assert deployments.get("api").strategy == "canary"
    assert (len(deployments.history("api")), len(registry.audit())) == before


def test_a_switch_from_a_page_that_showed_an_older_definition_is_refused(served):
    url, tokens, registry, deployments = served
    deployments.deploy(
        "bg",
        [
            Variant("blue", "m", version=1, weight=1.0),
            Variant("green", "m", version=2, role="candidate", weight=0.0),
        ],
        strategy="blue_green",
        actor="ada",
    )
    with session(url, tokens["ed"]) as client:
        seen = shown(client, "bg")
        deployments.switch("bg", actor="ada")
        before = (len(deployments.history("bg")), len(registry.audit()))
        refused = post(client, "/deployments/bg/switch", tokens["ed"], do="switch", **seen)
    assert refused.status_code == 409
    assert 'id="problem-switch">revision: deployment &#39;bg&#39; changed after' in refused.text
    assert weights(deployments, "bg") == {"blue": 0.0, "green": 1.0}
    assert (len(deployments.history("bg")), len(registry.audit())) == before


def _waiting_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table class="waiting">.*?</table>', page, re.S)
    if table is None:
        return []
    return [
        [
            re.sub(r"\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr><td>.*?</tr>", table.group(0), re.S)
    ]


def test_the_version_page_shows_its_alias_moves_waiting_for_approval(served):
    url, tokens, registry, _ = served
    registry.protect_alias("m", "champion", 2, actor="ada")
    with session(url, tokens["vic"]) as viewer:
        assert _waiting_rows(viewer.get("/models/m/versions/2").text) == []
    with session(url, tokens["apo"]) as approver:
        post(approver, "/models/m/versions/2/alias", tokens["apo"], alias="champion",
             note="gate passed", do="approve")  # fmt: skip
    registry.approve("m", "staging", 2, actor="abe")  # not protected
    registry.approve("m", "staging", 1, actor="abe")  # another version's
    pending = registry.pending_approvals("m", version=2)
    times = dict(
        zip(pending["approver"] + "/" + pending["alias"], pending["created_ms"], strict=True)
    )
    shown = pd.Timestamp(times["apo/champion"], unit="ms").strftime("%Y-%m-%d %H:%M:%S")
    staged = pd.Timestamp(times["abe/staging"], unit="ms").strftime("%Y-%m-%d %H:%M:%S")
    with session(url, tokens["vic"]) as viewer:
        rows = _waiting_rows(viewer.get("/models/m/versions/2").text)
    assert rows == [
        ["champion &rarr; version 2", "1 of 2", f"apo at {shown}: gate passed"],
        ["staging &rarr; version 2", "1 (the alias is not protected now)", f"abe at {staged}"],
    ]
    # The second approver brings it to 2 of 2; the move then uses them up.
    registry.approve("m", "champion", 2, actor="abe", comment="agreed")
    with session(url, tokens["vic"]) as viewer:
        rows = _waiting_rows(viewer.get("/models/m/versions/2").text)
    assert rows[0][:2] == ["champion &rarr; version 2", "2 of 2"]
    # To apo, who approved it, one approval counts toward a move apo would make.
    with session(url, tokens["apo"]) as approver:
        rows = _waiting_rows(approver.get("/models/m/versions/2").text)
    assert rows[0][1] == (
        "1 of 2 (your own approval is not counted: it never counts toward a move you make)"
    )
    assert rows[0][2].startswith(f"apo at {shown}: gate passed; abe at ")
    assert rows[0][2].endswith(": agreed")
    registry.set_alias("m", "champion", 2, actor="ed")
    with session(url, tokens["vic"]) as viewer:
        rows = _waiting_rows(viewer.get("/models/m/versions/2").text)
    assert [row[0] for row in rows] == ["staging &rarr; version 2"]
    # The REST API reads the same through the registry's contract.
    answer = httpx.get(
        f"{url}/api/v1/models/m/approvals",
        params={"version": 2},
        headers={"Authorization": f"Bearer {tokens['vic']}"},
        timeout=TIMEOUT_S,
    )
    assert answer.status_code == 200
    assert [
        (a["alias"], a["version"], a["approver"], a["approvals"], a["required"])
        for a in answer.json()["approvals"]
    ] == [("staging", 2, "abe", 1, 0)]


def _pending_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table class="pending">.*?</table>', page, re.S)
    if table is None:
        return []
    return [
        [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
        for cells in (
            re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr><td class=\"number\">.*?</tr>", table.group(0), re.S)
        )
    ]


def test_the_pages_count_no_approval_of_a_disabled_approver(served, database):
    from opsloop.registry.users import set_user_disabled

    url, tokens, registry, deployments = served
    registry.protect_alias("m", "champion", 2, actor="ada")
    deployments.protect("api", 2)
    registry.approve("m", "champion", 2, actor="apo")
    registry.approve("m", "champion", 2, actor="abe")
    single = [Variant("stable", "m", version=2)]
    for approver in ("apo", "abe"):
        Deployments(database, actor=approver).approve("api", single)
    set_user_disabled(database, "abe", actor="ada")
    with session(url, tokens["vic"]) as viewer:
        waiting = _waiting_rows(viewer.get("/models/m/versions/2").text)
        pending = _pending_rows(viewer.get("/deployments/api").text)
    assert [row[:2] for row in waiting] == [["champion &rarr; version 2", "1 of 2"]]
    assert waiting[0][2].startswith("apo at ")
    assert "; abe at " in waiting[0][2]
    assert waiting[0][2].endswith(" (no longer counts: user abe is disabled)")
    # Newest first: abe's approval, then apo's; each counts 1 of 2 (abe's left out).
    assert [(row[2], row[5]) for row in pending] == [
        ("abe (no longer counts: user abe is disabled)", "1 of 2"),
        ("apo", "1 of 2"),
    ]


def test_the_deployment_page_reads_lapsed_approvals_through_the_service(
    served, database, artifacts
):
    """The page asks the deployment service which approvals no longer count, so a
    dashboard whose deployments are another server's (``HttpDeployments``) shows them too."""
    from opsloop.registry.users import set_user_disabled
    from opsloop.serving import HttpDeployments

    url, tokens, _, deployments = served
    deployments.protect("api", 2)
    single = [Variant("stable", "m", version=2)]
    for approver in ("apo", "abe"):
        Deployments(database, actor=approver).approve("api", single)
    Deployments(database, actor="abe").approve_protection("api", 1, comment="one will do")
    set_user_disabled(database, "abe", actor="ada")
    remote = HttpDeployments(url, token=tokens["ada"])
    assert remote.lapsed_approvals("api").definitions == {"abe": "user abe is disabled"}
    assert [
        (a.approver, a.required_approvals) for a in remote.lapsed_approvals("api").protection
    ] == [("abe", 1)]
    app = create_app(database, artifacts, allow_embedded=False)
    app.state.deployments = remote
    try:
        with running_server(app) as dashboard, session(dashboard, tokens["vic"]) as viewer:
            page = viewer.get("/deployments/api")
    finally:
        remote.close()
    assert page.status_code == 200
    assert [(row[2], row[5]) for row in _pending_rows(page.text)] == [
        ("abe (no longer counts: user abe is disabled)", "1 of 2"),
        ("apo", "1 of 2"),
    ]
    # The approval of lowering the protection that no longer counts is shown apart.
    table = re.search(r'<table class="lapsed-protection">.*?</table>', page.text, re.S)
    assert table is not None
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", table.group(0), re.S)
    ]
    assert cells[1:] == ["abe", "1 approval(s)", "one will do", "user abe is disabled"]
