"""``opsloop monitor``: log a file's predictions and labels (``log``), evaluate a
deployment's closed windows against its reference, show its status, write its HTML report,
retrain it, set and show its stored policy (``policy set|show``: the rules every
evaluation applies unless it is given its own, and the error-stream detector). Reads and
writes the local store (``OPSLOOP_HOME`` or ``OPSLOOP_STORE_URI``); on a server, the
same operations are :class:`~opsloop.monitoring.http_monitoring.HttpMonitoring`'s.
``retrain`` runs the training function in this process: on the local store, or, with
``--follow --server URL``, for the retrain requests a server's policies queued (the server
runs no user code), through the server's operations
(:mod:`opsloop.monitoring.retrain_follower`).

Errors are one line on stderr with exit code 2:

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(monitor_app, ["status", "api", "--window", "1 week"]).output.strip()
"error: window: a duration like '5min', '1h' or '1d', got '1 week'"
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opsloop.cli.console import (
    JsonFlag,
    UsageProblem,
    one_line_errors,
    out,
    print_json,
    print_table,
)
from opsloop.cli.report_run import (
    RunOption,
    check_output_folders,
    check_report_run,
    log_report,
)

monitor_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Monitor deployments: windows, drift, detectors, policies, alerts.",
)

WindowOption = Annotated[str, typer.Option(help="Window length: 5min, 1h, 1d, ...")]


def _store():
    from opsloop.store import open_database

    return open_database()


def _windowing(window: str):
    from opsloop.monitoring.windowing import Windowing

    return Windowing(window)


def _time_ms(value: str | None, option: str) -> int | None:
    """A time given as milliseconds since the epoch or as an ISO date and time (UTC unless
    it says otherwise)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise UsageProblem(
            f"{option}: milliseconds since the epoch or an ISO time, got {value!r}"
        ) from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.value // 1_000_000)


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _show_evaluations(done, as_json: bool) -> None:
    """Print one round's evaluations: as JSON, or a line per window that decayed or alerted
    with its alerts and actions, and a count."""
    from opsloop.monitoring.monitor_report import window_label

    if as_json:
        print_json(
            [
                {
                    "variant": e.variant,
                    "start_ms": e.start_ms,
                    "decay": e.metrics.get("decay"),
                    "alerts": e.alerts,
                    "actions": e.actions,
                }
                for e in done
            ]
        )
        return
    for e in done:
        kind = (e.metrics.get("decay") or {}).get("kind")
        if kind not in (None, "none") or e.alerts:
            shown = f"decay {kind}" if kind is not None else "no labels"
            out.print(f"{window_label(e.start_ms)} {e.variant}: {shown}", markup=False)
        for alert in e.alerts:
            out.print(f"  alert: {alert}", markup=False)
        for action in e.actions:
            out.print(f"  {action['action']} {action['status']}: {action['reason']}", markup=False)
    fired = sum(len(e.alerts) for e in done)
    out.print(f"{len(done)} window(s) evaluated, {fired} alert(s) raised", markup=False)


def _evaluation_round(deployment: str, rules: list[str], window: str, server, token_env):
    """A callable that evaluates ``deployment``'s closed windows once: on the local store
    (alerts, webhooks, rollbacks and promotions run here; a retrain is queued for
    ``opsloop monitor retrain --follow``), or by the server's ``evaluate`` operation. Given
    rules are checked here first, so a bad one stops before any round; without them each
    round applies the deployment's stored policy as it is then."""
    import os

    from opsloop.monitoring.policy import Policy

    policies = [Policy.parse(text) for text in rules] if rules else None
    if server is not None:
        from opsloop.monitoring.http_monitoring import HttpMonitoring

        monitoring = HttpMonitoring(server, token=os.environ.get(token_env) or None)
        return lambda: monitoring.evaluate(deployment, window=window, policies=rules or None)
    from opsloop.monitoring.evaluation import evaluate
    from opsloop.monitoring.policy_actions import ActionContext
    from opsloop.registry import ModelRegistry

    db = _store()
    # A retrain runs the user's training function with a gate: queued here, as a server
    # queues it, for 'opsloop monitor retrain --follow' on this store.
    context = ActionContext(db, registry=ModelRegistry(db), queue_retrains=True)
    context.check(policies or [])
    windowing = _windowing(window)
    return lambda: evaluate(db, deployment, windowing=windowing, policies=policies, actions=context)


