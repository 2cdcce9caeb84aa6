"""`recon agreements load FILE`: agreements from a JSON Lines file into the ledger (or the topic)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recon.cli._app import app, settings_from
from recon.errors import ConfigError

agreements_app = typer.Typer(
    help="Agreements (PKS) between funders and branches: load them from a file.", no_args_is_help=True
)
app.add_typer(agreements_app, name="agreements")


@agreements_app.command("load")
def load(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="JSON Lines, one agreement per line, fields as in schemas/agreement.")
    ],
) -> None:
    """Validate every agreement and store the valid ones (a higher version replaces a lower one).

    Nothing is stored if any line is refused: fix the file and load it again (loading twice is harmless).
    """
    from recon.avro import SchemaCatalogue
    from recon.clock import SystemClock
    from recon.domain.events import Agreement
    from recon.domain.validation import ValidationContext, validate_agreement
    from recon.ledger import Ledger, create_engine_for
    from recon.publish import Preparer, Refusal

    if not file.is_file():
        raise ConfigError(f"{file} does not exist: pass a JSON Lines file of agreements")
    settings = settings_from(ctx)
    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    now = SystemClock().now_ms()
    preparer = Preparer(catalogue=catalogue, subject="agreement", config=settings.domain(), now_ms=now)
    ctx_ = ValidationContext(
        config=settings.domain(), now_ms=now, nik_key=b"unused-for-agreements-0", agreements={}
    )
    loaded: list[Agreement] = []
    refused = 0
    for item in preparer.prepare_lines(file.read_text(encoding="utf-8").splitlines()):
        if isinstance(item, Refusal):
            refused += 1
            typer.echo(str(item), err=True)
            continue
        decoded = catalogue.decode(item.value, "agreement")
        result = validate_agreement(decoded.record, None, ctx_)
        assert isinstance(result, Agreement)  # the preparer ran the same validation
        loaded.append(result)
    if refused:
        typer.echo(f"{refused} agreements refused, nothing stored", err=True)
        raise typer.Exit(1)
    ledger = Ledger(create_engine_for(settings.database_url_with_password()))
    ledger.check_schema_current()
    changed = ledger.upsert_agreements(loaded)
    typer.echo(f"{len(loaded)} agreements read, {changed} stored or updated")
