"""`recon db upgrade|current`: the ledger's schema migrations.

The database URL comes from the settings (RECON_DATABASE_URL or the config file) and is printed
only with its password masked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from recon.cli._app import app, settings_from
from recon.errors import ReconError

db_app = typer.Typer(
    help="The ledger database (SQLite file or PostgreSQL): bring its schema up to date, show its revision.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

T = TypeVar("T")


@db_app.command()
def upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the schema this release needs; a no-op when it is there already."""
    from recon.ledger import current_revision, head_revision, redact_url
    from recon.ledger import upgrade as run_upgrade

    url = settings_from(ctx).database_url_with_password()
    where = redact_url(url)
    before = _database_call(where, lambda: current_revision(url))
    head = head_revision()
    if before == head:
        typer.echo(f"database at {where} is already at revision {head}")
        return
    _database_call(where, lambda: run_upgrade(url))
    typer.echo(f"database at {where} upgraded from revision {before or 'none (empty)'} to {head}")


@db_app.command()
def current(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 2 unless the database is at the revision this release needs."),
    ] = False,
) -> None:
    """Print the database's schema revision and the one this release needs."""
    from recon.ledger import current_revision, head_revision, redact_url
    from recon.ledger._migrate import check_revision

    url = settings_from(ctx).database_url_with_password()
    where = redact_url(url)
    revision = _database_call(where, lambda: current_revision(url))
    head = head_revision()
    state = "up to date" if revision == head else "run `recon db upgrade`"
    typer.echo(
        f"database at {where}: revision {revision or 'none (empty)'}, this release needs {head} ({state})"
    )
    if check:
        check_revision(revision, url)  # ConfigError (exit 2) unless at head


def _database_call(where: str, call: Callable[[], T]) -> T:
    """Run ``call``; turn a database failure into one line that names the database, never its password."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return call()
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).strip().splitlines()
        raise ReconError(
            f"database at {where} failed: {type(orig or exc).__name__}: {reason[0] if reason else ''} "
            "(check RECON_DATABASE_URL, its password or RECON_DATABASE_PASSWORD_FILE, and that the "
            "database is running)"
        ) from None