def _follow_evaluations(evaluate_round, window: str, every: float | None, as_json: bool) -> None:
    """Evaluate at each window close (or every ``every`` seconds) until Ctrl-C or SIGTERM,
    which end it with exit 0; a round's error is one line on stderr and the next round
    runs."""
    import signal

    from opsloop.cli.console import err
    from opsloop.monitoring.evaluation_schedule import evaluate_on_schedule

    def stop(signum, frame):
        raise KeyboardInterrupt

    def failed(error: Exception) -> None:
        message = " ".join(str(error).split()) or type(error).__name__
        err.print(f"error: this round failed, next round goes on: {message}", markup=False,
                  soft_wrap=True)  # fmt: skip

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        evaluate_on_schedule(
            evaluate_round,
            window_ms=_windowing(window).window_ms,
            every_s=every,
            on_result=lambda done: _show_evaluations(done, as_json),
            on_error=failed,
        )
    except KeyboardInterrupt:
        err.print("stopped", markup=False)
    finally:
        signal.signal(signal.SIGTERM, previous)


@monitor_app.command("evaluate")
@one_line_errors
def evaluate_command(
    deployment: str,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="A policy, e.g. 'drift_share > 0.3 for 2 windows -> alert' (repeat for "
            "several). Given rules win over the deployment's stored policy ('opsloop monitor "
            "policy set'); without --rule the stored rules apply.",
        ),
    ] = None,
    window: WindowOption = "1h",
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Keep evaluating: again as each window closes, until Ctrl-C or SIGTERM.",
        ),
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            help="With --follow (implied): evaluate every SECONDS instead of at window closes.",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="Evaluate on this opsloop server, by its operations (no store here)."),
    ] = None,
    token_env: Annotated[
        str,
        typer.Option(help="With --server: the environment variable holding the API token."),
    ] = "OPSLOOP_TRACKING_TOKEN",
    as_json: JsonFlag = False,
) -> None:
    """Fold new events into windows and evaluate the closed ones (policies applied): each
    labelled window's kind of decay, the alerts raised and what their actions did. The
    rules are the --rule options when given (they win over the stored ones), else the
    deployment's stored policy ('opsloop monitor policy set'), read again at each round;
    the error-stream detector is the stored policy's. Alerts, webhooks, rollbacks and
    promotions run here (on the local store's registry); a retrain is queued for 'opsloop
    monitor retrain --follow', which runs the training function with its gate. With
    --server, the server evaluates (and queues retrains the same way).

    With --follow (or --every), evaluates again after each window closes, so an alert
    fires within one window of its data, printing each round, until Ctrl-C or SIGTERM
    (exit 0); a round that fails (a store or server briefly unavailable) is one line on
    stderr and the next round runs."""
    from opsloop.errors import NotFoundError

    if every is not None and not every > 0:  # NaN included
        raise UsageProblem(f"--every: must be a number of seconds > 0, got {every:g}")
    evaluate_round = _evaluation_round(deployment, rule or [], window, server, token_env)
    if follow or every is not None:
        _follow_evaluations(evaluate_round, window, every, as_json)
        return
    try:
        done = evaluate_round()
    except NotFoundError as error:
        raise UsageProblem(str(error)) from None
    _show_evaluations(done, as_json)


