"""What the batch-scoring tests score with: a scaled logistic regression fitted on one of
scikit-learn's bundled data sets and deployed as a single variant, and a serving runtime on
a fake clock (so a batch's events and ids do not hang on the time of day)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.clock import FakeClock

from opsloop.serving import Deployments, ServingRuntime, Variant


def deploy_scaled_logistic(
    registry, load: Callable, *, model: str, deployment: str, variant: str
) -> tuple:
    """Fit a standard-scaled logistic regression on ``load``'s frame and target, register it
    as version 1 of ``model`` (the frame as its input schema) and deploy it as
    ``deployment``'s only variant, ``variant``; the fitted model and the frame."""
    X, y = load(return_X_y=True, as_frame=True)
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    registry.register(model, fitted, input_schema=X)
    Deployments(registry.db).deploy(deployment, [Variant(variant, model, version=1)])
    return fitted, X


def runtime_on_fake_clock(registry) -> Iterator[ServingRuntime]:
    """A serving runtime on the registry's store, whose clock becomes a fake one, closed
    when the test is done (a fixture's body: ``yield from``)."""
    registry.db.clock = FakeClock()
    served = ServingRuntime(registry.db, registry.artifacts)
    yield served
    served.close()
