"""The ledger's schema: migrations build exactly the tables the code declares, and no NIK is stored."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from recon.domain.events import Agreement, BranchTotals, ClaimEvent, EnrolmentEvent
from recon.errors import ConfigError
from recon.ledger import (
    Ledger,
    _rows,
    create_engine_for,
    current_revision,
    head_revision,
    metadata,
    tables,
    upgrade,
)
from recon.ledger._migrate import alembic_config


def schema_diff(url: str, target: sa.MetaData = metadata) -> list[object]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def reflected_names(url: str) -> dict[str, set[str]]:
    """Names of every primary key, unique and check constraint, and index, per table."""
    engine = create_engine_for(url)
    try:
        inspector = sa.inspect(engine)
        names: dict[str, set[str]] = {}
        for table in metadata.tables:
            found = {inspector.get_pk_constraint(table)["name"]}
            found |= {c["name"] for c in inspector.get_unique_constraints(table)}
            found |= {c["name"] for c in inspector.get_check_constraints(table)}
            found |= {i["name"] for i in inspector.get_indexes(table)}
            names[table] = found
        return names
    finally:
        engine.dispose()


def declared_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for table in metadata.tables.values():
        found = {str(c.name) for c in table.constraints if not isinstance(c, sa.ForeignKeyConstraint)}
        found |= {str(i.name) for i in table.indexes}
        names[table.name] = found
    return names


def test_migrations_build_exactly_the_declared_tables(sqlite_url: str) -> None:
    upgrade(sqlite_url)

    assert schema_diff(sqlite_url) == []
    assert reflected_names(sqlite_url) == declared_names()


def test_the_comparison_would_notice_a_difference(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["outbox"].append_column(sa.Column("extra", sa.Text()))

    assert [d[0] for d in schema_diff(sqlite_url, changed)] == ["add_column"]  # type: ignore[index]


def test_upgrade_is_idempotent_and_reports_revisions(sqlite_url: str) -> None:
    assert head_revision() == "0008"
    assert current_revision(sqlite_url) is None
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # asking does not create the file

    upgrade(sqlite_url)
    upgrade(sqlite_url)

    assert current_revision(sqlite_url) == "0008"


def test_the_migrations_go_down_and_up_again(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = create_engine_for(sqlite_url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()

    upgrade(sqlite_url)
    assert schema_diff(sqlite_url) == []


def test_a_service_refuses_an_old_schema_and_names_the_fix(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    try:
        with pytest.raises(ConfigError) as raised:
            Ledger(engine).check_schema_current()
        assert str(raised.value) == (
            f"database at {sqlite_url} is at revision none (empty), "
            "the code needs 0008: run `recon db upgrade`"
        )

        upgrade(sqlite_url)
        Ledger(engine).check_schema_current()

        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
        with pytest.raises(ConfigError, match="revision 0099, which this code does not know"):
            Ledger(engine).check_schema_current()
    finally:
        engine.dispose()


def test_no_table_stores_a_nik() -> None:
    for table in metadata.tables.values():
        for column in table.columns:
            if re.search("nik", column.name, re.IGNORECASE):
                assert column.name == "nik_region", f"{table.name}.{column.name} may hold a NIK"
    assert {"worker_key", "nik_region"} <= set(tables.enrolment_events.c.keys())
    assert {"worker_key", "nik_region"} <= set(tables.claim_events.c.keys())


@pytest.mark.parametrize(
    ("codec", "event_type"),
    [
        (_rows.ENROLMENT, EnrolmentEvent),
        (_rows.CLAIM, ClaimEvent),
        (_rows.BRANCH_TOTALS, BranchTotals),
        (_rows.AGREEMENT, Agreement),
    ],
    ids=["enrolment", "claim", "branch_totals", "agreement"],
)
def test_every_event_field_has_its_column(codec: _rows.RowCodec[object], event_type: type) -> None:
    assert set(codec.all_columns) == set(codec.table.c.keys())
    assert len(codec.columns) == len(set(codec.columns))
    not_stored = {"lineage", "termination_reason"}  # free text could name a person (migration 0003)
    fields = {f.name for f in dataclasses.fields(event_type)} - not_stored
    assert fields <= set(codec.columns)
    assert not not_stored & set(codec.columns)
    assert {"src_topic", "src_partition", "src_offset", "schema_fingerprint", "schema_version"} <= set(
        codec.columns
    )


def test_upgrading_from_0001_keeps_stored_events_and_stamps_new_ones_with_their_batch(
    sqlite_url: str,
) -> None:
    from recon.ledger import Batch
    from recon.ledger.samples import enrolment

    engine = create_engine_for(sqlite_url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            old = enrolment(1)
            values = dict(zip(_rows.ENROLMENT.columns, _rows.ENROLMENT.to_row(old, 1), strict=True))
            conn.execute(sa.insert(sa.table("enrolment_events", *map(sa.column, values))).values(values))
        upgrade(sqlite_url)
        Ledger(engine).write_batch("g", Batch(enrolments=[enrolment(2), enrolment(3)]))
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT event_id, batch_id FROM enrolment_events")).all())
    finally:
        engine.dispose()
    assert rows[old.event_id] is None and len(rows) == 3
    assert len({b for e, b in rows.items() if e != old.event_id}) == 1 and None not in {
        b for e, b in rows.items() if e != old.event_id
    }
