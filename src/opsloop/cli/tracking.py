"""``opsloop runs``, ``opsloop models`` and ``opsloop server`` (``opsloop users``: :mod:`.users`).

Runs and models are read and changed through the tracking API and
:func:`opsloop.registry.open_registry`, so they come from the local store or, when
``OPSLOOP_TRACKING_URI`` is an ``http(s)://`` URL, from a server, acting as the owner of
``OPSLOOP_TRACKING_TOKEN``. Locally, models are changed as the OS user.
``opsloop server`` binds 127.0.0.1 by default and refuses any other address until the store
has users with API tokens, so it is never open to the network by accident.

Exit codes: 0 success, 2 the command could not run (unknown run or model, permission
refused, bad option); errors are one line on stderr.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(runs_app, ["--help"]).exit_code
0
"""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
import typer

from opsloop.cli.console import (
    FormatOption,
    JsonFlag,
    Section,
    UsageProblem,
    err,
    iso_time_ms,
    one_line_errors,
    out,
    output_format,
    print_frame,
    print_json,
    print_sections,
)

runs_app = typer.Typer(no_args_is_help=True, add_completion=False, help="List, show, compare runs.")
models_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Registered models, aliases, approvals."
)


def _registry():
    from opsloop.registry import open_registry

    return open_registry()


# -- runs ---------------------------------------------------------------------------------


@runs_app.command("list")
@one_line_errors
def list_runs(
    experiment: Annotated[str | None, typer.Argument(help="Experiment (default: all).")] = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help="Filter expression.")] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", help="e.g. 'metrics.auc DESC'.")
    ] = None,
    max_results: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    page_token: Annotated[
        str | None,
        typer.Option(help="The next page: the token the previous page printed on stderr."),
    ] = None,
    as_json: JsonFlag = False,
    fmt: FormatOption = None,
) -> None:
    """Runs matching a filter such as "metrics.auc > 0.8 and params.model = 'rf'".

    When more runs match than --max-results, the token of the next page is printed on
    stderr (stdout stays a table, CSV or JSON); run the same command again with
    --page-token TOKEN to see the next page. Runs that order_by ranks equal come newest
    first, so pages never skip or repeat a run of a finished experiment."""
    from opsloop.tracking import search_runs

    chosen = output_format(fmt, as_json)
    frame = search_runs(experiment, filter, order_by or None, max_results, page_token=page_token)
    next_token = frame.attrs.get("next_page_token")
    if chosen == "json":
        from opsloop.reports.frame_records import frame_records

        print_json(frame_records(frame))
    else:
        shown = ["run_id", "experiment", "name", "status", "start_time"]
        shown += [c for c in frame.columns if c.startswith("metrics.")]
        print_frame(frame[shown], title=f"{len(frame)} run(s)", fmt=chosen)
    if next_token is not None:
        err.print(f"next page: --page-token {next_token}", markup=False, soft_wrap=True)


@runs_app.command("show")
@one_line_errors
def show_run(run_id: str, as_json: JsonFlag = False, fmt: FormatOption = None) -> None:
    """One run: params, latest metrics, tags, code and environment versions, data, artifacts.

    The CSV is one table of every section's fields (section, item, field, value)."""
    from opsloop.tracking import get_run

    chosen = output_format(fmt, as_json)
    document = get_run(run_id).to_dict()
    if chosen == "json":
        print_json(document)
        return
    environment = document.pop("environment")
    sections: list[Section] = []
    for section in ("params", "metrics", "tags"):
        values = document.pop(section)
        if values:
            frame = pd.DataFrame({"key": list(values), "value": list(values.values())})
            sections.append((section, frame))
    code = document.pop("code")
    datasets, artifacts = document.pop("datasets"), document.pop("artifacts")
    summary = {**document, **{f"git_{k}": v for k, v in code.items()}}
    # Times as ISO 8601 UTC, not epoch milliseconds (the JSON keeps the numbers).
    summary = {
        (key[: -len("_ms")] if key.endswith("_ms") else key): (
            iso_time_ms(value) if key.endswith("_ms") else value
        )
        for key, value in summary.items()
    }
    if environment is not None:
        summary["python_version"] = environment["python_version"]
        summary["packages"] = len(environment["packages"])
    sections.append(
        ("run", pd.DataFrame({"field": list(summary), "value": list(summary.values())}))
    )
    if datasets:
        columns = ["name", "sha256", "n_rows", "n_columns"]
        sections.append(("datasets", pd.DataFrame(datasets)[columns]))
    if artifacts:
        sections.append(("artifacts", pd.DataFrame(artifacts)))
    print_sections(sections, chosen)


