"""Benchmark: `recon publish` against a bare kafka-python producer, in one run.

Usage:
    .venv/bin/python bench/publish.py [--events N] [--runs R] [--cli] [--json]

Setup (not timed): a LocalBroker on free ports in a temporary home (or the broker named by
RECON_KAFKA_BOOTSTRAP_SERVERS), N enrolment events of the demo scenario (recon.demo.scenario, valid
against today's clock) written as JSON Lines, and the same records prepared once by recon.publish's
Preparer (encoded with the current schema, validated): the exact (key, value) bytes `recon publish`
sends, pickled to a file.

Measured, R rounds, the two variants interleaved (the order alternating round to round), each in a
child process of its own, each on a fresh topic of 6 partitions:
- bare: a kafka-python KafkaProducer built with the options `recon publish` gives its producer (the
  service's idempotent acks=all producer, with publishing's linger and batch size), sending the
  pre-encoded (key, value) pairs read from the file before the clock starts; the clock runs from
  constructing the producer to close() after flush();
- publish: `recon publish --subject enrolment FILE` run through recon.cli.main in the child process
  (its imports done before the clock starts); the clock runs from the call to its return: reading
  the file, loading the schemas, validating, encoding, sending, waiting for every acknowledgement.
After each run the topic must hold exactly N messages (else the bench stops).
--cli adds a third figure per round: the real CLI as a subprocess, wall time including the Python
interpreter's start and imports (not part of the ratio: a bare producer has no such start).
--compare-tree DIR adds another: the same publish run importing recon from DIR (another checkout's
services/ folder: the code before a change), so a before/after is measured in one run.

Prints the machine, each round's figures, the medians, and the ratio publish / bare per round (the
goal: at least 0.7x). --json prints one JSON object instead (the human report goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 6
GOAL = 0.7
SUBJECT = "enrolment"
OUT = sys.stdout


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def say(message: str = "") -> None:
    print(message, file=OUT, flush=True)


# --- setup ----------------------------------------------------------------------------------------


def start_broker(stack: contextlib.ExitStack, folder: Path) -> str:
    from recon.broker import LocalBroker, free_ports

    port, controller_port = free_ports(2)
    broker = LocalBroker(home=folder / "kafka", port=port, controller_port=controller_port)
    stack.callback(broker.stop)
    return broker.start()


def write_inputs(folder: Path, events: int) -> tuple[Path, Path]:
    """The JSON Lines file and the pickled (key, value) pairs recon publish makes of it."""
    from recon.avro import SchemaCatalogue
    from recon.demo.scenario import build
    from recon.publish import Prepared, Preparer
    from recon.settings import load_settings

    today = datetime.now(UTC).date()
    scale = min(1.0, events / 600_000 + 0.01)
    records = build(today, scale=scale).enrolments
    if len(records) < events:
        sys.exit(f"the scenario holds {len(records):,} enrolment events, fewer than --events {events:,}")
    records = records[:events]
    lines = [json.dumps(r, default=lambda v: v.isoformat() if isinstance(v, date) else v) for r in records]
    source = folder / "enrolments.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings()
    catalogue = SchemaCatalogue.load(settings.schemas_dir)
    preparer = Preparer(
        catalogue=catalogue,
        subject=SUBJECT,
        config=settings.domain(),
        now_ms=int(time.time() * 1000),
    )
    pairs = []
    for item in preparer.prepare_lines(lines):
        if not isinstance(item, Prepared):
            sys.exit(f"the bench's own input is refused: {item}")
        pairs.append((item.key, item.value))
    encoded = folder / "encoded.pickle"
    encoded.write_bytes(pickle.dumps(pairs, protocol=pickle.HIGHEST_PROTOCOL))
    return source, encoded


def new_topic(bootstrap: str) -> str:
    from recon.kafka.topics import TopicSpec, create_topics

    name = f"bench-publish-{uuid.uuid4().hex[:10]}"
    create_topics(bootstrap, [TopicSpec(name=name, partitions=PARTITIONS)])
    return name


def topic_count(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_topics(topics)
    except Exception as exc:
        log(f"could not delete the bench's topics: {type(exc).__name__}")
    finally:
        admin.close()


# --- the measured runs (children) -----------------------------------------------------------------


def publish_options() -> dict[str, Any]:
    """The producer options `recon publish` uses on top of make_producer's defaults."""
    extra: dict[str, Any] = {}
    try:
        from recon.backfill.pipeline import PUBLISH_PRODUCER_OPTIONS

        extra = dict(PUBLISH_PRODUCER_OPTIONS)
    except ImportError:  # before the fast path existed: the service's producer as it was
        pass
    return extra


