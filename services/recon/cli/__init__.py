"""The `recon` console entry point. Entrypoints only translate: flags in, calls out, exit codes back."""

from __future__ import annotations

import sys

from recon.cli._app import app
from recon.errors import ReconError

__all__ = ["app", "main"]


def _register() -> None:
    # Each sub-command module adds its commands to `app` when imported; importing them here keeps
    # one list of what `recon` offers. Heavy libraries are imported inside the commands, not here.
    from recon.cli import (  # noqa: F401
        agreements,
        backfill,
        broker,
        db,
        demo,
        dlq,
        keys,
        publish,
        report,
        schemas,
        services,
    )


def main() -> None:
    _register()
    try:
        app(standalone_mode=True)
    except ReconError as exc:
        from recon.logs import flush_summaries

        flush_summaries()  # held-back library log lines are counted above the last line, not after it
        print(f"recon: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
