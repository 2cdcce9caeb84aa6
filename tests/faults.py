"""The fault campaign's shared machinery: known streams, real `recon` processes, exact checks.

A scenario streams a known set of enrolment messages (valid ones with unique event ids, invalid ones
mixed in) into real topics while real `recon ingest` processes consume them and a fault is injected;
then it checks the ledger and the dead-letter topic against what is *on the source topic* (so a
producer that retried and wrote a message twice is accounted for, not mistaken for the service):

- every valid event on the topic is in the ledger once (``lost`` counts those missing);
- every invalid message has exactly one dead letter for its source offset, carrying its bytes;
- nothing else is in either (``duplicated`` counts extra rows and extra dead letters).

Used by ``tests/integration/test_faults_*.py`` (each scenario is a plain function there returning an
:class:`Outcome`) and by ``scripts/reliability-report.py``, which runs the same functions. Nothing
here mocks Kafka or a database: brokers, PostgreSQL clusters and `recon` processes are real.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaProducer
from sqlalchemy.pool import NullPool

from conftest import POSTGRES_SH, TopicNames, free_ports, make_topics
from factories import enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.broker import LocalBroker
from recon.ledger import upgrade
from recon.settings import load_settings
from support import RECON, REPO, consume_all, service_env

INVALID_KEY = b"bad:"  # keys of the invalid messages a stream mixes in


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scenario's result, one row of the reliability report."""

    scenario: str
    faults: int  # faults injected (kills, broker or database outages, membership changes)
    sent: int  # messages on the source topic(s)
    stored: int  # distinct events in the ledger
    dead_lettered: int  # records on the dead-letter topic
    lost: int  # valid events missing from the ledger + invalid messages without a dead letter (+ alerts)
    duplicated: int  # extra ledger rows + extra dead letters (+ alert changes published twice)
    recover_seconds: float | None  # from the end of the last fault (or of the stream) to caught up
    problems: tuple[str, ...] = ()  # any other broken expectation, one line each
    notes: tuple[str, ...] = ()  # what was measured on the way (exit messages, kill points, ...)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.problems

    def explain(self) -> str:
        """What went wrong, for an assertion message."""
        return "\n".join([f"{self.scenario}: lost {self.lost}, duplicated {self.duplicated}", *self.problems])


# --- resources ----------------------------------------------------------------------------------


class Lab:
    """What scenarios run on: the shared broker, a work folder, a PostgreSQL server for fresh databases.

    Usage::

        with open_lab(bootstrap, work, postgres_url) as lab:
            topics = lab.topics()
            url = lab.sqlite_url("kill")      # or lab.postgres_database()
    """

    def __init__(self, bootstrap: str, work: Path, postgres_url: str | None, stack: contextlib.ExitStack):
        self.bootstrap = bootstrap
        self.work = work
        self._postgres_url = postgres_url
        self._stack = stack
        self.catalogue = SchemaCatalogue.load(load_settings().schemas_dir)

    def topics(self, partitions: int = 3, *, bootstrap: str | None = None) -> TopicNames:
        """Six topics of their own on ``bootstrap`` (the shared broker by default), deleted at the end."""
        names = make_topics(bootstrap or self.bootstrap, partitions)
        if bootstrap is None:
            self._stack.callback(_delete_topics_quietly, self.bootstrap, names.all)
        return names

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.work / name / 'recon.db'}"

    def postgres_database(self) -> str:
        """A new empty database on the lab's PostgreSQL server, dropped at the end."""
        if self._postgres_url is None:
            raise RuntimeError("this lab has no PostgreSQL server")
        url = create_database(self._postgres_url)
        self._stack.callback(drop_database, url)
        return url


@contextlib.contextmanager
def open_lab(bootstrap: str, work: Path, postgres_url: str | None) -> Iterator[Lab]:
    with contextlib.ExitStack() as stack:
        yield Lab(bootstrap, work, postgres_url, stack)