@monitor_app.command("status")
@one_line_errors
def status_command(
    deployment: str,
    window: WindowOption = "1h",
    last: Annotated[int, typer.Option(min=1, help="How many windows to show.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """The latest evaluated windows, label counts and alerts of DEPLOYMENT. A deployment
    the monitoring does not know (never defined, logged to or given a reference) is an
    error (exit 2) listing the known ones."""
    from opsloop.monitoring.monitor_report import SHOWN_METRICS, monitor_status
    from opsloop.monitoring.monitored_names import check_monitored

    db = _store()
    windowing = _windowing(window)
    check_monitored(db, deployment)
    status = monitor_status(db, deployment, windowing, last=last)
    if as_json:
        print_json(status)
        return
    table = Table(title=f"{deployment}: last {len(status['windows'])} window(s) of {window}")
    for name in ("window", "variant", *SHOWN_METRICS):
        table.add_column(name)
    for row in status["windows"]:
        cells = {n: _format(row[n]) for n in ("window", "variant", *SHOWN_METRICS)}
        if row.get("input_scored"):  # the rate with the counts it comes from
            rate = cells["input_anomaly_rate"]
            cells["input_anomaly_rate"] = f"{rate} ({row['input_flagged']}/{row['input_scored']})"
        if row.get("residual_mean_low") is not None:  # the mean with its interval
            low, high = _format(row["residual_mean_low"]), _format(row["residual_mean_high"])
            cells["residual_mean"] = f"{cells['residual_mean']} [{low}, {high}]"
        if row.get("records_per_request_max") is not None:
            most = _format(row["records_per_request_max"])
            cells["records_per_request_mean"] = f"{cells['records_per_request_mean']} (max {most})"
        table.add_row(*cells.values())
    print_table(table)
    out.print(f"reference: {status.get('reference') or 'none'}", markup=False)
    labels = status["labels"]
    out.print(
        "labels: " + ", ".join(f"{count} {name}" for name, count in labels.items()), markup=False
    )
    for row in status["windows"]:
        for alarm in row.get("feature_alarm_list", []):
            change = alarm["change_point"]
            out.print(
                f"feature alarm {row['window']} {row['variant']}: {alarm['feature']} "
                f"({alarm['detector']}) at value {alarm['position']}"
                + ("" if change is None else f", change near value {change}"),
                markup=False,
            )
    out.print(f"alerts: {len(status['alerts'])}", markup=False)
    for alert in status["alerts"]:
        out.print(
            f"  {alert['window']} {alert['variant']}: {alert['rule']} -> {alert['action']}",
            markup=False,
        )


#: The largest file ``opsloop monitor log`` reads.
MAX_LOG_FILE_BYTES = 1 << 30


@monitor_app.command("log")
@one_line_errors
def log_command(
    deployment: str,
    data: Annotated[
        Path, typer.Argument(help="CSV (.csv, .tsv) or Parquet file of the rows to log.")
    ],
    prediction: Annotated[
        str, typer.Option(help="The column of the model's answers (one per row).")
    ] = "prediction",
    request_id: Annotated[
        str | None,
        typer.Option(
            help="The column of request ids (1-64 characters, unique); random ids otherwise."
        ),
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(
            help="The column of times: ms since the epoch or ISO (UTC unless it "
            "says otherwise); now otherwise."
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="The column of labels, joined to the answers by request id (a row without "
            "one logs none). Without the prediction column, the file holds labels alone "
            "for answers logged before (--request-id needed).",
        ),
    ] = None,
    variant: Annotated[str, typer.Option(help="The variant that answered.")] = "default",
    window: WindowOption = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Log DATA's rows to DEPLOYMENT as prediction events (and labels), as
    opsloop.monitoring.log_predictions and log_labels do from Python: every column other
    than the prediction, request id, time and label columns is an input. Every row is
    checked first; a bad cell is named by its column and row (row 1 is the first after the
    header). At most 1,000,000 rows and 1 GiB per file."""
    from opsloop.data.io import table_format
    from opsloop.monitoring.local_monitoring import Monitoring
    from opsloop.monitoring.prediction_table import log_prediction_table

    if not data.is_file():
        raise UsageProblem(f"{data}: no such file")
    fmt = table_format(data)
    if fmt not in ("csv", "tsv", "parquet"):
        raise UsageProblem(f"{data}: a CSV or Parquet file, got {fmt}")
    size = data.stat().st_size
    if size > MAX_LOG_FILE_BYTES:
        raise UsageProblem(
            f"{data}: at most 1 GiB per file, got {size / (1 << 30):.1f} GiB; split it"
        )
    frame = _read_logged(data, fmt, request_id)
    # Checked here to name the options; log_prediction_table names its parameters.
    for option, name in (("--request-id", request_id), ("--time", time), ("--labels", labels)):
        if name is not None and name not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:20]))
            raise UsageProblem(f"{option}: no column {name!r} in {data.name}; columns: {shown}")
    if prediction not in frame.columns and labels is not None and request_id is None:
        raise UsageProblem(
            f"labels alone (no column {prediction!r}, see --prediction) are joined by "
            "request id: give --request-id"
        )
    logged = log_prediction_table(
        Monitoring(_store()),
        deployment,
        frame,
        prediction=prediction,
        request_id=request_id,
        time=time,
        labels=labels,
        variant=variant,
        window=window,
    )
    receipt = None if logged.labels is None else logged.labels.to_dict()
    if as_json:
        print_json({"predictions": logged.predictions, "labels": receipt})
        return
    if logged.predictions:
        shown = f"{logged.predictions} prediction(s) logged to {deployment} ({variant})"
        out.print(shown, markup=False)
    if receipt is not None:
        counts = ", ".join(
            f"{receipt[k]} {k}" for k in ("accepted", "late", "duplicate", "unknown")
        )
        out.print(f"labels: {counts}", markup=False)


