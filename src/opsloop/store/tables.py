"""The database tables of tracking and the registry, as SQLAlchemy 2 core tables.

Times are integer milliseconds since the epoch (UTC). Metric points are the bulk of the
data, so they are kept narrow: integer run and key ids, the step, a per-run sequence number
that makes equal steps distinct, the time and the value. On SQLite the point table has no
rowid (the primary key is the storage order), which keeps a point near 30 bytes on disk;
``latest_metrics`` holds each run's last value per key so that searches never scan history.
Package lists are stored once per distinct environment and shared by the runs that used it.

The Alembic migrations in :mod:`opsloop.store.migrations` create exactly these tables; a
test compares the two.

>>> sorted(metadata.tables)[:3]
['ab_report_sums', 'aliases', 'api_tokens']
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from opsloop.store.audit_origin import ORIGIN_LENGTH

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SHA256 = String(64)
NAME = String(250)
# Separates keys and values in ``runs.params_packed`` (ASCII unit separator).
PARAM_SEPARATOR = "\x1f"

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("created_ms", BigInteger, nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("sha256", SHA256, primary_key=True),
    Column("python_version", String(64), nullable=False),
    Column("platform", String(250), nullable=False),
    Column("packages", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("parent_id", Integer, ForeignKey("runs.id")),
    Column("name", NAME),
    Column("status", String(16), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger),
    Column("user_name", NAME),
    Column("command", Text),
    Column("git_commit", String(64)),
    Column("git_branch", NAME),
    Column("git_dirty", Boolean),
    Column("git_diff_sha256", SHA256),
    Column("environment_sha256", SHA256, ForeignKey("environments.sha256")),
    Column("metric_seq", BigInteger, nullable=False, server_default="0"),
    # When the run's writer last showed it was alive (every write, and an empty write while
    # it has nothing to log): a RUNNING run silent for too long lost its process.
    Column("heartbeat_ms", BigInteger),
    # A read-optimised copy of the run's params, written in the same transaction as the
    # params rows: key, value, key, value, ... joined by PARAM_SEPARATOR. Params never
    # change once logged, so the copy cannot go stale; searching many runs then reads one
    # text per run instead of one row per param.
    Column("params_packed", Text),
    Column("param_count", Integer, nullable=False, server_default="0"),
    Index(None, "experiment_id", "start_ms"),
    Index(None, "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

metric_keys = Table(
    "metric_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("key_id", Integer, ForeignKey("metric_keys.id"), primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    sqlite_with_rowid=False,
)

# Per-block summaries of each metric series, kept in the transaction that writes its
# points, so a chart of a long series reads summaries instead of every point (see
# opsloop.store.metric_blocks). Level l groups the steps into blocks of 16 ** (l + 1).
metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("key_id", Integer, ForeignKey("metric_keys.id"), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("points", BigInteger, nullable=False),
    Column("step_first", BigInteger, nullable=False),
    Column("step_last", BigInteger, nullable=False),
    Column("min_value", Float(precision=53), nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("min_seq", BigInteger, nullable=False),
    Column("max_value", Float(precision=53), nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("max_seq", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("key_id", Integer, ForeignKey("metric_keys.id"), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Index(None, "key_id", "value"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("sha256", SHA256, primary_key=True),
    Column("n_rows", BigInteger, nullable=False),
    Column("n_columns", Integer, nullable=False),
    Column("schema_json", Text),
    Column("profile_json", Text),
    Column("created_ms", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("dataset_sha256", SHA256, ForeignKey("datasets.sha256"), nullable=False),
    Index(None, "dataset_sha256"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("sha256", SHA256, nullable=False),
    Column("size", BigInteger, nullable=False),
    Index(None, "sha256"),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id")),
    Column("artifact_sha256", SHA256, nullable=False),
    Column("artifact_size", BigInteger, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("signature_json", Text),
    Column("loader_json", Text),
    Column("description", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    UniqueConstraint("model_id", "version"),
    Index(None, "run_id"),
    Index(None, "artifact_sha256"),
)

# The reference of a version registered with its training data
# (:class:`opsloop.data.training_reference.Reference` as bytes): what monitoring compares a
# deployment serving the version with, when none was set for the deployment.
version_references = Table(
    "version_references",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("reference", LargeBinary, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("sample_rows", Integer, nullable=False),
    # The classes of the probabilities the reference keeps, as JSON ('null': none kept),
    # read without the reference's bytes; null for a row written by a version before
    # 0030, whose classes are read from the bytes.
    Column("scored_classes", Text, nullable=True),
)

version_metrics = Table(
    "version_metrics",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Float(precision=53), nullable=False),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

protected_aliases = Table(
    "protected_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("required_approvals", Integer, nullable=False),
    # The release gate a move needs, as JSON: true (any gate), or a gate's name or sha256.
    Column("required_gate_json", Text, nullable=True),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", NAME, nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("approver", NAME, nullable=False),
    Column("comment", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("consumed", Boolean, nullable=False),
    Index(None, "model_id", "alias", "version_id"),
)

#: Room for the longest entity: ``model:`` + a 250-character name + ``/alias:`` + a
#: 250-character alias is 513 characters.
ENTITY_LENGTH = 600

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(ENTITY_LENGTH), nullable=False),
    Column("reason", Text),
    Column("before_json", Text),
    Column("after_json", Text),
    # A unique previous hash makes the log a single chain: two entries can never claim the
    # same predecessor, even when written concurrently.
    Column("prev_hash", SHA256, nullable=False, unique=True),
    Column("hash", SHA256, nullable=False, unique=True),
    # Keyed entries link by HMAC under the audit key (kept outside the database); entries
    # written before the log was keyed are plain sha256 links.
    Column("keyed", Boolean, nullable=False, server_default=false()),
    # Where the change came from (JSON, see ``audit_origin``); null in entries written
    # before it was recorded, whose hashes do not cover it.
    Column("origin", String(ORIGIN_LENGTH)),
    # A rollout controller's decision (JSON: action, share, evidence), written only by its
    # path; null in every other entry, whose hashes do not cover it.
    Column("decision", Text),
    Index(None, "entity", "at_ms"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # A disabled user's tokens stop working; the user and their history stay.
    Column("disabled_ms", BigInteger),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("sha256", SHA256, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    Column("expires_ms", BigInteger),
    # Written at most once a minute per token, so reads stay reads.
    Column("last_used_ms", BigInteger),
)

# A dashboard session: the browser's cookie holds a random id, this table only its sha256,
# bound to the token it was started from and to the user and role it was started as.
# ``idle_until_ms`` is never later than ``expires_ms``, so it alone says when a row is dead.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("sha256", SHA256, primary_key=True),
    Column("token_sha256", SHA256, nullable=False, index=True),
    Column("user_name", NAME, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("idle_until_ms", BigInteger, nullable=False, index=True),
)

# A deployment's current definition; its history is in the audit log (entity
# ``deployment:NAME``), written in the same transaction as every change here.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("strategy", String(16), nullable=False),
    Column("automation", String(32), nullable=False),
    Column("description", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", NAME, nullable=False),
)

# A variant serves either a fixed version (``version_id``) or whatever an alias of the model
# points at (``alias``); exactly one of the two is set.
deployment_variants = Table(
    "deployment_variants",
    metadata,
    Column("deployment_id", Integer, ForeignKey("deployments.id"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("weight", Float(precision=53), nullable=False),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id")),
    Column("alias", NAME),
    # a shadow's share of request copies to answer (see serving.shadow_sampling); NULL: 1
    Column("shadow_sample", Float(precision=53), nullable=True),
    Index(None, "model_id"),
)

# A protected deployment changes only to a definition that enough distinct approvers
# approved (its digest); the approvals are used up by the change. Keyed by name, so a name
# can be protected before its first deployment.
protected_deployments = Table(
    "protected_deployments",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("required_approvals", Integer, nullable=False),
    # the release gate a change's versions must have passed: JSON, null for none
    Column("required_gate_json", Text, nullable=True),
)

deployment_approvals = Table(
    "deployment_approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("digest", SHA256, nullable=False),
    Column("approver", NAME, nullable=False),
    Column("comment", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("consumed", Boolean, nullable=False),
    Index(None, "deployment", "digest"),
)

# Approvals of lowering or removing a protection, by the protected thing's audit entity
# (``model:NAME/alias:ALIAS`` or ``deployment:NAME``) and the digest of the protection
# approved (opsloop.registry.protection_approvals).
protection_approvals = Table(
    "protection_approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity", String(ENTITY_LENGTH), nullable=False),
    Column("digest", SHA256, nullable=False),
    Column("approver", NAME, nullable=False),
    Column("comment", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("consumed", Boolean, nullable=False),
    Index(None, "entity", "digest"),
)

# Batches a run has applied, by the writer's idempotency key: a batch sent again (a client's
# retry after a lost reply) is recognised in the transaction that would write it twice.
run_batches = Table(
    "run_batches",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("batch_id", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

# The inputs of a batch of events logged together (``log_predictions``), column by column:
# one Arrow IPC stream of the batch's rows, so that logging and folding a batch encode and
# parse its values once per column instead of once per event.
prediction_input_batches = Table(
    "prediction_input_batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("inputs_arrow", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# One row per answered request and per shadow answer (``role`` primary or shadow), written
# off the request path by the serving runtime's event recorder; the monitoring reads them
# back by deployment and time. Inputs and output are JSON text (the records, the answer);
# an event logged in a batch instead points at its row of the batch's columnar inputs
# (``input_batch_id``, ``input_row``) and has no ``inputs_json``: its one record is that row.
prediction_events = Table(
    "prediction_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("variant", NAME, nullable=False),
    Column("role", String(16), nullable=False),
    Column("model", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("routing_key", Text),
    Column("inputs_json", Text),
    Column("output_json", Text),
    Column("error", Text),
    Column("latency_ms", Float(precision=53), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    # What the client got (answered, suggestion, queued, logged) and the model assertions
    # that fired ({rule: rows}); null for events recorded before they existed.
    Column("disposition", String(16)),
    Column("assertions_json", Text),
    Column("input_batch_id", Integer, ForeignKey("prediction_input_batches.id")),
    Column("input_row", Integer),
    # The candidate's share the serving runtime routed the request at, when a canary's
    # split routed it; null otherwise and for events recorded before it was kept (a
    # canary's task-metric gate then reads the share of the step when it was answered).
    Column("routed_share", Float(precision=53)),
    # Whether the split routed the request (false: its variant was named, or a batch's
    # row); null where unknown (recorded before it was kept, or logged from Python).
    Column("routed", Boolean),
    Index(None, "deployment", "at_ms"),
    Index(None, "request_id"),
)

# What a serving worker's process used while it answered a deployment: its resident memory
# and its CPU time so far, sampled as it writes its events (the monitoring's windows read
# them; a worker is ``host:pid``).
process_samples = Table(
    "process_samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("worker", NAME, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("rss_bytes", BigInteger, nullable=False),
    Column("cpu_seconds", Float(precision=53), nullable=False),
    Index(None, "deployment", "at_ms"),
)

# Outcomes that arrive after the answer (a label or a reward), joined to the answer by its
# request id.
prediction_feedback = Table(
    "prediction_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("label_json", Text),
    Column("reward", Float(precision=53)),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index(None, "request_id"),
    # The A/B report's newest feedback per request of a deployment, read in group order.
    Index(None, "deployment", "request_id", "id"),
)

# Feedback whose answer's event was not recorded yet, until it lands or its wait ends
# (see opsloop.store.waiting_feedback): at most one row per answer.
waiting_feedback = Table(
    "waiting_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("label_json", Text),
    Column("reward", Float(precision=53)),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index(None, "deployment", "request_id", unique=True),
    Index(None, "deployment", "expires_ms"),
    # One user's live rows across all deployments, counted against their bound.
    Index(None, "created_by", "expires_ms"),
)

# The A/B report's per-arm sums of one deployment as of a watermark: every feedback row up
# to ``feedback_id`` and every prediction event up to ``event_id`` folded in, under the
# deployment's ``retires``-th name (a retire moves its rows: the sums then start again).
# ``pending_json`` holds, on PostgreSQL, ids the report will fold in once the writers that
# were open when it read them have ended; ``version`` orders two reports' writes
# (opsloop.serving.ab_arm_sums).
ab_report_sums = Table(
    "ab_report_sums",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("retires", Integer, nullable=False),
    Column("feedback_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("pending_json", Text, nullable=True),
    Column("sums_json", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# Monitoring windows: one row per deployment, variant, window length, window start and the
# worker that wrote it; reading a window merges its workers' rows (profiles, samples and
# counts all merge). The raw sample expires by a retention setting, the profile is kept.
monitoring_windows = Table(
    "monitoring_windows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("variant", NAME, nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("worker", NAME, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("sample", LargeBinary),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("deployment", "variant", "window_ms", "start_ms", "worker"),
)

# What a deployment's inputs are compared with: the training data's profile, schema and sample.
monitoring_references = Table(
    "monitoring_references",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("reference", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    # The model version whose predictions the reference keeps (null: not said).
    Column("predicted_model", NAME, nullable=True),
    Column("predicted_version", Integer, nullable=True),
    # The classes of the probabilities the reference keeps, as JSON ('null': none kept),
    # so that logging probabilities names their columns without reading the reference's
    # bytes; null for a row written by a version before 0030, read from the bytes then.
    Column("scored_classes", Text, nullable=True),
)

# Named JSON state of a deployment's monitor that must survive a restart: the event cursor,
# the detectors, the policies' streaks, the label counts.
monitoring_state = Table(
    "monitoring_state",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("state_json", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# A deployment's monitoring policy (:mod:`opsloop.monitoring.stored_policy`): the rules every
# evaluator applies unless a call gives its own (JSON, each checked by the policy parser on
# write) and the detector its error stream is read by, versioned; each change is also an
# entry of the monitor's audit log. A retired deployment's moves with its other monitoring.
monitoring_policies = Table(
    "monitoring_policies",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("rules_json", Text, nullable=False),
    Column("error_detector", String(32), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", NAME, nullable=False),
)

# The metrics computed for one closed window (drift per feature, input, output and task
# metrics, detector alarms), kept for reports of metrics over time.
monitoring_evaluations = Table(
    "monitoring_evaluations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("variant", NAME, nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("metrics_json", Text, nullable=False),
    Column("evaluated_ms", BigInteger, nullable=False),
    UniqueConstraint("deployment", "variant", "window_ms", "start_ms"),
    # Every variant's windows of one length, paged newest first by (start, variant). Named
    # here: the convention's name would take PostgreSQL's whole 63 characters.
    Index("ix_monitoring_evaluations_by_start", "deployment", "window_ms", "start_ms", "variant"),
)

# Alerts raised by monitoring policies, with the evidence that fired them.
monitoring_alerts = Table(
    "monitoring_alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("variant", NAME, nullable=False),
    Column("rule", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("evidence_json", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index(None, "deployment", "at_ms"),
    # The alerts paged newest first by id, of every variant or of one.
    Index(None, "deployment", "id"),
    Index(None, "deployment", "variant", "id"),
)

# A deployment's runtime settings beside its definition: the confidence threshold below
# which partial automation sends an answer to review, and the model assertion rules (JSON).
# Each change is also an entry of the deployment's audit log, so its history is there.
deployment_settings = Table(
    "deployment_settings",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("confidence_threshold", Float(precision=53)),
    Column("assertions_json", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", NAME, nullable=False),
    # {"max_batch_size", "max_wait_ms"} when requests are micro-batched, else null.
    Column("batching_json", Text),
    # {variant: {"decimals", "top_k", "label_only"}} for variants whose answers say less.
    Column("outputs_json", Text),
    # The records' field whose value routes a request that brings no routing key, or null.
    Column("routing_key_field", NAME),
)

# A deployment's input anomaly detector (:mod:`opsloop.serving.input_detector_settings`):
# its numbers as JSON (bounded: at most 256 features), what the data plane does with a
# flagged request, and who set it. Each change is also an entry of the deployment's audit log.
deployment_input_detectors = Table(
    "deployment_input_detectors",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("detector_json", Text),
    Column("action", String(16), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", NAME, nullable=False),
)

# Requests (or rows asked about by active learning) waiting for a person: open, claimed by
# a reviewer, then answered with a label that also becomes the request's feedback.
review_items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", NAME, nullable=False),
    Column("request_id", String(64)),
    Column("reason", String(32), nullable=False),
    Column("records_json", Text, nullable=False),
    Column("suggestion_json", Text),
    Column("rules_json", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("claimed_by", NAME),
    Column("claimed_ms", BigInteger),
    Column("label_json", Text),
    Column("answered_by", NAME),
    Column("answered_ms", BigInteger),
    Index(None, "deployment", "state", "id"),
    Index(None, "request_id"),
)
# A deployment's adaptive routing, shared by every serving worker: the rollout policy set
# through the control plane (a canary's ramp and gates, a bandit's policy) and its state
# (the ramp's step, the gates' statistics, the bandit's per-arm sums), as JSON. Workers
# change the state in one write transaction each, so no count is lost between them.
rollouts = Table(
    "rollouts",
    metadata,
    Column("deployment", NAME, primary_key=True),
    Column("policy_json", Text, nullable=False),
    Column("state_json", Text, nullable=False),
    Column("set_by", NAME, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
