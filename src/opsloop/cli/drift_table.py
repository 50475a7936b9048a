"""The drift verdicts as printed by ``opsloop drift`` and ``opsloop demo``."""

from __future__ import annotations

from rich.table import Table

from opsloop.cli.console import out, print_table


def print_drift(report) -> None:
    """Print a drift result as a table and a one-line verdict."""
    # Both p-values, labelled: the adjusted one is what was compared with alpha.
    adjusted = f"p adjusted ({report.correction})"
    table = Table()
    for name in ("column", "kind", "test", "statistic", "p-value", adjusted, "effect", "drifted"):
        table.add_column(name, justify="left" if name in ("column", "kind", "test") else "right")
    for c in report.columns:
        mark = "[bold red]yes[/]" if c.drifted else "no"
        table.add_row(
            c.column,
            c.kind,
            c.test,
            f"{c.statistic:.4g}",
            _p_text(c.p_value),
            _p_text(c.p_adjusted),
            f"{c.effect_name} {c.effect:.3g}",
            mark,
        )
    if report.columns:
        print_table(table)
    if report.skipped:
        skipped = Table(title=f"{len(report.skipped)} columns not compared")
        skipped.add_column("column")
        skipped.add_column("reason")
        for column, reason in report.skipped:
            skipped.add_row(column, reason)
        print_table(skipped)
    if not report.compared:
        out.print("dataset: nothing compared, no verdict")
        return
    if report.mode == "sketch":
        uncertain = [c.column for c in report.columns if not c.verdict_certain]
        out.print(
            f"mode: sketch ({report.mode_reason}); KS statistics and p-values within the "
            f"sketches' bounds (--json lists them); verdict uncertain within its bound for "
            f"{len(uncertain)} of {len(report.columns)} columns",
            markup=False,
            soft_wrap=True,
        )
    elif report.mode_reason != "in-memory data":
        out.print(f"mode: exact ({report.mode_reason})", markup=False, soft_wrap=True)
    verdict = "DRIFT" if report.drifted else "no drift"
    skipped_text = f", {len(report.skipped)} not compared" if report.skipped else ""
    out.print(
        f"dataset: {verdict}: {report.n_drifted} of {len(report.columns)} columns drifted "
        f"(alpha {report.alpha}, {report.correction} correction){skipped_text}"
    )


def _p_text(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"
