"""bench/ingest.py's group variant: 1, 2, 4 `recon ingest` processes in one consumer group, one PostgreSQL.

Loaded by path from bench/ingest.py (which takes its own folder off sys.path). The top half is pure
(log and server-log parsing, the exactly-once tally) and unit-tested in tests/unit/test_bench_group.py;
the bottom half runs the processes.

One round with P processes: a fresh consumer group, dead-letter topic and PostgreSQL database (migrated,
the agreement loaded: not timed); the P processes are started together (`python -m recon ingest`, the
real CLI, HTTP off, JSON logs to a file each); the clock runs from the first spawn until the ledger's
stored offsets for the enrolments topic add up to N (polled every 0.2 s: the ledger then holds every
batch); then all get SIGTERM and are reaped with os.wait4, which gives each one's user + system CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

NIK_LIKE = re.compile(r"\b\d{16}\b")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# PostgreSQL's server log: what each counted line starts its message with (any log_line_prefix).
SERVER_LOG_PATTERNS = {
    "lock_waits": re.compile(r"LOG:\s+process \d+ still waiting for "),
    "deadlocks": re.compile(r"ERROR:\s+deadlock detected"),
    "serialization_failures": re.compile(r"ERROR:\s+could not serialize access"),
    "errors": re.compile(r"\b(ERROR|FATAL|PANIC):\s"),
}
# The last line `recon ingest` logs before it subscribes (ingest.bootstrap.run, HTTP off: port 0).
SUBSCRIBED = "ledger writer ready"  # logged just before the subscribe
# Server settings the bench turns on (ALTER SYSTEM, then pg_reload_conf) so lock waits show in the log.
SERVER_SETTINGS = {"log_lock_waits": "on", "deadlock_timeout": "100ms"}


# --- pure: the services' JSON logs --------------------------------------------------------------------------


def parse_log(text: str) -> list[dict[str, Any]]:
    """The JSON objects among a service's log lines (anything else, a traceback say, is skipped)."""
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    return entries


def log_time(entry: Mapping[str, Any]) -> float:
    """recon.logs' "ts" (UTC, milliseconds: 2026-12-03T06:25:33.123Z) as epoch seconds."""
    return datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00")).timestamp()


def partitions_of(entry: Mapping[str, Any], topic: str) -> set[int]:
    """The partition numbers of ``topic`` in an entry's "partitions" list ("topic[3]", ...)."""
    found = set()
    for name in entry.get("partitions", ()):
        base, _, rest = str(name).rpartition("[")
        if base == topic and rest.endswith("]"):
            found.add(int(rest[:-1]))
    return found


def group_complete_at(
    logs: Sequence[Sequence[Mapping[str, Any]]], topic: str, partitions: int
) -> float | None:
    """Epoch seconds of the first moment every process holds partitions of ``topic`` and together they
    hold all of them, each exactly once; None if that never happened. Replays "partitions assigned"
    and "partitions revoked" of all processes in time order (an eager rebalance revokes everything)."""
    events = sorted(
        (log_time(e), i, e["msg"], partitions_of(e, topic))
        for i, entries in enumerate(logs)
        for e in entries
        if e.get("msg") in ("partitions assigned", "partitions revoked")
    )
    held: list[set[int]] = [set() for _ in logs]
    for ts, i, msg, parts in events:
        held[i] = held[i] - parts if msg == "partitions revoked" else parts
        counts = Counter(p for h in held for p in h)
        if all(held) and set(counts) == set(range(partitions)) and max(counts.values()) == 1:
            return ts
    return None


def assignment_times(logs: Sequence[Sequence[Mapping[str, Any]]], since: float) -> list[float]:
    """Seconds after ``since`` of every "partitions assigned" line of every process, in order."""
    times = (
        log_time(e) - since for entries in logs for e in entries if e.get("msg") == "partitions assigned"
    )
    return sorted(round(t, 2) for t in times)


def first_time(entries: Iterable[Mapping[str, Any]], msg: str) -> float | None:
    for entry in entries:
        if entry.get("msg") == msg:
            return log_time(entry)
    return None


