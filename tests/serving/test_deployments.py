"""Deployments: definitions and their rules, lineage from a deployment, history at time T."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.registry.conftest import USERS
from tests.server.running import running_server

from opsloop.errors import ConflictError
from opsloop.registry import PermissionDenied, UnknownModelError, add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, UnknownDeploymentError, Variant
from opsloop.serving.deployment_approvals import definition_digest, record_approval
from opsloop.serving.deployment_settings import DeploymentSettings
from opsloop.tracking.capture import CodeVersion, Environment, current_user
from opsloop.tracking.records import DatasetInput


@pytest.fixture
def credit(registry, tracking):
    """Three versions of ``credit``, each from its own run and commit; champion at 1."""
    environment = Environment.from_parts("3.11.7", "Linux", ["scikit-learn==1.9.0"])
    for number in (1, 2, 3):
        run_id = tracking.create_run(
            "credit",
            code=CodeVersion(str(number) * 40, "main", False, None),
            environment=environment,
        )
        tracking.log_dataset(run_id, DatasetInput("train", str(number) * 64, 100, 5))
        registry.register("credit", f"model {number}".encode(), flavor="onnx", run_id=run_id)
    registry.set_alias("credit", "champion", 1)
    return registry


def canary(weight: float = 0.1) -> list[Variant]:
    return [
        Variant("stable", "credit", alias="champion", weight=1 - weight),
        Variant("canary", "credit", version=2, role="candidate", weight=weight),
    ]


@pytest.fixture
def clock(database) -> FakeClock:
    """The store's clock, moved by hand (request it before the fixtures that write)."""
    database.clock = FakeClock()
    return database.clock


def test_a_deployment_is_stored_with_what_each_variant_serves(deployments, credit):
    made = deployments.deploy(
        "credit-api", canary(), strategy="canary", description="10% canary", reason="v2 try"
    )
    assert made.serving == {"stable": 1, "canary": 2}
    found = deployments.get("credit-api")
    assert found == made
    # Locally and through an embedded server alike, the OS user acts.
    assert (found.strategy, found.automation, found.updated_by) == (
        "canary",
        "full_automation",
        current_user(),
    )
    assert found.to_frame().values.tolist() == [
        ["stable", "primary", 0.9, "credit@champion", 1, 1.0],
        ["canary", "candidate", 0.1, "credit/2", 2, 1.0],
    ]
    listed = deployments.list()
    assert listed[["name", "strategy", "variants"]].values.tolist() == [
        [
            "credit-api",
            "canary",
            "stable=credit@champion (primary, 0.9); canary=credit/2 (candidate, 0.1)",
        ]
    ]
    # A variant that follows an alias serves wherever the alias moves.
    credit.set_alias("credit", "champion", 3)
    assert deployments.get("credit-api").serving == {"stable": 3, "canary": 2}


