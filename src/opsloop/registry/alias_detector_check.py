"""Moving an alias that a deployment with an input anomaly detector follows.

A deployment's input anomaly detector (``opsloop.serving.input_detector_settings``) scores
each request by the features it names, which must be numeric columns of the input signature
of every version the deployment serves; a set detector is checked against them, and so is
each new definition. A variant that follows an alias serves whatever version the alias
points at, so moving the alias changes what the deployment serves without a new definition:
:func:`check_alias_move` refuses the move when such a detector could not score the new
version's records, which would otherwise leave its requests silently unscored. (The
refusal is shown in ``tests/serving/test_input_detector.py``, which sets a detector, and
over HTTP, a 422 naming ``version``, in ``tests/server/test_alias_detector_route.py``.)
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError
from opsloop.learn.robustness.portable_detector import unreadable_feature
from opsloop.store import tables

_detectors, _heads = tables.deployment_input_detectors, tables.deployments
_variants = tables.deployment_variants


def check_alias_move(
    connection: Connection,
    model_id: int,
    model: str,
    alias: str,
    version: int,
    signature_json: str | None,
) -> None:
    """Refuse moving ``alias`` of ``model`` (id ``model_id``) to ``version`` (whose
    signature is ``signature_json``) when a deployment whose variant follows the alias has
    an input detector that could not score that version's records (see the module): an
    :class:`~opsloop.errors.InvalidArgumentError` naming the field ``version``, the
    deployment, the variant and the feature. Called in the move's write transaction.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> with db.read() as connection:  # no deployment follows the alias: nothing to refuse
    ...     check_alias_move(connection, 1, "m", "champion", 2, None)
    """
    followers = connection.execute(
        sa.select(_heads.c.name, _variants.c.name.label("variant"), _detectors.c.detector_json)
        .select_from(
            _variants.join(_heads, _heads.c.id == _variants.c.deployment_id).join(
                _detectors, _detectors.c.deployment == _heads.c.name
            )
        )
        .where(
            _variants.c.model_id == model_id,
            _variants.c.alias == alias,
            _detectors.c.detector_json.is_not(None),
        )
        .order_by(_heads.c.name, _variants.c.position)
    ).all()
    if not followers:
        return
    inputs = None if signature_json is None else json.loads(signature_json).get("inputs")
    schema = None if inputs is None else Schema.from_dict(inputs)
    columns = {} if schema is None else {c.name: c.type for c in schema.columns}
    where = f"model {model!r} version {version}"
    for deployment, variant, detector_json in followers:
        features = json.loads(detector_json)["features"]
        problem = (
            f"{where} has no input signature to check its features against"
            if schema is None
            else unreadable_feature(features, columns, where)
        )
        if problem is not None:
            raise InvalidArgumentError(
                f"version: variant {variant!r} of deployment {deployment!r} follows alias "
                f"{alias!r}, and the deployment's input detector could not score version "
                f"{version} (change or remove the detector first): {problem}"
            )


__all__ = ["check_alias_move"]