def batch_totals(entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Messages, stored events, duplicates and dead letters over a process's "batch committed" lines."""
    totals = dict.fromkeys(("batches", "messages", "stored", "duplicates", "dead_lettered"), 0)
    for entry in entries:
        if entry.get("msg") == "batch committed":
            totals["batches"] += 1
            for key in ("messages", "stored", "duplicates", "dead_lettered"):
                totals[key] += int(entry.get(key, 0))
    return totals


# --- pure: PostgreSQL's server log, /proc, the exactly-once tally -------------------------------------------


def count_server_log(text: str) -> dict[str, int]:
    """Lock waits (log_lock_waits), deadlocks, serialization failures and all errors in a log slice."""
    counts = dict.fromkeys(SERVER_LOG_PATTERNS, 0)
    for line in text.splitlines():
        for key, pattern in SERVER_LOG_PATTERNS.items():
            if pattern.search(line):
                counts[key] += 1
    return counts


def cpu_seconds_from_stat(stat: str) -> float:
    """user + system CPU (all threads) of a /proc/PID/stat line. The command name, field 2, may hold
    spaces and parentheses, so fields are counted from the last ')': utime and stime are 14 and 15."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_from_stat(stat: str) -> float:
    """cutime + cstime (fields 16 and 17): the CPU of its children that have exited and been reaped."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def parent_pid_from_stat(stat: str) -> int:
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def process_cpu(pid: int, with_children: bool = False) -> float | None:
    """A process's CPU so far (all threads), and with_children, every child it has started: those
    reaped (cutime/cstime) and those alive (their own CPU). PostgreSQL's backends are the postmaster's
    children; a Kafka broker is one JVM."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    total = cpu_seconds_from_stat(stat)
    if with_children:
        total += children_cpu_from_stat(stat)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    child = (entry / "stat").read_text()
                    if parent_pid_from_stat(child) == pid:
                        total += cpu_seconds_from_stat(child)
    return total


def pid_from_file(path: Path | None) -> int | None:
    """The first line of a pid file (kafka.pid, PostgreSQL's postmaster.pid), if it is there."""
    try:
        return int(path.read_text().split()[0]) if path is not None else None
    except (OSError, ValueError, IndexError):
        return None


def tally(expected: Iterable[Any], seen: Iterable[Any]) -> dict[str, int]:
    """lost: expected but never seen; duplicated: seen more than once (each extra copy counts);
    unexpected: seen but never expected."""
    want, got = set(expected), Counter(seen)
    return {
        "lost": len(want - got.keys()),
        "duplicated": sum(n - 1 for n in got.values() if n > 1),
        "unexpected": len(got.keys() - want),
    }


def rate_after(progress: Sequence[tuple[float, int]], since: float | None) -> float | None:
    """Events/s from the first (epoch, count) sample at or after ``since`` to the last sample."""
    if since is None:
        return None
    later = [(t, n) for t, n in progress if t >= since]
    if len(later) < 2 or later[-1][0] <= later[0][0]:
        return None
    return (later[-1][1] - later[0][1]) / (later[-1][0] - later[0][0])


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


# --- the machine's own share: P processes of pure decoding on the same cores -----------------------------


def _decode_for_a_while(payloads: Sequence[bytes], passes: int, out: Any) -> None:
    """In a forked child: decode ``payloads`` ``passes`` times; put the CPU seconds per decode."""
    from recon.avro import SchemaCatalogue
    from recon.settings import load_settings

    catalogue = SchemaCatalogue.load(load_settings().schemas_dir)
    for payload in payloads[:500]:  # warm, as a consumer is after its first batch
        catalogue.decode(payload, "enrolment")
    started = time.process_time()
    for _ in range(passes):
        for payload in payloads:
            catalogue.decode(payload, "enrolment")
    out.put((time.process_time() - started) / (passes * len(payloads)))


def machine_contention(payloads: Sequence[bytes], counts: Sequence[int], passes: int = 8) -> dict[int, float]:
    """CPU per decode (our decoder, the bench's own messages) with P processes decoding at once, as a
    ratio to one process: what the machine alone adds to CPU per unit of work when P busy processes
    share its cores (context switches, caches shared and refilled). No Kafka, no database: the floor
    under the group's own ratios. Each count's processes run together; the median of theirs is taken."""
    import multiprocessing
    import statistics

    context = multiprocessing.get_context("fork")
    per_decode: dict[int, float] = {}
    for count in counts:
        out = context.Queue()
        children = [
            context.Process(target=_decode_for_a_while, args=(payloads, passes, out)) for _ in range(count)
        ]
        for child in children:
            child.start()
        figures = [out.get(timeout=300) for _ in children]
        for child in children:
            child.join()
        per_decode[count] = statistics.median(figures)
    base = per_decode.get(1) or min(per_decode.values())
    return {count: value / base for count, value in per_decode.items()}


# --- the processes ------------------------------------------------------------------------------------------


@dataclass
class Child:
    """One `recon ingest` process and its log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    cpu_at_subscribe: float | None = None  # CPU when its log says it is about to subscribe (start-up done)
    cpu_at_done: float | None = None  # CPU when the ledger held all N
    cpu_total: float | None = None  # os.wait4's user + system at exit
    returncode: int | None = None
    _read: int = 0

    def cpu_now(self) -> float | None:
        """Its CPU and its ledger writer process's (a child of its own) so far."""
        return process_cpu(self.proc.pid, with_children=True)

    def watch(self) -> None:
        """Note its CPU when its log first shows SUBSCRIBED: imports and building done, joining next."""
        if self.cpu_at_subscribe is not None:
            return
        with self.log_path.open("rb") as f:
            f.seek(self._read)
            chunk = f.read()
        if SUBSCRIBED.encode() in chunk:
            self.cpu_at_subscribe = self.cpu_now()
        else:
            self._read += len(chunk.rpartition(b"\n")[0]) + (1 if b"\n" in chunk else 0)

    def exited(self) -> bool:
        """Reaps it if it has exited (os.wait4, never Popen.poll: that would lose its rusage)."""
        if self.returncode is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.cpu_total = usage.ru_utime + usage.ru_stime
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode  # Popen must not wait for it again
        return self.returncode is not None

    def reap(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                self.proc.kill()
                deadline = time.monotonic() + 10
            time.sleep(0.05)

    def tail(self, lines: int = 15) -> list[str]:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return [NIK_LIKE.sub("<16 digits>", line)[:400] for line in text]


def service_env(overrides: Mapping[str, Any]) -> dict[str, str]:
    """A `recon` subprocess's environment: none of the caller's RECON_*, then the bench's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update({f"RECON_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


def spawn(count: int, env: dict[str, str], folder: Path, repo: Path) -> list[Child]:
    children = []
    for i in range(count):
        path = folder / f"ingest-{i}.log"
        with path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "recon", "ingest"], env=env, cwd=repo, stdout=out, stderr=out
            )
        children.append(Child(proc, path))
    return children


def stop_all(children: Sequence[Child]) -> None:
    for child in children:
        if not child.exited():
            child.proc.send_signal(signal.SIGTERM)
    for child in children:
        child.reap()


def fail(children: Sequence[Child], message: str) -> None:
    for i, child in enumerate(children):
        print(f"--- last lines of `recon ingest` #{i} (16-digit numbers masked) ---", file=sys.stderr)
        for line in child.tail():
            print(line, file=sys.stderr)
    stop_all(children)
    sys.exit(message)


# --- PostgreSQL: the ledger's progress, the server's counters and log ---------------------------------------


@dataclass
class Server:
    """The PostgreSQL server the rounds share: an admin connection (a superuser when the bench started
    the server) and, when known, its log file."""

    url: str
    log_path: Path | None
    superuser: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    postmaster_pid: int | None = None  # when known (our own server): its CPU and its backends'
    broker_pid: int | None = None  # when known (our own broker)

    def cpu(self) -> dict[str, float | None]:
        return {
            "postgres": process_cpu(self.postmaster_pid, with_children=True) if self.postmaster_pid else None,
            "broker": process_cpu(self.broker_pid) if self.broker_pid else None,
        }

    def engine(self, database: str | None = None) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        url = sa.make_url(self.url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if database is not None:
            url = url.set(database=database)
        return sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def enable_lock_logging(self) -> None:
        """ALTER SYSTEM the SERVER_SETTINGS (needs a superuser); remembers what is in force."""
        import sqlalchemy as sa

        engine = self.engine()
        try:
            with engine.connect() as conn:
                if self.superuser:
                    for name, value in SERVER_SETTINGS.items():
                        conn.execute(sa.text(f"ALTER SYSTEM SET {name} = '{value}'"))
                    conn.execute(sa.text("SELECT pg_reload_conf()"))
                    time.sleep(0.5)  # the postmaster signals the backends; new sessions read it
                for name in SERVER_SETTINGS:
                    self.settings[name] = str(conn.execute(sa.text(f"SHOW {name}")).scalar_one())
        finally:
            engine.dispose()

    def snapshot(self, database: str) -> dict[str, Any]:
        import sqlalchemy as sa

        engine = self.engine()
        try:
            with engine.connect() as conn:
                lsn = str(conn.execute(sa.text("SELECT pg_current_wal_lsn()")).scalar_one())
                row = conn.execute(
                    sa.text(
                        "SELECT deadlocks, conflicts, xact_commit, xact_rollback "
                        "FROM pg_stat_database WHERE datname = :d"
                    ),
                    {"d": database},
                ).one()
        finally:
            engine.dispose()
        size = self.log_path.stat().st_size if self.log_path is not None else 0
        return {"lsn": lsn, "log_size": size, **row._asdict()}

    def difference(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
        import sqlalchemy as sa

        engine = self.engine()
        try:
            with engine.connect() as conn:
                wal = conn.execute(
                    sa.text("SELECT pg_wal_lsn_diff(:a, :b)"), {"a": after["lsn"], "b": before["lsn"]}
                ).scalar_one()
        finally:
            engine.dispose()
        found: dict[str, Any] = {k: after[k] - before[k] for k in ("deadlocks", "conflicts", "xact_commit")}
        found |= {"xact_rollback": after["xact_rollback"] - before["xact_rollback"], "wal_bytes": int(wal)}
        if self.log_path is not None:
            with self.log_path.open("rb") as f:
                f.seek(before["log_size"])
                text = f.read(after["log_size"] - before["log_size"]).decode(errors="replace")
            logged = count_server_log(text)
            found |= {f"log_{k}": v for k, v in logged.items()}
        return found


def stored_offsets_total(engine: Any, group: str, topic: str) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
                    " WHERE group_id = :g AND topic = :t"
                ),
                {"g": group, "t": topic},
            ).scalar_one()
        )


def ledger_ids(engine: Any) -> tuple[list[str], list[tuple[str, int, int]], int]:
    """Every stored enrolment event id; every dead letter's source (topic, partition, offset); how many
    dead letters are still unsent."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT event_id FROM enrolment_events")).scalars())
        sources = [
            (str(t), int(p), int(o))
            for t, p, o in conn.execute(
                sa.text(
                    "SELECT source_topic, source_partition, source_offset FROM outbox"
                    " WHERE kind = 'dead_letter'"
                )
            )
        ]
        unsent = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at_ms IS NULL")).scalar_one()
    return ids, sources, int(unsent)


