"""``opsloop serve [DEPLOYMENT ...]``: the data plane, answering prediction requests.

It serves the named deployments (none: every deployment of the store) from the store that
``opsloop server`` uses, following their definitions as they change. It binds 127.0.0.1 by
default and refuses any other address until the store has users with API tokens.

With ``--server URL`` (default: ``OPSLOOP_TRACKING_URI`` when it is an ``http(s)://`` URL,
as for the other commands) it needs no store: it reads the definitions, loads the model
versions (sha256 checked here), records its events and feedback through that control plane,
acting with the API token in the environment variable ``--token-env`` names
(``OPSLOOP_TRACKING_TOKEN`` by default; an editor's token). Its callers' tokens are checked
by the control plane. See :mod:`opsloop.serving.remote_serving` for what this mode leaves out.
``--gauge-refresh SECONDS`` sets how often, at most, it reads the monitoring gauges it shows
at ``/metrics`` from the control plane (15 s by default).

``--workers N`` answers in N processes sharing the port, each loading the variants and
following the definitions as a separate ``opsloop serve`` does; ``/metrics`` shows the
counts of all of them, whichever answers the scrape. With shadows in processes of their
own, each worker starts its own: N times the shadow variants in all (see
:mod:`opsloop.server.data_plane_workers`).

Exit codes: 0 stopped, 2 could not start (bad address or port, unknown deployment, a
token the control plane refuses).

>>> from typer.testing import CliRunner
>>> import typer
>>> app = typer.Typer()
>>> _ = app.command("serve")(serve_command)
>>> result = CliRunner().invoke(app, ["--port", "0"])
>>> result.exit_code, "port must be between 1 and 65535" in result.output
(2, True)
>>> result = CliRunner().invoke(app, ["--server", "https://ops.example.com",
...                                   "--token-env", "NO_SUCH_VARIABLE"], env={})
>>> result.exit_code, "NO_SUCH_VARIABLE is not set" in result.output
(2, True)
>>> result = CliRunner().invoke(app, ["--server", "https://ops.example.com",
...                                   "--gauge-refresh", "0"])
>>> result.exit_code, "--gauge-refresh: must be a number > 0, got 0" in result.output
(2, True)
>>> result = CliRunner().invoke(app, ["--workers", "0"])
>>> result.exit_code, "--workers: must be a whole number >= 1, got 0" in result.output
(2, True)
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from opsloop.cli.console import UsageProblem, one_line_errors, out


@one_line_errors
def serve_command(
    deployments: Annotated[
        list[str] | None,
        typer.Argument(help="Deployments to serve; none: every deployment of the store."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    allowed_hosts: Annotated[
        str,
        typer.Option(
            help="Comma-separated names the Host header may carry, besides the loopback "
            "names and the bound address."
        ),
    ] = "",
    trust: Annotated[
        bool,
        typer.Option(help="Load pickled models (flavor 'python'), which run their code."),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(help="A skops type beyond the allow-list to load (repeatable)."),
    ] = None,
    check_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between reads of the deployments' revision; 0 reads it before "
            "every request, so no request after a change reaches a variant it took out."
        ),
    ] = 0.0,
    shadow_isolation: Annotated[
        str,
        typer.Option(
            help="Where shadow variants answer: process (a process each, so they cost the "
            "primary almost nothing; needs a store file or server, or --server), thread (in "
            "this process) or auto (process where the store or --server allows)."
        ),
    ] = "auto",
    server: Annotated[
        str | None,
        typer.Option(
            help="The control plane's URL: serve through it, with no store here "
            "(default: OPSLOOP_TRACKING_URI when it is an http(s):// URL)."
        ),
    ] = None,
    token_env: Annotated[
        str,
        typer.Option(help="The environment variable holding the API token for --server."),
    ] = "OPSLOOP_TRACKING_TOKEN",
    gauge_refresh: Annotated[
        float | None,
        typer.Option(
            help="With --server: seconds between reads of the monitoring gauges shown at "
            "/metrics from the control plane, whatever the scrape rate (default 15)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes answering on the port; each loads the variants, and "
            "/metrics counts for all of them. Shadow processes: one per shadow variant "
            "per worker."
        ),
    ] = 1,
) -> None:
    """Answer prediction requests (POST /v1/deployments/NAME/predict, the Open Inference
    Protocol under /v2, metrics at /metrics)."""
    # The one place a surface starts another: the server's own entry function.
    from opsloop.server.launch import names, serve_data_plane
    from opsloop.tracking.api import is_server, tracking_target
    from opsloop.tracking.http_store import TOKEN_VARIABLE

    if workers < 1:
        raise UsageProblem(f"--workers: must be a whole number >= 1, got {workers}")
    if gauge_refresh is not None and not gauge_refresh > 0:  # NaN included
        raise UsageProblem(f"--gauge-refresh: must be a number > 0, got {gauge_refresh:g}")
    if server is None and is_server(tracking_target()):
        server = tracking_target()
    if gauge_refresh is not None and server is None:
        raise UsageProblem(
            "--gauge-refresh: needs --server; a data plane on the store reads the "
            "monitoring gauges at each scrape"
        )
    token = None
    if server is not None:
        token = os.environ.get(token_env) or None
        if token is None and token_env != TOKEN_VARIABLE:
            raise UsageProblem(f"--token-env: the variable {token_env} is not set")
    serve_data_plane(
        deployments or (),
        host,
        port,
        names(allowed_hosts),
        trust=trust,
        trusted_types=trust_type or (),
        check_interval_s=check_interval,
        shadow_isolation=shadow_isolation,
        announce=out.print,
        server_url=server,
        token=token,
        gauge_refresh_s=gauge_refresh,
        workers=workers,
    )
