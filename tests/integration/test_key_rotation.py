"""Rotating the NIK hashing key on SQLite and PostgreSQL: every stored worker key rewrapped, nothing
else touched, all or nothing, refused while a reconciler holds its lease, and checked at start —
also on a ledger never rotated, whose first key is recorded when a service first checks it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from factories import (
    NIK_KEY,
    VALIDATION_NOW_MS,
    claim_record,
    contribution_record,
    enrolment_record,
    lineage,
    valid_nik,
)
from recon.avro import SchemaCatalogue
from recon.domain.config import DomainConfig
from recon.domain.events import ClaimEvent, EnrolmentEvent
from recon.domain.validation import ValidationContext, validate
from recon.domain.worker_key import chain_fingerprint, rewrap, worker_key
from recon.errors import ConfigError
from recon.ledger import (
    Batch,
    LeaseHeld,
    Ledger,
    check_key_chain,
    create_engine_for,
    last_key_rotation,
    rotate_worker_keys,
    samples,
    tables,
    upgrade,
)
from recon.ledger import _rotate as rotate_module
from recon.settings import load_settings
from reconcile.domain import fold, fold_claims
from reconcile.store import ReconcileStore
from support import produce, run_recon, service_env

K1 = NIK_KEY
K2 = b"second-key-for-the-rotation-test"
K3 = b"a-third-key-for-a-second-rotation"
WORKERS = 24
SECOND_AGREEMENT = "PKS-72-2025-PROV"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_postgres_url")
    upgrade(value)
    return value


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


class Filled:
    """What the test wrote, with the NIK behind every event and claim (the ledger has none)."""

    def __init__(self) -> None:
        self.nik_of_event: dict[str, str] = {}
        self.nik_of_claim: dict[str, str] = {}

    @property
    def niks(self) -> set[str]:
        return set(self.nik_of_event.values())


def _ctx(keys: bytes | tuple[bytes, ...]) -> ValidationContext:
    return ValidationContext(config=DomainConfig(), now_ms=VALIDATION_NOW_MS, nik_key=keys, agreements={})


def _valid(subject: str, record: dict[str, Any], offset: int, keys: bytes | tuple[bytes, ...]) -> Any:
    topic = "enrolments" if subject == "enrolment" else "claims"
    event = validate(subject, record, lineage(topic, 0, offset), _ctx(keys))
    assert isinstance(event, EnrolmentEvent | ClaimEvent), event
    return event


def fill(engine: Engine) -> Filled:
    """Workers enrolled (some under two agreements), paying, some with claims; folded by the
    reconciler's store into coverages and claim states; a dead letter and an alert in the outbox."""
    filled = Filled()
    enrolments: list[EnrolmentEvent] = []
    claims: list[ClaimEvent] = []
    for n in range(1, WORKERS + 1):
        nik = valid_nik(serial=n, female=n % 2 == 0)
        records = [enrolment_record(nik=nik), contribution_record(nik=nik)]
        if n % 4 == 0:  # double funding: the province funds this worker too
            records.append(enrolment_record(nik=nik, agreement_id=SECOND_AGREEMENT))
        for record in records:
            enrolments.append(_valid("enrolment", record, len(enrolments), K1))
            filled.nik_of_event[record["event_id"]] = nik
        if n % 3 == 0:
            for stage in ("FILED", "APPROVED"):
                record = claim_record(nik=nik, claim_id=f"KLM-{n}", event_type=stage)
                claims.append(_valid("claim", record, len(claims), K1))
                filled.nik_of_event[record["event_id"]] = nik
                filled.nik_of_claim[record["claim_id"]] = nik
    ledger = Ledger(engine)
    ledger.write_batch(
        "rentan-recon-ingest",
        Batch(
            enrolments=enrolments,
            claims=claims,
            outbox=[samples.dead_letter(7), samples.alert(1)],
            offsets={("enrolments", 0): len(enrolments), ("claims", 0): len(claims)},
        ),
    )
    _fold(engine, enrolments, claims)
    return filled