def dead_letter_values(settings: Any, topic: str, timeout: float = 60.0) -> list[bytes]:
    """Every record's value on the dead-letter topic (the original bytes), read from the beginning."""
    from kafka import TopicPartition

    from recon.kafka.clients import make_consumer

    consumer = make_consumer(settings, group_id=None, client_id="recon-bench-dlq-check")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(values)} dead letters of {sum(ends.values())} in {timeout} s")
        return values
    finally:
        consumer.close(autocommit=False)


# --- one round ----------------------------------------------------------------------------------------------


def group_round(bench: Any, server: Server, processes: int, tag: str, repo: Path) -> dict[str, Any]:
    """P processes until the ledger holds all N; then the figures and the exactly-once tally."""
    from recon.settings import load_settings

    job, cleanup = bench.job("postgres", tag)
    overrides = job["settings"] | {"ingest_http_port": 0}
    settings = load_settings(overrides=overrides)
    topic, group = settings.topic_enrolments, settings.consumer_group
    database = overrides["database_url"].rsplit("/", 1)[1].split("?")[0]
    folder = bench.folder / f"group-{tag}"
    folder.mkdir()
    ledger = server.engine(database)
    try:
        before = server.snapshot(database)
        cpu_before = server.cpu()
        started_epoch, started = time.time(), time.perf_counter()
        children = spawn(processes, service_env(overrides), folder, repo)
        deadline = started + bench.timeout
        progress: list[tuple[float, int]] = []  # (epoch, events the ledger holds), every 0.2 s
        while not progress or progress[-1][1] < bench.total:
            progress.append((time.time(), stored_offsets_total(ledger, group, topic)))
            for i, child in enumerate(children):
                if child.exited():
                    fail(children, f"`recon ingest` #{i} of {processes} exited with {child.returncode}")
                child.watch()
            if time.perf_counter() > deadline:
                fail(children, f"{processes} processes: the ledger did not hold all {bench.total:,} in time")
            if progress[-1][1] < bench.total:
                time.sleep(0.2)
        seconds = time.perf_counter() - started
        for child in children:
            child.cpu_at_done = child.cpu_now()
        stop_all(children)
        time.sleep(0.5)  # the backends of the stopped processes exit; the postmaster reaps them
        cpu_after = server.cpu()
        after = server.snapshot(database)
        pg = server.difference(before, after)
        ids, sources, unsent = ledger_ids(ledger)
    finally:
        ledger.dispose()
    dead = dead_letter_values(settings, settings.topic_dead_letters)
    cleanup()
    logs = [parse_log(child.log_path.read_text(errors="replace")) for child in children]
    figures = summarise_round(
        bench, processes, children, logs, started_epoch, seconds, pg, ids, sources, unsent, dead
    )
    for name, spent in cpu_before.items():
        end = cpu_after[name]
        figures[f"{name}_cpu_us_per_event"] = (end - spent) / bench.total * 1e6 if end and spent else None
    return figures | {"events_s_once_complete": rate_after(progress, figures["complete_at"])}


