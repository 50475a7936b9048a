"""The data plane's runtime: answer prediction requests by a deployment's current definition.

:class:`ServingRuntime` loads each deployment's variants through the registry (sha256
verified, trust rules applied, see :mod:`.loaded_variant`), checks each request's records
against the answering version's signature (:mod:`.record_validation`), routes it by the
strategy's policy (:mod:`.routing`), hands a copy to every shadow off the request path
(a thread, :mod:`.shadow_mirror`, or a process of its own, :mod:`.shadow_process`; a
shadow with a ``shadow_sample`` below 1 gets the copies of that share of the requests,
:mod:`.shadow_sampling`), and records every answer as a prediction event without waiting
(:mod:`.prediction_events`). It counts what it does in Prometheus metrics
(:mod:`.serving_metrics`).

**Following definition changes.** Every change of a deployment, and every move of an alias
a variant follows, appends an entry to the registry's audit log in the same transaction
(:mod:`opsloop.serving.deployments`), so the newest audit entry's id is a revision number
of everything the data plane depends on. Before routing a request the runtime reads that
number (one indexed ``max(id)`` read); when it moved, the cached definitions are dropped and
the next request reads its deployment's definition again (model versions already loaded
are kept and reused). The guarantee, with the default ``check_interval_s=0``:

    a request whose routing starts after ``Deployments.deploy(...)`` has returned is routed
    by the new definition; in particular it never reaches a variant whose weight became 0.

The deploy's transaction committed before it returned, and the request's revision read
starts after that, so it sees the new entry (the store's reads are snapshot reads of
committed data). Entries are appended under the log's lock, held to the commit
(:func:`~opsloop.registry.audit.append_audit`), so ids appear in commit order and a newer
maximum never hides an older change still to commit. The definition is then read in a
later transaction than the revision, so it is at least as new. Requests already routed
when the change commits finish on the variant they were given. ``check_interval_s > 0``
trades this for fewer reads: the revision is read at most once per interval, so a change
is followed within that interval. Several workers on the same store each follow the same
revision, hence agree after a change.

>>> import tempfile
>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.serving import Deployments, Variant
>>> from opsloop.store import ArtifactStore, Database
>>> db, artifacts = Database("sqlite://"), ArtifactStore(tmp_path)
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
>>> registry = ModelRegistry(db, artifacts)
>>> _ = registry.register("line", LinearRegression().fit(X, [1.0, 3.0, 5.0]), input_schema=X)
>>> _ = Deployments(db).deploy("api", [Variant("stable", "line", version=1)])
>>> runtime = ServingRuntime(db, artifacts)
>>> answer = runtime.predict("api", [{"x": 1.5}])
>>> answer.variant, [round(p, 6) for p in answer.predictions]
('stable', [4.0])
>>> runtime.predict("api", [{"x": "1.5"}])
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: records: record 0, field 'x': type_mismatch (...)
>>> runtime.close()
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError, NotFoundError, OpsloopError, UnavailableError
from opsloop.registry.model_registry import ModelRegistry
from opsloop.serving.automation import FULL_AUTOMATION, Decision, Oversight, oversee
from opsloop.serving.canary_rollout import routed_share
from opsloop.serving.deployment_records import Deployment, Variant
from opsloop.serving.deployment_settings import MicroBatching, OutputRestriction
from opsloop.serving.deployments import Deployments
from opsloop.serving.input_screening import (
    InputScreen,
    InputScreening,
    marked,
    screen_for,
    screened_decision,
)
from opsloop.serving.loaded_variant import LoadedVariant, VariantAnswer, load_variant
from opsloop.serving.micro_batching import Arrival, Arrivals, MicroBatcher
from opsloop.serving.prediction_events import (
    EventRecorder,
    EventSink,
    PredictionEvent,
    StoreEventSink,
)
from opsloop.serving.record_validation import CheckedRecords
from opsloop.serving.review_queue import ReviewQueue
from opsloop.serving.rollout_gauges import RolloutGauges
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_state import read_rollout
from opsloop.serving.routing import RoutingPolicy, policy_for, routing_key_of
from opsloop.serving.serving_metrics import ServingMetrics
from opsloop.serving.shadow_mirror import ShadowMirror
from opsloop.serving.shadow_process import ChildShadow, ShadowHost, ShadowProcess
from opsloop.serving.shadow_sampling import ShadowSample
from opsloop.store.artifacts import ArtifactStore
from opsloop.store.database import Database, now_ms

logger = logging.getLogger("opsloop.serving")


@dataclass(frozen=True)
class ServedAnswer:
    """The answer to one request: its id, the variant and model version that answered, and
    the model's answer (predictions, and probabilities with their classes where the model
    has them). ``status`` is the disposition (:mod:`.automation`): ``answered``,
    ``suggestion`` or ``queued`` (then ``answer`` is ``None`` and ``review_item`` names the
    review queue's item); ``rules`` names the model assertions that fired per record.

    >>> ServedAnswer("r", "api", "stable", "m", 1, VariantAnswer([1])).to_dict()["variant"]
    'stable'
    """

    request_id: str
    deployment: str
    variant: str
    model: str
    version: int
    answer: VariantAnswer | None
    status: str = "answered"
    review_item: int | None = None
    rules: list[list[str]] | None = None

    @property
    def predictions(self) -> list | None:
        """One prediction per record (``None`` when the request waits for a person)."""
        return None if self.answer is None else self.answer.predictions

    def to_dict(self) -> dict[str, Any]:
        """The answer as a JSON-safe dictionary."""
        return {
            "request_id": self.request_id,
            "deployment": self.deployment,
            "variant": self.variant,
            "model": self.model,
            "version": self.version,
            **(_NO_ANSWER if self.answer is None else self.answer.to_dict()),
            "status": self.status,
            "review_item": self.review_item,
            "rules": self.rules,
        }


_NO_ANSWER = {"predictions": None, "probabilities": None, "classes": None}


@dataclass
class ServedDeployment:
    """A deployment as the runtime serves it: the definition it was read at, its loaded
    variants, the variants that failed to load (with why) and its routing policy.

    ``ready`` holds when every live variant with a positive weight is loaded.

    A shadow answered in a process of its own (:mod:`.shadow_process`) is in
    ``child_shadows``, not ``loaded``: routing a copy to it and recording need its model
    version only, and its child loads the model. Its model is loaded in this process only
    when a request names the variant (:meth:`variant`, through ``load_named``).
    """

    definition: Deployment
    policy: RoutingPolicy | None
    loaded: dict[str, LoadedVariant] = field(default_factory=dict)
    oversight: Oversight = FULL_AUTOMATION
    failures: dict[str, str] = field(default_factory=dict)
    batching: MicroBatching | None = None
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)
    screen: InputScreen | None = None
    #: What each variant's answers may say (:class:`.deployment_settings.OutputRestriction`).
    outputs: dict[str, OutputRestriction] = field(default_factory=dict)
    #: The records' field whose value routes a request that brings no routing key.
    routing_key_field: str | None = None
    #: The shadows answered in a child process, by name (see the class).
    child_shadows: dict[str, ChildShadow] = field(default_factory=dict)
    #: Loads the named variant here (a child-answered shadow a request names).
    load_named: Callable[[str], LoadedVariant] | None = None
    #: The candidate's share the split routes at (:func:`.canary_rollout.routed_share`),
    #: read once from ``definition``: the ramp's request counts read it, and each routed
    #: request's event keeps it.
    routed_share: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.routed_share = routed_share(self.definition)

    def batcher(
        self, loaded: LoadedVariant, arrivals: Arrivals, metrics: ServingMetrics
    ) -> MicroBatcher | None:
        """The micro-batcher of variant ``loaded`` (made on first use), ``None`` when the
        deployment's settings do not batch."""
        if self.batching is None:
            return None
        found = self.batchers.get(loaded.name)
        if found is None:
            histogram = metrics.batch_records.labels(self.definition.name, loaded.name)
            found = MicroBatcher(loaded, self.batching, arrivals, on_batch=histogram.observe)
            self.batchers[loaded.name] = found
        return found

    @property
    def ready(self) -> bool:
        """Whether every variant that can receive traffic is loaded."""
        return self.policy is not None and all(
            v.name in self.loaded
            for v in self.definition.variants
            if v.role != "shadow" and v.weight > 0
        )

    @property
    def shadows(self) -> list[LoadedVariant | ChildShadow]:
        """The shadow variants to offer a copy of each request to, in definition order:
        those answered in a child process as :class:`~.shadow_process.ChildShadow`, the
        others loaded."""
        found: list[LoadedVariant | ChildShadow] = []
        for v in self.definition.variants:
            if v.role != "shadow":
                continue
            if v.name in self.child_shadows:
                found.append(self.child_shadows[v.name])
            elif v.name in self.loaded:
                found.append(self.loaded[v.name])
        return found

    def answers(self, name: str) -> bool:
        """Whether variant ``name`` can answer: loaded here, or a shadow answered in a
        child process (whose model this asks nothing to load)."""
        return name in self.loaded or name in self.child_shadows

    def variant(self, name: str) -> LoadedVariant:
        """The loaded variant ``name`` (a child-answered shadow's model is loaded here
        now); 404 when the deployment has none, 503 when it failed to load."""
        if name in self.loaded:
            return self.loaded[name]
        if name in self.child_shadows and self.load_named is not None:
            loaded = self.load_named(name)
            self.loaded[name] = loaded
            return loaded
        if name in self.failures:
            raise UnavailableError(
                f"deployment {self.definition.name!r}, variant {name!r} is not ready: "
                f"{self.failures[name]}"
            )
        raise NotFoundError(f"deployment {self.definition.name!r} has no variant {name!r}")


@dataclass(frozen=True)
class _Request:
    """A routed request with its records checked, on its way to the model."""

    served: ServedDeployment
    loaded: LoadedVariant
    routed: bool
    records: Any
    routing_key: str | None
    checked: CheckedRecords
    started: float
    #: The records as the client sent them, for the shadows to get each as it should.
    sent: Any = None


@dataclass(frozen=True)
class _ShadowJob:
    variant: LoadedVariant | ChildShadow
    deployment: str
    records: Sequence[dict]
    request_id: str
    routing_key: str | None
    #: The answering definition's (see :mod:`.retired_names`).
    generation: int | None = None


def restricted(
    answer: VariantAnswer | None, restriction: OutputRestriction | None
) -> VariantAnswer | None:
    """``answer`` as a client of a variant with ``restriction`` gets it: its probabilities
    restricted, its predictions unchanged (an answer without probabilities is unchanged).

    >>> answer = VariantAnswer([1], [[0.123, 0.877]], [0, 1])
    >>> restricted(answer, OutputRestriction(label_only=True)).probabilities
    [[0.0, 1.0]]
    >>> restricted(answer, None) is answer
    True
    """
    if restriction is None or answer is None or answer.probabilities is None:
        return answer
    return replace(answer, probabilities=restriction.apply(answer.probabilities))


def _has_column(variant: LoadedVariant | ChildShadow, name: str) -> bool:
    if isinstance(variant, ChildShadow):
        return variant.columns is not None and name in variant.columns
    schema = variant.schema
    return schema is not None and any(column.name == name for column in schema.columns)


def _for_variant(
    records: Any, routing_field: str | None, variant: LoadedVariant | ChildShadow
) -> Any:
    """``records`` as ``variant`` gets them: without the deployment's routing field unless
    the variant's input schema has that column. The field is the request's (a user id), not
    a model input, whether or not it routed this request; each variant, shadows included,
    is judged by its own schema. Records that are not a list of objects are left as they
    are, for the variant's check to name what is wrong."""
    if (
        routing_field is None
        or not isinstance(records, Sequence)
        or isinstance(records, str | bytes)
        or not all(isinstance(r, Mapping) for r in records)
        or not any(routing_field in r for r in records)
        or _has_column(variant, routing_field)
    ):
        return records
    return [{k: v for k, v in r.items() if k != routing_field} for r in records]


class ServingRuntime:
    """Answers prediction requests for the deployments of a store (see the module).

    ``names`` limits the deployments served (default: every deployment of the store, each
    loaded on its first request). ``trust`` and ``trusted_types`` are the serving user's
    consent to load pickles and skops types beyond the allow-list
    (:mod:`opsloop.registry.model_trust`); without them such variants are not ready (503).
    ``sink`` receives the prediction events (default: the store's table);
    ``event_capacity`` and ``shadow_capacity`` bound the event buffer and each shadow's
    queue. ``shadow_isolation`` is where shadows answer: ``"thread"``, a thread of this
    process each (:mod:`.shadow_mirror`); ``"process"``, a process of their own each, which
    spares the primary the shadow's share of the interpreter lock and of the cores
    (:mod:`.shadow_process`; it needs a store another process can open); ``"auto"``,
    ``"process"`` where the store allows it. ``check_interval_s`` is how often the
    definitions' revision is read (0: before every request, the strict guarantee of the
    module docstring).

    The runtime's collaborators default to those on ``db`` and ``artifacts``; each may be
    given instead, which is how a data plane runs on a control plane's URL with no store
    (:mod:`.remote_serving`): ``deployments`` (the definitions, their settings and
    rollouts, the feedback; a :class:`~.deployment_service.DeploymentService`),
    ``registry`` (the model versions, loaded sha256-verified), ``review_queue`` (where
    requests a person decides go), ``rollouts`` (what feeds a canary's gates and a
    bandit: a :class:`~.rollout_observer.RolloutObserver` or one of its kind),
    ``revision`` (a function giving the definitions' revision number, default
    ``deployments.revision``), ``clock`` (milliseconds since the epoch, stamped on
    events) and ``shadow_host`` (what a shadow process opens instead of ``db``: shadows
    then answer in processes whatever ``shadow_isolation`` says;
    :mod:`.control_plane_shadow_host`). Without ``db`` every one of them but the clock, the
    revision and the shadow host must be given. ``clients`` are what those collaborators
    reach a control plane through (objects with a ``close`` method, such as
    :class:`~opsloop.registry.http_registry.ServerClient`), which :meth:`close` closes last.

    >>> ServingRuntime(Database("sqlite://"), None, check_interval_s=-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: check_interval_s must be a number >= 0, got -1
    >>> ServingRuntime(None, None)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: db: without a store, give deployments, registry, ...
    """

    def __init__(
        self,
        db: Database | None,
        artifacts: ArtifactStore | None,
        *,
        names: Iterable[str] | None = None,
        trust: bool = False,
        trusted_types: Iterable[str] = (),
        sink: EventSink | None = None,
        event_capacity: int = 10_000,
        shadow_capacity: int = 1_000,
        shadow_isolation: str = "thread",
        check_interval_s: float = 0.0,
        metrics: ServingMetrics | None = None,
        deployments: Any = None,
        registry: Any = None,
        review_queue: Any = None,
        rollouts: Any = None,
        revision: Callable[[], int] | None = None,
        clock: Callable[[], int] | None = None,
        shadow_host: Any = None,
        clients: Iterable[Any] = (),
    ) -> None:
        if (
            isinstance(check_interval_s, bool)
            or not isinstance(check_interval_s, int | float)
            or not check_interval_s >= 0
        ):
            raise InvalidArgumentError(
                f"check_interval_s must be a number >= 0, got {check_interval_s!r}"
            )
        if db is None and None in (deployments, registry, review_queue, rollouts, sink):
            raise InvalidArgumentError(
                "db: without a store, give deployments, registry, review_queue, rollouts and sink"
            )
        self.db = db
        self.names = None if names is None else tuple(names)
        self.trust = trust
        self.trusted_types = tuple(trusted_types)
        self.check_interval_s = float(check_interval_s)
        self.shadow_capacity = shadow_capacity
        self.registry = (
            registry if registry is not None else ModelRegistry(db, artifacts, actor="serving")
        )
        self.deployments = (
            deployments if deployments is not None else Deployments(db, actor="serving")
        )
        self.metrics = metrics or ServingMetrics()
        self.screening = InputScreening(self.metrics.registry)
        self._shadow_host = shadow_host or ShadowHost.for_isolation(
            shadow_isolation, db, self.registry, trust=trust, trusted_types=self.trusted_types
        )
        if db is not None:
            # The monitoring's latest windows and alerts, read from the store at each
            # scrape (imported here: monitoring's actions deploy through this package).
            from opsloop.monitoring.monitoring_gauges import MonitoringGauges

            self.metrics.add_collector(MonitoringGauges(db, self.names))
        #: The canary rollouts' state and gate evidence on ``/metrics`` (see
        #: :mod:`.rollout_gauges`), of the deployments named or served so far.
        self.rollout_gauges = RolloutGauges(self.deployments, self._gauged_names)
        self.metrics.add_collector(self.rollout_gauges)
        self.clock = clock or (db.clock if db is not None else now_ms)
        self._read_revision = revision or self.deployments.revision
        self.recorder = EventRecorder(
            sink
            if sink is not None
            else StoreEventSink(
                db, read_joined=self._read_joined, read_joined_labels=self._read_joined_labels
            ),
            capacity=event_capacity,
        )
        self.review_queue = (
            review_queue if review_queue is not None else ReviewQueue(db, actor="serving")
        )
        self.rollouts = rollouts if rollouts is not None else RolloutObserver(db, self.deployments)
        #: Prediction requests under way to a micro-batcher (see :mod:`.micro_batching`).
        self.arrivals = Arrivals()
        self._served: dict[str, ServedDeployment] = {}
        self._models: dict[tuple[str, int], LoadedVariant] = {}
        self._stale_models: dict[tuple[str, int], LoadedVariant] = {}
        self._mirrors: dict[tuple[str, str], ShadowMirror | ShadowProcess] = {}
        self._samples: dict[tuple[str, str], ShadowSample] = {}
        self._revision = -1
        self._checked_at = float("-inf")
        self._lock = threading.RLock()
        #: What the collaborators reach a control plane through, closed by :meth:`close`.
        self.clients = tuple(clients)
        self._closed = False

    def _gauged_names(self) -> tuple[str, ...]:
        # The deployments named, else those served so far: a scrape never lists the store.
        if self.names is not None:
            return self.names
        with self._lock:
            return tuple(self._served)

    # -- following the definitions ---------------------------------------------------------

    @property
    def shadow_isolation(self) -> str:
        """Where this runtime's shadows answer: ``"process"`` or ``"thread"``.

        >>> ServingRuntime(Database("sqlite://"), None).shadow_isolation
        'thread'
        """
        return "thread" if self._shadow_host is None else "process"

    def revision(self) -> int:
        """The newest audit entry's id: it moves with every change of a deployment or alias.

        >>> ServingRuntime(Database("sqlite://"), None).revision()
        0
        """
        return self._read_revision()

    def _follow(self, revision: int | None = None) -> None:
        clock = time.monotonic()
        if revision is None:
            if self.check_interval_s and clock - self._checked_at < self.check_interval_s:
                return
            revision = self.revision()
        self._checked_at = clock
        if revision > self._revision:
            with self._lock:
                if revision > self._revision:
                    self._revision = revision
                    self._served = {}
                    # Loaded models survive one change: those the new definitions still
                    # use move back on their next load, the others are let go.
                    self._stale_models, self._models = self._models, {}

    def served(self, name: str, revision: int | None = None) -> ServedDeployment:
        """The deployment ``name`` as defined now (see the module on "now"); 404 when the
        store has no such deployment or this runtime does not serve it. ``revision`` is the
        newest audit id when the caller read it after its request began (the token check
        does), which spares a second read.

        >>> ServingRuntime(Database("sqlite://"), None).served("api")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'api'
        """
        if self.names is not None and name not in self.names:
            raise NotFoundError(f"this data plane does not serve deployment {name!r}")
        self._follow(revision)
        found = self._served.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._served.get(name)
            if found is None:
                try:
                    definition = self.deployments.get(name)
                except NotFoundError:
                    self._stop_mirrors(name, keep=())
                    raise
                found = self._load(definition)
                self._served[name] = found
        return found

    def _rollout_document(self, name: str) -> dict | None:
        if self.db is not None:
            return read_rollout(self.db, name)
        try:
            return self.deployments.rollout(name)
        except NotFoundError:
            return None

    def _loaded(self, variant: Any, version: int) -> LoadedVariant:
        """Variant ``variant`` of a definition with its version ``version``'s model, loaded
        once per model version (an :class:`~opsloop.errors.OpsloopError` when it cannot be)."""
        key = (variant.model, version)
        cached = self._models.get(key) or self._stale_models.get(key)
        if cached is None:
            cached = load_variant(
                self.registry,
                variant.name,
                variant.role,
                variant.model,
                version,
                trust=self.trust,
                trusted_types=self.trusted_types,
            )
        self._models[key] = cached
        return replace(cached, name=variant.name, role=variant.role)

    def _input_columns(self, variant: Variant, version: int) -> frozenset[str] | None:
        """The input columns of ``variant``'s model ``version`` (``None``: no schema, or
        the version cannot be read here: its child reports why it cannot answer)."""
        try:
            signature = self.registry.get_version(variant.model, version).signature
        except OpsloopError:
            return None
        inputs = (signature or {}).get("inputs")
        return frozenset(c.name for c in Schema.from_dict(inputs).columns) if inputs else None

    def _load_named(self, definition: Deployment, name: str) -> LoadedVariant:
        """Load variant ``name`` of ``definition`` when a request names it (a shadow
        otherwise answered in its child process only); 503 when it cannot be loaded."""
        variant = next(v for v in definition.variants if v.name == name)
        with self._lock:
            try:
                return self._loaded(variant, definition.serving[name])
            except OpsloopError as error:
                raise UnavailableError(
                    f"deployment {definition.name!r}, variant {name!r} is not ready: {error}"
                ) from None

    def _load(self, definition: Deployment) -> ServedDeployment:
        served = ServedDeployment(definition, None)
        for variant in definition.variants:
            version = definition.serving.get(variant.name)
            if version is None:
                served.failures[variant.name] = f"alias {variant.ref} points at no version"
                continue
            if variant.role == "shadow" and self._shadow_host is not None:
                # Its child process loads and answers it: holding its model here too
                # would cost this process the model's memory for nothing.
                served.child_shadows[variant.name] = ChildShadow(
                    variant.name, variant.model, version, self._input_columns(variant, version)
                )
                continue
            try:
                served.loaded[variant.name] = self._loaded(variant, version)
            except OpsloopError as error:
                served.failures[variant.name] = str(error)
                logger.warning(
                    "deployment %s: variant %s not loaded: %s", definition.name, variant.name, error
                )
        served.load_named = lambda name: self._load_named(definition, name)
        served.policy = policy_for(definition)
        settings = self.deployments.settings(definition.name)
        served.oversight = Oversight.of(definition.automation, settings)
        served.batching = settings.batching
        served.screen = screen_for(self.deployments, definition.name)
        served.outputs = dict(settings.outputs)
        served.routing_key_field = settings.routing_key_field
        if hasattr(served.policy, "bind_rollouts"):  # a policy whose state is shared (bandit)
            served.policy.bind_rollouts(self._rollout_document)
        self._keep_mirrors(definition)
        return served

    def _stop_mirrors(self, deployment: str, keep: Iterable[str]) -> None:
        kept = set(keep)
        for key in [k for k in self._mirrors if k[0] == deployment and k[1] not in kept]:
            self._mirrors.pop(key).close()
            self._samples.pop(key, None)

    def _keep_mirrors(self, definition: Deployment) -> None:
        shadows = {v.name: v.shadow_sample for v in definition.variants if v.role == "shadow"}
        self._stop_mirrors(definition.name, keep=shadows)
        for shadow, fraction in shadows.items():
            key = (definition.name, shadow)
            if key not in self._mirrors:
                self._mirrors[key] = self._mirror(definition.name, shadow)
            if key in self._samples:
                self._samples[key].follow(fraction)
            else:
                counter = self.metrics.shadow_sampled_out.labels(definition.name, shadow)
                self._samples[key] = ShadowSample(fraction, counter.inc)

    def _mirror(self, deployment: str, shadow: str) -> ShadowMirror | ShadowProcess:
        on_drop = self.metrics.shadow_dropped.labels(deployment, shadow).inc
        name = f"{deployment}/{shadow}"
        if self._shadow_host is None:
            return ShadowMirror(
                name, self._answer_shadow, capacity=self.shadow_capacity, on_drop=on_drop
            )
        metrics = self.metrics
        return ShadowProcess(
            name,
            deployment,
            shadow,
            self._shadow_host,
            capacity=self.shadow_capacity,
            on_drop=on_drop,
            on_answer=lambda seconds: metrics.answered(deployment, shadow, "shadow", seconds),
            on_failure=lambda kind: metrics.failed(deployment, shadow, "shadow", kind),
            on_restart=metrics.shadow_restarts.labels(deployment, shadow).inc,
        )

    def shadow_counts(self, deployment: str) -> dict[str, dict[str, int]]:
        """Per shadow variant of ``deployment`` that has a worker: the copies it
        ``answered``, those that ``failed``, those ``dropped`` because its queue was full,
        and the requests whose copy its ``shadow_sample`` left out (``sampled_out``).

        >>> ServingRuntime(Database("sqlite://"), None).shadow_counts("api")
        {}
        """
        counts = {}
        for (name, variant), mirror in list(self._mirrors.items()):
            if name != deployment:
                continue
            sample = self._samples.get((name, variant))
            counts[variant] = {
                "answered": mirror.answered,
                "failed": mirror.failed,
                "dropped": mirror.dropped,
                "sampled_out": 0 if sample is None else sample.sampled_out,
            }
        return counts

    def ready(self, name: str | None = None) -> bool:
        """Whether deployment ``name`` (default: every deployment this runtime names) can
        answer: defined, and every variant that receives traffic loaded.

        >>> ServingRuntime(Database("sqlite://"), None, names=()).ready()
        True
        """
        chosen = [name] if name is not None else list(self.names or ())
        try:
            return all(self.served(each).ready for each in chosen)
        except NotFoundError:
            return False

    # -- answering --------------------------------------------------------------------------

    def predict(
        self,
        deployment: str,
        records: object,
        *,
        routing_key: str | None = None,
        variant: str | None = None,
        revision: int | None = None,
    ) -> ServedAnswer:
        """Answer ``records`` (a list of field -> value objects) with ``deployment``.

        The strategy's policy picks the live variant (sticky by ``routing_key`` when one
        is given); ``variant`` names one instead (any variant of the deployment, a shadow
        included, for checking it). Bad records raise
        :class:`~opsloop.errors.InvalidArgumentError` naming record, field and rule.
        ``revision`` is as for :meth:`served`.

        >>> runtime = ServingRuntime(Database("sqlite://"), None, names=["api"])
        >>> runtime.predict("other", [{"x": 1}])
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: this data plane does not serve deployment 'other'
        >>> runtime.close()
        """
        request = self._begin(deployment, records, routing_key, variant, revision)
        answer = None
        if request.served.oversight.runs_model:
            try:
                answer = request.loaded.predict(request.checked)
            except Exception as caught:
                self._model_failed(request, caught)
                raise
        return self._finish(request, answer)

    async def predict_async(
        self,
        deployment: str,
        records: object,
        *,
        routing_key: str | None = None,
        variant: str | None = None,
        revision: int | None = None,
        arrival: Arrival | None = None,
    ) -> ServedAnswer:
        """:meth:`predict` on the event loop, where a deployment whose settings turn
        micro-batching on answers concurrent requests of a variant with one model call
        (:mod:`.micro_batching`). ``arrival`` is the request's count among those on their
        way (:attr:`arrivals`), ended once it is ready to join a batch.

        >>> import asyncio
        >>> runtime = ServingRuntime(Database("sqlite://"), None, names=["api"])
        >>> asyncio.run(runtime.predict_async("other", [{"x": 1}]))
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: this data plane does not serve deployment 'other'
        >>> runtime.close()
        """
        try:
            request = self._begin(deployment, records, routing_key, variant, revision)
        finally:
            if arrival is not None:
                arrival.done()
        answer = None
        if request.served.oversight.runs_model:
            batcher = request.served.batcher(request.loaded, self.arrivals, self.metrics)
            try:
                if batcher is None:
                    answer = request.loaded.predict(request.checked)
                else:
                    answer = await batcher.answer(request.checked)
            except Exception as caught:
                self._model_failed(request, caught)
                raise
        return self._finish(request, answer)

    def _begin(
        self,
        deployment: str,
        records: object,
        routing_key: str | None,
        variant: str | None,
        revision: int | None,
    ) -> _Request:
        """Route the request and check its records."""
        served = self.served(deployment, revision)
        if routing_key is not None and not isinstance(routing_key, str):
            raise InvalidArgumentError(f"routing_key: must be a string, got {routing_key!r}")
        routed = variant is None
        routing_field = served.routing_key_field
        if routed and routing_key is None and routing_field is not None:
            routing_key = routing_key_of(records, routing_field)
        if routed:
            if served.policy is None:
                raise UnavailableError(f"deployment {deployment!r} has no routing policy")
            variant = served.policy.choose(routing_key)
        assert variant is not None
        loaded = served.variant(variant)
        sent, records = records, _for_variant(records, routing_field, loaded)
        started = time.perf_counter()
        try:
            checked = loaded.check(records)
        except InvalidArgumentError:
            self.metrics.failed(deployment, loaded.name, "primary", "invalid_input")
            raise
        return _Request(served, loaded, routed, records, routing_key, checked, started, sent)

    def _model_failed(self, request: _Request, caught: Exception) -> None:
        deployment = request.served.definition.name
        self.metrics.failed(deployment, request.loaded.name, "primary", "model_error")
        if request.routed:
            self.rollouts.observe(request.served, request.loaded.name, failed=True, latency_ms=0.0)
        # Recorded as a shadow's failure is, so that the monitoring windows and the
        # dashboard count a failing variant's errors, not only its answers.
        self._record(
            request.loaded,
            deployment,
            "primary",
            uuid.uuid4().hex,
            request.routing_key,
            request.records,
            None,
            f"{type(caught).__name__}: {caught}",
            time.perf_counter() - request.started,
            generation=request.served.definition.generation,
            routed_share=request.served.routed_share if request.routed else None,
            routed=request.routed,
        )

    def _finish(self, request: _Request, answer: VariantAnswer | None) -> ServedAnswer:
        """Count, observe, oversee, record and mirror an answered request."""
        served, loaded, records = request.served, request.loaded, request.records
        deployment, routing_key, role = served.definition.name, request.routing_key, "primary"
        frame = request.checked
        seconds = time.perf_counter() - request.started
        self.metrics.answered(deployment, loaded.name, role, seconds)
        flagged = self.screening.screen(deployment, loaded.name, served.screen, frame)
        if request.routed and answer is not None:  # a request held for a person has none
            self.rollouts.observe(
                served,
                loaded.name,
                failed=False,
                latency_ms=seconds * 1000.0,
                answer=(frame, answer),
                flagged=None if flagged is None else flagged > 0,
            )
        request_id = uuid.uuid4().hex
        decision = screened_decision(served.oversight.decide(frame, answer), flagged, served.screen)
        item = oversee(
            decision,
            deployment=deployment,
            request_id=request_id,
            records=list(records),  # type: ignore[call-overload]
            queue=self.review_queue,
            metrics=self.metrics,
            generation=served.definition.generation,
        )
        self._record(
            loaded,
            deployment,
            role,
            request_id,
            routing_key,
            records,
            answer,
            None,
            seconds,
            marked(decision, flagged),
            generation=served.definition.generation,
            routed_share=served.routed_share if request.routed else None,
            routed=request.routed,
        )
        for shadow in served.shadows:
            if shadow.name == loaded.name:
                continue
            key = (deployment, shadow.name)
            mirror, sample = self._mirrors.get(key), self._samples.get(key)
            # Sampled before the copy is made: a copy left out costs the machine nothing.
            if mirror is not None and (sample is None or sample.takes(request_id)):
                copy = _for_variant(request.sent, served.routing_key_field, shadow)
                job = _ShadowJob(
                    shadow, deployment, copy, request_id, routing_key, served.definition.generation
                )
                mirror.offer(job)
        return ServedAnswer(
            request_id,
            deployment,
            loaded.name,
            loaded.model_name,
            loaded.version,
            # Restricted only here, on its way to the client: the event above, the gates
            # and the review queue keep the model's full answer.
            restricted(decision.answer, served.outputs.get(loaded.name)),
            decision.disposition,
            item,
            decision.rules,
        )

    def _answer_shadow(self, job: _ShadowJob) -> None:
        shadow, role = job.variant, "shadow"
        started = time.perf_counter()
        answer, error, failure = None, None, None
        try:
            answer = shadow.predict(shadow.check(job.records))
        except Exception as caught:
            failure = caught
            kind = "invalid_input" if isinstance(caught, InvalidArgumentError) else "model_error"
            self.metrics.failed(job.deployment, shadow.name, role, kind)
            error = f"{type(caught).__name__}: {caught}"
        seconds = time.perf_counter() - started
        if error is None:
            self.metrics.answered(job.deployment, shadow.name, role, seconds)
        self._record(
            shadow,
            job.deployment,
            role,
            job.request_id,
            job.routing_key,
            job.records,
            answer,
            error,
            seconds,
            generation=job.generation,
        )
        if failure is not None:
            raise failure  # the mirror counts and logs it, after its event is recorded

    def _record(
        self,
        variant: LoadedVariant,
        deployment: str,
        role: str,
        request_id: str,
        routing_key: str | None,
        records: Any,
        answer: VariantAnswer | None,
        error: str | None,
        seconds: float,
        decision: Decision | None = None,
        *,
        generation: int | None = None,
        routed_share: float | None = None,
        routed: bool | None = None,
    ) -> None:
        event = PredictionEvent(
            deployment=deployment,
            variant=variant.name,
            role=role,
            model=variant.model_name,
            version=variant.version,
            request_id=request_id,
            routing_key=routing_key,
            inputs=list(records),
            output=None if answer is None else answer.to_dict(),
            error=error,
            latency_ms=seconds * 1000.0,
            at_ms=self.clock(),
            disposition=None if decision is None else decision.disposition,
            assertions=None if decision is None else decision.counts,
            generation=generation,
            routed_share=routed_share,
            routed=routed,
        )
        if not self.recorder.record(event):
            self.metrics.events_dropped.inc()

    def _read_joined(self, joined: list) -> None:
        """Read feedback that waited for answers the event writer just wrote into the
        rollouts, as :meth:`feedback` reads feedback joined at once."""
        self.rollouts.read_joined(joined)

    def _read_joined_labels(self, connection: Any, joined: list) -> Callable[[], None]:
        """Read the labels of feedback that waited for answers the event writer is writing
        into the rollouts' gates, in the writer's transaction; what to do once it commits."""
        return self.rollouts.read_joined_labels(connection, joined)

    def feedback(
        self,
        deployment: str,
        request_id: str,
        *,
        label: Any = None,
        reward: float | None = None,
        actor: str,
        wait_s: float = 5.0,
    ) -> str | None:
        """Keep the ``label`` and/or ``reward`` of answer ``request_id`` (waiting up to
        ``wait_s`` for this worker's events to reach the store) and pass it to the
        deployment's rollout: a label to a ramping canary's metric gate, a reward to its
        bandit. Feedback whose answer is still on its way (another worker's batch) waits
        for it in the store and is read when its event is written
        (:mod:`opsloop.store.waiting_feedback`); whether it was ``joined`` or is
        ``waiting``, on a data plane as its control plane says (``None`` from a control
        plane too old to say). An
        answer of a deployment of the name that was retired since takes feedback too,
        kept with its history, also when no deployment stands under the name now (see
        :meth:`~.rollout_observer.RolloutObserver.record_feedback`).

        >>> ServingRuntime(Database("sqlite://"), None).feedback("api", "r1", label=1,
        ...                                                     actor="ana")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: no deployment named 'api'
        """
        if self.names is not None and deployment not in self.names:
            raise NotFoundError(f"this data plane does not serve deployment {deployment!r}")
        self.recorder.flush(wait_s)
        return self.rollouts.record_feedback(
            deployment, request_id, label=label, reward=reward, actor=actor
        )

    def input_schema(
        self, deployment: str, variant: str | None = None, revision: int | None = None
    ) -> Schema | None:
        """The input schema of the primary variant's version (or ``variant``'s), ``None``
        when it was registered without one; the inference protocol's metadata reads it.

        >>> ServingRuntime(Database("sqlite://"), None).input_schema("api")
        Traceback (most recent call last):
        opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'api'
        """
        served = self.served(deployment, revision)
        name = variant or next(v.name for v in served.definition.variants if v.role == "primary")
        return served.variant(name).schema

    def close(self) -> None:
        """Stop the shadows' workers, write the buffered events and rollout counts, then
        close the ``clients`` they were written through; closing again does nothing.

        >>> from opsloop.registry.http_registry import ServerClient
        >>> client = ServerClient("http://127.0.0.1:1")
        >>> runtime = ServingRuntime(Database("sqlite://"), None, clients=[client])
        >>> runtime.close(); client.closed
        True
        >>> runtime.close()
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.rollouts.flush()
        with self._lock:
            for mirror in self._mirrors.values():
                mirror.close()
            self._mirrors.clear()
            self._samples.clear()
        self.recorder.close()
        for client in self.clients:  # last: the flushes above still write through them
            client.close()
