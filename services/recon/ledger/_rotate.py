"""Rotating the key that hashes NIKs: every stored worker key wrapped once more, in one transaction.

The ledger holds no NIK, so a key cannot be recomputed under a new secret. A rotation instead
rewrites each stored key ``w`` as ``HMAC(k_new, w)[:32]`` (``recon.domain.worker_key.rewrap``),
which is what the configured chain plus ``k_new`` gives for the same NIK. It also records the new
chain's fingerprint in ``key_rotations``, so a service configured with another chain refuses to
start instead of filing every returning worker as a new one.

A ledger never rotated is checked too: the first time a service checks its key against a ledger
that has recorded none, the key's fingerprint becomes rotation 0 (``FIRST_SIGHT``). From then on a
different key is refused at start, as a wrong chain is after a rotation. Recording is
insert-if-absent then read back, so services starting together agree on one key.

Where worker keys live: every column named ``worker_key`` (found from ``tables.metadata``, so a new
table is rotated without a change here) and the JSON columns listed in ``PACKED_WORKER_KEYS``.

Speed: the distinct keys are collected set-wise into a temporary table, their new values are
computed in Python in pages (HMAC is not plain SQL) and loaded into a second temporary table
(executemany on SQLite, COPY on PostgreSQL), and each column is then rewritten by one set-based
``UPDATE … FROM`` join. Only the packed JSON is rewritten row by row.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from recon.clock import SystemClock
from recon.domain.worker_key import as_chain, chain_fingerprint, rewrap
from recon.errors import ConfigError, ReconError
from recon.ledger import tables
from recon.ledger._engine import BEGIN_IMMEDIATE
from recon.ledger._lease import RECONCILE_LEASE, take_lease

ROTATOR: Final = "recon keys rotate"  # the lease holder while a rotation runs
# Held on after the commit for longer than a reconciler's lease (15 s): a reconciler whose lease
# lapsed while the rotation ran then finds it taken, stands by, and reloads the rewritten keys.
LEASE_HOLD_MS: Final = 30_000
PAGE: Final = 10_000  # keys per round trip: bounded memory whatever the ledger's size
# The rotation number of the row that records the first chain (one key) the ledger was checked with.
FIRST_SIGHT: Final = 0

# (table, JSON column, primary key column): a worker key inside serialized state.
PACKED_WORKER_KEYS: Final = ((tables.claim_states, "state", "claim_id"),)

_scratch = MetaData()
_OLD = Table(
    "recon_rotate_old",
    _scratch,
    Column("old", Text, primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_MAP = Table(
    "recon_rotate_map",
    _scratch,
    Column("old", Text, primary_key=True),
    Column("new", Text, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


class LeaseHeld(ReconError):
    """A reconciler holds the ledger's lease: it keeps worker keys in memory, so it must stop first."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """One row of ``key_rotations``."""

    rotation: int  # how many keys RECON_NIK_HASH_KEY_ROTATIONS holds after it; 0: first sight
    rotated_at_ms: int  # for rotation 0: when the ledger first saw RECON_NIK_HASH_KEY
    chain_fingerprint: str
    workers: int  # worker keys rewrapped (0 for rotation 0: nothing is rewritten at first sight)


@dataclass(frozen=True, slots=True)
class RotationOutcome:
    rotation: int
    workers: int  # distinct worker keys rewritten
    rows: Mapping[str, int]  # "table.column" -> rows rewritten


def worker_key_columns() -> list[Column[Any]]:
    """Every plain column that holds a worker key."""
    return [t.c.worker_key for t in tables.metadata.sorted_tables if "worker_key" in t.c]


# --- checking ----------------------------------------------------------------------------------------
def last_key_rotation(engine: Engine) -> KeyRotation | None:
    """The ledger's latest record: a rotation, rotation 0 (the first key it saw, never rotated), or
    None when no service has checked a key against it yet."""
    with engine.connect() as conn:
        return _last(conn)


def check_key_chain(
    engine: Engine, chain: Sequence[bytes], *, record: bool = True, clock: Callable[[], int] | None = None
) -> KeyRotation | None:
    """Raise a one-line ConfigError unless ``chain`` is the chain the ledger records.

    On a ledger that records no chain yet, a single key is recorded as rotation 0 (``record``; the
    services do this at start) and then compared like any record, so that a later start with another
    key is refused; a longer chain is refused. With ``record=False`` nothing is written (``recon keys
    check``) and None is returned for such a ledger. Returns the record the chain matched.
    """
    checked = as_chain(chain)
    with engine.connect() as conn:
        last = _check(conn, checked)
    if last is not None or not record:
        return last
    # Nothing recorded: record this key, unless another process got there first, and compare with
    # whatever is recorded then. SQLite: BEGIN IMMEDIATE serialises the writers; PostgreSQL: the
    # primary key makes a concurrent insert wait for the first and then do nothing.
    now = (clock or SystemClock().now_ms)()
    with engine.execution_options(**{BEGIN_IMMEDIATE: True}).begin() as conn:
        _record_first_sight(conn, checked, now)
        return _check(conn, checked)


