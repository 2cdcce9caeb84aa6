"""The progress file of one backfill: how far the broker has acknowledged, written only after the acks.

One small JSON file per (input content, topic), named after the content's SHA-256, so a renamed
copy of a file resumes and a changed file starts afresh. It is replaced atomically (write a
temporary file, fsync, rename): a kill at any moment leaves the old state or the new one, and either
only claims records the broker had acknowledged. On restart the run skips to ``position``; what was
sent after it but not yet recorded is sent again (at most the unacknowledged tail), and the ledger
drops those duplicates by event id.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from recon.backfill.jobs import Position
from recon.errors import ConfigError

FORMAT = 1
_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class State:
    sha256: str
    topic: str
    file: str
    position: Position | None = None
    """Where to resume; None: from the start."""
    acknowledged: int = 0
    refused: int = 0
    complete: bool = False


def file_sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(_READ):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def state_path(state_dir: Path, sha256: str, topic: str) -> Path:
    topic_tag = hashlib.sha256(topic.encode()).hexdigest()[:12]
    return state_dir / f"{sha256[:32]}-{topic_tag}.json"


def load(path: Path, *, sha256: str, topic: str, file: str) -> State:
    """The state at ``path``, or a fresh one; a file that is not ours is refused, not overwritten."""
    fresh = State(sha256=sha256, topic=topic, file=file)
    if not path.exists():
        return fresh
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw["format"] != FORMAT or raw["sha256"] != sha256 or raw["topic"] != topic:
            raise ValueError("another file's or topic's state")
        position = raw["position"]
        return replace(
            fresh,
            position=None if position is None else Position(**position),
            acknowledged=int(raw["acknowledged"]),
            refused=int(raw["refused"]),
            complete=bool(raw["complete"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the progress file {path} cannot be used ({type(exc).__name__}): move it away, or pass "
            "--restart to send the whole file again"
        ) from None


def save(path: Path, state: State) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": FORMAT,
        **asdict(state),
        "position": None if state.position is None else asdict(state.position),
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(body, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