def _fold(engine: Engine, enrolments: list[EnrolmentEvent], claims: list[ClaimEvent]) -> None:
    store = ReconcileStore(engine, holder="reconciler-under-test")
    with engine.connect() as conn:
        batch_ids = list(conn.execute(select(tables.ingest_batches.c.id)).scalars())
    store.save_fold(
        batch_ids=batch_ids,
        coverages=fold(enrolments).values(),
        claims=fold_claims(claims).values(),
        branch_activity={"PALU": VALIDATION_NOW_MS},
        now_ms=int(time.time() * 1000),
    )
    store.release_lease()  # the reconciler stopped cleanly


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table."""
    with engine.connect() as conn:
        return {
            t.name: sorted((dict(r) for r in conn.execute(select(t)).mappings()), key=repr)
            for t in tables.metadata.sorted_tables
        }


def rewrapped(before: dict[str, list[dict[str, Any]]], new_key: bytes) -> dict[str, list[dict[str, Any]]]:
    """What a rotation to ``new_key`` should leave: ``before`` with each worker key rewrapped."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, rows in before.items():
        changed = []
        for row in rows:
            row = dict(row)
            if "worker_key" in row:
                row["worker_key"] = rewrap(row["worker_key"], new_key)
            if name == "claim_states":
                state = json.loads(row["state"])
                state["worker_key"] = rewrap(state["worker_key"], new_key)
                row["state"] = json.dumps(state, sort_keys=True)
            changed.append(row)
        out[name] = sorted(changed, key=repr)
    return out


def _without(snap: dict[str, list[dict[str, Any]]], *names: str) -> dict[str, list[dict[str, Any]]]:
    return {k: v for k, v in snap.items() if k not in names}


def assert_keys_follow_the_chain(engine: Engine, filled: Filled, chain: tuple[bytes, ...]) -> None:
    """Each stored worker key is the chain applied to the NIK behind it, wherever it is held."""
    expected_workers = {worker_key(nik, chain) for nik in filled.niks}
    with engine.connect() as conn:
        for table in (tables.enrolment_events, tables.claim_events):
            for event_id, key in conn.execute(select(table.c.event_id, table.c.worker_key)):
                assert key == worker_key(filled.nik_of_event[event_id], chain)
        coverage_keys = set(conn.execute(select(tables.worker_coverage.c.worker_key)).scalars())
        assert coverage_keys == expected_workers
        claims = list(conn.execute(select(tables.claim_states)).mappings())
    assert len(claims) == len(filled.nik_of_claim)
    for row in claims:
        key = worker_key(filled.nik_of_claim[row["claim_id"]], chain)
        assert row["worker_key"] == json.loads(row["state"])["worker_key"] == key


# --- the rotation itself ------------------------------------------------------------------------------
def test_every_worker_key_is_rewrapped_and_nothing_else_changes(engine: Engine) -> None:
    filled = fill(engine)
    before = snapshot(engine)
    assert_keys_follow_the_chain(engine, filled, (K1,))

    outcome = rotate_worker_keys(engine, (K1,), K2)

    after = snapshot(engine)
    assert outcome.rotation == 1 and outcome.workers == WORKERS
    assert outcome.rows["worker_coverage.worker_key"] == len(before["worker_coverage"]) > WORKERS
    assert_keys_follow_the_chain(engine, filled, (K1, K2))
    assert _without(after, "leases", "key_rotations") == _without(
        rewrapped(before, K2), "leases", "key_rotations"
    )
    first_sight, record = sorted(after["key_rotations"], key=lambda r: r["rotation"])
    assert first_sight["rotation"] == 0 and first_sight["chain_fingerprint"] == chain_fingerprint((K1,))
    assert record["rotation"] == 1 and record["workers"] == WORKERS
    assert record["chain_fingerprint"] == chain_fingerprint((K1, K2))
    assert K2.decode() not in repr(after) and K1.decode() not in repr(after)


def test_a_second_event_for_a_known_nik_matches_the_stored_worker(engine: Engine) -> None:
    filled = fill(engine)
    rotate_worker_keys(engine, (K1,), K2)
    nik = sorted(filled.niks)[0]
    with engine.connect() as conn:
        stored = set(conn.execute(select(tables.worker_coverage.c.worker_key)).scalars())

    again = _valid("enrolment", contribution_record(nik=nik, paid_months=["2025-07"]), 999, (K1, K2))
    stale = _valid("enrolment", contribution_record(nik=nik, paid_months=["2025-07"]), 999, K1)

    assert again.worker_key in stored
    assert stale.worker_key not in stored  # the split a stale chain would cause, which the check refuses


