"""``opsloop audit``: list, verify, publish and export the audit log; seal an older log.

``log`` shows the newest entries: who made each change, from where (over HTTP: the
client's address and the token's id; or a Python program on a host), what and why.
``log``, ``verify``, ``head`` and ``export`` read the log where the registry is (the local store, or
the server that ``OPSLOOP_TRACKING_URI`` names, which holds the key); ``seal`` writes to the
local store with this machine's audit key. ``verify`` exits 1 when the log fails (a changed,
missing or unkeyed entry, a published head no longer in it, or a state the log does not
imply), 0 when it holds. Other errors are one line on stderr with exit code 2.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(audit_app, ["verify", "--head", "x"]).output.strip()
"error: head must be 64 lowercase hex digits, got 'x'"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from opsloop.cli.console import JsonFlag, one_line_errors, out, print_json

audit_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="List, verify, publish and export the audit log.",
)


def _registry():
    from opsloop.registry import open_registry

    return open_registry()


@audit_app.command("log")
@one_line_errors
def log(
    model: Annotated[
        str | None, typer.Option(help="Only this model's entries (its versions and aliases).")
    ] = None,
    last: Annotated[int, typer.Option(min=1, max=10_000, help="How many of the newest.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """The newest entries, oldest first: who, from where, what and why."""
    from opsloop.cli.console import print_frame
    from opsloop.reports.frame_records import frame_records
    from opsloop.store.audit_origin import describe_origin

    frame = _registry().audit(model, last=last)
    if as_json:
        print_json(frame_records(frame))
        return
    shown = frame[["id", "time", "actor", "action", "entity", "reason"]].copy()
    shown.insert(3, "from", [describe_origin(origin) for origin in frame["origin"]])
    print_frame(shown, title="audit log")


@audit_app.command("verify")
@one_line_errors
def verify(
    head: Annotated[
        str | None, typer.Option(help="A head hash published earlier: it must still be there.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the keyed chain, a published head, and the state against the log."""
    from opsloop.store.artifacts import check_sha256

    if head is not None:
        check_sha256(head, "head")
    result = _registry().verify_audit_log(head=head)
    if as_json:
        print_json(result.to_dict())
    elif result.ok:
        out.print(
            f"audit log intact: {result.entries} entries ({result.keyed_entries} keyed), "
            f"head {result.head}"
        )
    else:
        out.print(f"audit log FAILED: {result.problem}", markup=False)
        for problem in result.state_problems[1:]:
            out.print(f"  also: {problem}", markup=False)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("head")
@one_line_errors
def head(as_json: JsonFlag = False) -> None:
    """The newest entry's hash, to publish (a later verify --head catches deletions)."""
    found = _registry().audit_head()
    if as_json:
        print_json(found)
    else:
        out.print(f"{found['hash']}  (entry {found['id']} of {found['entries']})")


@audit_app.command("export")
@one_line_errors
def export(path: Annotated[Path, typer.Argument(help="JSON-lines file to write.")]) -> None:
    """Write every entry, oldest first, with its hashes, as JSON lines."""
    frame = _registry().audit()
    with path.open("w") as handle:
        for entry in frame.to_dict("records"):
            entry["time"] = entry["time"].isoformat()
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
    out.print(f"{len(frame)} entries written to {path}")


@audit_app.command("seal")
@one_line_errors
def seal(
    reason: Annotated[str | None, typer.Option(help="Why (kept in the entry).")] = None,
) -> None:
    """Anchor the local store's log under this machine's audit key (a keyed entry naming
    the current head). Check the log first: sealing vouches for what it holds."""
    from opsloop.registry.audit import seal_audit_log
    from opsloop.store import open_database
    from opsloop.tracking.capture import current_user

    out.print(f"sealed; head {seal_audit_log(open_database(), current_user(), reason)}")
