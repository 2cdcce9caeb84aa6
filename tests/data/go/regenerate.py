"""Regenerate this folder's vectors by running the real Go libraries (examples/go-producer).

fingerprints.json: the header fingerprint and canonical text of every version in schemas/;
canonical.json: the same for the spec's schema-tests.txt cases and extra-schemas.json;
messages.json: messages the libraries' single-object encoders wrote (fixed seed and clock).
Run from the repository root (needs Go; see README.md here):

    .venv/bin/python tests/data/go/regenerate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "unit")]

from test_avro_fingerprint import CASES  # noqa: E402

from gokit import SCHEMAS, go_producer  # noqa: E402

NOW_MS = "1764720000000"  # 2025-12-03 00:00 UTC
RUNS = (("2", "--seed", "7"), ("1", "--seed", "8", "--enrolment-version", "1"))  # count, options


def go(*args: str) -> str:
    return subprocess.run([str(go_producer()), *args], capture_output=True, text=True, check=True).stdout


def main() -> None:
    (HERE / "fingerprints.json").write_text(go("fingerprints", "--schemas", str(SCHEMAS)))
    messages = []
    for library in ("hamba", "goavro"):
        for count, *options in RUNS:
            with tempfile.TemporaryDirectory() as out:
                printed = go("write", "--schemas", str(SCHEMAS), "--out", out, "--count", count,
                             "--library", library, "--now-ms", NOW_MS, *options)  # fmt: skip
                for line in printed.splitlines():
                    subject, event_id, version, path = line.split(" ")
                    messages.append(
                        {
                            "library": library,
                            "subject": subject,
                            "version": int(version),
                            "event_id": event_id,
                            "key": Path(path).with_suffix(".key").read_text(),
                            "value_hex": Path(path).read_bytes().hex(),
                        }
                    )
    (HERE / "messages.json").write_text(json.dumps(messages, indent=2) + "\n")
    extra = json.loads((HERE / "extra-schemas.json").read_text())
    inputs = {f"spec-{c.number}": c.input for c in CASES}
    inputs |= {name: json.dumps(schema) for name, schema in extra.items()}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, text in inputs.items():
            path = Path(tmp) / f"{name}.avsc"
            path.write_text(text)
            files.append(str(path))
        out = subprocess.run(
            [str(go_producer()), "canonical", *files], capture_output=True, text=True, check=True
        )
    entries = json.loads(out.stdout)
    for entry in entries:
        entry["case"] = entry.pop("file").removesuffix(".avsc")
        entry["input"] = inputs[entry["case"]]
    (HERE / "canonical.json").write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
