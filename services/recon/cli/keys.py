"""`recon keys rotate|check`: rotate the key chain that hashes NIKs, and check it against the ledger.

No key is ever printed or taken from the command line (argv shows in `ps` and shell history): the
new key comes from a file or stdin. docs/security.md has the operator's procedure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from recon.cli._app import app, settings_from
from recon.cli.db import _database_call
from recon.domain.worker_key import MIN_KEY_BYTES
from recon.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from recon.settings import Settings

T = TypeVar("T")

keys_app = typer.Typer(
    help="The keys that hash NIKs into worker keys: rotate them, check them against the ledger.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command()
def rotate(
    ctx: typer.Context,
    new_key_file: Annotated[
        str,
        typer.Option(
            "--new-key-file",
            help="File holding the new key on one line (`openssl rand -hex 32 > FILE`), or - for stdin. "
            "Never a value on the command line: argv shows in ps.",
        ),
    ],
) -> None:
    """Rewrap every stored worker key under a new key, in one transaction. Stop both services first."""
    from recon.ledger import rotate_worker_keys

    settings = settings_from(ctx)
    chain = settings.nik_key_chain()
    new_key = read_new_key(new_key_file)
    started = time.monotonic()
    where, outcome = _on_ledger(settings, lambda engine: rotate_worker_keys(engine, chain, new_key))
    seconds = time.monotonic() - started
    typer.echo(
        f"ledger at {where}: NIK hashing key rotation {outcome.rotation} done, {outcome.workers:,} worker "
        f"keys in {sum(outcome.rows.values()):,} rows rewritten in {seconds:.1f} s"
    )
    typer.echo(
        "next: append the new key to RECON_NIK_HASH_KEY_ROTATIONS (comma-separated, after the "
        f"{outcome.rotation - 1} key(s) already there; keep RECON_NIK_HASH_KEY as it is) for every "
        "recon process, then start the services (a reconciler takes over within 30 s)"
    )


@keys_app.command()
def check(ctx: typer.Context) -> None:
    """Exit 0 when the configured key chain is the one the ledger records; else one line. Writes nothing."""
    from recon.ledger import check_key_chain

    settings = settings_from(ctx)
    chain = settings.nik_key_chain()
    where, last = _on_ledger(settings, lambda engine: check_key_chain(engine, chain, record=False))
    if last is None:
        typer.echo(
            f"ledger at {where}: no NIK hashing key recorded yet (nothing to compare); the first "
            "`recon ingest` records RECON_NIK_HASH_KEY and refuses any other key from then on"
        )
    elif last.rotation == 0:
        day = datetime.fromtimestamp(last.rotated_at_ms / 1000, UTC).date().isoformat()
        typer.echo(
            f"ledger at {where}: the configured NIK hashing key matches the one recorded at first "
            f"sight on {day} (never rotated)"
        )
    else:
        typer.echo(f"ledger at {where}: the configured NIK hashing keys match rotation {last.rotation}")


def _on_ledger(settings: Settings, call: Callable[[Engine], T]) -> tuple[str, T]:
    """``call`` on the configured ledger once its schema is current; the ledger's redacted address
    and the result. Database faults become one line naming the address (``recon db``'s wording)."""
    from recon.ledger import Ledger, create_engine_for, redact_url

    url = settings.database_url_with_password()
    where = redact_url(url)
    engine = create_engine_for(url)
    try:
        _database_call(where, Ledger(engine).check_schema_current)
        return where, _database_call(where, lambda: call(engine))
    finally:
        engine.dispose()


def read_new_key(source: str) -> bytes:
    """The new key from a file or stdin (``-``), checked; errors name the fix, never the key."""
    what = "stdin" if source == "-" else source
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the new key from {what} ({exc.strerror}): pass a readable file"
        ) from None
    try:
        key = raw.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"the new key in {what} is not text: it goes into RECON_NIK_HASH_KEY_ROTATIONS, "
            "so use e.g. `openssl rand -hex 32`"
        ) from None
    if "," in key or any(c.isspace() for c in key):
        raise ConfigError(
            f"the new key in {what} holds a comma or a space: RECON_NIK_HASH_KEY_ROTATIONS is "
            "comma-separated, so use e.g. `openssl rand -hex 32`"
        )
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ConfigError(
            f"the new key in {what} is {len(key.encode())} bytes: it must be at least {MIN_KEY_BYTES} "
            "(use e.g. `openssl rand -hex 32`)"
        )
    return key.encode()