def test_lineage_from_a_deployment_equals_the_registry_lineage_in_one_query(credit):
    deployments = Deployments(credit.db)
    deployments.deploy("credit-api", canary(), strategy="canary")
    statements = []

    def record(*arguments):
        statements.append(arguments[2])

    sa.event.listen(credit.db.engine, "before_cursor_execute", record)
    found = deployments.lineage("credit-api")
    sa.event.remove(credit.db.engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert [(v.variant, v.role, v.weight) for v in found] == [
        ("stable", "primary", 0.9),
        ("canary", "candidate", 0.1),
    ]
    assert found[0].lineage == credit.lineage("credit", alias="champion")
    assert found[1].lineage == credit.lineage("credit", version=2)
    assert found[0].lineage.git_commit == "1" * 40
    assert found[1].lineage.datasets == (("train", "2" * 64),)
    assert found[1].to_dict()["deployment"] == "credit-api"


def test_lineage_follows_the_alias_and_names_what_is_missing(deployments, credit):
    deployments.deploy("credit-api", canary(), strategy="canary")
    found = deployments.lineage("credit-api")
    assert [v.lineage for v in found] == [
        credit.lineage("credit", alias="champion"),
        credit.lineage("credit", version=2),
    ]
    only = deployments.lineage("credit-api", variant="canary")
    assert [v.variant for v in only] == ["canary"]
    credit.set_alias("credit", "champion", 3)
    assert deployments.lineage("credit-api", "stable")[0].lineage.git_commit == "3" * 40
    with pytest.raises(UnknownDeploymentError, match="has no variant 'blue'"):
        deployments.lineage("credit-api", variant="blue")
    with pytest.raises(UnknownDeploymentError, match="no deployment named 'other'"):
        deployments.lineage("other")


def test_history_answers_what_served_at_time_t(clock, deployments, credit):
    # Each change happens at its own time, and each reading time lies between two changes.
    before = clock.advance()
    clock.advance()
    deployments.deploy("credit-api", [Variant("stable", "credit", alias="champion")])
    first = clock.advance()
    clock.advance()
    credit.set_alias("credit", "champion", 3)
    second = clock.advance()
    clock.advance()
    deployments.deploy("credit-api", canary(0.25), strategy="canary", reason="try v2")
    third = clock.advance()
    clock.advance()
    deployments.retire("credit-api", reason="moved")
    after = clock.advance()
    assert deployments.at("credit-api", before) is None
    assert deployments.at("credit-api", first).serving == {"stable": 1}
    assert deployments.at("credit-api", second).serving == {"stable": 3}
    then = deployments.at("credit-api", third)
    assert (then.strategy, then.serving) == ("canary", {"stable": 3, "canary": 2})
    assert [v.weight for v in then.variants] == [0.75, 0.25]
    assert deployments.at("credit-api", after) is None
    history = deployments.history("credit-api")
    assert history["action"].tolist() == ["deploy", "deploy", "retire"]
    assert history["reason"].tolist() == [None, "try v2", "moved"]
    assert history["before"][0] is None and history["after"][2] is None
    assert history["after"][0]["serving"] == {"stable": 1}
    assert history["before"][1]["serving"] == {"stable": 3}
    assert credit.verify_audit_log().ok
    with pytest.raises(UnknownDeploymentError, match="no deployment named 'credit-api'"):
        deployments.get("credit-api")
    assert deployments.list().empty


def test_a_retired_deployment_s_settings_are_retired_with_it(deployments, credit):
    """A deployment re-created under a retired one's name starts with the default settings
    (no threshold, rules, micro-batching or output restrictions), and the retire records
    what they were."""
    deployments.deploy("credit-api", canary(), strategy="canary")
    rules = [{"name": "minor", "when": "age < 18", "action": "override", "value": 0}]
    configured = deployments.configure(
        "credit-api",
        confidence_threshold=0.8,
        assertions=rules,
        batching={"max_batch_size": 16, "max_wait_ms": 2.5},
        outputs={"canary": {"label_only": True}},
        reason="tighten",
    )
    assert configured.revision == 1
    deployments.retire("credit-api", reason="moved")
    history = deployments.history("credit-api")
    assert history["action"].tolist() == ["deploy", "configure", "configure", "retire"]
    removed = history.iloc[2]
    assert (removed["actor"], removed["reason"]) == (current_user(), "moved")
    assert removed["before"] == {
        "deployment": "credit-api",
        "confidence_threshold": 0.8,
        "assertions": rules,
        "revision": 1,
        "updated_by": current_user(),
        "batching": {"max_batch_size": 16, "max_wait_ms": 2.5},
        "outputs": {"canary": {"decimals": None, "top_k": None, "label_only": True}},
        "routing_key_field": None,
    }
    assert removed["after"] == {
        "deployment": "credit-api",
        "confidence_threshold": None,
        "assertions": [],
        "revision": 0,
        "updated_by": None,
        "batching": None,
        "outputs": {},
        "routing_key_field": None,
    }
    # The settings' entry and the retire's are one change, at one time.
    assert history["time"].iloc[2] == history["time"].iloc[3]

    deployments.deploy("credit-api", canary(), strategy="canary")
    assert deployments.settings("credit-api") == DeploymentSettings("credit-api")
    # Configured again, the settings' revisions start over, from no earlier settings.
    assert deployments.configure("credit-api", confidence_threshold=0.6).revision == 1
    assert deployments.history("credit-api").iloc[-1]["before"] is None
    assert credit.verify_audit_log().ok


BROKEN = [
    (
        "single",
        [Variant("a", "credit", version=1), Variant("b", "credit", version=2, weight=0)],
        "exactly one must have the primary role",
    ),
    (
        "single",
        [
            Variant("a", "credit", version=1),
            Variant("b", "credit", version=2, role="shadow", weight=0),
        ],
        "strategy 'single': needs exactly one variant, got 2",
    ),
    (
        "canary",
        [
            Variant("a", "credit", version=1, weight=0),
            Variant("b", "credit", version=2, role="candidate", weight=1),
        ],
        "the candidate's share must be between 0 and 1, got 1",
    ),
    (
        "shadow",
        [Variant("a", "credit", version=1)],
        "needs the primary and at least one shadow",
    ),
    (
        "shadow",
        [
            Variant("a", "credit", version=1),
            Variant("s", "credit", version=2, role="shadow", weight=0.1),
        ],
        "variant 's': a shadow answers no traffic; its weight must be 0",
    ),
    (
        "blue_green",
        [
            Variant("blue", "credit", version=1, weight=0.5),
            Variant("green", "credit", version=2, role="candidate", weight=0.5),
        ],
        "one with weight 1 and one on standby at 0, got weights [0.5, 0.5]",
    ),
    (
        "ab",
        [
            Variant("a", "credit", version=1),
            Variant("b", "credit", version=2, role="candidate", weight=0),
        ],
        "every live variant needs a positive share, ['b'] have 0",
    ),
    (
        "ab",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.6),
        ],
        "the live weights must sum to 1, got 1.1",
    ),
    ("rolling", [Variant("a", "credit", version=1)], "strategy must be one of single, shadow"),
    (
        "single",
        [Variant("a", "credit", version=1, alias="champion")],
        "variant 'a': give a version or an alias of 'credit', not both",
    ),
    ("single", [Variant("a", "credit", version=1, role="boss")], "role must be one of"),
    ("single", [Variant("a", "credit", version=1, weight=float("nan"))], "weight must be a share"),
    ("single", [Variant("a b,c", "credit", version=1)], "variant key 'a b,c': use letters"),
    ("single", [], "a deployment needs at least one variant"),
]