def summarise_round(
    bench: Any,
    processes: int,
    children: Sequence[Child],
    logs: Sequence[Sequence[Mapping[str, Any]]],
    started_epoch: float,
    seconds: float,
    pg: Mapping[str, Any],
    ids: Sequence[str],
    sources: Sequence[tuple[str, int, int]],
    unsent: int,
    dead: Sequence[bytes],
) -> dict[str, Any]:
    topic = bench.overrides()["topic_enrolments"]
    events = tally(bench.valid_ids(), ids)
    letters = tally(bench.invalid_values, dead)
    outbox_dups = sum(n - 1 for n in Counter(sources).values() if n > 1)
    complete = group_complete_at(logs, topic, bench.partitions)
    subscribed = [first_time(entries, SUBSCRIBED) for entries in logs]
    totals = [batch_totals(entries) for entries in logs]
    cpu_total = sum(c.cpu_total or 0.0 for c in children)
    work = [
        (c.cpu_at_done - c.cpu_at_subscribe)
        for c in children
        if c.cpu_at_done is not None and c.cpu_at_subscribe is not None
    ]
    startup = [c.cpu_at_subscribe for c in children if c.cpu_at_subscribe is not None]
    return {
        "processes": processes,
        "complete_at": complete,
        "seconds": seconds,
        "events_s": bench.total / seconds,
        "cpu_us_per_event": cpu_total / bench.total * 1e6,
        "work_cpu_us_per_event": sum(work) / bench.total * 1e6 if len(work) == processes else None,
        "startup_cpu_s": sum(startup) / len(startup) if startup else None,
        "rebalance_s": complete - min(s for s in subscribed if s is not None)
        if complete and any(subscribed)
        else None,
        "first_subscribe_s": min(s for s in subscribed if s is not None) - started_epoch
        if any(subscribed)
        else None,
        "subscribe_spread_s": (max(s for s in subscribed if s) - min(s for s in subscribed if s))
        if all(subscribed)
        else None,
        "assignments": sum(1 for entries in logs for e in entries if e.get("msg") == "partitions assigned"),
        "assigned_at_s": assignment_times(logs, started_epoch),
        "per_process_messages": [t["messages"] for t in totals],
        "messages_per_batch": sum(t["messages"] for t in totals) / max(1, sum(t["batches"] for t in totals)),
        "per_process_cpu_s": [round(c.cpu_total or 0.0, 2) for c in children],
        "per_process_cpu_us_per_event": [
            round((c.cpu_total or 0.0) / t["messages"] * 1e6, 1) if t["messages"] else None
            for c, t in zip(children, totals, strict=True)
        ],
        "replayed": sum(t["duplicates"] for t in totals),
        "exit_codes": [c.returncode for c in children],
        "deadlocks": pg["deadlocks"],
        "conflicts": pg["conflicts"],
        "lock_waits": pg.get("log_lock_waits"),
        "serialization_failures": pg.get("log_serialization_failures"),
        "server_errors": pg.get("log_errors"),
        "rollbacks": pg["xact_rollback"],
        "commits": pg["xact_commit"],
        "wal_bytes": pg["wal_bytes"],
        "wal_bytes_per_event": pg["wal_bytes"] / bench.total,
        "lost": events["lost"] + letters["lost"],
        "duplicated": events["duplicated"] + letters["duplicated"] + outbox_dups,
        "unexpected": events["unexpected"] + letters["unexpected"],
        "dead_letters_unsent": unsent,
        "dead_letters_in_outbox": len(sources),
    }


