"""The root Typer app and the one way commands get their settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recon.settings import Settings, load_settings

app = typer.Typer(
    name="recon",
    help="Watch the JKK/JKM coverage of pekerja rentan funded by regional governments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML settings file (else RECON_CONFIG_FILE). Flags beat env beat file."
        ),
    ] = None,
) -> None:
    ctx.obj = {"config": config}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for a command: its flags (non-None values) over the environment over the config file."""
    root = ctx.find_root()
    config = root.obj.get("config") if isinstance(root.obj, dict) else None
    return load_settings(config_file=config, overrides=overrides)
