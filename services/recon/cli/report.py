"""`recon status` and `recon alerts`: the coverage report and the alerts, for people and scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from recon.cli._app import app, settings_from


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option("--format", help="table for people; json or csv for scripts.")]


@app.command()
def status(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """The coverage report per agreement: quota, active, plan, budget, arrears, claims, firing alerts."""
    from recon.clock import SystemClock
    from reconcile.report import STATUS_COLUMNS, status_rows
    from reconcile.snapshot import snapshot

    settings = settings_from(ctx)
    evaluation, pending = snapshot(settings, SystemClock().now_ms())
    rows = status_rows(evaluation.figures, evaluation.agreements, list(evaluation.alerts.values()))
    note = f"{pending} ingest batches not yet folded: run `recon reconcile`" if pending else ""
    _emit(rows, STATUS_COLUMNS, fmt, title="Coverage by agreement", note=note, money=("_rupiah",))


@app.command()
def alerts(
    ctx: typer.Context,
    fmt: FormatOption = Format.table,
    all_states: Annotated[bool, typer.Option("--all", help="Include resolved alerts.")] = False,
) -> None:
    """Coverage alerts (firing first, most severe first), with observed and expected values."""
    from reconcile.bootstrap import build_store
    from reconcile.report import ALERT_COLUMNS, ALERT_TABLE_COLUMNS, alert_rows

    ledger, store = build_store(settings_from(ctx))
    ledger.check_schema_current()
    rows = alert_rows(list(store.alert_states().values()), include_resolved=all_states)
    columns = ALERT_TABLE_COLUMNS if fmt is Format.table else ALERT_COLUMNS
    _emit(rows, columns, fmt, title="Coverage alerts", note="" if rows else "no alerts", money=())


def _emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str,
    note: str,
    money: tuple[str, ...],
) -> None:
    if fmt is Format.json:
        json.dump(list(rows), sys.stdout, indent=2, default=str)
        print()
    elif fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        _table(rows, columns, title=title, money=money)
    if note:
        print(note, file=sys.stderr)


def _table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str, money: tuple[str, ...]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for name in columns:
        numeric = bool(rows) and isinstance(rows[0].get(name), int | float)
        table.add_column(
            name.replace("_rupiah", " (Rp)").replace("_", " "),
            justify="right" if numeric else "left",
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(_cell(name, row.get(name), money) for name in columns))
    console = Console()
    # Piped into a file or a CI log there is no terminal width to respect: keep rows on one line.
    console.width = console.width if console.is_terminal else 220
    console.print(table)


def _cell(name: str, value: Any, money: tuple[str, ...]) -> str:
    if value is None:
        return "-"
    if name == "utilisation" and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
