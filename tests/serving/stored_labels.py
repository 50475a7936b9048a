"""The labels a store kept for a deployment, read straight from its feedback table."""

from __future__ import annotations

from opsloop.store import tables


def stored_labels(db, name: str) -> dict[str, str]:
    """Each labelled request id of deployment ``name`` with its label's JSON text."""
    feedback = tables.prediction_feedback
    with db.read() as connection:
        return dict(
            connection.execute(
                feedback.select()
                .with_only_columns(feedback.c.request_id, feedback.c.label_json)
                .where(feedback.c.deployment == name)
            ).all()
        )
