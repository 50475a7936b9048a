"""``opsloop deployments``: define, change, retire and inspect deployments.

Deployments are read and changed through :func:`opsloop.serving.open_deployments`, so they
come from the local store or, when ``OPSLOOP_TRACKING_URI`` is an ``http(s)://`` URL, from
a server, acting as the owner of ``OPSLOOP_TRACKING_TOKEN``. Locally, the OS user acts.

A variant is written ``NAME=MODEL/VERSION`` or ``NAME=MODEL@ALIAS``, then ``,role=ROLE``
and ``,weight=SHARE`` where needed, e.g. ``--variant stable=credit@champion,weight=0.95
--variant canary=credit/4,role=candidate,weight=0.05 --strategy canary``. A shadow may
answer a share of the request copies, ``,sample=SHARE`` (e.g. ``--variant
copy=credit/5,role=shadow,weight=0,sample=0.25``), to cap what it costs the machine.

Exit codes: 0 success, 2 the command could not run (unknown deployment or model, a broken
rule, permission refused); errors are one line on stderr.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(deployments_app, ["--help"]).exit_code
0
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import pandas as pd
import typer

from opsloop.cli.console import (
    JsonFlag,
    UsageProblem,
    one_line_errors,
    out,
    print_frame,
    print_json,
)

deployments_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Deployments: variants serving model versions, strategy, history, lineage.",
)


def _deployments():
    from opsloop.serving import open_deployments

    return open_deployments()


def _time_ms(text: str) -> int:
    """Milliseconds since the epoch from digits, or from an ISO 8601 time (UTC if naive)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(
            f"--at: give milliseconds since the epoch or an ISO 8601 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


VariantOption = Annotated[
    list[str],
    typer.Option(
        help="NAME=MODEL/VERSION or NAME=MODEL@ALIAS[,role=R][,weight=W][,sample=S]; repeat "
        "(sample: the share of request copies a shadow answers)."
    ),
]
StrategyOption = Annotated[
    str, typer.Option(help="single, shadow, canary, blue_green, ab or bandit.")
]
AutomationOption = Annotated[
    str,
    typer.Option(help="human_only, shadow, ai_assistance, partial_automation or full_automation."),
]


def _variants(texts: list[str]):
    from opsloop.serving import Variant

    return [Variant.parse(text) for text in texts]


@deployments_app.command("deploy")
@one_line_errors
def deploy(
    name: str,
    variant: VariantOption,
    strategy: StrategyOption = "single",
    automation: AutomationOption = "full_automation",
    description: Annotated[str | None, typer.Option(help="What this endpoint is for.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Create deployment NAME or replace its definition (a protected one needs approvals)."""
    made = _deployments().deploy(
        name,
        _variants(variant),
        strategy=strategy,
        automation=automation,
        description=description,
        reason=reason,
    )
    serving = ", ".join(f"{key} -> version {value}" for key, value in made.serving.items())
    out.print(f"{name} ({made.strategy}): {serving}")


@deployments_app.command("protect")
@one_line_errors
def protect(
    name: str,
    required_approvals: int,
    require_gate: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|SHA256",
            help="A passed release gate needed too, of each version a change puts traffic "
            "on: the gate's name, or its file's sha256.",
        ),
    ] = None,
    require_any_gate: Annotated[
        bool, typer.Option(help="A passed verdict of any release gate needed too.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Require REQUIRED_APPROVALS approvals before NAME changes (admin) and, with
    --require-gate or --require-any-gate, a passed release gate of each version a change
    puts traffic on, against the version the primary serves now. No approvals and no gate
    lift the protection."""
    if require_gate is not None and require_any_gate:
        raise UsageProblem("give --require-gate NAME|SHA256 or --require-any-gate, not both")
    gate: bool | str = require_gate if require_gate is not None else require_any_gate
    _deployments().protect(name, required_approvals, require_gate=gate, reason=reason)
    if not required_approvals and gate is False:
        out.print(f"{name}: changes need 0 approval(s)")
        return
    needs = [f"{required_approvals} approval(s)"] if required_approvals else []
    if gate is not False:
        needs.append("a passed release gate" + ("" if gate is True else f" {gate!r}"))
    out.print(f"{name}: changes need {' and '.join(needs)}", soft_wrap=True)


@deployments_app.command("approve-protection")
@one_line_errors
def approve_protection(
    name: str,
    required_approvals: int,
    require_gate: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|SHA256",
            help="The release gate the lowered protection still requires.",
        ),
    ] = None,
    require_any_gate: Annotated[
        bool, typer.Option(help="The lowered protection still requires any release gate.")
    ] = False,
    comment: Annotated[str | None, typer.Option(help="Kept with the approval.")] = None,
) -> None:
    """Approve lowering or removing the protection of NAME to exactly REQUIRED_APPROVALS
    (and the gate given; approver role): an admin then applies it with `opsloop
    deployments protect` and the same arguments. It does not count toward a change you
    apply yourself."""
    if require_gate is not None and require_any_gate:
        raise UsageProblem("give --require-gate NAME|SHA256 or --require-any-gate, not both")
    gate: bool | str = require_gate if require_gate is not None else require_any_gate
    count = _deployments().approve_protection(
        name, required_approvals, require_gate=gate, comment=comment
    )
    out.print(f"{name}: {count} approval(s) for lowering its protection")


@deployments_app.command("approve")
@one_line_errors
def approve(
    name: str,
    variant: VariantOption,
    strategy: StrategyOption = "single",
    automation: AutomationOption = "full_automation",
    comment: Annotated[str | None, typer.Option(help="Kept with the approval.")] = None,
) -> None:
    """Approve deploying exactly this definition as NAME (approver role; it does not count
    toward a change you deploy yourself).

    Who approves: with OPSLOOP_TRACKING_URI naming a server (http(s)://), the owner of
    OPSLOOP_TRACKING_TOKEN. On a local store (no URL, or a database URI), the OS login as
    Python's getpass.getuser() reads it (the LOGNAME, USER, LNAME or USERNAME environment
    variable, else the account's name): it must be a registered user with the approver
    role. A local store does not authenticate, so distinct approvers are distinct people
    only through a server."""
    count = _deployments().approve(
        name, _variants(variant), strategy=strategy, automation=automation, comment=comment
    )
    out.print(f"{name}: {count} approval(s) for this definition")


@deployments_app.command("list")
@one_line_errors
def list_deployments(as_json: JsonFlag = False) -> None:
    """Every deployment with its strategy, automation level and variants."""
    frame = _deployments().list()
    if as_json:
        from opsloop.reports.frame_records import frame_records

        print_json(frame_records(frame))
        return
    print_frame(frame, title=f"{len(frame)} deployment(s)")


@deployments_app.command("show")
@one_line_errors
def show(
    name: str,
    at: Annotated[
        str | None,
        typer.Option(help="As it was at this time (ms since the epoch or ISO 8601)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deployment NAME: its variants, roles, weights and the version each serves."""
    deployments = _deployments()
    if at is None:
        found = deployments.get(name)
    else:
        found = deployments.at(name, _time_ms(at))
        if found is None:
            raise UsageProblem(f"deployment {name!r} did not exist at {at}")
    if as_json:
        print_json(found.to_dict())
        return
    title = f"{found.name}: {found.strategy}, {found.automation}"
    if found.required_approvals:
        title += f", protected ({found.required_approvals} approval(s) per change)"
    if found.required_gate is not False:
        gate = "" if found.required_gate is True else f" {found.required_gate!r}"
        title += f", requires a passed release gate{gate}"
    print_frame(found.to_frame(), title=title)


@deployments_app.command("lineage")
@one_line_errors
def lineage(
    name: str,
    variant: Annotated[str | None, typer.Option(help="Only this variant.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What each variant serves and where it came from: run, commit, packages, data."""
    found = _deployments().lineage(name, variant=variant)
    documents = [entry.to_dict() for entry in found]
    if as_json:
        print_json(documents)
        return
    rows = [
        {
            "variant": d["variant"],
            "role": d["role"],
            "weight": d["weight"],
            "model": f"{d['model']}/{d['version']}",
            "artifact": d["artifact_sha256"][:12],
            "run": d["run_id"],
            "commit": d["git_commit"],
            "python": d["python_version"],
            "packages": None if d["packages"] is None else len(d["packages"]),
            "data": ", ".join(f"{k} {v[:12]}" for k, v in d["datasets"].items()),
        }
        for d in documents
    ]
    print_frame(pd.DataFrame(rows), title=f"lineage of {name}")


@deployments_app.command("history")
@one_line_errors
def history(
    name: str,
    as_json: JsonFlag = False,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Show a rollout decision's evidence (its gates' statistics) in its reason.",
        ),
    ] = False,
) -> None:
    """Every change of deployment NAME, oldest first, from the audit log. A change the
    canary's controller made shows its reason's sentence; its evidence (the gates'
    decisions, often thousands of characters) with --evidence or --json."""
    frame = _deployments().history(name)
    if as_json:
        from opsloop.reports.frame_records import frame_records

        print_json(frame_records(frame))
        return
    from opsloop.serving.rollout_decisions import decision_of
    from opsloop.store.audit_origin import describe_origin

    reasons = [
        # The controller writes its sentence, then " evidence=" and the evidence as JSON; a
        # person's reason is shown whole, whatever it says.
        reason.partition(" evidence=")[0]
        if not evidence and isinstance(reason, str) and decision_of(entry) is not None
        else reason
        for reason, entry in zip(frame["reason"], frame.to_dict("records"), strict=True)
    ]
    shown = frame[["time", "actor", "action"]].assign(
        reason=reasons,
        serving=[None if after is None else after.get("serving") for after in frame["after"]],
    )
    shown.insert(2, "from", [describe_origin(origin) for origin in frame["origin"]])
    print_frame(shown, title=f"history of {name}")


@deployments_app.command("switch")
@one_line_errors
def switch(
    name: str,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Switch blue/green deployment NAME: the standby variant takes all the traffic (again
    to switch back; a protected one needs approvals of the swapped definition)."""
    from opsloop.errors import ConflictError

    try:
        made = _deployments().switch(name, reason=reason)
    except ConflictError as error:  # not blue/green: the user's mistake, one line
        raise UsageProblem(str(error)) from None
    live = next(v.name for v in made.variants if v.role != "shadow" and v.weight == 1.0)
    out.print(f"{name}: {live} takes all the traffic (version {made.serving[live]})")


@deployments_app.command("retire")
@one_line_errors
def retire(
    name: str,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Remove deployment NAME (its history stays)."""
    _deployments().retire(name, reason=reason)
    out.print(f"{name}: retired")


@deployments_app.command("ab-report")
@one_line_errors
def ab_report_command(
    name: str,
    outcome: Annotated[
        str | None,
        typer.Option(
            help="reward, label (a number) or correct (label equals the prediction); "
            "default reward when any feedback has one, else label."
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Test level; the interval is 1 - alpha.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power for the sample size needed.")] = 0.8,
    as_json: JsonFlag = False,
) -> None:
    """Each arm of deployment NAME against its primary: outcome rates or means, the
    difference with its interval and p-value, and the sample size each arm needs."""
    report = _deployments().ab_report(name, outcome=outcome, alpha=alpha, power=power)
    if as_json:
        print_json(report.to_dict())
        return
    confidence = f"{1 - alpha:.0%}"
    print_frame(
        report.to_frame().rename(
            columns={"ci_low": f"{confidence} low", "ci_high": f"{confidence} high"}
        ),
        title=f"A/B report of {name}: {report.outcome} as a {report.kind}, arms against "
        f"{report.arms[0].variant}",
    )
    for note in report.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)


@deployments_app.command("set-input-detector")
@one_line_errors
def set_input_detector(
    name: str,
    fit_on: Annotated[
        str | None,
        typer.Option(help="Clean rows (CSV, Parquet or JSON lines) to fit the detector on."),
    ] = None,
    fpr: Annotated[float, typer.Option(help="Stated false-positive rate on clean rows.")] = 0.01,
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated columns to read (default: every column of the data)."),
    ] = None,
    calibration: Annotated[
        float, typer.Option(help="Share of the rows held out to set the threshold.")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="Seeds which rows are held out.")] = 0,
    action: Annotated[
        str, typer.Option(help="flag (answer and count) or review (send to the review queue).")
    ] = "flag",
    remove: Annotated[bool, typer.Option("--remove", help="Remove the detector.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit an input anomaly detector on clean rows and let deployment NAME score every
    request with it (see opsloop.serving.input_detector_settings)."""
    if remove == (fit_on is not None):
        raise UsageProblem("give --fit-on DATA to set a detector, or --remove")
    detector = None
    if fit_on is not None:
        from opsloop.data.io import read_table
        from opsloop.learn.robustness.portable_detector import fit_portable_detector

        frame = read_table(fit_on)
        if features is not None:
            chosen = [f.strip() for f in features.split(",") if f.strip()]
            missing = [f for f in chosen if f not in frame.columns]
            if missing:
                raise UsageProblem(f"--features: {fit_on} has no column(s) {missing}")
            frame = frame[chosen]
        try:
            detector = fit_portable_detector(frame, fpr=fpr, calibration=calibration, seed=seed)
        except (TypeError, ValueError) as error:
            raise UsageProblem(f"--fit-on {fit_on}: {error}") from None
    setting = _deployments().set_input_detector(name, detector, action=action, reason=reason)
    if as_json:
        print_json({**setting.summary(), "revision": setting.revision})
        return
    if setting.detector is None:
        out.print(f"{name}: no input detector (action {setting.action})")
        return
    found = setting.detector
    out.print(
        f"{name}: input detector on {len(found.features)} features, fpr {found.fpr:g}, "
        f"threshold {found.threshold:.4g} ({found.rank} of {found.calibration_rows} "
        f"calibration scores), action {setting.action}"
    )