def check_rotation(conn: Connection, expected: int) -> None:
    """Inside a writer's transaction: raise a one-line ConfigError unless the ledger's key was
    rotated exactly ``expected`` times (a rotation committed since the writer checked its chain)."""
    last = _last(conn)
    rotated = 0 if last is None else last.rotation
    if rotated != expected:
        raise ConfigError(
            f"the ledger's NIK hashing key was rotated while this process ran (rotation {rotated}, this "
            f"process has {expected}): nothing of the batch was written; list the new key in "
            "RECON_NIK_HASH_KEY_ROTATIONS and restart"
        )


def _last(conn: Connection) -> KeyRotation | None:
    t = tables.key_rotations
    row = conn.execute(select(t).order_by(t.c.rotation.desc()).limit(1)).mappings().first()
    return None if row is None else KeyRotation(**row)


def _record_first_sight(conn: Connection, chain: tuple[bytes, ...], now_ms: int) -> None:
    """Insert rotation 0 for a single-key chain if no row exists at all (never over a rotation)."""
    if len(chain) != 1 or _last(conn) is not None:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {
        "rotation": FIRST_SIGHT,
        "rotated_at_ms": now_ms,
        "chain_fingerprint": chain_fingerprint(chain),
        "workers": 0,
    }
    conn.execute(dialect.insert(tables.key_rotations).values(row).on_conflict_do_nothing())


def _check(conn: Connection, chain: tuple[bytes, ...]) -> KeyRotation | None:
    last = _last(conn)
    rotated = 0 if last is None else last.rotation
    if len(chain) - 1 != rotated:
        raise ConfigError(
            f"RECON_NIK_HASH_KEY_ROTATIONS lists {len(chain) - 1} key(s) but the ledger's NIK hashing key "
            f"has been rotated {rotated} time(s): list exactly the {rotated} key(s) given to "
            "`recon keys rotate`, oldest first, comma-separated"
        )
    if last is None or hmac.compare_digest(chain_fingerprint(chain), last.chain_fingerprint):
        return last
    day = datetime.fromtimestamp(last.rotated_at_ms / 1000, UTC).date().isoformat()
    if rotated == FIRST_SIGHT:
        raise ConfigError(
            f"RECON_NIK_HASH_KEY is not the key this ledger was first used with (recorded {day}, never "
            "rotated): set it back to that key from your secret store; to change it, use `recon keys "
            "rotate`, never an edit in place"
        )
    raise ConfigError(
        "RECON_NIK_HASH_KEY and RECON_NIK_HASH_KEY_ROTATIONS do not match the keys the ledger was "
        f"rotated to (rotation {rotated}, {day}): configure that chain, oldest key first"
    )


# --- rotating ----------------------------------------------------------------------------------------
def rotate_worker_keys(
    engine: Engine,
    chain: Sequence[bytes],
    new_key: bytes,
    *,
    clock: Callable[[], int] | None = None,
    page: int = PAGE,
) -> RotationOutcome:
    """Wrap every stored worker key under ``new_key`` and record the rotation: all or nothing.

    ``chain`` is the configured chain; it must match the ledger (``check_key_chain``; on a ledger
    that records no key yet, ``chain``'s one key is recorded as rotation 0 first). Raises
    ``LeaseHeld`` while a reconciler holds its lease, ``ConfigError`` for a chain that does not
    match or a new key that is short or already in the chain.
    """
    clock = clock or SystemClock().now_ms
    current = as_chain(chain)
    rotated = as_chain((*current, new_key))
    if new_key in current:
        raise ConfigError("the new NIK hashing key is already in the chain: generate a fresh one")
    with engine.execution_options(**{BEGIN_IMMEDIATE: True}).begin() as conn:
        now = clock()
        _take_lease(conn, now)
        _record_first_sight(conn, current, now)
        last = _check(conn, current)
        _lock_tables(conn)
        workers = _fill_map(conn, new_key, page)
        rows = {f"{c.table.name}.{c.name}": _rewrite_column(conn, c) for c in worker_key_columns()}
        for table, column, key in PACKED_WORKER_KEYS:
            rows[f"{table.name}.{column}"] = _rewrite_packed(conn, table, column, key, new_key, page)
        _drop_scratch(conn)
        rotation = 1 if last is None else last.rotation + 1
        at = clock()
        conn.execute(
            insert(tables.key_rotations).values(
                rotation=rotation,
                rotated_at_ms=at,
                chain_fingerprint=chain_fingerprint(rotated),
                workers=workers,
            )
        )
        _hold_lease(conn, at + LEASE_HOLD_MS)
    return RotationOutcome(rotation=rotation, workers=workers, rows=rows)


