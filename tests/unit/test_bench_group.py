"""bench/_group.py's pure parts: what the group benchmark concludes from the services' logs, the server
log and /proc. A wrong parse would report a rebalance that never completed, or miss a lost event."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "_group.py"


@pytest.fixture(scope="module")
def group() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recon_bench_group_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def line(ts: str, msg: str, partitions: list[str] | None = None, **extra: object) -> str:
    entry: dict[str, object] = {"ts": ts, "level": "info", "logger": "recon.ingest", "msg": msg, **extra}
    if partitions is not None:
        entry["partitions"] = partitions
    return json.dumps(entry)


def names(topic: str, parts: range | list[int]) -> list[str]:
    return [f"{topic}[{p}]" for p in parts]


def test_parse_log_keeps_json_lines_and_skips_the_rest(group: ModuleType) -> None:
    text = "\n".join(
        [
            line("2026-12-03T06:00:00.000Z", "ledger writer ready"),
            "Traceback (most recent call last):",
            "{not json",
            line("2026-12-03T06:00:01.250Z", "batch committed", messages=5000),
        ]
    )
    entries = group.parse_log(text)
    assert [e["msg"] for e in entries] == ["ledger writer ready", "batch committed"]
    assert group.log_time(entries[1]) - group.log_time(entries[0]) == pytest.approx(1.25)


def test_group_complete_only_once_every_process_holds_and_all_partitions_are_held_once(
    group: ModuleType,
) -> None:
    t = "enr"
    first = [  # alone at first with all 4, then an eager rebalance: everything revoked, half back
        line("2026-12-03T06:00:01.000Z", "partitions assigned", names(t, range(4)) + names("claims", [0])),
        line("2026-12-03T06:00:05.000Z", "partitions revoked", names(t, range(4))),
        line("2026-12-03T06:00:05.400Z", "partitions assigned", names(t, [0, 1])),
    ]
    second = [line("2026-12-03T06:00:05.600Z", "partitions assigned", names(t, [2, 3]))]
    logs = [group.parse_log("\n".join(first)), group.parse_log("\n".join(second))]
    complete = group.group_complete_at(logs, t, 4)
    assert complete == group.log_time({"ts": "2026-12-03T06:00:05.600Z"})


def test_group_never_complete_when_a_process_got_nothing_or_a_partition_is_missing(group: ModuleType) -> None:
    t = "enr"
    alone = [group.parse_log(line("2026-12-03T06:00:01.000Z", "partitions assigned", names(t, range(4))))]
    idle = group.parse_log(line("2026-12-03T06:00:02.000Z", "partitions assigned", []))
    assert group.group_complete_at([*alone, idle], t, 4) is None
    partial = [group.parse_log(line("2026-12-03T06:00:01.000Z", "partitions assigned", names(t, range(3))))]
    assert group.group_complete_at(partial, t, 4) is None


def test_group_not_complete_while_two_processes_hold_the_same_partition(group: ModuleType) -> None:
    t = "enr"
    a = group.parse_log(line("2026-12-03T06:00:01.000Z", "partitions assigned", names(t, [0, 1])))
    b = group.parse_log(line("2026-12-03T06:00:01.500Z", "partitions assigned", names(t, [1, 2, 3])))
    assert group.group_complete_at([a, b], t, 4) is None


def test_batch_totals_add_up_a_process_s_committed_batches(group: ModuleType) -> None:
    entries = group.parse_log(
        "\n".join(
            [
                line(
                    "2026-12-03T06:00:01.000Z",
                    "batch committed",
                    messages=5000,
                    stored=4990,
                    duplicates=0,
                    dead_lettered=10,
                ),
                line("2026-12-03T06:00:02.000Z", "partitions revoked", []),
                line(
                    "2026-12-03T06:00:03.000Z",
                    "batch committed",
                    messages=200,
                    stored=0,
                    duplicates=200,
                    dead_lettered=0,
                ),
            ]
        )
    )
    assert group.batch_totals(entries) == {
        "batches": 2,
        "messages": 5200,
        "stored": 4990,
        "duplicates": 200,
        "dead_lettered": 10,
    }


def test_count_server_log_finds_lock_waits_deadlocks_and_serialization_failures(group: ModuleType) -> None:
    text = "\n".join(
        [
            "2026-12-03 06:00:01.123 UTC [4242] LOG:  process 4242 still waiting for ShareLock on "
            "transaction 771 after 100.128 ms",
            "2026-12-03 06:00:01.123 UTC [4242] DETAIL:  Process holding the lock: 4243. Wait queue: 4242.",
            "2026-12-03 06:00:01.200 UTC [4242] LOG:  process 4242 acquired ShareLock on transaction 771 "
            "after 177.0 ms",
            "2026-12-03 06:00:02.000 UTC [4243] ERROR:  deadlock detected",
            "2026-12-03 06:00:03.000 UTC [4244] ERROR:  could not serialize access due to concurrent update",
            "2026-12-03 06:00:04.000 UTC [4245] LOG:  checkpoint starting: time",
        ]
    )
    assert group.count_server_log(text) == {
        "lock_waits": 1,
        "deadlocks": 1,
        "serialization_failures": 1,
        "errors": 2,
    }


def test_cpu_seconds_from_stat_counts_fields_after_a_command_name_with_spaces(group: ModuleType) -> None:
    ticks = group.CLOCK_TICKS
    fields = ["S", *["0"] * 10, str(3 * ticks), str(ticks // 2), *["0"] * 30]
    stat = "4242 (python -m (recon)) " + " ".join(fields)
    assert group.cpu_seconds_from_stat(stat) == pytest.approx(3.5)
    own = Path("/proc/self/stat")
    if own.exists():  # the real format, on Linux: this process has used some CPU by now
        assert group.cpu_seconds_from_stat(own.read_text()) >= 0


def test_tally_counts_lost_duplicated_and_unexpected(group: ModuleType) -> None:
    expected = ["e1", "e2", "e3", "e4"]
    seen = ["e1", "e2", "e2", "e2", "e4", "x9"]
    assert group.tally(expected, seen) == {"lost": 1, "duplicated": 2, "unexpected": 1}
    assert group.tally(expected, expected) == {"lost": 0, "duplicated": 0, "unexpected": 0}


def test_rate_after_uses_only_samples_once_complete(group: ModuleType) -> None:
    progress = [(100.0, 0), (101.0, 5_000), (102.0, 15_000), (104.0, 35_000)]
    assert group.rate_after(progress, 101.5) == pytest.approx(10_000)
    assert group.rate_after(progress, None) is None
    assert group.rate_after(progress, 103.0) is None  # one sample left: no rate


def test_combine_takes_medians_sums_counts_and_ratios_to_one_process(group: ModuleType) -> None:
    def round_(processes: int, events_s: float, cpu: float, lock_waits: int | None = 0) -> dict[str, object]:
        return {
            "processes": processes,
            "events_s": events_s,
            "events_s_once_complete": events_s,
            "cpu_us_per_event": cpu,
            "work_cpu_us_per_event": cpu,
            "startup_cpu_s": 1.0,
            "rebalance_s": 0.5,
            "first_subscribe_s": 1.0,
            "subscribe_spread_s": 0.0,
            "wal_bytes_per_event": 750.0,
            "deadlocks": 0,
            "conflicts": 0,
            "lock_waits": lock_waits,
            "serialization_failures": 0,
            "server_errors": 0,
            "rollbacks": 3,
            "lost": 0,
            "duplicated": 0,
            "unexpected": 0,
            "replayed": 10,
            "assignments": processes,
            "per_process_messages": [1] * processes,
        }

    rows = group.combine(
        {
            2: [round_(2, 9_000, 44.0, 1), round_(2, 11_000, 40.0, 2), round_(2, 10_000, 48.0, 0)],
            1: [round_(1, 8_000, 40.0), round_(1, 6_000, 40.0), round_(1, 7_000, 40.0, None)],
        }
    )
    one, two = rows
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["events_s"] == 10_000 and two["events_s_ratio_vs_1"] == pytest.approx(10_000 / 7_000)
    assert two["cpu_ratio_vs_1"] == pytest.approx(44.0 / 40.0)
    assert two["lock_waits"] == 3 and two["replayed"] == 30
    assert one["lock_waits"] is None  # a round without the server log: not counted as zero


def test_stat_fields_for_a_server_and_its_children(group: ModuleType) -> None:
    ticks = group.CLOCK_TICKS
    # after "pid (comm) ": state, ppid, ..., utime (14), stime (15), cutime (16), cstime (17)
    fields = ["S", "77", *["0"] * 9, str(ticks), str(ticks), str(4 * ticks), str(2 * ticks), *["0"] * 30]
    stat = "4242 (postgres) " + " ".join(fields)
    assert group.parent_pid_from_stat(stat) == 77
    assert group.cpu_seconds_from_stat(stat) == pytest.approx(2.0)
    assert group.children_cpu_from_stat(stat) == pytest.approx(6.0)


def test_pid_from_file_reads_the_first_line_or_nothing(group: ModuleType, tmp_path: Path) -> None:
    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text("4242\n/var/lib/data\n1733200000\n55432\n")
    assert group.pid_from_file(pid_file) == 4242
    assert group.pid_from_file(tmp_path / "absent.pid") is None
    assert group.pid_from_file(None) is None