def test_a_second_rotation_wraps_once_more_and_needs_the_current_chain(engine: Engine) -> None:
    filled = fill(engine)
    rotate_worker_keys(engine, (K1,), K2)
    before = snapshot(engine)

    with pytest.raises(ConfigError, match="has been rotated 1 time"):
        rotate_worker_keys(engine, (K1,), K3)  # the operator forgot the first rotation's key
    with pytest.raises(ConfigError, match="do not match the keys the ledger was rotated to"):
        rotate_worker_keys(engine, (K1, K3), K2)
    with pytest.raises(ConfigError, match="already in the chain"):
        rotate_worker_keys(engine, (K1, K2), K1)
    assert snapshot(engine) == before

    assert rotate_worker_keys(engine, (K1, K2), K3).rotation == 2
    assert_keys_follow_the_chain(engine, filled, (K1, K2, K3))
    check_key_chain(engine, (K1, K2, K3))


def test_a_short_new_key_is_refused_before_anything_is_written(engine: Engine) -> None:
    fill(engine)
    before = snapshot(engine)
    with pytest.raises(ValueError, match="at least 16 random bytes"):
        rotate_worker_keys(engine, (K1,), b"x" * 15)
    assert snapshot(engine) == before


def test_an_interrupted_rotation_leaves_the_ledger_unchanged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled = fill(engine)
    before = snapshot(engine)
    real = rotate_module._rewrapped_json
    calls = 0

    def dies_on_the_second_claim(text: str, new_key: bytes) -> str:
        # By now every plain worker_key column is rewritten and one claim state too.
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return real(text, new_key)

    monkeypatch.setattr(rotate_module, "_rewrapped_json", dies_on_the_second_claim)
    with pytest.raises(RuntimeError, match="power cut"):
        rotate_worker_keys(engine, (K1,), K2, page=1)

    assert snapshot(engine) == before  # keys, the lease and key_rotations alike
    check_key_chain(engine, (K1,))
    monkeypatch.setattr(rotate_module, "_rewrapped_json", real)
    rotate_worker_keys(engine, (K1,), K2, page=1)  # and it can simply be run again
    assert_keys_follow_the_chain(engine, filled, (K1, K2))


# --- the reconciler's lease -----------------------------------------------------------------------------
def test_a_live_reconciler_refuses_the_rotation_and_a_rotation_fences_a_lapsed_one(engine: Engine) -> None:
    fill(engine)
    reconciler = ReconcileStore(engine, holder="reconciler-1")
    now = int(time.time() * 1000)
    assert reconciler.acquire_lease(now)
    before = snapshot(engine)

    with pytest.raises(LeaseHeld) as raised:
        rotate_worker_keys(engine, (K1,), K2)
    assert "stop every `recon reconcile`" in str(raised.value) and "\n" not in str(raised.value)
    assert raised.value.exit_code == 2
    assert snapshot(engine) == before

    reconciler.release_lease()
    rotate_worker_keys(engine, (K1,), K2)
    # A reconciler whose keys in memory predate the rotation cannot renew at once: it stands by,
    # and reloads the rewritten keys when it takes the lease once the rotation's hold ends.
    assert not reconciler.acquire_lease(int(time.time() * 1000))
    assert reconciler.acquire_lease(int(time.time() * 1000) + rotate_module.LEASE_HOLD_MS + 1)


# --- the services' check ------------------------------------------------------------------------------
def test_the_chain_check_refuses_an_outdated_or_wrong_chain_with_one_line(engine: Engine) -> None:
    fill(engine)
    check_key_chain(engine, (K1,))  # never rotated: the single key passes, as before
    with pytest.raises(ConfigError, match="rotated 0 time"):
        check_key_chain(engine, (K1, K2))

    rotate_worker_keys(engine, (K1,), K2)

    assert check_key_chain(engine, (K1, K2)) is not None
    for stale in ((K1,), (K1, K3), (K2, K1), (K1, K2, K3)):
        with pytest.raises(ConfigError) as raised:
            check_key_chain(engine, stale)
        message = str(raised.value)
        assert "\n" not in message and "RECON_NIK_HASH_KEY_ROTATIONS" in message
        assert not any(k.decode() in message for k in (K1, K2, K3))