def _take_lease(conn: Connection, now: int) -> None:
    """Take the reconciler's lease, as a reconciler would, or refuse while a live one holds it."""
    if not take_lease(conn, name=RECONCILE_LEASE, holder=ROTATOR, now_ms=now, ttl_ms=LEASE_HOLD_MS):
        t = tables.leases
        left = conn.execute(select(t.c.expires_at_ms).where(t.c.name == RECONCILE_LEASE)).scalar_one()
        raise LeaseHeld(
            f"a reconciler holds the ledger's lease (for {max(0, left - now) / 1000:.0f} s more): stop every "
            "`recon reconcile` and `recon ingest`, then run `recon keys rotate` again"
        )


def _hold_lease(conn: Connection, until_ms: int) -> None:
    t = tables.leases
    conn.execute(update(t).where(t.c.name == RECONCILE_LEASE).values(expires_at_ms=until_ms))


def _lock_tables(conn: Connection) -> None:
    # SQLite's BEGIN IMMEDIATE already holds off every other writer. On PostgreSQL, a writer that
    # should not be running could otherwise add a row between the key map and the UPDATEs; readers
    # are not blocked. Identifiers come from recon.ledger.tables, never from input.
    if conn.dialect.name == "postgresql":
        names = sorted(
            {c.table.name for c in worker_key_columns()} | {t.name for t, _, _ in PACKED_WORKER_KEYS}
        )
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(names)} IN EXCLUSIVE MODE")


def _fill_map(conn: Connection, new_key: bytes, page: int) -> int:
    """Every distinct stored worker key with its rewrapped value, in ``recon_rotate_map``."""
    _OLD.create(conn)
    _MAP.create(conn)
    union = select(worker_key_columns()[0]).union(*(select(c) for c in worker_key_columns()[1:]))
    conn.execute(insert(_OLD).from_select(["old"], union))
    workers = 0
    for rows in _pages(conn, _OLD.c.old, page):
        _load_map(conn, [(old, rewrap(old, new_key)) for (old,) in rows])
        workers += len(rows)
    return workers


def _pages(conn: Connection, key: Column[Any], page: int, *columns: Column[Any]) -> Iterator[list[Any]]:
    """Rows of (``key``, ``columns``…) in ascending pages of a primary key (keyset paging: each
    page is an index range, and memory stays bounded)."""
    last: str | None = None
    while True:
        query = select(key, *columns).order_by(key).limit(page)
        rows = list(conn.execute(query if last is None else query.where(key > last)))
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _load_map(conn: Connection, pairs: list[tuple[str, str]]) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(insert(_MAP), [{"old": o, "new": n} for o, n in pairs])
        return
    driver: Any = conn.connection.driver_connection  # psycopg: COPY is several times executemany's speed
    with driver.cursor() as cursor, cursor.copy("COPY recon_rotate_map (old, new) FROM STDIN") as copy:
        for pair in pairs:
            copy.write_row(pair)


def _rewrite_column(conn: Connection, column: Column[Any]) -> int:
    table = column.table
    stmt = update(table).where(column == _MAP.c.old).values({column.name: _MAP.c.new})  # UPDATE … FROM
    result = conn.execute(stmt, execution_options={"preserve_rowcount": True})
    total = conn.execute(select(func.count()).select_from(table)).scalar_one()
    if result.rowcount != total:  # every key is in the map, taken in this same transaction
        raise ReconError(
            f"rotation rewrote {result.rowcount} of {total} rows of {table.name}: nothing was changed"
        )
    return int(result.rowcount)


def _rewrite_packed(conn: Connection, table: Table, column: str, key: str, new_key: bytes, page: int) -> int:
    """Rewrap the ``worker_key`` inside each row's JSON; every other byte of the text stays as it was
    (the store writes it with ``sort_keys=True`` and default separators, as here)."""
    rows = 0
    stmt = update(table).where(table.c[key] == bindparam("pk")).values({column: bindparam("text")})
    for found in _pages(conn, table.c[key], page, table.c[column]):
        conn.execute(stmt, [{"pk": pk, "text": _rewrapped_json(text, new_key)} for pk, text in found])
        rows += len(found)
    return rows


def _rewrapped_json(text: str, new_key: bytes) -> str:
    data = json.loads(text)
    data["worker_key"] = rewrap(data["worker_key"], new_key)
    return json.dumps(data, sort_keys=True)


def _drop_scratch(conn: Connection) -> None:
    # PostgreSQL drops them at commit (ON COMMIT DROP); SQLite keeps them for the connection's life.
    if conn.dialect.name != "postgresql":
        _MAP.drop(conn)
        _OLD.drop(conn)


__all__ = [
    "FIRST_SIGHT",
    "PACKED_WORKER_KEYS",
    "KeyRotation",
    "LeaseHeld",
    "RotationOutcome",
    "check_key_chain",
    "last_key_rotation",
    "rotate_worker_keys",
    "worker_key_columns",
]