@runs_app.command("compare")
@one_line_errors
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    as_json: JsonFlag = False,
) -> None:
    """Params and latest metrics of several runs side by side (differing params marked)."""
    from opsloop.tracking import compare_runs

    comparison = compare_runs(run_ids)
    if as_json:
        print_json(comparison.to_dict())
        return
    differing = set(comparison.differing_params())
    params = comparison.params.astype(object)
    params.index = [f"{key} *" if key in differing else key for key in params.index]
    print_frame(params.reset_index(names="param"), title="params (* differ)")
    print_frame(comparison.metrics.reset_index(names="metric"), title="latest metrics")


# -- models -------------------------------------------------------------------------------


@models_app.command("list")
@one_line_errors
def list_models(as_json: JsonFlag = False) -> None:
    """Every registered model with its latest version and aliases."""
    frame = _registry().list_models()
    if as_json:
        from opsloop.reports.frame_records import frame_records

        print_json(frame_records(frame))
        return
    print_frame(frame, title=f"{len(frame)} model(s)")


@models_app.command("show")
@one_line_errors
def show_model(
    name: str,
    version: Annotated[int | None, typer.Option(help="Version number (default: latest).")] = None,
    alias: Annotated[str | None, typer.Option(help="Or the version an alias points at.")] = None,
    as_json: JsonFlag = False,
    fmt: FormatOption = None,
) -> None:
    """A version with its lineage: artifact, run, git commit, packages, data sets.

    The CSV is one table of every section's fields (section, item, field, value)."""
    chosen = output_format(fmt, as_json)
    registry = _registry()
    found = registry.get_version(name, version=version, alias=alias)
    document = {
        "version": found.to_dict(),
        "lineage": registry.lineage(name, version=found.version).to_dict(),
    }
    if chosen == "json":
        print_json(document)
        return
    sections: list[Section] = []
    for title, values in document.items():
        flat = {
            (k[: -len("_ms")] if k.endswith("_ms") else k): (
                iso_time_ms(v) if k.endswith("_ms") else v
            )
            for k, v in values.items()
            if not isinstance(v, dict | list)
        }
        sections.append((title, pd.DataFrame({"field": list(flat), "value": list(flat.values())})))
    # What the help promises beside the fields: the data sets and the packages.
    lineage = document["lineage"]
    datasets = lineage.get("datasets") or {}
    if datasets:
        frame = pd.DataFrame({"name": list(datasets), "sha256": list(datasets.values())})
        sections.append(("datasets", frame))
    packages = lineage.get("packages") or []
    if packages:
        frame = pd.DataFrame({"package": packages})
        sections.append(("packages", frame, f"{len(packages)} packages"))
    print_sections(sections, chosen)
    if chosen == "table" and not datasets:
        out.print("datasets: none recorded with the source run")
    if chosen == "table" and not packages:
        out.print("packages: none recorded (no source run, or it captured no environment)")


