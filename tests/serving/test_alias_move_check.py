"""Moving an alias a deployment follows to a version its settings could not serve is refused
before anything changes: a model assertion reading a field the version's records lack (every
request would fail with a 503), and an input detector reading a column the records lack,
including a column of the signature kept for training alone (the detector is checked
against the columns the model is given, as the assertions are). On SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsloop.data.schema import infer_schema
from opsloop.errors import InvalidArgumentError
from opsloop.learn.robustness.portable_detector import fit_portable_detector
from opsloop.serving import Deployments, Variant

FRAME = pd.DataFrame({"age": [20, 40, 60], "debt": [1.0, 2.0, 3.0], "outcome": [0, 1, 0]})
OWES = {"name": "owes", "when": "debt > 1.5", "action": "flag"}


def _versions(registry) -> None:
    """Version 1 of ``m`` serves age and debt (outcome for training alone); version 2
    keeps debt for training alone too; version 3 has no debt at all."""
    registry.register(
        "m", b"v1", flavor="onnx",
        input_schema=infer_schema(FRAME, environments={"serving": ["outcome"]}),
    )  # fmt: skip
    registry.register(
        "m", b"v2", flavor="onnx",
        input_schema=infer_schema(FRAME, environments={"serving": ["outcome", "debt"]}),
    )  # fmt: skip
    registry.register("m", b"v3", flavor="onnx", input_schema=infer_schema(FRAME[["age"]]))


def _moves(registry) -> int:
    return len(registry.audit("m").query("action == 'set_alias'"))


def test_an_alias_move_to_a_version_lacking_a_rules_field_is_refused_naming_it(registry):
    _versions(registry)
    registry.set_alias("m", "champion", 1)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy("api", [Variant("stable", "m", alias="champion")])
    minor = {"name": "minor", "when": "age < 18", "action": "flag"}
    deployments.configure("api", assertions=[minor, OWES])
    moves, history = _moves(registry), len(deployments.history("api"))
    for version, fields in ((2, "['age']"), (3, "['age']")):
        with pytest.raises(InvalidArgumentError) as raised:
            registry.set_alias("m", "champion", version)
        assert str(raised.value) == (
            "version: variant 'stable' of deployment 'api' follows alias 'champion', and the "
            "deployment's assertion 'owes' (assertions.1.when) reads the field 'debt', which "
            f"the records of model 'm' version {version} lack: they have the fields {fields} "
            "and the outputs ['prediction', 'probability'] (change the assertions first)"
        )
    # Nothing changed: the alias, what the deployment serves, the registry's and the
    # deployment's history.
    assert registry.get_version("m", alias="champion").version == 1
    assert deployments.get("api").serving == {"stable": 1}
    assert _moves(registry) == moves
    assert len(deployments.history("api")) == history
    # A rule on a field every version serves, or none, lets it move.
    deployments.configure("api", assertions=[minor])
    registry.set_alias("m", "champion", 3)
    assert deployments.get("api").serving == {"stable": 3}


def test_a_rule_on_a_training_only_column_refuses_the_move_named_by_the_first_follower(
    registry,
):
    """Two deployments follow the alias: the refusal names the first (by name) whose rules
    cannot be applied; one that does not follow the alias is not consulted."""
    _versions(registry)
    registry.set_alias("m", "champion", 1)
    deployments = Deployments(registry.db, actor="owner")
    for name in ("web", "api"):
        deployments.deploy(name, [Variant("stable", "m", alias="champion")])
    deployments.deploy("pinned", [Variant("stable", "m", version=1)])
    deployments.configure("pinned", assertions=[OWES])
    registry.set_alias("m", "champion", 2)  # no follower has rules yet
    registry.set_alias("m", "champion", 1)
    deployments.configure("web", assertions=[OWES])
    with pytest.raises(
        InvalidArgumentError,
        match=r"^version: variant 'stable' of deployment "
        r"'web' follows alias 'champion', and the deployment's assertion 'owes'",
    ):
        registry.set_alias("m", "champion", 2)
    assert registry.get_version("m", alias="champion").version == 1


def test_a_detector_on_a_column_kept_for_training_alone_is_refused(registry):
    """Version 2 keeps debt in its signature for training alone: its served records lack
    it, so a detector reading debt could score none of them."""
    _versions(registry)
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"age": rng.normal(40, 10, 200), "debt": rng.normal(2, 0.5, 200)})
    detector = fit_portable_detector(rows, fpr=0.05)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy("api", [Variant("stable", "m", version=2)])
    with pytest.raises(InvalidArgumentError) as raised:
        deployments.set_input_detector("api", detector)
    assert str(raised.value) == (
        "detector.features: 'debt' is a column of the input signature of variant 'stable' "
        "(model 'm' version 2) kept for training alone: served records lack it"
    )
    assert deployments.input_detector("api").revision == 0
    # Version 1 serves debt: the detector is set there, and then a deploy bringing
    # version 2 is refused, and so is moving an alias to it.
    deployments.deploy("api", [Variant("stable", "m", version=1)])
    deployments.set_input_detector("api", detector)
    with pytest.raises(
        InvalidArgumentError,
        match=r"^variants\.0: .*'debt' is a column of the "
        r"input signature of variant 'stable' \(model 'm' version 2\) kept for "
        r"training alone",
    ):
        deployments.deploy("api", [Variant("stable", "m", version=2)])
    registry.set_alias("m", "champion", 1)
    deployments.deploy("web", [Variant("stable", "m", alias="champion")])
    deployments.set_input_detector("web", detector)
    with pytest.raises(InvalidArgumentError) as raised:
        registry.set_alias("m", "champion", 2)
    assert str(raised.value) == (
        "version: variant 'stable' of deployment 'web' follows alias 'champion', and the "
        "deployment's input detector could not score version 2 (change or remove the "
        "detector first): 'debt' is a column of the input signature of model 'm' version 2 "
        "kept for training alone: served records lack it"
    )
    assert deployments.get("web").serving == {"stable": 1}
