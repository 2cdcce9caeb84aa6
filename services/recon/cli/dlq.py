"""`recon dlq summary|list|redrive`: triage dead letters by their headers, and send chosen ones back.

Keys and values (which may hold a NIK) are never printed; see docs/dead-letters.md.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from recon.cli._app import app, settings_from
from recon.cli.report import Format, FormatOption, _emit
from recon.errors import ConfigError

if TYPE_CHECKING:
    from recon.dlq import Selection

dlq_app = typer.Typer(
    help="Dead letters: counts by reason, a listing, and redriving chosen ones after a fix.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")


class ShortFormat(StrEnum):
    table = "table"
    json = "json"


ShortFormatOption = Annotated[
    ShortFormat, typer.Option("--format", help="table for people; json for scripts.")
]
Reasons = Annotated[
    list[str] | None,
    typer.Option("--reason", help="Only this reason_code (repeat the option for several)."),
]
SourceTopic = Annotated[
    str | None, typer.Option("--source-topic", help="Only dead letters read from this topic.")
]
Partition = Annotated[
    int | None, typer.Option("--partition", min=0, help="Only this partition of the dead-letter topic.")
]
FromOffset = Annotated[
    int | None,
    typer.Option("--from-offset", min=0, help="Dead-letter topic offsets from this one (inclusive)."),
]
UntilOffset = Annotated[
    int | None,
    typer.Option("--until-offset", min=0, help="Dead-letter topic offsets up to this one (inclusive)."),
]


def _selection(
    reasons: list[str] | None,
    source_topic: str | None,
    partition: int | None,
    from_offset: int | None,
    until_offset: int | None,
) -> Selection:
    from recon.dlq import Selection

    if from_offset is not None and until_offset is not None and until_offset < from_offset:
        raise ConfigError(f"--until-offset {until_offset} is below --from-offset {from_offset}: swap them")
    return Selection(
        reasons=frozenset(reasons or ()),
        source_topic=source_topic,
        partition=partition,
        from_offset=from_offset,
        until_offset=until_offset,
    )


@dlq_app.command()
def summary(ctx: typer.Context, fmt: ShortFormatOption = ShortFormat.table) -> None:
    """Dead letters by source topic and reason code: counts, source offsets, first and last seen."""
    from recon.dlq import SUMMARY_COLUMNS, read_dead_letters, summarise

    settings = settings_from(ctx)
    rows = [row.row() for row in summarise(letter for letter, _, _ in read_dead_letters(settings))]
    total = sum(row["count"] for row in rows)
    note = f"{total} dead letters on {settings.topic_dead_letters}"
    _emit(rows, SUMMARY_COLUMNS, Format(fmt.value), title="Dead letters by reason", note=note, money=())


@dlq_app.command("list")
def list_(
    ctx: typer.Context,
    reasons: Reasons = None,
    source_topic: SourceTopic = None,
    partition: Partition = None,
    from_offset: FromOffset = None,
    until_offset: UntilOffset = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most N, oldest first; 0 for all.")] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """One line per dead letter: where it is, where it came from, and why. Never the key or value."""
    from recon.dlq import LIST_COLUMNS, read_dead_letters

    settings = settings_from(ctx)
    selection = _selection(reasons, source_topic, partition, from_offset, until_offset)
    letters = [letter for letter, _, _ in read_dead_letters(settings, selection) if selection.matches(letter)]
    letters.sort(key=lambda d: (d.timestamp_ms, d.partition, d.offset))
    shown = letters if limit == 0 else letters[:limit]
    note = (
        f"showing {len(shown)} of {len(letters)}: raise --limit (0 for all)"
        if len(shown) < len(letters)
        else ""
    )
    _emit([d.row() for d in shown], LIST_COLUMNS, fmt, title="Dead letters", note=note, money=())


@dlq_app.command("redrive")
def redrive_(
    ctx: typer.Context,
    reasons: Reasons = None,
    source_topic: SourceTopic = None,
    partition: Partition = None,
    from_offset: FromOffset = None,
    until_offset: UntilOffset = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Redrive every dead letter (when no other condition is given).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
    ] = False,
    fmt: ShortFormatOption = ShortFormat.table,
) -> None:
    """Send chosen dead letters' original key and value back to their source topic, for the fixed ingest.

    Safe to repeat: an event already stored changes nothing; one still invalid dead-letters again.
    Each record sent carries the header recon.redriven_from=<dead-letter topic>/<partition>/<offset>.
    """
    from recon.dlq import LIST_COLUMNS, Skip, redrive

    settings = settings_from(ctx)
    selection = _selection(reasons, source_topic, partition, from_offset, until_offset)
    if not selection.narrowed and not everything:
        raise ConfigError(
            "choose dead letters with --reason, --source-topic, --partition or offsets, or pass --all"
        )
    report = redrive(settings, selection, dry_run=dry_run)
    verb = "would redrive" if dry_run else "redriven"
    if fmt is ShortFormat.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        if report.chosen:
            rows = [letter.row() for letter in report.chosen]
            _emit(rows, LIST_COLUMNS, Format.table, title="Dead letters to redrive", note="", money=())
        columns = ("source_topic", "reason_code", verb.replace(" ", "_"))
        _emit(report.rows(), columns, Format.table, title=f"{verb.capitalize()} by reason", note="", money=())
    skipped = ", ".join(f"{report.skipped[s]} {s.value}" for s in Skip if report.skipped[s])
    print(f"{report.total} {verb}" + (f"; skipped: {skipped}" if skipped else ""), file=sys.stderr)
