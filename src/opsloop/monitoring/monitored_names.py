"""Which deployments and variants the monitoring knows, so that a misspelled name is
refused instead of answered with an empty status or report.

A deployment is known when it is defined (``opsloop deployments``), has a reference, a
stored policy, monitoring state, an evaluated window or a logged prediction event. A
variant of it is known when it is defined, has an evaluated or folded window, or has a
logged event. The error lists the known names, sorted, at most :data:`LISTED_NAMES` of
them with a count of the others.

>>> import pandas as pd
>>> from opsloop.monitoring.event_log import log_predictions
>>> _ = log_predictions(db, "api", pd.DataFrame({"x": [1.0]}), [0], at_ms=0)
>>> check_monitored(db, "api", variant="default")
>>> check_monitored(db, "aip")
Traceback (most recent call last):
opsloop.errors.NotFoundError: unknown deployment 'aip'; known: api
>>> check_monitored(db, "api", variant="canary")
Traceback (most recent call last):
opsloop.errors.NotFoundError: deployment 'api' has no variant 'canary'; known: default
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.errors import NotFoundError
from opsloop.store.tables import (
    deployment_variants,
    deployments,
    monitoring_evaluations,
    monitoring_policies,
    monitoring_references,
    monitoring_state,
    monitoring_windows,
    prediction_events,
)

#: The most names an error lists; the others are counted.
LISTED_NAMES = 20

# Tables keyed by deployment that stay small (one row per deployment, or per window):
# listing their names reads no event. Events are only asked whether one exists.
_NAMED_BY_DEPLOYMENT = (
    monitoring_references.c.deployment,
    monitoring_policies.c.deployment,
    monitoring_state.c.deployment,
    monitoring_evaluations.c.deployment,
)


def _listed(names: set[str]) -> str:
    """``names`` sorted, at most :data:`LISTED_NAMES`, the rest counted.

    >>> _listed({f"d{i:02d}" for i in range(23)}).endswith("d19 and 3 more")
    True
    >>> _listed(set())
    'none'
    """
    if not names:
        return "none"
    ordered = sorted(names)
    shown = ", ".join(ordered[:LISTED_NAMES])
    left = len(ordered) - LISTED_NAMES
    return shown if left <= 0 else f"{shown} and {left} more"


def known_deployments(db) -> set[str]:
    """The deployments defined or with monitoring kept (a reference, a policy, state or
    an evaluated window).

    >>> import pandas as pd
    >>> from opsloop.monitoring.reference import set_reference
    >>> _ = set_reference(db, "web", pd.DataFrame({"x": [1.0, 2.0]}))
    >>> sorted(known_deployments(db))
    ['web']
    """
    with db.engine.connect() as conn:
        found = set(conn.execute(sa.select(deployments.c.name)).scalars())
        for column in _NAMED_BY_DEPLOYMENT:
            found.update(conn.execute(sa.select(column).distinct()).scalars())
    return found


def known_variants(db, deployment: str) -> set[str]:
    """The variants of ``deployment`` that are defined or have a window (folded or
    evaluated).

    >>> import pandas as pd
    >>> from opsloop.monitoring.event_log import log_predictions
    >>> _ = log_predictions(db, "api", pd.DataFrame({"x": [1.0]}), [0], variant="blue",
    ...                     at_ms=0)
    >>> sorted(known_variants(db, "api")), sorted(known_variants(db, "nothing"))
    (['blue'], [])
    """
    with db.engine.connect() as conn:
        found = set(
            conn.execute(
                sa.select(deployment_variants.c.name)
                .join(deployments, deployments.c.id == deployment_variants.c.deployment_id)
                .where(deployments.c.name == deployment)
            ).scalars()
        )
        for table in (monitoring_windows, monitoring_evaluations):
            found.update(
                conn.execute(
                    sa.select(table.c.variant).distinct().where(table.c.deployment == deployment)
                ).scalars()
            )
        if not found:
            # Events logged and not yet folded into a window: their variants, read once.
            found.update(
                conn.execute(
                    sa.select(prediction_events.c.variant)
                    .distinct()
                    .where(prediction_events.c.deployment == deployment)
                ).scalars()
            )
    return found


def _has_events(db, deployment: str, variant: str | None = None) -> bool:
    query = sa.select(prediction_events.c.id).where(prediction_events.c.deployment == deployment)
    if variant is not None:
        query = query.where(prediction_events.c.variant == variant)
    with db.engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


def is_monitored(db, deployment: str) -> bool:
    """Whether the monitoring knows ``deployment``: one indexed existence query per table
    for this one name (defined, a reference, a policy, state, an evaluated window, an
    event), stopping at the first that has it.

    >>> is_monitored(db, "nothing")
    False
    """
    columns = (deployments.c.name, *_NAMED_BY_DEPLOYMENT, prediction_events.c.deployment)
    with db.engine.connect() as conn:
        return any(
            conn.execute(sa.select(sa.literal(1)).where(column == deployment).limit(1)).first()
            is not None
            for column in columns
        )


def check_monitored(db, deployment: str, *, variant: str | None = None) -> None:
    """Raise :class:`~opsloop.errors.NotFoundError` naming ``deployment`` (or its
    ``variant``) and listing the known ones when the monitoring knows neither; return
    ``None`` otherwise.

    >>> check_monitored(db, "nothing")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: unknown deployment 'nothing'; known: none
    """
    if not is_monitored(db, deployment):
        found = known_deployments(db)
        with db.engine.connect() as conn:
            # Deployments with events and nothing else yet: read from the events' index,
            # only on this path, where the name given was wrong.
            found.update(
                conn.execute(sa.select(prediction_events.c.deployment).distinct()).scalars()
            )
        raise NotFoundError(f"unknown deployment {deployment!r}; known: {_listed(found)}")
    if variant is None:
        return
    variants = known_variants(db, deployment)
    if variant in variants or _has_events(db, deployment, variant):
        return
    raise NotFoundError(
        f"deployment {deployment!r} has no variant {variant!r}; known: {_listed(variants)}"
    )