#: The most bytes ``opsloop monitor log`` decompresses from a compressed file (an 11 KB
#: .csv.gz can hold millions of rows).
MAX_LOG_DECODED_BYTES = 1 << 30


class _BoundedStream(io.RawIOBase):
    """A decompressed stream that stops with :class:`UsageProblem` past ``limit`` bytes, so a
    small compressed file is never inflated whole into memory."""

    def __init__(self, stream, limit: int, name: Path) -> None:
        self._stream, self._left, self._name = stream, limit, name

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise UsageProblem(
                f"{self._name}: at most {MAX_LOG_DECODED_BYTES / (1 << 30):g} GiB once "
                "decompressed; split it"
            )
        buffer[: len(data)] = data
        return len(data)


def _read_logged(data: Path, fmt: str, request_id: str | None):
    """``data`` as a frame of at most :data:`~opsloop.monitoring.prediction_table.MAX_ROWS`
    rows, refused before it is read whole: a Parquet file by the row count and size its
    metadata states, a CSV by reading one row more than the bound, a compressed CSV also
    by its decompressed bytes. A CSV's request id column is read as text (an id ``007``
    stays ``007``)."""
    import bz2
    import gzip
    import lzma

    import pandas as pd

    from opsloop.data.io import TableReadError, parse_iso_dates
    from opsloop.monitoring import prediction_table

    bound = prediction_table.MAX_ROWS
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            metadata = pq.ParquetFile(data).metadata
        except (pa.ArrowException, OSError) as error:
            raise TableReadError(f"{data}: cannot read as parquet: {error}") from error
        if metadata.num_rows > bound:
            raise UsageProblem(
                f"at most {bound:,} rows in one table, got {metadata.num_rows:,}; split it"
            )
        decoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        if decoded > MAX_LOG_DECODED_BYTES:
            raise UsageProblem(
                f"{data}: at most {MAX_LOG_DECODED_BYTES / (1 << 30):g} GiB once "
                f"decompressed, its metadata says {decoded / (1 << 30):.1f} GiB; split it"
            )
        try:
            return pd.read_parquet(data)
        except (ValueError, OSError, pa.ArrowException) as error:
            raise TableReadError(f"{data}: cannot read as parquet: {error}") from error
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(data.suffix.lower())
    source = None
    try:
        if opener is not None:
            source = io.BufferedReader(
                _BoundedStream(opener(data, "rb"), MAX_LOG_DECODED_BYTES, data)
            )
        frame = pd.read_csv(
            data if source is None else source,
            sep="\t" if fmt == "tsv" else ",",
            dtype=None if request_id is None else {request_id: str},
            nrows=bound + 1,
        )
    except pd.errors.EmptyDataError as error:
        raise TableReadError(f"{data}: the file is empty") from error
    except (ValueError, OSError, UnicodeDecodeError, EOFError, lzma.LZMAError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TableReadError(f"{data}: cannot read as {fmt}: {reason}") from error
    finally:
        if source is not None:
            source.close()
    if len(frame) > bound:
        raise UsageProblem(f"at most {bound:,} rows in one table, got more; split it")
    return parse_iso_dates(frame)


@monitor_app.command("features")
@one_line_errors
def features_command(
    deployment: str,
    enabled: Annotated[
        bool, typer.Option("--on/--off", help="Run a streaming detector per input feature.")
    ],
    max_features: Annotated[
        int, typer.Option(help="Watch at most this many numeric features.")
    ] = 50,
    detector: Annotated[
        str, typer.Option(help="ADWIN, or CUSUM (against the reference; half the cost).")
    ] = "ADWIN",
) -> None:
    """Turn DEPLOYMENT's per-feature streaming detectors on or off (off by default)."""
    from opsloop.monitoring.feature_stream import set_feature_detectors

    setting = set_feature_detectors(
        _store(), deployment, enabled=enabled, max_features=max_features, detector=detector
    )
    state = "on" if setting["enabled"] else "off"
    out.print(
        f"feature detectors of {deployment}: {state} ({setting['detector']}, "
        f"at most {setting['max_features']} features)",
        markup=False,
    )


policy_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="A deployment's stored monitoring policy: its rules and its error-stream detector.",
)
monitor_app.add_typer(policy_app, name="policy")