@pytest.mark.parametrize(("strategy", "variants", "message"), BROKEN)
def test_a_broken_definition_names_its_rule_and_changes_nothing(
    deployments, credit, strategy, variants, message
):
    deployments.deploy("credit-api", [Variant("stable", "credit", version=1)])
    kept = deployments.get("credit-api")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        deployments.deploy("credit-api", variants, strategy=strategy)
    assert deployments.get("credit-api") == kept
    assert len(deployments.history("credit-api")) == 1


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (Variant("a", "debit", version=1), "variant 'a': no registered model 'debit'"),
        (Variant("a", "credit", version=9), "variant 'a': model 'credit' has no version 9"),
        (
            Variant("a", "credit", alias="challenger"),
            "variant 'a': model 'credit' has no alias 'challenger'",
        ),
    ],
)
def test_a_variant_must_serve_something_registered(deployments, credit, variant, message):
    with pytest.raises(UnknownModelError, match=message):
        deployments.deploy("credit-api", [variant])
    assert deployments.list().empty
    assert deployments.history("credit-api").empty


def test_the_time_of_a_change_is_the_time_of_its_history(deployments, credit):
    # No pauses: the stored definition and its audit entry carry one time.
    for weight in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        made = deployments.deploy("credit-api", canary(weight), strategy="canary")
        assert deployments.at("credit-api", made.updated_ms) == made


def test_a_deployment_name_is_one_url_segment(deployments, credit):
    with pytest.raises(ValueError, match="deployment 'api/history': a name may not contain '/'"):
        deployments.deploy("api/history", [Variant("stable", "credit", version=1)])
    assert deployments.list().empty


def test_automation_levels_are_the_articles_scale(deployments, credit):
    made = deployments.deploy(
        "assist", [Variant("stable", "credit", version=1)], automation="ai_assistance"
    )
    assert made.automation == "ai_assistance"
    with pytest.raises(ValueError, match="automation must be one of human_only, shadow, ai_"):
        deployments.deploy("assist", [Variant("stable", "credit", version=1)], automation="auto")