# --- rounds, medians, the report ----------------------------------------------------------------------------


def run_group(
    bench: Any, server: Server, counts: Sequence[int], rounds: int, repo: Path
) -> list[dict[str, Any]]:
    """``rounds`` rounds; in each, every process count once, the order rotating from round to round.
    Any lost or duplicated event stops the bench loudly."""
    results: dict[int, list[dict[str, Any]]] = {p: [] for p in counts}
    for r in range(rounds):
        order = list(counts[r % len(counts) :]) + list(counts[: r % len(counts)])
        for processes in order:
            result = group_round(bench, server, processes, f"g{processes}r{r}", repo)
            results[processes].append(result)
            print(
                f"round {r + 1}/{rounds} group of {processes} {result['events_s']:>9,.0f} events/s  "
                f"{result['seconds']:.2f} s  {result['cpu_us_per_event']:.1f} µs CPU/event  "
                f"rebalance {result['rebalance_s'] or float('nan'):.2f} s; assignments at "
                f"{result['assigned_at_s']} s after the spawn",
                file=sys.stderr,
                flush=True,
            )
            wrong = {
                k: result[k] for k in ("lost", "duplicated", "unexpected", "dead_letters_unsent") if result[k]
            }
            if wrong or any(code != 0 for code in result["exit_codes"]):
                sys.exit(
                    f"GROUP OF {processes} BROKE EXACTLY-ONCE: {wrong}, exit codes {result['exit_codes']}; "
                    f"logs in {bench.folder}"
                )
    return combine(results)