ServerOption = Annotated[
    str | None, typer.Option(help="On this opsloop server, by its operations (no store here).")
]
TokenEnvOption = Annotated[
    str, typer.Option(help="With --server: the environment variable holding the API token.")
]


def _monitoring(server: str | None, token_env: str):
    """The local store's monitoring, or the server's."""
    import os

    if server is None:
        from opsloop.monitoring.local_monitoring import Monitoring

        return Monitoring(_store())
    from opsloop.monitoring.http_monitoring import HttpMonitoring

    return HttpMonitoring(server, token=os.environ.get(token_env) or None)


def _show_policy(setting, as_json: bool) -> None:
    from opsloop.cli.console import err

    if setting.warning is not None:
        err.print(f"warning: {setting.warning}", markup=False, soft_wrap=True)
    if as_json:
        print_json(setting.to_dict())
        return
    who = "never set" if setting.revision == 0 else f"revision {setting.revision}"
    if setting.updated_by is not None:
        who += f", by {setting.updated_by}"
    out.print(
        f"{setting.deployment}: error-stream detector {setting.error_detector}, "
        f"{len(setting.rules)} rule(s) ({who})",
        markup=False,
        soft_wrap=True,
    )
    for rule in setting.rules:
        out.print(f"  {rule}", markup=False, soft_wrap=True)