def test_once_users_exist_deploying_needs_the_editor_role(registry, credit):
    add_user(registry.db, "eda", "editor")
    add_user(registry.db, "vic", "viewer")
    variants = [Variant("stable", "credit", version=1)]
    with pytest.raises(PermissionDenied, match="user 'vic' has role 'viewer'; this needs 'editor'"):
        Deployments(registry.db, actor="vic").deploy("api", variants)
    with pytest.raises(PermissionDenied, match="'mallory' is not a registered user"):
        Deployments(registry.db, actor="mallory").deploy("api", variants)
    Deployments(registry.db, actor="eda").deploy("api", variants)
    with pytest.raises(PermissionDenied, match="this needs 'editor'"):
        Deployments(registry.db, actor="vic").retire("api")
    assert Deployments(registry.db).history("api")["actor"].tolist() == ["eda"]


def test_variants_parse_from_the_command_line_form():
    assert Variant.parse("canary=credit/4,role=candidate,weight=0.05") == Variant(
        "canary", "credit", version=4, role="candidate", weight=0.05
    )
    assert Variant.parse("stable=team/credit@champion") == Variant(
        "stable", "team/credit", alias="champion"
    )
    assert Variant.parse("copy=credit/5,role=shadow,weight=0,sample=0.25") == Variant(
        "copy", "credit", version=5, role="shadow", weight=0.0, shadow_sample=0.25
    )
    for text, message in [
        ("credit/4", "write NAME=MODEL/VERSION or NAME=MODEL@ALIAS"),
        ("a=credit/x", "the model must be MODEL/VERSION or MODEL@ALIAS"),
        ("a=credit/4,size=3", "options are role=ROLE, weight=SHARE and sample=SHARE"),
        ("a=credit/4,weight=lots", "weight must be a number, got 'lots'"),
        ("a=credit/4,role=shadow,weight=0,sample=half", "sample must be a number, got 'half'"),
    ]:
        with pytest.raises(ValueError, match=message):
            Variant.parse(text)


def test_over_http_the_token_decides_who_deploys(registry, credit):
    tokens = {name: add_user(registry.db, name, role)[1] for name, role in USERS.items()}
    variants = [Variant("stable", "credit", version=1)]
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        viewer = HttpDeployments(url, token=tokens["vic"])
        editor = HttpDeployments(url, token=tokens["eda"])
        with pytest.raises(PermissionDenied, match="user 'vic' has role 'viewer'"):
            viewer.deploy("api", variants)
        with pytest.raises(ValueError, match="actor: over HTTP the acting user is the owner"):
            editor.deploy("api", variants, actor="owner")
        editor.deploy("api", variants, reason="first")
        assert viewer.get("api").serving == {"stable": 1}
        with pytest.raises(PermissionDenied, match="this needs 'editor'"):
            viewer.retire("api")
        editor.retire("api", reason="done")
        assert viewer.history("api")[["actor", "action"]].values.tolist() == [
            ["eda", "deploy"],
            ["eda", "retire"],
        ]
        viewer.close()
        editor.close()


def installation(app) -> dict:
    """The header the owner's clients send to an app with no users."""
    return {"Authorization": f"Bearer {app.state.installation_token}"}


def test_the_server_checks_the_rules_itself(registry, credit):
    body = {
        "variants": [
            {"name": "a", "model": "credit", "version": 1, "weight": 0.5},
            {"name": "b", "model": "credit", "version": 2, "role": "candidate", "weight": 0.6},
        ],
        "strategy": "ab",
    }
    app = create_app(registry.db, registry.artifacts)
    with running_server(app) as url, httpx.Client(headers=installation(app)) as http:
        answer = http.put(f"{url}/api/v1/deployments/api", json=body)
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("variants: the live weights must sum to 1")
        body["variants"][1]["weight"] = 0.5
        body["variants"][1]["model"] = "debit"
        answer = http.put(f"{url}/api/v1/deployments/api", json=body)
        assert answer.status_code == 404
        assert answer.json() == {
            "detail": "variant 'b': no registered model 'debit'",
            "code": "not_found",
            "error": "UnknownModelError",
        }
        body["variants"][1]["version"] = True
        answer = http.put(f"{url}/api/v1/deployments/api", json=body)
        assert answer.status_code == 422 and "version" in answer.text
    assert Deployments(registry.db).list().empty


