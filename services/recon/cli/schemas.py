"""`recon schemas list|check`: the published Avro schema versions and their compatibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recon.cli._app import app, settings_from

schemas_app = typer.Typer(
    help="The Avro schemas branch systems publish with: list the versions, check their compatibility.",
    no_args_is_help=True,
)
app.add_typer(schemas_app, name="schemas")

_SchemasDir = Annotated[
    Path | None,
    typer.Option(
        "--schemas-dir", help="Folder of <subject>/v<N>.avsc files (default: the schemas_dir setting)."
    ),
]


@schemas_app.command("list")
def list_schemas(ctx: typer.Context, schemas_dir: _SchemasDir = None) -> None:
    """Print every subject's versions with their fingerprints (hex, in wire byte order).

    The last column lists each version's alias fingerprints, also accepted for it, as
    LIBRARY:HEX: what a Go library's own single-object encoder writes (hamba/avro's soe.Codec,
    goavro's SingleFromNative).
    """
    from recon.avro import SchemaCatalogue

    settings = settings_from(ctx, schemas_dir=schemas_dir)
    catalogue = SchemaCatalogue.load(settings.schemas_dir)
    width = max((len(v.schema.name) for v in catalogue.versions()), default=6) + 2
    typer.echo(f"{'SUBJECT':<16}{'VERSION':<9}{'FINGERPRINT':<18}{'READER':<8}{'RECORD':<{width}}ALIASES")
    for v in catalogue.versions():
        reader = "yes" if catalogue.reader(v.subject) is v else ""
        version = f"v{v.version}"
        aliases = " ".join(f"{a.library}:{a.fingerprint.hex()}" for a in v.schema.aliases)
        typer.echo(
            f"{v.subject:<16}{version:<9}{v.fingerprint.hex():<18}{reader:<8}{v.schema.name:<{width}}{aliases}".rstrip()
        )


@schemas_app.command("check")
def check(ctx: typer.Context, schemas_dir: _SchemasDir = None) -> None:
    """Check file names, schemas and full transitive compatibility of every subject's versions,
    and that no two versions share a fingerprint, the spec's or an alias.

    Exits 1 and prints one line per problem, or prints "schemas ok" and exits 0.
    """
    from recon.avro import SchemaCatalogue, SchemaError, check_catalogue

    settings = settings_from(ctx, schemas_dir=schemas_dir)
    problems = check_catalogue(settings.schemas_dir)
    if not problems:
        try:
            SchemaCatalogue.load(settings.schemas_dir)
        except SchemaError as exc:
            problems = list(exc.problems)
    if problems:
        for problem in problems:
            typer.echo(problem)
        typer.echo(f"{len(problems)} problem(s) in {settings.schemas_dir}", err=True)
        raise typer.Exit(1)
    catalogue = SchemaCatalogue.load(settings.schemas_dir)
    typer.echo(
        f"schemas ok: {len(catalogue.subjects)} subjects, {len(catalogue.versions())} versions, "
        f"every version reads every other ({settings.schemas_dir})"
    )