@models_app.command("alias")
@one_line_errors
def set_alias(
    name: str,
    alias: str,
    version: int,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Point ALIAS of model NAME at VERSION (protected aliases need approvals first, by
    people other than you)."""
    _registry().set_alias(name, alias, version, reason=reason)
    out.print(f"{name}: {alias} -> version {version}")


@models_app.command("approve")
@one_line_errors
def approve(
    name: str,
    alias: str,
    version: int,
    comment: Annotated[str | None, typer.Option(help="Kept with the approval.")] = None,
) -> None:
    """Approve pointing ALIAS of NAME at VERSION (needs the approver role; it does not count
    toward a move you make yourself).

    Who approves: with OPSLOOP_TRACKING_URI naming a server (http(s)://), the owner of
    OPSLOOP_TRACKING_TOKEN. On a local store (no URL, or a database URI), the OS login as
    Python's getpass.getuser() reads it (the LOGNAME, USER, LNAME or USERNAME environment
    variable, else the account's name): it must be a registered user with the approver
    role. A local store does not authenticate, so distinct approvers are distinct people
    only through a server."""
    count = _registry().approve(name, alias, version, comment=comment)
    out.print(f"{name}: {count} approval(s) for {alias} -> version {version}")


@models_app.command("protect")
@one_line_errors
def protect(
    name: str,
    alias: str,
    approvals: Annotated[
        int, typer.Option(min=0, help="Distinct approvers needed before ALIAS moves.")
    ] = 0,
    require_gate: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|SHA256",
            help="A passed release gate needed too: the gate's name, or its file's sha256.",
        ),
    ] = None,
    require_any_gate: Annotated[
        bool, typer.Option(help="A passed verdict of any release gate needed too.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Protect ALIAS of model NAME (needs the admin role): it moves only with --approvals
    approvals and, with --require-gate or --require-any-gate, a passed release gate of the
    version against the one the alias points at. No approvals and no gate lift the
    protection."""
    if require_gate is not None and require_any_gate:
        raise UsageProblem("give --require-gate NAME|SHA256 or --require-any-gate, not both")
    gate: bool | str = require_gate if require_gate is not None else require_any_gate
    _registry().protect_alias(name, alias, approvals, require_gate=gate, reason=reason)
    if not approvals and gate is False:
        out.print(f"{name}: {alias} is not protected")
        return
    needs = [f"{approvals} approval(s)"] if approvals else []
    if gate is not False:
        needs.append("a passed release gate" + ("" if gate is True else f" {gate!r}"))
    out.print(f"{name}: {alias} moves only with {' and '.join(needs)}", soft_wrap=True)


@models_app.command("approve-protection")
@one_line_errors
def approve_protection(
    name: str,
    alias: str,
    approvals: Annotated[
        int, typer.Option(min=0, help="The approvals the lowered protection requires.")
    ] = 0,
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
    """Approve lowering or removing the protection of ALIAS of NAME to exactly this one
    (needs the approver role): an admin then applies it with `opsloop models protect`
    and the same options. It does not count toward a change you apply yourself."""
    if require_gate is not None and require_any_gate:
        raise UsageProblem("give --require-gate NAME|SHA256 or --require-any-gate, not both")
    gate: bool | str = require_gate if require_gate is not None else require_any_gate
    count = _registry().approve_protection(
        name, alias, approvals, require_gate=gate, comment=comment
    )
    out.print(f"{name}: {count} approval(s) for lowering the protection of {alias}")


@models_app.command("edit")
@one_line_errors
def edit_model(
    name: str,
    value: Annotated[str, typer.Option(help="The answer inside the region: a class, or a number.")],
    where: Annotated[
        str | None,
        typer.Option(help="The region, e.g. 'x3 > 0.5 and x7 <= 2' (features as the model names)."),
    ] = None,
    leaf: Annotated[int | None, typer.Option(help="Or one leaf of a single tree.")] = None,
    version: Annotated[int | None, typer.Option(help="Version to edit (default: latest).")] = None,
    alias: Annotated[str | None, typer.Option(help="Or the version an alias points at.")] = None,
    trust: Annotated[
        bool, typer.Option(help="Trust the source version (a pickle, any skops type).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Register a tree or forest version of NAME that answers --value inside a region
    (--where or --leaf) and as before everywhere else; the edit is kept in its tags."""
    from opsloop.registry import register_override

    if (where is None) == (leaf is None):
        raise UsageProblem("give the region as --where RULE or --leaf NODE, one of them")
    edited = register_override(
        _registry(),
        name,
        value,
        where=where,
        leaf=leaf,
        version=version,
        alias=alias,
        trust=trust,
        reason=reason,
    )
    record = json.loads(edited.tags["edit"])
    region = f"leaf {record['leaf']}" if record["leaf"] is not None else record["where"]
    out.print(
        f"{name}: version {edited.version} answers {record['value']!r} where {region} "
        f"(edited from {edited.tags['edited_from']}; {record['leaves_overridden']} leaves "
        f"overridden, {record['nodes_added']} nodes added in {record['trees']} tree(s))",
        soft_wrap=True,
    )


# -- server -------------------------------------------------------------------------------


@one_line_errors
def server_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5005,
    allowed_hosts: Annotated[
        str,
        typer.Option(
            help="Comma-separated names the Host header may carry, besides the loopback "
            "names and the bound address (for example the name a reverse proxy forwards)."
        ),
    ] = "",
    allowed_origins: Annotated[
        str,
        typer.Option(
            help="Comma-separated web origins (https://ui.example.com) allowed to call the "
            "API from a browser; none by default."
        ),
    ] = "",
    allow_pickle: Annotated[
        bool,
        typer.Option(
            help="Let admins register pickled models (flavor 'python'), which run code on "
            "whoever loads them; refused by default."
        ),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Also answer prediction requests for every deployment (the data plane of "
            "'opsloop serve') in this process.",
        ),
    ] = False,
    trust: Annotated[
        bool,
        typer.Option(
            help="With --serve: load pickled models (flavor 'python'), which run their code."
        ),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(help="With --serve: a skops type beyond the allow-list to load."),
    ] = None,
    anonymous: Annotated[
        str,
        typer.Option(
            help="What a request without an API token may do, on the API and the dashboard: "
            "'none' (sign in first) or 'read' (read what a viewer reads; any change still "
            "needs a token)."
        ),
    ] = "none",
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes answering on the port (the API, the dashboard and, with "
            "--serve, the data plane), all on the one store, which must then be a file or "
            "a database server (not in memory). The control plane keeps its state in the "
            "store, so any worker answers any request; with --serve each worker loads the "
            "variants, /metrics counts for all of them, and each starts its own shadow "
            "processes.",
        ),
    ] = 1,
    secure_cookies: Annotated[
        str,
        typer.Option(
            help="When the dashboard's cookies are marked Secure: 'auto' (when the request "
            "came over HTTPS; behind a proxy that ends TLS, name it in --trusted-proxies), "
            "'always' or 'never'."
        ),
    ] = "auto",
    trusted_proxies: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses or networks (127.0.0.1, 10.0.0.0/8) of reverse "
            "proxies whose X-Forwarded-Proto and X-Forwarded-For are honoured; from any "
            "other peer they are ignored. None by default."
        ),
    ] = "",
    session_idle: Annotated[
        int | None,
        typer.Option(
            help="Seconds a dashboard session lasts unused (default 7200: 2 hours).",
        ),
    ] = None,
    session_max: Annotated[
        int | None,
        typer.Option(
            help="Seconds a dashboard session lasts at most, however used (default 43200: "
            "12 hours).",
        ),
    ] = None,
) -> None:
    """Serve the REST API (tracking, artifacts, registry) from one process, or from
    --workers N processes sharing the port.

    On a loopback address with no users, requests that carry the installation token (the
    server-token file in OPSLOOP_HOME, which opsloop's clients send on their own) act as the
    OS user (embedded mode). Any other address needs users with API tokens first (opsloop
    users add NAME --role ...).
    """
    # The one place a surface starts another: the server's own entry function.
    # Imported under another name: ``serve`` is the --serve flag here.
    from opsloop.server.launch import names
    from opsloop.server.launch import serve as serve_api

    if workers < 1:
        raise UsageProblem(f"--workers: must be a whole number >= 1, got {workers}")
    serve_api(
        host,
        port,
        names(allowed_hosts),
        names(allowed_origins),
        allow_pickle,
        announce=out.print,
        data_plane=serve,
        trust=trust,
        trusted_types=trust_type or (),
        anonymous=anonymous,
        workers=workers,
        secure_cookies=secure_cookies,
        trusted_proxies=names(trusted_proxies),
        session_idle_s=session_idle,
        session_max_s=session_max,
    )
