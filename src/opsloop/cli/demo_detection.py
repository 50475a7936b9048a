"""The demo's detection table: for each change injected into its live traffic, the window it
was injected in and the first window in which each monitoring signal that answers to that
kind of change fired, read back from the store (the evaluated windows and the alerts).

A covariate shift answers to the share of drifted features (the inputs moved: at least
:data:`~opsloop.monitoring.decay_kind.MOVED_SHARE`), the per-feature drift tests and a decay
kind in which the inputs moved; a concept shift (a new labelling rule) to a decay kind
counting as concept drift, the error-stream detector (ADWIN) and the alerts of the rules
whose signal is ``concept_drift`` or ``error_drift``. Each signal is read in the windows of
one variant (the primary, which served all traffic when the changes were injected); a
window is numbered by the hours since the first window of the live traffic. ``before``
counts the windows before the injection in which the signal fired (false alarms).

>>> rows = detection_rows(
...     [(0, {"drift_share": 0.1, "drift": {}, "decay": {"kind": "none"}, "error_drift": 0}),
...      (1, {"drift_share": 0.7, "drift": {"age": {"drifted": True}},
...           "decay": {"kind": "data_drift"}, "error_drift": 0})],
...     [], [("covariate shift", 1)])
>>> [(r["signal"], r["first"], r["detail"]) for r in rows]
[('drift share >= 0.5', 1, '0.70'), ('per-feature drift', 1, 'age'), ('decay: inputs moved', 1, 'data_drift')]
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from opsloop.monitoring.decay_kind import CONCEPT_DRIFT_KINDS, MOVED_SHARE

#: Decay kinds in which the inputs moved (whether or not the relationship moved too).
MOVED_KINDS = ("data_drift", "data_drift_and_error_rise", "data_and_concept_drift")
#: The most drifted features a row names; the rest are counted.
FEATURES_SHOWN = 4

Signal = tuple[str, Callable[[dict], str | None]]


def _share(m: dict) -> str | None:
    share = m.get("drift_share")
    return f"{share:.2f}" if share is not None and share >= MOVED_SHARE else None


def _features(m: dict) -> str | None:
    drifted = sorted(name for name, test in (m.get("drift") or {}).items() if test["drifted"])
    if not drifted:
        return None
    more = len(drifted) - FEATURES_SHOWN
    return ", ".join(drifted[:FEATURES_SHOWN]) + (f" (+{more})" if more > 0 else "")


def _kind(kinds: Sequence[str]) -> Callable[[dict], str | None]:
    def found(m: dict) -> str | None:
        kind = (m.get("decay") or {}).get("kind")
        return kind if kind in kinds else None

    return found


def _adwin(m: dict) -> str | None:
    return f"{m['error_drift']} alarm(s)" if m.get("error_drift") else None


#: The signals each kind of change answers to: a name and what a window's metrics say
#: (``None`` where it did not fire).
SIGNALS: dict[str, list[Signal]] = {
    "covariate shift": [
        (f"drift share >= {MOVED_SHARE:g}", _share),
        ("per-feature drift", _features),
        ("decay: inputs moved", _kind(MOVED_KINDS)),
    ],
    "concept shift": [
        ("decay: concept drift", _kind(CONCEPT_DRIFT_KINDS)),
        ("error detector (ADWIN)", _adwin),
    ],
}
#: The alerts' signals each kind of change answers to.
ALERT_SIGNALS = {"covariate shift": ("drift_share", "data_drift"), "concept shift": (
    "concept_drift", "error_drift")}  # fmt: skip


def detection_rows(
    windows: Sequence[tuple[int, dict[str, Any]]],
    alerts: Sequence[tuple[int, str, str]],
    changes: Sequence[tuple[str, int]],
) -> list[dict[str, Any]]:
    """One row per change and signal: ``change``, ``injected`` (its window), ``signal``,
    ``first`` (the first window at or after the injection in which it fired, or ``None``),
    ``before`` (the windows before the injection in which it fired) and ``detail`` (what it
    said in the first). ``windows``: each window's number and metrics, in order;
    ``alerts``: each alert's window number, signal and rule; ``changes``: each change's
    kind (a key of :data:`SIGNALS`) and window."""
    rows = []
    for change, injected in changes:
        for name, fired in SIGNALS[change]:
            said = [(k, fired(m)) for k, m in windows]
            after = [(k, s) for k, s in said if s is not None and k >= injected]
            rows.append(
                {
                    "change": change,
                    "injected": injected,
                    "signal": name,
                    "first": after[0][0] if after else None,
                    "before": sum(1 for k, s in said if s is not None and k < injected),
                    "detail": after[0][1] if after else "",
                }
            )
        for signal in ALERT_SIGNALS[change]:
            raised = [(k, rule) for k, s, rule in alerts if s == signal]
            after = [(k, rule) for k, rule in raised if k >= injected]
            if not raised:
                continue
            rows.append(
                {
                    "change": change,
                    "injected": injected,
                    "signal": f"alert ({signal})",
                    "first": after[0][0] if after else None,
                    "before": sum(1 for k, _ in raised if k < injected),
                    "detail": after[0][1] if after else "",
                }
            )
    return rows


def print_detection(console: Console, rows: list[dict[str, Any]], first_window: str) -> None:
    """The rows of :func:`detection_rows` as a table, one line each."""
    console.print(
        f"  detection, read back from the store (variant live; window 0 starts at {first_window}):"
    )
    console.print(
        f"  {'change':<16}{'injected':<11}{'signal':<26}{'first fired':<13}{'delay':<7}"
        f"{'before':<8}first said"
    )
    for row in rows:
        first = "never" if row["first"] is None else f"window {row['first']}"
        delay = "-" if row["first"] is None else str(row["first"] - row["injected"])
        console.print(
            f"  {row['change']:<16}{'window ' + str(row['injected']):<11}{row['signal']:<26}"
            f"{first:<13}{delay:<7}{row['before']:<8}{row['detail']}",
            markup=False,
        )