def test_ingest_refuses_to_start_with_an_outdated_chain(
    url: str, engine: Engine, kafka_bootstrap: str
) -> None:
    fill(engine)
    rotate_worker_keys(engine, (K1,), K2)
    env = service_env({"kafka_bootstrap_servers": kafka_bootstrap}, url)

    refused = run_recon(env, "ingest", "--idle-exit", "1")

    assert refused.returncode == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("recon: RECON_NIK_HASH_KEY_ROTATIONS lists 0 key"), refused.stderr[-2000:]
    assert K1.decode() not in refused.stderr and K2.decode() not in refused.stderr


# --- a ledger never rotated: its first key recorded at first sight ---------------------------------------
K_WRONG = b"not-the-key-this-ledger-was-used-with"


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        t = tables.key_rotations
        return [dict(r) for r in conn.execute(select(t).order_by(t.c.rotation)).mappings()]


def test_first_sight_records_the_key_and_refuses_another_with_one_line(engine: Engine) -> None:
    fill(engine)  # events from before the key was recorded: first sight takes the configured key
    assert check_key_chain(engine, (K1,), record=False) is None
    assert _rows(engine) == []  # `recon keys check` writes nothing

    first = check_key_chain(engine, (K1,), clock=lambda: 1_764_720_000_000)

    assert first is not None and first.rotation == 0 and first.workers == 0
    assert _rows(engine) == [
        {
            "rotation": 0,
            "rotated_at_ms": 1_764_720_000_000,
            "chain_fingerprint": chain_fingerprint((K1,)),
            "workers": 0,
        }
    ]
    before = snapshot(engine)
    assert check_key_chain(engine, (K1,)) == first  # the same key again: passes, writes nothing
    for wrong in ((K_WRONG,), (K_WRONG, K2)):
        with pytest.raises(ConfigError) as raised:
            check_key_chain(engine, wrong)
        message = str(raised.value)
        assert "\n" not in message and not any(k.decode() in message for k in (K1, K2, K_WRONG))
    with pytest.raises(ConfigError, match=r"RECON_NIK_HASH_KEY is not the key this ledger was first used"):
        check_key_chain(engine, (K_WRONG,), record=False)
    assert snapshot(engine) == before


def test_rotation_after_first_sight_numbers_on_and_is_checked_every_batch(engine: Engine) -> None:
    ledger = Ledger(engine)
    fill(engine)
    check_key_chain(engine, (K1,))
    batch = Batch(enrolments=[samples.enrolment(9_000)], offsets={("enrolments", 0): 9_001})
    assert ledger.write_batch("g", batch, key_rotation=0).stored["enrolment"] == 1  # rotation 0 is "never"

    assert rotate_worker_keys(engine, (K1,), K2).rotation == 1

    assert [r["rotation"] for r in _rows(engine)] == [0, 1]
    assert check_key_chain(engine, (K1, K2)) == last_key_rotation(engine)
    with pytest.raises(ConfigError, match="has been rotated 1 time"):
        check_key_chain(engine, (K1,))
    with pytest.raises(ConfigError, match="do not match the keys the ledger was rotated to"):
        check_key_chain(engine, (K_WRONG, K2))
    with pytest.raises(ConfigError, match="rotated while this process ran"):
        ledger.write_batch("g", batch, key_rotation=0)


def test_a_ledger_rotated_before_first_sight_existed_gets_no_rotation_0(engine: Engine) -> None:
    fill(engine)
    rotate_worker_keys(engine, (K1,), K2)
    with engine.begin() as conn:  # what a ledger rotated before rotation 0 was recorded looks like
        conn.execute(delete(tables.key_rotations).where(tables.key_rotations.c.rotation == 0))

    assert check_key_chain(engine, (K1, K2)) is not None
    with pytest.raises(ConfigError, match="has been rotated 1 time"):
        check_key_chain(engine, (K1,))  # never recorded as rotation 0 over a rotation
    assert [r["rotation"] for r in _rows(engine)] == [1]