def bare_run(job: dict[str, Any]) -> dict[str, Any]:
    from kafka import KafkaProducer

    from recon.kafka.clients import client_config
    from recon.settings import load_settings

    pairs = pickle.loads(Path(job["encoded"]).read_bytes())
    settings = load_settings(overrides={"kafka_bootstrap_servers": job["bootstrap"]})
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "retries": 5,
        "max_in_flight_requests_per_connection": 5,
        "max_block_ms": 10_000,
    }
    options.update(publish_options())
    topic = job["topic"]
    started, cpu = time.perf_counter(), time.process_time()
    producer = KafkaProducer(**client_config(settings), client_id="bench-bare", **options)
    send = producer.send
    for key, value in pairs:
        send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def publish_run(job: dict[str, Any]) -> dict[str, Any]:
    os.environ["RECON_KAFKA_BOOTSTRAP_SERVERS"] = job["bootstrap"]
    import kafka  # noqa: F401 - imported before the clock, as a long-lived process would have it
    import rich.progress  # noqa: F401

    import recon.avro
    import recon.cli
    import recon.cli.publish
    import recon.publish

    recon.cli._register()
    sys.argv = [
        "recon",
        "publish",
        "--subject",
        SUBJECT,
        "--topic",
        job["topic"],
        *job["extra"],
        job["source"],
    ]
    started, cpu = time.perf_counter(), time.process_time()
    code = 0
    with contextlib.redirect_stdout(sys.stderr):
        try:
            recon.cli.main()
        except SystemExit as exc:
            code = int(exc.code or 0)
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"recon publish exited {code}")
    # The worker processes are joined when publish returns: their CPU is in RUSAGE_CHILDREN.
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "worker_cpu_seconds": workers.ru_utime + workers.ru_stime,
    }