def _median(values: Iterable[float | None]) -> float | None:
    import statistics

    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(results: Mapping[int, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per process count: medians of the rates, CPU and times; sums of the counts (over all rounds)."""
    combined = []
    for processes, rounds in results.items():
        row: dict[str, Any] = {"processes": processes, "rounds": len(rounds)}
        for key in (
            "events_s",
            "events_s_once_complete",
            "cpu_us_per_event",
            "work_cpu_us_per_event",
            "startup_cpu_s",
            "rebalance_s",
            "first_subscribe_s",
            "subscribe_spread_s",
            "postgres_cpu_us_per_event",
            "broker_cpu_us_per_event",
            "messages_per_batch",
        ):
            row[key] = _median(r.get(key) for r in rounds)  # None when not measured
        row["wal_bytes_per_event"] = _median(r["wal_bytes_per_event"] for r in rounds)
        row["events_s_each_round"] = [round(r["events_s"]) for r in rounds]
        row["rebalance_s_each_round"] = [r["rebalance_s"] for r in rounds]
        row["assigned_at_s_each_round"] = [r.get("assigned_at_s") for r in rounds]
        for key in (
            "deadlocks",
            "conflicts",
            "lock_waits",
            "serialization_failures",
            "server_errors",
            "rollbacks",
        ):
            values = [r[key] for r in rounds]
            row[key] = None if any(v is None for v in values) else sum(values)
        for key in ("lost", "duplicated", "unexpected", "replayed", "assignments"):
            row[key] = sum(r[key] for r in rounds)
        for key in ("per_process_messages", "per_process_cpu_s", "per_process_cpu_us_per_event"):
            row[key] = rounds[-1].get(key)  # the last round's, as an example of the split
        combined.append(row)
    base = next((row for row in combined if row["processes"] == 1), None)
    for row in combined:
        row["cpu_ratio_vs_1"] = ratio(row["cpu_us_per_event"], base and base["cpu_us_per_event"])
        row["work_cpu_ratio_vs_1"] = ratio(
            row["work_cpu_us_per_event"], base and base["work_cpu_us_per_event"]
        )
        row["events_s_ratio_vs_1"] = ratio(row["events_s"], base and base["events_s"])
    return sorted(combined, key=lambda row: int(row["processes"]))


def report(rows: Sequence[Mapping[str, Any]], total: int, partitions: int, server: Server) -> None:
    settings = ", ".join(f"{k}={v}" for k, v in server.settings.items())

    def f(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"\ngroup: 1..4 `recon ingest` processes in one consumer group, {total:,} enrolment events on "
        f"{partitions} partitions, one PostgreSQL database; medians of {rows[0]['rounds']} rounds, "
        f"counts summed over them (server: {settings or 'defaults'})"
    )
    head = (
        f"{'procs':>5} {'events/s':>9} {'vs 1':>5} {'complete':>9} {'CPU/event':>9} {'vs 1':>5} "
        f"{'steady':>8} {'vs 1':>5} "
        f"{'rebalance':>9} {'WAL/event':>9} {'deadlk':>6} {'lockw':>5} {'serial':>6} "
        f"{'lost':>4} {'dup':>4} {'replay':>6}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        print(
            f"{row['processes']:>5} {f(row['events_s'], ',.0f'):>9} "
            f"{f(row['events_s_ratio_vs_1'], '.2f'):>5} {f(row['events_s_once_complete'], ',.0f'):>9} "
            f"{f(row['cpu_us_per_event'], '.1f'):>6} µs {f(row['cpu_ratio_vs_1'], '.2f'):>5} "
            f"{f(row['work_cpu_us_per_event'], '.1f'):>5} µs {f(row['work_cpu_ratio_vs_1'], '.2f'):>5} "
            f"{f(row['rebalance_s'], '.2f'):>7} s {f(row['wal_bytes_per_event'], ',.0f'):>7} B "
            f"{f(row['deadlocks'], 'd'):>6} {f(row['lock_waits'], 'd'):>5} "
            f"{f(row['serialization_failures'], 'd'):>6} "
            f"{row['lost']:>4} {row['duplicated']:>4} {row['replayed']:>6}"
        )
    print(
        "events/s: N / (spawn to the ledger holding N); complete: events/s once the group was complete; "
        "CPU/event: all processes' user+system CPU (os.wait4, whole life incl. start-up and shutdown) / N; "
        "steady: from each process's subscribe to the ledger holding N (/proc/PID/stat); rebalance: from the "
        f"first subscribe until every process holds enrolment partitions, all {partitions} once (JSON logs)"
    )
    for row in rows:
        print(
            f"  {row['processes']} processes: first subscribe {f(row['first_subscribe_s'], '.2f')} s "
            f"after the spawn, the last {f(row['subscribe_spread_s'], '.2f')} s later; start-up CPU "
            f"{f(row['startup_cpu_s'], '.2f')} s each; {row['assignments']} assignments; "
            f"messages per process (last round) {row['per_process_messages']}, their CPU/event "
            f"{row['per_process_cpu_us_per_event']} µs; {f(row['messages_per_batch'], ',.0f')} messages "
            f"per batch; {row['rollbacks']} rollbacks, "
            f"{row['server_errors']} server errors; CPU/event of PostgreSQL (all its processes) "
            f"{f(row['postgres_cpu_us_per_event'], '.1f')} µs, of the Kafka broker "
            f"{f(row['broker_cpu_us_per_event'], '.1f')} µs"
        )
    worst = max(
        (abs(r["work_cpu_ratio_vs_1"] - 1) for r in rows if r["work_cpu_ratio_vs_1"] is not None),
        default=None,
    )
    if worst is not None:
        verdict = "met" if worst <= 0.15 else "MISSED"
        print(
            f"goal: steady CPU/event with 2 and 4 processes within 15% of 1 process: {verdict} "
            f"(worst {worst:.0%})"
        )