@policy_app.command("set")
@one_line_errors
def policy_set_command(
    deployment: str,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="A rule, e.g. 'error_drift > 0 -> retrain(train=pkg.fit:train)' (repeat for "
            "several); the rules given replace the stored ones.",
        ),
    ] = None,
    no_rules: Annotated[
        bool, typer.Option("--no-rules", help="Store no rules (the detector still runs).")
    ] = False,
    error_detector: Annotated[
        str | None,
        typer.Option(
            help="The error stream's detector: ADWIN (default; 0 false alarms in 20 M items "
            "of a 10% error rate, mean delay 118), CUSUM (0.005 per 100,000, delay 79), "
            "PageHinkley (0.015 per 100,000, delay 81; 0/1 errors only) or DDM (River's "
            "defaults, not calibrated: 8.8 false alarms per 100,000 items in a fresh "
            "detector, mean delay 556; 0/1 errors only). Another choice than the stored "
            "one starts the detector afresh at the next evaluated window; none given keeps "
            "the stored one (ADWIN when none is).",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    server: ServerOption = None,
    token_env: TokenEnvOption = "OPSLOOP_TRACKING_TOKEN",
    as_json: JsonFlag = False,
) -> None:
    """Store DEPLOYMENT's monitoring policy: the rules every evaluation applies ('opsloop
    monitor evaluate', once or --follow, locally or on a server, the Python API and the
    server's evaluate operation) unless it is given rules of its own, which win; and the
    detector of its error stream. Each rule is checked before anything is stored; the
    change is versioned and audited (entity monitor:DEPLOYMENT)."""
    if no_rules == bool(rule):
        raise UsageProblem("give the rules with --rule (one per rule), or --no-rules for none")
    setting = _monitoring(server, token_env).set_policy(
        deployment, rules=rule or [], error_detector=error_detector, reason=reason
    )
    _show_policy(setting, as_json)


@policy_app.command("show")
@one_line_errors
def policy_show_command(
    deployment: str,
    server: ServerOption = None,
    token_env: TokenEnvOption = "OPSLOOP_TRACKING_TOKEN",
    as_json: JsonFlag = False,
) -> None:
    """DEPLOYMENT's stored monitoring policy: its rules and its error-stream detector."""
    _show_policy(_monitoring(server, token_env).policy(deployment), as_json)


@monitor_app.command("report")
@one_line_errors
def report_command(
    deployment: str,
    html: Annotated[Path, typer.Option("--html", help="Write the standalone report here.")],
    window: WindowOption = "1h",
    variant: Annotated[str | None, typer.Option(help="Only this variant's windows.")] = None,
    run: RunOption = None,
) -> None:
    """Write DEPLOYMENT's report: drift heatmap, metrics over time, alerts. A deployment
    or --variant the monitoring does not know is an error (exit 2) listing the known ones;
    the folder of --html must exist."""
    from opsloop.monitoring.monitor_report import monitor_report
    from opsloop.monitoring.monitored_names import check_monitored

    check_output_folders({"--html": html})
    check_report_run(run, html)
    db = _store()
    windowing = _windowing(window)
    check_monitored(db, deployment, variant=variant)
    report = monitor_report(db, deployment, windowing, variant=variant)
    path = report.write(html)
    out.print(f"report written to {path}", markup=False)
    log_report(run, path)


def _follow(deployment, *, train, gate, server, token_env, once, poll_s, follower, lease_s,
            trust, as_json) -> list[dict]:  # fmt: skip
    """Run ``deployment``'s retrain requests for ``train`` (see
    :func:`~opsloop.monitoring.retrain_follower.follow_retrains`); the outcomes."""
    import os

    from opsloop.monitoring.policy_actions import ActionContext
    from opsloop.monitoring.retrain_follower import follow_retrains

    if server is None:
        from opsloop.monitoring.local_monitoring import Monitoring
        from opsloop.registry import ModelRegistry

        registry = ModelRegistry()
        monitoring = Monitoring(registry.db)
        context = ActionContext(registry.db, registry=registry, gate=gate, trust=trust)
    else:
        from opsloop.monitoring.http_monitoring import HttpMonitoring
        from opsloop.registry import HttpModelRegistry
        from opsloop.serving.http_deployments import HttpDeployments
        from opsloop.tracking.http_store import HttpTrackingStore

        token = os.environ.get(token_env)
        if not token:
            raise UsageProblem(f"--token-env: the environment variable {token_env} is not set")
        monitoring = HttpMonitoring(server, token=token)
        context = ActionContext(
            None,
            registry=HttpModelRegistry(server, token=token),
            deployments=HttpDeployments(server, token=token),
            tracking=HttpTrackingStore(server, token=token),
            gate=gate,
            trust=trust,
            remote=True,
        )

    def shown(outcome: dict) -> None:
        if not as_json:
            out.print(
                f"request {outcome['request_id']}: {outcome['status']}: {outcome['reason']}",
                markup=False,
                soft_wrap=True,
            )

    return follow_retrains(
        monitoring,
        deployment,
        context,
        train=train,
        follower=follower,
        lease_s=lease_s,
        once=once,
        poll_s=poll_s,
        on_outcome=shown,
    )


@monitor_app.command("retrain")
@one_line_errors
def retrain_command(
    deployment: str,
    train: Annotated[
        str, typer.Option("--train", help="The training function, package.module:function.")
    ],
    gate_file: Annotated[
        Path, typer.Option("--gate", help="The release gate the new version must pass.")
    ],
    variant: Annotated[str, typer.Option(help="Whose answers to learn from.")] = "default",
    since: Annotated[
        str | None,
        typer.Option(help="Learn from this time (ms or ISO); default: the last change point."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Up to this time (ms or ISO); default: the last evaluated window's end."),
    ] = None,
    window: WindowOption = "1h",
    reference_share: Annotated[
        float, typer.Option(help="Share of the reference's labelled rows to add.")
    ] = 0.0,
    holdout: Annotated[
        float, typer.Option(help="Latest share of the rows kept out for the gate.")
    ] = 0.3,
    min_rows: Annotated[int, typer.Option(help="Fewest labelled rows to train on.")] = 50,
    keep_correct: Annotated[
        bool,
        typer.Option(
            "--keep-correct",
            help="Add the older labelled rows the new ones still agree with "
            "(instead of --reference-share).",
        ),
    ] = False,
    neighbours: Annotated[
        int, typer.Option(help="--keep-correct: the new rows that judge an older one.")
    ] = 5,
    tolerance: Annotated[
        float,
        typer.Option(
            help="--keep-correct on numeric labels: how many deviations of the new labels' "
            "noise an older label may be from its neighbours' median."
        ),
    ] = 3.0,
    trust: Annotated[
        bool, typer.Option(help="Trust the models the gate loads (pickle, any skops type).")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Run the retrain requests that policies queued for TRAIN, as they come.",
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(help="With --follow: the opsloop server whose requests to run."),
    ] = None,
    token_env: Annotated[
        str,
        typer.Option(help="With --server: the environment variable holding the API token."),
    ] = "OPSLOOP_TRACKING_TOKEN",
    once: Annotated[
        bool, typer.Option("--once", help="With --follow: stop when no request is left.")
    ] = False,
    poll_s: Annotated[
        float, typer.Option(help="With --follow: seconds between asks for a request.")
    ] = 10.0,
    follower: Annotated[
        str, typer.Option(help="With --follow: this follower's name, kept with its claims.")
    ] = "follower",
    lease_s: Annotated[
        int, typer.Option(help="With --follow: how long a claim holds, in seconds.")
    ] = 3600,
    as_json: JsonFlag = False,
) -> None:
    """Retrain DEPLOYMENT as a retrain policy would: on the labelled rows since the change
    point, then the release gate, then a canary of the new version when it passes. Runs
    TRAIN in this process on the local store; exit 1 when it did not start a canary.

    With --follow, runs instead the retrain requests that policies queued for TRAIN (a
    server's monitoring queues them, since it runs no user code), on the server given by
    --server (or the local store): each is claimed, trained here, registered, gated and
    canaried through the server, and its outcome reported; exit 1 when one did not start
    a canary."""
    from opsloop.analysis.gate import load_gate
    from opsloop.monitoring.policy_actions import ActionContext
    from opsloop.monitoring.retrain_request import retrain_on_request
    from opsloop.registry import ModelRegistry

    if follow:
        for value, option in ((since, "--since"), (until, "--until")):
            if value is not None:
                raise UsageProblem(f"{option}: not with --follow (each request names its window)")
        outcomes = _follow(
            deployment,
            train=train,
            gate=load_gate(gate_file),
            server=server,
            token_env=token_env,
            once=once,
            poll_s=poll_s,
            follower=follower,
            lease_s=lease_s,
            trust=trust,
            as_json=as_json,
        )
        if as_json:
            print_json(outcomes)
        if any(o["status"] != "done" for o in outcomes):
            raise typer.Exit(1)
        return

    registry = ModelRegistry()  # the local store's, whatever server the environment names
    context = ActionContext(registry.db, registry=registry, gate=load_gate(gate_file), trust=trust)
    outcome = retrain_on_request(
        context,
        deployment,
        train=train,
        variant=variant,
        since_ms=_time_ms(since, "--since"),
        until_ms=_time_ms(until, "--until"),
        windowing=_windowing(window),
        reference_share=reference_share,
        holdout=holdout,
        min_rows=min_rows,
        keep_correct=keep_correct,
        neighbours=neighbours,
        tolerance=tolerance,
    )
    if as_json:
        print_json(outcome)
    else:
        from opsloop.monitoring.monitor_report import window_label

        found = outcome.get("window")
        if found is not None:
            out.print(
                f"window: {window_label(found['start_ms'])} to {window_label(found['end_ms'])}, "
                f"{found['new_rows']} labelled rows and {found['reference_rows']} from the "
                f"reference (sha256 {found['sha256'][:12]})",
                markup=False,
                soft_wrap=True,
            )
        if "version" in outcome:
            out.print(
                f"registered {outcome['model']} v{outcome['version']} (run {outcome['run_id']}), "
                f"gated against v{outcome['baseline']}",
                markup=False,
                soft_wrap=True,
            )
        out.print(f"{outcome['status']}: {outcome['reason']}", markup=False, soft_wrap=True)
    if outcome["status"] != "done":
        raise typer.Exit(1)
