"""A registered tree model's edit as a new version: the override of a region, recorded.

:func:`register_override` loads a version, overrides its answer in a region
(:func:`opsloop.learn.robustness.tree_editing.override_region`), checks the edited trees'
structure as a load does (:mod:`.tree_structure`), and registers the result as the model's
next version. The new version keeps the source's run (so its lineage leads to the same
code and data sets), signature, description and tags, and records the edit in two tags:
``edited_from`` (the source's ``models:/NAME/VERSION``) and ``edit`` (the edit as JSON:
region, value, trees, leaves overridden, nodes added). The audit log's entry for the
registration carries the reason. Metrics are not copied: they measured the source.

It works with any registry that has ``get_version``, ``load`` and ``register``: the local
:class:`~.model_registry.ModelRegistry` and the HTTP client alike.

``tmp_path`` is an empty folder:

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeClassifier
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> _ = registry.register("risk", DecisionTreeClassifier().fit(X, [0, 0, 1, 1]))
>>> edited = register_override(registry, "risk", 0, where="x0 > 2.5", version=1)
>>> edited.version, edited.tags["edited_from"]
(2, 'models:/risk/1')
>>> registry.load("risk", 2).predict(X).tolist()
[0, 0, 1, 0]
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.registry.records import ModelVersion
from opsloop.registry.tree_structure import tree_problem

#: The tags in which an edited version records its edit.
EDIT_TAGS = ("edited_from", "edit")


def register_override(
    registry: Any,
    name: str,
    value: Any,
    *,
    where: Any = None,
    leaf: int | None = None,
    version: int | None = None,
    alias: str | None = None,
    trust: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Register the edit of model ``name``'s version (or alias; default the newest) that
    answers ``value`` inside the region ``where`` (or the single tree's ``leaf``).

    ``trust`` loads a source whose loading runs code (see the registry's ``load``);
    ``reason`` goes to the audit log (default: the edit, in words).
    """
    # imported here: registering needs no attack code until an edit is made
    from opsloop.learn.robustness.tree_editing import override_region

    source = registry.get_version(name, version=version, alias=alias)
    model = registry.load(name, source.version, trust=trust)
    edit = override_region(model, value, where=where, leaf=leaf)
    problem = tree_problem(edit.model)
    if problem is not None:  # never expected: the edit only appends well-formed nodes
        raise RuntimeError(f"the edited model of {source.uri} is malformed: {problem}")
    record = edit.to_dict()
    region = f"leaf {edit.leaf}" if edit.leaf is not None else edit.where
    signature = source.signature or {}
    return registry.register(
        name,
        edit.model,
        flavor=source.flavor,
        run_id=source.run_id,
        input_schema=signature.get("inputs"),
        output_type=signature.get("output"),
        tags={**source.tags, "edited_from": source.uri, "edit": json.dumps(record)},
        description=source.description,
        actor=actor,
        reason=reason or f"override {region} -> {record['value']!r} of {source.uri}",
    )