def child_main() -> None:
    job = json.loads(sys.stdin.read())
    if job["variant"] == "compare":
        import recon

        if not Path(recon.__file__).resolve().is_relative_to(Path(job["compare"]).resolve()):
            sys.exit(f"--compare-tree: recon was imported from {recon.__file__}, not from {job['compare']}")
    result = bare_run(job) if job["variant"] == "bare" else publish_run(job)
    print(json.dumps(result))


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    if job["variant"] == "compare":  # the same publish_run, importing recon from the other tree
        env["PYTHONPATH"] = os.pathsep.join([job["compare"], env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        input=json.dumps(job),
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    if done.returncode != 0:
        sys.exit(f"the {job['variant']} run failed (exit {done.returncode}); its error is above")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cli_run(job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "RECON_KAFKA_BOOTSTRAP_SERVERS": job["bootstrap"]}
    recon = REPO / ".venv" / "bin" / "recon"
    started = time.perf_counter()
    done = subprocess.run(
        [str(recon), "publish", "--subject", SUBJECT, "--topic", job["topic"], *job["extra"], job["source"]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if done.returncode != 0:
        sys.exit(f"the CLI run failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return {"seconds": time.perf_counter() - started, "cpu_seconds": None}


# --- rounds and the report ------------------------------------------------------------------------


def measure(
    bootstrap: str,
    source: Path,
    encoded: Path,
    events: int,
    runs: int,
    cli: bool,
    extra: list[str],
    compare: Path | None,
) -> dict[str, Any]:
    variants = ["bare", "publish"] + (["cli"] if cli else []) + (["compare"] if compare else [])
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    topics: list[str] = []
    try:
        for round_no in range(runs):
            order = variants[:2] if round_no % 2 == 0 else variants[1::-1]
            for variant in order + variants[2:]:
                topic = new_topic(bootstrap)
                topics.append(topic)
                job = {
                    "variant": variant,
                    "bootstrap": bootstrap,
                    "topic": topic,
                    "source": str(source),
                    "encoded": str(encoded),
                    "extra": [] if variant == "compare" else extra,
                    "compare": str(compare) if compare else None,
                }
                result = cli_run(job) if variant == "cli" else run_child(job)
                count = topic_count(bootstrap, topic)
                if count != events:
                    sys.exit(f"the {variant} run left {count:,} messages on its topic, not {events:,}")
                result["events_s"] = events / result["seconds"]
                results[variant].append(result)
                log(f"round {round_no + 1} {variant:<8} {result['events_s']:>10,.0f} events/s")
    finally:
        delete_topics(bootstrap, topics)
    return summarise(results, events, runs)


def summarise(results: dict[str, list[dict[str, Any]]], events: int, runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for variant, rounds in results.items():
        cpu = [r["cpu_seconds"] for r in rounds if r["cpu_seconds"] is not None]
        figures[variant] = {
            "events_s": statistics.median(r["events_s"] for r in rounds),
            "events_s_each_round": [r["events_s"] for r in rounds],
            "seconds_each_round": [r["seconds"] for r in rounds],
            "cpu_us_per_event": statistics.median(cpu) / events * 1e6 if cpu else None,
        }
        workers = [r["worker_cpu_seconds"] for r in rounds if r.get("worker_cpu_seconds") is not None]
        if workers:
            figures[variant]["worker_cpu_us_per_event"] = statistics.median(workers) / events * 1e6
    ratios = [p["events_s"] / b["events_s"] for p, b in zip(results["publish"], results["bare"], strict=True)]
    extra: dict[str, Any] = {}
    if "compare" in results:
        extra["compare_ratio_each_round"] = [
            c["events_s"] / b["events_s"] for c, b in zip(results["compare"], results["bare"], strict=True)
        ]
        extra["compare_ratio"] = statistics.median(extra["compare_ratio_each_round"])
    return {
        **extra,
        "events": events,
        "partitions": PARTITIONS,
        "rounds": runs,
        "variants": figures,
        "publish_ratio_each_round": ratios,
        "publish_ratio": statistics.median(ratios),
        "publish_ratio_goal": GOAL,
        "publish_ratio_goal_met": statistics.median(ratios) >= GOAL,
        "producer_options": publish_options(),
        "machine": machine(),
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "kafka_python": importlib_metadata.version("kafka-python"),
    }


def report(summary: dict[str, Any]) -> None:
    m = summary["machine"]
    say(
        f"machine: {m['cores']} cores, {m['cpu']}, load average {m['load_average'][0]:.1f} at the end; "
        f"Python {m['python']}, kafka-python {m['kafka_python']}"
    )
    say(
        f"{summary['events']:,} enrolment events, {summary['partitions']} partitions, median of "
        f"{summary['rounds']} rounds, variants interleaved; producer options {summary['producer_options']}"
    )
    names = {
        "bare": "bare KafkaProducer, pre-encoded",
        "publish": "recon publish (child process)",
        "cli": "recon publish CLI, wall incl. start",
        "compare": "recon publish from --compare-tree",
    }
    for variant, figures in summary["variants"].items():
        each = " ".join(f"{v:>9,.0f}" for v in figures["events_s_each_round"])
        cpu = figures["cpu_us_per_event"]
        cpu_text = f"{cpu:6.1f} µs CPU/event (main process)" if cpu is not None else ""
        if figures.get("worker_cpu_us_per_event") is not None:
            cpu_text += f" + {figures['worker_cpu_us_per_event']:.1f} µs in workers"
        say(f"  {names[variant]:<38} {figures['events_s']:>9,.0f} events/s   [{each}]   {cpu_text}")
    each = " ".join(f"{r:.2f}" for r in summary["publish_ratio_each_round"])
    if "compare_ratio" in summary:
        each_compare = " ".join(f"{r:.2f}" for r in summary["compare_ratio_each_round"])
        say(f"  --compare-tree / bare per round: {each_compare}; median {summary['compare_ratio']:.2f}x")
    verdict = "met" if summary["publish_ratio_goal_met"] else "MISSED"
    say(
        f"  publish / bare per round: {each}; "
        f"median {summary['publish_ratio']:.2f}x (goal {GOAL}x: {verdict})"
    )


def main() -> None:
    global OUT
    if "--child" in sys.argv:
        child_main()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="also time the CLI as a subprocess")
    parser.add_argument("--jobs", type=int, help="pass --jobs N to recon publish (default: its own)")
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="also time recon publish imported from this folder (another checkout's services/, e.g. "
        "`git archive <commit> services schemas | tar -x -C DIR` then DIR/services), in the same rounds",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object; the report goes to stderr"
    )
    args = parser.parse_args()
    if args.json:
        OUT = sys.stderr
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        bootstrap = os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS") or start_broker(stack, folder)
        log(f"broker at {bootstrap}; writing {args.events:,} events")
        source, encoded = write_inputs(folder, args.events)
        extra = [] if args.jobs is None else ["--jobs", str(args.jobs)]
        summary = measure(
            bootstrap, source, encoded, args.events, args.runs, args.cli, extra, args.compare_tree
        )
        summary["publish_args"] = extra
    report(summary)
    if args.json:
        print(json.dumps(summary, indent=None))


if __name__ == "__main__":
    main()