@pytest.fixture(params=["local", "http"])
def acting(request, registry):
    """``acting(user)``: deployments as one of the registry tests' users, locally with
    ``actor=user`` or through a real server with that user's token."""
    tokens = {name: add_user(registry.db, name, role)[1] for name, role in USERS.items()}
    if request.param == "local":
        yield lambda user: Deployments(registry.db, actor=user)
        return
    clients: list[HttpDeployments] = []
    with running_server(create_app(registry.db, registry.artifacts)) as url:

        def open_as(user: str) -> HttpDeployments:
            clients.append(HttpDeployments(url, token=tokens[user]))
            return clients[-1]

        yield open_as
        for client in clients:
            client.close()


def test_a_protected_deployment_changes_only_as_approved(acting, credit):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    first = [Variant("stable", "credit", version=1)]
    editor.deploy("credit-api", first)
    with pytest.raises(PermissionDenied, match="this needs 'admin'"):
        editor.protect("credit-api", 2)
    owner.protect("credit-api", 2, reason="production traffic")
    assert editor.get("credit-api").required_approvals == 2
    assert editor.list()[["name", "required_approvals"]].values.tolist() == [["credit-api", 2]]
    proposed = canary(0.05)
    with pytest.raises(PermissionDenied, match="needs 2 approval\\(s\\) from distinct approvers"):
        editor.deploy("credit-api", proposed, strategy="canary")
    with pytest.raises(PermissionDenied, match="this needs 'approver'"):
        editor.approve("credit-api", proposed, strategy="canary")
    assert ana.approve("credit-api", proposed, strategy="canary", comment="ok") == 1
    with pytest.raises(ValueError, match="'ana' already approved this definition"):
        ana.approve("credit-api", proposed, strategy="canary")
    # An approval is for one definition: another share is not approved by it.
    assert bo.approve("credit-api", canary(0.5), strategy="canary") == 1
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        editor.deploy("credit-api", proposed, strategy="canary")
    assert bo.approve("credit-api", proposed, strategy="canary") == 2
    made = editor.deploy("credit-api", proposed, strategy="canary", reason="approved canary")
    assert made.serving == {"stable": 1, "canary": 2}
    # Deploying it again changes nothing: it needs no approvals and writes no entry.
    again = editor.deploy("credit-api", proposed, strategy="canary", reason="again")
    assert (again.revision, again.serving) == (made.revision, made.serving)
    # The approvals were used up by that change: going back needs new ones.
    with pytest.raises(PermissionDenied, match="has 0"):
        editor.deploy("credit-api", first)
    with pytest.raises(PermissionDenied, match="this needs 'admin'"):
        editor.retire("credit-api")
    history = owner.history("credit-api")
    assert history["action"].tolist() == [
        "deploy",
        "protect",
        "approve",
        "approve",
        "approve",
        "deploy",
    ]
    assert history["after"].iloc[-1]["approved_by"] == ["ana", "bo"]
    assert history["actor"].iloc[-1] == "eda"
    owner.retire("credit-api", reason="moved")
    assert credit.verify_audit_log().ok