def test_concurrent_first_sights_agree_on_one_key(url: str) -> None:
    """Pods starting together with different keys: exactly one key is recorded, every pod with it
    starts, every pod with the other is refused, whoever ran first."""
    starters = [K1, K_WRONG] * 4
    barrier = threading.Barrier(len(starters))
    outcomes: list[tuple[bytes, str]] = []
    lock = threading.Lock()

    def start(key: bytes) -> None:
        engine = create_engine_for(url)  # a pod of its own: its own engine and connections
        try:
            barrier.wait(timeout=30)
            try:
                check_key_chain(engine, (key,))
                outcome = "started"
            except ConfigError as exc:
                outcome = str(exc)
        finally:
            engine.dispose()
        with lock:
            outcomes.append((key, outcome))

    threads = [threading.Thread(target=start, args=(key,)) for key in starters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == len(starters)
    engine = create_engine_for(url)
    try:
        [recorded] = _rows(engine)
    finally:
        engine.dispose()
    winner = next(k for k in (K1, K_WRONG) if chain_fingerprint((k,)) == recorded["chain_fingerprint"])
    for key, outcome in outcomes:
        if key == winner:
            assert outcome == "started"
        else:
            assert outcome.startswith("RECON_NIK_HASH_KEY is not the key this ledger was first used with")


def test_ingest_records_its_key_then_refuses_another_and_writes_nothing(
    url: str, engine: Engine, topic_names: Any
) -> None:
    catalogue = SchemaCatalogue.load(load_settings().schemas_dir)

    def publish(first: int, count: int) -> None:
        messages = []
        for n in range(first, first + count):
            nik = valid_nik(serial=n)
            record = enrolment_record(event_id=f"first-sight-{n}", nik=nik)
            messages.append((nik.encode(), catalogue.encode("enrolment", record)))
        produce(topic_names.bootstrap, topic_names.enrolments, messages)

    publish(1, 20)
    env = service_env(topic_names.overrides(), url)  # RECON_NIK_HASH_KEY=K1
    first = run_recon(env, "ingest", "--idle-exit", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    assert [(r["rotation"], r["chain_fingerprint"]) for r in _rows(engine)] == [(0, chain_fingerprint(K1))]
    assert len(snapshot(engine)["enrolment_events"]) == 20

    publish(21, 5)
    before = snapshot(engine)
    wrong = {**env, "RECON_NIK_HASH_KEY": K_WRONG.decode()}
    refused = run_recon(wrong, "ingest", "--idle-exit", "1")

    assert refused.returncode == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("recon: RECON_NIK_HASH_KEY is not the key this ledger was first used with"), (
        refused.stderr[-2000:]
    )
    assert "`recon keys rotate`" in last
    assert K1.decode() not in refused.stderr and K_WRONG.decode() not in refused.stderr
    assert snapshot(engine) == before  # no event, no offset, no record written

    check = run_recon(wrong, "keys", "check")
    assert check.returncode == 2 and check.stdout == "" and check.stderr.count("\n") == 1
    ok = run_recon(env, "keys", "check")
    assert ok.returncode == 0 and "recorded at first sight" in ok.stdout and "never rotated" in ok.stdout

    again = run_recon(env, "ingest", "--idle-exit", "1")  # the right key: the five new events land
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(snapshot(engine)["enrolment_events"]) == 25


def test_a_batch_written_after_a_rotation_it_did_not_know_of_is_refused_whole(engine: Engine) -> None:
    """An ingest still running when `recon keys rotate` committed must not file workers under the
    old chain: its next batch fails in the same transaction, and nothing of it is written."""
    ledger = Ledger(engine)
    fill(engine)
    rotate_worker_keys(engine, (K1,), K2)
    before = snapshot(engine)
    batch = Batch(enrolments=[samples.enrolment(9_000)], offsets={("enrolments", 0): 9_001})

    with pytest.raises(ConfigError) as raised:
        ledger.write_batch("g", batch, key_rotation=0)

    assert "\n" not in str(raised.value) and "RECON_NIK_HASH_KEY_ROTATIONS" in str(raised.value)
    assert snapshot(engine) == before
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {}
    assert ledger.write_batch("g", batch, key_rotation=1).stored["enrolment"] == 1


# --- the real command, end to end ---------------------------------------------------------------------
def test_recon_keys_rotate_and_check_end_to_end(url: str, engine: Engine, tmp_path: Path) -> None:
    filled = fill(engine)
    before = snapshot(engine)
    env = service_env({}, url)
    new_key = "cli-rotation-key-" + "9f" * 16
    key_file = tmp_path / "new.key"
    key_file.write_text(new_key + "\n")
    key_file.chmod(0o600)

    assert run_recon(env, "keys", "check").returncode == 0
    short = tmp_path / "short.key"
    short.write_text("tooShort-k3y\n")
    refused = run_recon(env, "keys", "rotate", "--new-key-file", str(short))
    assert refused.returncode == 2 and "at least 16" in refused.stderr and "tooShort" not in refused.stderr

    done = run_recon(env, "keys", "rotate", "--new-key-file", str(key_file))

    assert done.returncode == 0, done.stderr
    assert "rotation 1 done" in done.stdout and "RECON_NIK_HASH_KEY_ROTATIONS" in done.stdout
    assert new_key not in done.stdout + done.stderr and K1.decode() not in done.stdout + done.stderr
    assert_keys_follow_the_chain(engine, filled, (K1, new_key.encode()))
    assert _without(snapshot(engine), "leases", "key_rotations") == _without(
        rewrapped(before, new_key.encode()), "leases", "key_rotations"
    )

    stale = run_recon(env, "keys", "check")
    assert stale.returncode == 2 and stale.stdout == ""
    assert stale.stderr.count("\n") == 1 and "RECON_NIK_HASH_KEY_ROTATIONS lists 0 key" in stale.stderr
    fixed = run_recon({**env, "RECON_NIK_HASH_KEY_ROTATIONS": new_key}, "keys", "check")
    assert fixed.returncode == 0 and "match rotation 1" in fixed.stdout
    assert new_key not in fixed.stdout + fixed.stderr

    # The second rotation reads its key from stdin.
    third = "stdin-rotation-key-" + "ab" * 16
    env2 = {**env, "RECON_NIK_HASH_KEY_ROTATIONS": new_key}
    piped = run_recon(env2, "keys", "rotate", "--new-key-file", "-", stdin=third + "\n")
    assert piped.returncode == 0, piped.stderr
    assert "rotation 2 done" in piped.stdout and third not in piped.stdout + piped.stderr
    assert_keys_follow_the_chain(engine, filled, (K1, new_key.encode(), third.encode()))
    both = run_recon({**env, "RECON_NIK_HASH_KEY_ROTATIONS": f"{new_key},{third}"}, "keys", "check")
    assert both.returncode == 0 and "match rotation 2" in both.stdout


def test_rotation_is_refused_while_a_reconciler_holds_the_lease_from_the_cli(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    fill(engine)
    assert ReconcileStore(engine, holder="reconciler-1").acquire_lease(int(time.time() * 1000))
    key_file = tmp_path / "new.key"
    key_file.write_text("cli-rotation-key-" + "9f" * 16)
    before = snapshot(engine)

    refused = run_recon(service_env({}, url), "keys", "rotate", "--new-key-file", str(key_file))

    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "holds the ledger's lease" in refused.stderr
    assert snapshot(engine) == before


def test_every_worker_key_holder_is_known_to_the_rotation() -> None:
    # A new table with a worker_key column is found by name; a worker key packed into serialized
    # state must be listed in PACKED_WORKER_KEYS. The reconciler's JSON states are the packed ones.
    from dataclasses import fields

    from reconcile.domain import AlertState, ClaimState

    plain = {f"{c.table.name}.{c.name}" for c in rotate_module.worker_key_columns()}
    assert plain == {
        "enrolment_events.worker_key",
        "claim_events.worker_key",
        "worker_coverage.worker_key",
        "claim_states.worker_key",
        "multiply_funded.worker_key",
    }
    assert "worker_key" in {f.name for f in fields(ClaimState)}
    assert "worker_key" not in {f.name for f in fields(AlertState)}
    assert [(t.name, c) for t, c, _ in rotate_module.PACKED_WORKER_KEYS] == [("claim_states", "state")]
