"""`recon demo`: the main job, end to end on this machine (see recon.demo.runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recon.cli._app import app, settings_from


@app.command()
def demo(
    ctx: typer.Context,
    scale: Annotated[
        float,
        typer.Option(min=0.001, max=1.0, help="Share of the real agreements' size to play (1 = full size)."),
    ] = 1.0,
    work_dir: Annotated[Path, typer.Option(help="Folder for this run's database and service logs.")] = Path(
        ".recon/demo"
    ),
) -> None:
    """Local broker, both services and the Sulawesi scenario; ends with the coverage report and alerts."""
    from rich.console import Console

    from recon.cli.report import Format, _emit
    from recon.clock import SystemClock
    from recon.demo.runner import dead_letter_reasons, run_demo
    from reconcile.report import ALERT_TABLE_COLUMNS, STATUS_COLUMNS, alert_rows, status_rows
    from reconcile.snapshot import snapshot

    console = Console()
    result = run_demo(settings_from(ctx), work_dir=work_dir, scale=scale, console=console)
    evaluation, _ = snapshot(result.settings, SystemClock().now_ms())
    alerts = list(evaluation.alerts.values())
    _emit(
        status_rows(evaluation.figures, evaluation.agreements, alerts),
        STATUS_COLUMNS,
        Format.table,
        title="Coverage by agreement",
        note="",
        money=("_rupiah",),
    )
    rows = alert_rows(alerts, include_resolved=True)
    firing = [r for r in rows if r["state"] == "FIRING"]
    columns = tuple(c for c in ALERT_TABLE_COLUMNS if c not in ("state", "resolved_at"))
    _emit(firing, columns, Format.table, title="Coverage alerts firing", note="", money=())
    console.print(
        f"{len(firing)} alerts firing, {len(rows) - len(firing)} fired and resolved during the run "
        "(`recon alerts --all` lists them)"
    )
    reasons = dead_letter_reasons(result.settings)
    console.print(
        "Dead letters by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none")
    )
    console.print(
        f"{result.published:,} messages through Kafka in {result.seconds:.0f} s; database "
        f"{result.settings.database_url.get_secret_value()}, logs in {work_dir}/. "
        "Explore with RECON_DATABASE_URL set to that database: `recon status`, `recon alerts --all`."
    )