def test_the_appliers_own_approval_never_counts(acting, credit):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    first = [Variant("stable", "credit", version=1)]
    editor.deploy("credit-api", first)
    owner.protect("credit-api", 2)
    proposed = canary(0.05)
    assert ana.approve("credit-api", proposed, strategy="canary") == 1
    assert bo.approve("credit-api", proposed, strategy="canary") == 2
    with pytest.raises(PermissionDenied) as refused:
        ana.deploy("credit-api", proposed, strategy="canary")
    assert str(refused.value).endswith(
        "deployment 'credit-api' is protected: this definition needs 2 approval(s) from "
        "distinct approvers other than 'ana', who applies it (an applier's own approval does "
        "not count), has 1 (bo); 'ana' approved it too"
    )
    assert editor.get("credit-api").serving == {"stable": 1}
    # A third approver makes two besides ana.
    assert owner.approve("credit-api", proposed, strategy="canary") == 3
    assert ana.deploy("credit-api", proposed, strategy="canary").serving == {
        "stable": 1,
        "canary": 2,
    }
    last = owner.history("credit-api").iloc[-1]
    assert (last["action"], last["actor"], last["after"]["approved_by"]) == (
        "deploy",
        "ana",
        ["bo", "owner"],
    )
    # ana's own approval was used up with the others: back and forth needs new ones.
    ana.approve("credit-api", first)
    bo.approve("credit-api", first)
    editor.deploy("credit-api", first)
    with pytest.raises(PermissionDenied, match=r"other than 'eda', who applies it .*has 0$"):
        editor.deploy("credit-api", proposed, strategy="canary")


def test_a_blue_green_switch_counts_no_approval_of_who_switches(acting, credit):
    owner, editor, ana = (acting(user) for user in ("owner", "eda", "ana"))
    live = [
        Variant("blue", "credit", version=1),
        Variant("green", "credit", version=2, role="candidate", weight=0.0),
    ]
    editor.deploy("web", live, strategy="blue_green")
    owner.protect("web", 1)
    swapped = [v.with_weight(1.0 - v.weight) for v in editor.get("web").variants]
    assert ana.approve("web", swapped, strategy="blue_green") == 1
    with pytest.raises(PermissionDenied, match=r"other than 'ana', who applies it .*has 0; 'ana'"):
        ana.switch("web")
    switched = editor.switch("web")
    assert switched.variants == tuple(swapped)
    last = owner.history("web").iloc[-1]
    assert (last["actor"], last["after"]["approved_by"]) == ("eda", ["ana"])


def test_the_definition_in_place_has_nothing_to_approve(acting, credit):
    owner, editor, ana = (acting(user) for user in ("owner", "eda", "ana"))
    first = [Variant("stable", "credit", version=1)]
    editor.deploy("credit-api", first, description="v1")
    owner.protect("credit-api", 1)
    entries = len(owner.history("credit-api"))
    with pytest.raises(ConflictError) as refused:
        ana.approve("credit-api", first, comment="keep v1")
    assert str(refused.value).endswith(
        "deployment 'credit-api' serves this definition already: nothing to approve"
    )
    # A change of the description only serves the same: recorded, with no approvals.
    described = editor.deploy("credit-api", first, description="v1, checked")
    assert (described.description, described.serving) == ("v1, checked", {"stable": 1})
    last = owner.history("credit-api").iloc[-1]
    assert (last["action"], last["after"]["approved_by"]) == ("deploy", [])
    assert len(owner.history("credit-api")) == entries + 1
    # Approvals of the definition in place, as recorded before approve() refused them:
    # a re-deploy of it changes nothing and uses them up, so that they do not carry a
    # later change back to it that nobody approved.
    digest = definition_digest("single", "full_automation", first)
    with credit.db.write() as connection:
        record_approval(connection, "credit-api", digest, "bo", "keep v1")
    editor.deploy("credit-api", first, description="v1, checked")
    assert len(owner.history("credit-api")) == entries + 1
    ana.approve("credit-api", canary(0.1), strategy="canary")
    editor.deploy("credit-api", canary(0.1), strategy="canary")
    with pytest.raises(PermissionDenied, match=r"other than 'eda', who applies it .*has 0$"):
        editor.deploy("credit-api", first, description="v1, checked")
    assert editor.get("credit-api").strategy == "canary"


