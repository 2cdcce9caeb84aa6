"""Benchmark: decode throughput of our strict Avro decoder against fastavro, on the same bytes.

Usage:
    .venv/bin/python bench/codec.py [--records N] [--runs R]

Encodes N varied enrolment records (current schema) once, then decodes all of them R times with
each decoder and prints the median records/s:
- ``ours``: the generated strict decoder on the bare Avro body (``compile_decoder``);
- ``ours, framed``: ``SchemaCatalogue.decode`` on single-object payloads (marker, fingerprint
  lookup, resolution to the reader, ``Decoded``): what the ingest loop calls;
- ``fastavro``: ``schemaless_reader`` on the bare body with the parsed schema (timestamps become
  datetimes there, ints here: the representations each library gives by default).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastavro import parse_schema as fastavro_parse
from fastavro import schemaless_reader

from recon.avro import HEADER_SIZE, SchemaCatalogue, compile_decoder

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def enrolments(count: int, seed: int = 7271) -> list[dict[str, Any]]:
    """Plausible enrolment events: Palu workers, a third paying 1-12 months, a few terminated."""
    rng = random.Random(seed)
    start = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    records = []
    for i in range(count):
        kind = rng.choice(["ENROLLED", "CONTRIBUTION_PAID", "CONTRIBUTION_PAID", "TERMINATED"])
        months = (
            [f"2025-{m:02d}" for m in range(1, rng.randint(1, 12) + 1)] if kind == "CONTRIBUTION_PAID" else []
        )
        records.append(
            {
                "event_id": f"enrolment-{i:08d}",
                "event_type": kind,
                "occurred_at": start + rng.randrange(180 * 86_400_000),
                "branch_code": "PALU",
                "agreement_id": "PKS-7271-2025",
                "nik": _nik(rng, i),
                "programmes": ["JKK", "JKM"],
                "declared_income": 1_000_000,
                "coverage_start": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(150)),
                "coverage_end": None if kind != "TERMINATED" else dt.date(2025, 12, 31),
                "paid_months": months,
                "amount": 16_800 * len(months),
                "termination_reason": "moved away" if kind == "TERMINATED" else None,
                "source_system": rng.choice([None, "SIPP-Palu 3.2"]),
            }
        )
    return records


def _nik(rng: random.Random, serial: int) -> str:
    birth = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(60, 99)}"
    return f"727101{birth}{serial % 9999 + 1:04d}"


def rate(decode: Callable[[bytes], object], payloads: list[bytes], runs: int) -> float:
    """Median records/s of ``runs`` passes over ``payloads``."""
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for payload in payloads:
            decode(payload)
        rates.append(len(payloads) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    catalogue = SchemaCatalogue.load(SCHEMAS)
    reader = catalogue.reader("enrolment")
    payloads = [catalogue.encode("enrolment", r) for r in enrolments(args.records)]
    bodies = [p[HEADER_SIZE:] for p in payloads]
    ours = compile_decoder(reader.schema)
    parsed = fastavro_parse(json.loads(reader.path.read_text()))

    def fastavro(body: bytes) -> object:
        return schemaless_reader(io.BytesIO(body), parsed, None)

    size = sum(map(len, bodies)) / len(bodies)
    print(
        f"{args.records:,} enrolment records (v{reader.version}, {size:.0f} body bytes on average), "
        f"median of {args.runs} runs"
    )
    results = {
        "ours (strict, bare body)": rate(ours, bodies, args.runs),
        "ours (SchemaCatalogue.decode, framed)": rate(catalogue.decode, payloads, args.runs),
        "fastavro schemaless_reader (bare body)": rate(fastavro, bodies, args.runs),
    }
    for name, value in results.items():
        print(f"  {name:<40} {value:>10,.0f} records/s")
    ratio = results["ours (strict, bare body)"] / results["fastavro schemaless_reader (bare body)"]
    print(f"  ours / fastavro: {ratio:.2f}x")


if __name__ == "__main__":
    main()