def _delete_topics_quietly(bootstrap: str, names: list[str]) -> None:
    from conftest import delete_topics

    with contextlib.suppress(Exception):  # the broker may be gone at the very end of a session
        delete_topics(bootstrap, names)


def create_database(server_url: str) -> str:
    import uuid

    name = f"f_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by :func:`create_database`, best effort (it lives on a test server)."""
    parsed = sa.make_url(url)
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        for _ in range(20):
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
                return
            except sa.exc.OperationalError:
                return  # the server is already gone (a cluster of the scenario's own)
            except sa.exc.ProgrammingError:
                time.sleep(0.5)  # an autovacuum worker, which only a superuser may end, is still in it
    finally:
        admin.dispose()


@contextlib.contextmanager
def own_broker(home: Path) -> Iterator[LocalBroker]:
    """A broker of its own on free ports, for scenarios that stop it; stopped at the end."""
    port, controller_port = free_ports(2)
    broker = LocalBroker(home=home, port=port, controller_port=controller_port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class PgCluster:
    """A PostgreSQL cluster of its own (``scripts/postgres.sh``), for scenarios that restart it."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = ""

    def _sh(self, command: str) -> str:
        env = {**os.environ, "RECON_PG_PORT": str(self.port)}
        done = subprocess.run(
            [str(POSTGRES_SH), command, str(self.folder)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=REPO,
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh {command} failed: {done.stderr[-1000:]}")
        return done.stdout.strip()

    def start(self) -> str:
        self.url = self._sh("start").splitlines()[-1]
        return self.url

    def stop(self) -> None:
        self._sh("stop")


@contextlib.contextmanager
def own_postgres() -> Iterator[PgCluster]:
    # Not a pytest tmp_path: those are 0700, and the server runs as `postgres` when we are root.
    folder = Path(tempfile.mkdtemp(prefix="recon-faults-pg-"))
    cluster = PgCluster(folder, free_ports()[0])
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            cluster.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


# --- the known stream ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stream:
    """Messages in send order, and what each must become."""

    messages: tuple[tuple[bytes, bytes], ...]  # (key, value)
    valid: Mapping[bytes, str]  # value -> event_id, for messages the ledger must store
    invalid: frozenset[bytes]  # values the dead-letter topic must hold once per source offset

    @property
    def distinct_valid(self) -> int:
        return len(set(self.valid.values()))


def make_stream(catalogue: SchemaCatalogue, n_valid: int, n_invalid: int, *, tag: str, seed: int) -> Stream:
    """``n_valid`` enrolments of distinct workers and ``n_invalid`` bad messages at random positions."""
    rng = random.Random(seed)
    valid: dict[bytes, str] = {}
    messages: list[tuple[bytes, bytes]] = []
    for i in range(n_valid):
        nik = valid_nik(serial=1 + i % 9999, district=f"{1 + i // 9999:02d}")
        event_id = f"{tag}-{i}"
        value = catalogue.encode("enrolment", enrolment_record(event_id=event_id, nik=nik))
        valid[value] = event_id
        messages.append((nik.encode(), value))
    invalid = [_invalid(catalogue, i, tag) for i in range(n_invalid)]
    for message in invalid:
        messages.insert(rng.randrange(len(messages) + 1), message)
    return Stream(tuple(messages), valid, frozenset(v for _, v in invalid))


def _invalid(catalogue: SchemaCatalogue, i: int, tag: str) -> tuple[bytes, bytes]:
    """One of four kinds of bad input, each value unique: garbage, unknown schema, extra bytes, bad NIK."""
    key = INVALID_KEY + f"{tag}-{i}".encode()
    good = catalogue.encode("enrolment", enrolment_record(event_id=f"{tag}-bad-{i}"))
    kind = i % 4
    if kind == 0:
        return key, f"not avro {tag} {i}".encode()
    if kind == 1:
        return key, b"\xc3\x01" + b"\x00" * 8 + good[10:]
    if kind == 2:
        return key, good + b"\x00"
    bad_nik = enrolment_record(event_id=f"{tag}-bad-{i}", nik="7271013206900001")  # day 32
    return key, catalogue.encode("enrolment", bad_nik)


class Streamer:
    """Produces a stream in the background, paced over ``seconds``, riding out broker outages.

    The producer is idempotent and retries for minutes, as a branch system's should; whatever it
    ends up writing twice is on the topic, and the checks read the topic.
    """

    def __init__(
        self, bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]], *, seconds: float
    ):
        self._bootstrap = bootstrap
        self._topic = topic
        self._messages = messages
        self._seconds = seconds
        self._thread = threading.Thread(target=self._run, name="streamer", daemon=True)
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self.finished_at: float | None = None

    def start(self) -> Streamer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap.split(","),
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                request_timeout_ms=10_000,
                delivery_timeout_ms=600_000,
                max_block_ms=300_000,
                reconnect_backoff_max_ms=1000,  # back soon after an outage (the default backs off to 30 s)
            )
            futures = []
            chunks = max(1, int(self._seconds * 20))
            size = max(1, -(-len(self._messages) // chunks))
            started = time.monotonic()
            try:
                for n, i in enumerate(range(0, len(self._messages), size)):
                    if self._cancelled.is_set():
                        return
                    for key, value in self._messages[i : i + size]:
                        futures.append(producer.send(self._topic, key=key, value=value))
                    self._cancelled.wait(
                        max(0.0, started + (n + 1) * self._seconds / chunks - time.monotonic())
                    )
                producer.flush(timeout=600)
                for future in futures:
                    future.get(timeout=60)
            finally:
                producer.close(timeout=0 if self._cancelled.is_set() else 30)
        except BaseException as exc:  # handed to whoever waits
            self._error = exc
        finally:
            self.finished_at = time.monotonic()

    def cancel(self) -> None:
        """Stop producing (a scenario that failed part-way)."""
        self._cancelled.set()
        self._thread.join(5)

    def wait(self, timeout: float = 600) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the stream was still being produced after {timeout} s")
        if self._error is not None:
            raise AssertionError(f"the test producer failed: {self._error!r}") from self._error


def produce_now(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    Streamer(bootstrap, topic, messages, seconds=0).start().wait()


# --- recon processes -----------------------------------------------------------------------------


class Proc:
    """A `recon` subprocess; its output is drained by threads (a full pipe would block the service)."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.args = args
        self.popen = subprocess.Popen(
            [*RECON, *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.started = time.monotonic()
        self.ended: float | None = None
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        for stream, sink in ((self.popen.stderr, self.stderr), (self.popen.stdout, self.stdout)):
            threading.Thread(target=_drain, args=(stream, sink), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        if self.popen.poll() is None:
            return True
        self.ended = self.ended or time.monotonic()
        return False

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.alive()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (the service finishes its batch and exits), then wait; SIGKILL past ``timeout``."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        finally:
            self.alive()

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout``."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.alive()
        return code

    def last_line(self) -> str:
        """The last line the process wrote to stderr (the CLI's one-line error on a failure)."""
        time.sleep(0.2)  # let the drain thread read the end
        lines = [line for line in self.stderr if line.strip()]
        return lines[-1].strip() if lines else ""

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.stderr[-n:])

    def count(self, text: str) -> int:
        return sum(text in line for line in self.stderr)


def _drain(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


# --- looking at the ledger and the topics ---------------------------------------------------------


class LedgerView:
    """Read-only queries on the ledger, from outside the service (errors while a database is down
    surface as ``sqlalchemy.exc.OperationalError``; :meth:`try_` turns them into None)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = sa.create_engine(url, poolclass=NullPool)

    def close(self) -> None:
        self._engine.dispose()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def try_(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except sa.exc.DBAPIError:
            return None

    def stored(self) -> int:
        return int(self._rows("select count(*) from enrolment_events")[0][0])

    def event_ids(self) -> Counter[str]:
        return Counter(row[0] for row in self._rows("select event_id from enrolment_events"))

    def offsets(self, group: str) -> dict[tuple[str, int], int]:
        rows = self._rows(
            'select topic, "partition", next_offset from consumer_offsets where group_id = :g', g=group
        )
        return {(topic, partition): offset for topic, partition, offset in rows}

    def outbox(self, kind: str) -> tuple[int, int]:
        """(sent, pending) rows of ``kind``."""
        rows = self._rows(
            "select sent_at_ms is not null, count(*) from outbox where kind = :k group by 1", k=kind
        )
        counts = {bool(sent): n for sent, n in rows}
        return counts.get(True, 0), counts.get(False, 0)

    def outbox_ids(self, kind: str) -> set[int]:
        return {row[0] for row in self._rows("select id from outbox where kind = :k", k=kind)}

    def dead_letter_sources(self) -> set[tuple[str, int, int]]:
        rows = self._rows(
            "select source_topic, source_partition, source_offset from outbox where kind = 'dead_letter'"
        )
        return {(t, p, o) for t, p, o in rows}


def kafka_committed(admin: KafkaAdminClient, group: str) -> dict[tuple[str, int], int]:
    """The offsets the group committed to Kafka (only for lag monitoring: the ledger's rule)."""
    offsets = admin.list_group_offsets(group).get(group, {})
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def end_offsets(bootstrap: str, topic: str) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {(tp.topic, tp.partition): n for tp, n in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class Truth:
    """What is on the source topic: the events the ledger must hold, the offsets needing a dead letter."""

    records: int
    valid: dict[tuple[int, int], str]  # (partition, offset) -> event_id
    invalid: dict[tuple[int, int], bytes]  # (partition, offset) -> original bytes
    unknown: int  # records that are neither (never expected)


def read_truth(bootstrap: str, topic: str, stream: Stream, *, expect: int) -> Truth:
    records = consume_all(bootstrap, topic, expect=expect, timeout=60)
    valid: dict[tuple[int, int], str] = {}
    invalid: dict[tuple[int, int], bytes] = {}
    unknown = 0
    for r in records:
        if r.value in stream.valid:
            valid[(r.partition, r.offset)] = stream.valid[r.value]
        elif r.value in stream.invalid:
            invalid[(r.partition, r.offset)] = r.value
        else:
            unknown += 1
    return Truth(len(records), valid, invalid, unknown)


def accounted_below_ledger_offsets(
    view: LedgerView, group: str, topic: str, truth: Truth, *, ledger_offsets: Mapping[tuple[str, int], int]
) -> list[str]:
    """Problems if any offset the ledger holds moved past a message it did not account for: below
    ``next_offset`` every valid message must be stored and every invalid one in the dead-letter outbox."""
    ids = set(view.event_ids())
    sources = {(p, o) for t, p, o in view.dead_letter_sources() if t == topic}
    problems = []
    for (t, partition), next_offset in ledger_offsets.items():
        if t != topic:
            continue
        missing = [
            o
            for (p, o), event_id in truth.valid.items()
            if p == partition and o < next_offset and event_id not in ids
        ]
        missing += [
            o for (p, o) in truth.invalid if p == partition and o < next_offset and (p, o) not in sources
        ]
        if missing:
            problems.append(
                f"{topic}[{partition}]: the ledger's offset {next_offset} is past {len(missing)} messages it "
                f"never accounted for (first offset {min(missing)})"
            )
    return problems


@dataclass(frozen=True, slots=True)
class Counts:
    sent: int
    stored: int
    dead_lettered: int
    lost: int
    duplicated: int
    problems: tuple[str, ...]


def verify(bootstrap: str, topics: TopicNames, view: LedgerView, stream: Stream, group: str) -> Counts:
    """The exact check, against what is on the source topic (see the module docstring)."""
    truth = read_truth(bootstrap, topics.enrolments, stream, expect=len(stream.messages))
    problems: list[str] = []
    expected_ids = set(truth.valid.values())
    if truth.unknown:
        problems.append(f"{truth.unknown} records on {topics.enrolments} that the stream never sent")
    never_sent = set(stream.valid.values()) - expected_ids
    if never_sent:
        problems.append(f"the test producer never got {len(never_sent)} events onto the topic")
    ids = view.event_ids()
    dead = consume_all(bootstrap, topics.dead_letters, expect=len(truth.invalid), timeout=60)
    by_source: Counter[tuple[int, int]] = Counter()
    for record in dead:
        headers = dict(record.headers)
        if headers.get("source_topic", b"").decode() != topics.enrolments:
            problems.append(f"a dead letter names source topic {headers.get('source_topic')!r}")
            continue
        source = (int(headers["source_partition"]), int(headers["source_offset"]))
        by_source[source] += 1
        original = truth.invalid.get(source)
        if original is not None and record.value != original:
            problems.append(f"the dead letter of {source} does not carry the original bytes")
    lost = len(expected_ids - set(ids)) + len(set(truth.invalid) - set(by_source))
    duplicated = (
        sum(n - 1 for n in ids.values())
        + len(set(ids) - expected_ids)
        + sum(n - 1 for n in by_source.values())
        + len(set(by_source) - set(truth.invalid))
    )
    ends = end_offsets(bootstrap, topics.enrolments)
    stored_offsets = view.offsets(group)
    for tp, end in ends.items():
        if end and stored_offsets.get(tp) != end:
            problems.append(
                f"ledger offset of {tp[0]}[{tp[1]}] is {stored_offsets.get(tp)}, the topic ends at {end}"
            )
    return Counts(truth.records, len(ids), len(dead), lost, duplicated, tuple(problems))


# --- the ingest scenario runner ------------------------------------------------------------------


@dataclass
class Run:
    """An ingest scenario in progress: what a fault hook sees and does.

    The hook injects its faults while the stream is produced, restarts what a fault stopped, sets
    ``fault_ended`` when the last fault is over, and adds to ``faults``, ``problems`` and ``notes``.
    """

    name: str
    bootstrap: str
    topics: TopicNames
    db_url: str
    env: dict[str, str]
    stream: Stream
    streamer: Streamer
    view: LedgerView
    group: str
    consumers: list[Proc] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)
    faults: int = 0
    fault_ended: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def start_consumer(self, *args: str, **settings: Any) -> Proc:
        env = {**self.env, **{f"RECON_{k.upper()}": str(v) for k, v in settings.items()}}
        proc = Proc(env, "ingest", *args)
        self.consumers.append(proc)
        return proc

    def retire(self, proc: Proc) -> None:
        self.consumers.remove(proc)
        self.retired.append(proc)

    def stored(self) -> int:
        return int(self.view.try_(self.view.stored) or 0)

    def wait_stored(self, n: int, *, timeout: float = 120) -> None:
        """Until the ledger holds ``n`` events (see :meth:`supervise` for consumers that exit)."""
        deadline = time.monotonic() + timeout
        while self.stored() < n:
            self.supervise()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {self.stored()} of {n} events stored after {timeout} s")
            time.sleep(0.05)

    def caught_up(self) -> bool:
        sent = self.view.try_(lambda: self.view.outbox("dead_letter")[0])
        return self.stored() >= self.stream.distinct_valid and (sent or 0) >= len(self.stream.invalid)

    def wait_caught_up(self, *, timeout: float = 180) -> float:
        deadline = time.monotonic() + timeout
        while not self.caught_up():
            self.supervise()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: not caught up after {timeout} s ({self.stored()} stored)")
            time.sleep(0.1)
        return time.monotonic()

    def supervise(self) -> None:
        """When every consumer has exited on its own, a problem: note it and start a new one, as a
        supervisor would, so the scenario still measures what was lost or duplicated."""
        if not self.consumers or any(p.alive() for p in self.consumers):
            return
        dead = self.consumers[-1]
        self.problems.append(
            f"every consumer exited unexpectedly (exit {dead.returncode}: {dead.last_line()[:200]}); "
            "a new one was started"
        )
        if len(self.problems) > 5:
            raise AssertionError(f"{self.name}: consumers keep exiting:\n{dead.tail()}")
        for proc in list(self.consumers):
            self.retire(proc)
        self.start_consumer()


def run_ingest_scenario(
    lab: Lab,
    name: str,
    *,
    db_url: str,
    fault: Callable[[Run], None],
    n_valid: int,
    n_invalid: int,
    stream_seconds: float,
    bootstrap: str | None = None,
    partitions: int = 3,
    consumers: int = 1,
    seed: int = 7,
    **settings: Any,
) -> Outcome:
    """Stream a known set while ``consumers`` `recon ingest` processes run and ``fault`` acts; then
    wait until caught up, stop the consumers with SIGTERM (each must exit 0) and check exactly."""
    bootstrap = bootstrap or lab.bootstrap
    topics = lab.topics(partitions, bootstrap=None if bootstrap == lab.bootstrap else bootstrap)
    upgrade(db_url)
    stream = make_stream(lab.catalogue, n_valid, n_invalid, tag=name, seed=seed)
    env = service_env(topics.overrides(), db_url, ingest_http_port=0, reconcile_http_port=0, **settings)
    view = LedgerView(db_url)
    run = Run(
        name=name,
        bootstrap=bootstrap,
        topics=topics,
        db_url=db_url,
        env=env,
        stream=stream,
        streamer=Streamer(bootstrap, topics.enrolments, stream.messages, seconds=stream_seconds),
        view=view,
        group=env["RECON_CONSUMER_GROUP"],
    )
    try:
        for _ in range(consumers):
            run.start_consumer()
        run.streamer.start()
        fault(run)
        run.streamer.wait()
        caught_up = run.wait_caught_up()
        assert run.streamer.finished_at is not None
        recover = caught_up - max(run.fault_ended or 0.0, run.streamer.finished_at)
        for proc in list(run.consumers):
            code = proc.terminate()
            if code != 0:
                run.problems.append(f"a consumer stopped by SIGTERM exited {code}: {proc.last_line()}")
        counts = verify(bootstrap, topics, view, stream, run.group)
        processes = [*run.retired, *run.consumers]
        assignments = sum(p.count("partitions assigned") for p in processes)
        run.notes.append(f"{len(processes)} ingest processes, {assignments} partition assignments in all")
    finally:
        run.streamer.cancel()
        for proc in run.consumers:
            if proc.alive():
                proc.kill()
        view.close()
    return Outcome(
        scenario=name,
        faults=run.faults,
        sent=counts.sent,
        stored=counts.stored,
        dead_lettered=counts.dead_lettered,
        lost=counts.lost,
        duplicated=counts.duplicated,
        recover_seconds=round(max(0.0, recover), 1),
        problems=(*run.problems, *counts.problems),
        notes=tuple(run.notes),
    )


def run_concurrently(*scenarios: Callable[[], Outcome]) -> list[Outcome]:
    """Run scenarios side by side (they share nothing but the broker); their outcomes in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(scenarios)) as pool:
        futures = [pool.submit(scenario) for scenario in scenarios]
        return [future.result() for future in futures]


def check_checkpoint(run: Run, admin: KafkaAdminClient | None = None) -> None:
    """With no consumer writing: no ledger offset past an unaccounted message, and no Kafka offset
    past the ledger's. Adds any breach to ``run.problems``."""
    ledger_offsets = run.view.offsets(run.group)
    truth = read_truth(run.bootstrap, run.topics.enrolments, run.stream, expect=0)
    run.problems.extend(
        accounted_below_ledger_offsets(
            run.view, run.group, run.topics.enrolments, truth, ledger_offsets=ledger_offsets
        )
    )
    if admin is not None:
        for tp, offset in kafka_committed(admin, run.group).items():
            if offset > ledger_offsets.get(tp, 0):
                run.problems.append(f"Kafka's committed offset {offset} of {tp} is past the ledger's")