def test_a_name_can_be_protected_before_its_first_deployment(registry, credit):
    add_user(registry.db, "owner", "admin")
    add_user(registry.db, "ana", "approver")
    owner, ana = Deployments(registry.db, actor="owner"), Deployments(registry.db, actor="ana")
    owner.protect("new-api", 1)
    definition = [Variant("stable", "credit", alias="champion")]
    with pytest.raises(PermissionDenied, match="deployment 'new-api' is protected"):
        owner.deploy("new-api", definition)
    ana.approve("new-api", definition)
    assert owner.deploy("new-api", definition).required_approvals == 1
    ana.approve_protection("new-api", 0)
    owner.protect("new-api", 0)
    owner.deploy("new-api", [Variant("stable", "credit", version=3)])
    with pytest.raises(ValueError, match="required_approvals must be a non-negative integer"):
        owner.protect("new-api", -1)
    with pytest.raises(UnknownModelError, match="variant 'stable': no registered model 'x'"):
        ana.approve("new-api", [Variant("stable", "x", version=1)])


def test_a_protected_alias_guards_the_deployments_that_follow_it(acting, credit):
    owner, editor, ana, bo = (acting(user) for user in ("owner", "eda", "ana", "bo"))
    credit.protect_alias("credit", "champion", 2)
    follows = [Variant("stable", "credit", alias="champion")]
    editor.deploy("credit-api", follows)
    # Moving the alias needs approvals; pinning a version in its place needs the same.
    pinned = [Variant("stable", "credit", version=3)]
    guarded = r"deployment 'credit-api' is guarded: it follows the protected alias credit@champion"
    with pytest.raises(PermissionDenied, match=guarded):
        editor.deploy("credit-api", pinned)
    # Another alias, a canary of another version beside the alias, another model: the same.
    credit.set_alias("credit", "challenger", 2)
    credit.register("other", b"other", flavor="onnx")
    for other, strategy in (
        ([Variant("stable", "credit", alias="challenger")], "single"),
        (canary(0.05), "canary"),
        ([Variant("stable", "other", version=1)], "single"),
    ):
        with pytest.raises(PermissionDenied, match="needs 2 approval"):
            editor.deploy("credit-api", other, strategy=strategy)
    assert editor.get("credit-api").serving == {"stable": 1}
    assert ana.approve("credit-api", pinned) == 1
    with pytest.raises(PermissionDenied, match=r"has 1 \(ana\)"):
        editor.deploy("credit-api", pinned)
    assert bo.approve("credit-api", pinned) == 2
    assert editor.deploy("credit-api", pinned).serving == {"stable": 3}
    assert owner.history("credit-api")["after"].iloc[-1]["approved_by"] == ["ana", "bo"]
    # Once pinned, the deployment follows no alias: later changes are the deployment's own.
    assert editor.deploy("credit-api", [Variant("stable", "credit", version=1)]).serving == {
        "stable": 1
    }
    # Following the same protected alias with other settings needs nothing extra.
    editor.deploy("credit-api", follows)
    assert editor.deploy("credit-api", follows, automation="partial_automation").serving == {
        "stable": 1
    }


def test_out_of_range_numbers_and_nul_are_refused_naming_the_field(deployments, credit):
    # An OverflowError (a 500 over HTTP) before; now a ValueError here and a 422 there.
    with pytest.raises(ValueError, match="required_approvals"):
        deployments.protect("api", 2**31)
    with pytest.raises(ValueError, match="at_ms"):
        deployments.at("api", 10**19)
    with pytest.raises(ValueError, match="version"):
        deployments.deploy("api", [Variant("stable", "credit", version=2**40)])
    with pytest.raises(ValueError, match="description"):
        deployments.deploy("api", [Variant("stable", "credit", version=1)], description="a\x00b")
    assert deployments.list().empty


def test_history_holds_the_named_deployment_only(deployments, credit):
    deployments.deploy("api", [Variant("stable", "credit", version=1)], reason="first")
    deployments.deploy("api2", [Variant("stable", "credit", version=2)], reason="other")
    deployments.deploy("api", [Variant("stable", "credit", version=3)], reason="second")
    history = deployments.history("api")
    assert history["entity"].tolist() == ["deployment:api"] * 2
    assert history["reason"].tolist() == ["first", "second"]
    assert deployments.history("api2")["reason"].tolist() == ["other"]
    # the model's audit log holds its own entries, none of the deployments'
    assert set(credit.audit("credit")["entity"]) == {
        "model:credit",
        "model:credit/version:1",
        "model:credit/version:2",
        "model:credit/version:3",
        "model:credit/alias:champion",
    }
