"""Reading an export into jobs: JSON Lines in chunks of lines, container files block by block.

Each job carries where it starts and where the next one starts (for the progress file) and how
many of its leading records an earlier run already did. A container file that breaks at a block
(truncated, a wrong sync marker, an impossible size) yields a ``problem`` job there, in order, so
everything before it is still sent and acknowledged before the run stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from recon.avro._container import ContainerError, Header, read_blocks
from recon.backfill.jobs import Job, Position

CHUNK_LINES = 2_000


def line_jobs(
    stream: IO[bytes], subject: str, resume: Position | None, *, partitions: int, chunk: int = CHUNK_LINES
) -> Iterator[Job]:
    """Jobs of up to ``chunk`` lines (split on ``\\n``; a trailing ``\\r`` is JSON whitespace)."""
    start = resume or Position(0, 1, 0, 1)
    stream.seek(start.offset)
    offset, line_no, skip = start.offset, start.unit, start.skip
    while True:
        lines: list[bytes] = []
        size = 0
        for raw in stream:
            lines.append(raw.rstrip(b"\n"))
            size += len(raw)
            if len(lines) == chunk:
                break
        if not lines:
            return
        after = Position(offset + size, line_no + len(lines), 0, line_no + len(lines))
        yield Job(
            kind="lines",
            subject=subject,
            first=line_no,
            data=lines,
            count=len(lines),
            start=Position(offset, line_no, skip, line_no),
            after=after,
            skip=skip,
            size=size,
            partitions=partitions,
        )
        offset, line_no, skip = after.offset, after.unit, 0


def block_jobs(
    stream: IO[bytes], header: Header, resume: Position | None, *, partitions: int
) -> Iterator[Job]:
    """One job per block, from ``resume`` (or the first block) on; a broken block ends the jobs
    with a ``problem`` job naming it."""
    start = resume or Position(header.end, 1, 0, 1)
    first, skip = start.first, start.skip
    blocks = read_blocks(stream, header, start=start.offset, first_number=start.unit)
    offset, number = start.offset, start.unit
    while True:
        try:
            raw = next(blocks, None)
        except ContainerError as exc:
            yield Job(
                kind="problem",
                subject=header.version.subject,
                first=first,
                data=exc.reason,
                count=0,
                start=Position(offset, exc.block or number, 0, first),
                after=Position(offset, exc.block or number, 0, first),
            )
            return
        if raw is None:
            return
        after = Position(raw.end, raw.number + 1, 0, first + raw.count)
        yield Job(
            kind="block",
            subject=header.version.subject,
            first=first,
            data=raw.data,
            count=raw.count,
            start=Position(raw.offset, raw.number, skip, first),
            after=after,
            skip=skip,
            fingerprint=header.version.fingerprint,
            codec=header.codec,
            size=raw.end - raw.offset,
            partitions=partitions,
        )
        offset, number, first, skip = raw.end, raw.number + 1, first + raw.count, 0


def is_container(stream: IO[bytes]) -> bool:
    """True if the file starts with the container magic (else it is taken as JSON Lines)."""
    stream.seek(0)
    magic = stream.read(4)
    stream.seek(0)
    return magic == b"Obj\x01"
