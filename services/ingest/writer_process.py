"""The ledger's batch writes in a process of their own, so the database work never shares the loop's GIL
(``RECON_INGEST_WRITER=process``, the default; ``thread`` keeps them on the writer thread:
:class:`InProcessWrites`).

Measured (docs/performance.md, bench/ingest.py): with the writer as a thread, the loop's own thread
lost about a quarter of its time waiting for the GIL while the writer bound parameters, formatted
COPY rows and handed the GIL back and forth around every driver call; the whole ingest ran at 0.45x
of consume + decode. Here the loop's process only pickles the batch (about 2 µs a row) and waits on a
socket with the GIL released; the child does ``Ledger.write_batch`` with its own engine.

Nothing about the guarantee changes: the child runs exactly ``Ledger.write_batch`` — the batch's
rows and its offsets in one transaction — one batch at a time, in the order sent, and answers only
once it has committed (or with the exception that stopped it, re-raised here unchanged, so the
caller's retry policy sees the same faults as before). The child dies with its parent (Linux
``PR_SET_PDEATHSIG``, and an end-of-file on its socket elsewhere): a SIGKILL of ``recon ingest``
aborts the child's open transaction as it would have aborted the thread's, so a killed batch is
never committed behind a new owner's back.

Usage (``IngestService`` does this)::

    writes = LedgerWriterProcess(database_url)
    writes.start()                                     # spawns the child; returns at once
    writes.wait_ready()                                # its imports and engine done (else raises)
    outcome = writes.write_batch(group, batch, key_rotation=0)
    writes.close()
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any, Protocol

from recon.errors import PermanentFault
from recon.ledger import Batch, BatchOutcome, Ledger, create_engine_for
from recon.retry import describe

START_SECONDS = 60.0  # the child's imports and engine: well under a second unless the machine is starved
STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class BatchWrites(Protocol):
    """Where IngestService's writer thread sends its batches (``RECON_INGEST_WRITER``)."""

    @property
    def pid(self) -> int | None:
        """The process that writes, when it is not this one."""

    def wait_ready(self) -> None:
        """Return once batches can be written (a writer process started and given its engine)."""

    def write_batch(
        self, group_id: str, batch: Batch, *, key_rotation: int | None = None
    ) -> BatchOutcome: ...
    def close(self) -> None: ...


class InProcessWrites:
    """``RECON_INGEST_WRITER=thread``: the ledger's own ``write_batch``, on the writer thread, in this
    interpreter. For pods with a core or less, or several consumers sharing cores, where a second
    interpreter per consumer costs more CPU than the GIL it frees (docs/performance.md)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def pid(self) -> int | None:
        return None

    def wait_ready(self) -> None:
        pass

    def write_batch(self, group_id: str, batch: Batch, *, key_rotation: int | None = None) -> BatchOutcome:
        return self._ledger.write_batch(group_id, batch, key_rotation=key_rotation)

    def close(self) -> None:
        pass


class LedgerWriterProcess:
    """``write_batch`` of a :class:`recon.ledger.Ledger` that lives in a child process
    (``RECON_INGEST_WRITER=process``, the default)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False

    def start(self) -> None:
        """Spawn the child (a fresh interpreter: forking a process with Kafka's threads is unsafe)."""
        if self._proc is not None:
            return
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "ingest.writer_process", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send_bytes(pickle.dumps(self._url))  # the URL (with its password) never goes in argv

    def write_batch(self, group_id: str, batch: Batch, *, key_rotation: int | None = None) -> BatchOutcome:
        """As ``Ledger.write_batch``: returns its BatchOutcome, or raises what it raised."""
        self.wait_ready()
        self._send(("write", group_id, plain_rows(batch), key_rotation))
        outcome: BatchOutcome = self._answer(None)
        return outcome

    def wait_ready(self) -> None:
        """Return once the child has its engine (started here if need be); raises what stopped it."""
        self.start()
        if not self._ready:
            self._answer(START_SECONDS)
            self._ready = True

    def close(self) -> None:
        """End the child after what it is doing (its socket closes; it exits on end-of-file)."""
        proc, conn, self._proc, self._conn, self._ready = self._proc, self._conn, None, None, False
        if conn is not None:
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._conn is not None
        try:
            self._conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            raise self._died() from exc

    def _answer(self, timeout: float | None) -> Any:
        assert self._conn is not None
        try:
            if timeout is not None and not self._conn.poll(timeout):
                raise PermanentFault(
                    f"the ledger writer process did not start within {timeout:.0f} s: "
                    "check that the machine is not out of memory or processes, then restart"
                )
            kind, value = pickle.loads(self._conn.recv_bytes())  # noqa: S301 - our own child, a private socket
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if kind == "error":
            raise value
        return value

    def _died(self) -> PermanentFault:
        code = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._proc.wait(timeout=STOP_SECONDS)
        return PermanentFault(
            f"the ledger writer process stopped (exit code {code}): the batch it held is in the ledger "
            "whole or not at all; see the lines it logged above, then restart `recon ingest` (it "
            "resumes from the ledger's offsets)"
        )


def plain_rows(batch: Batch) -> Batch:
    """The batch with its rows as plain tuples: a NamedTuple row pickles in 1.2 µs, its plain tuple in
    0.3 (0.5 with the conversion); ``RowCodec.rows`` takes either."""
    enrolments: Any = [tuple(r) if isinstance(r, tuple) else r for r in batch.enrolments]
    claims: Any = [tuple(r) if isinstance(r, tuple) else r for r in batch.claims]
    return replace(batch, enrolments=enrolments, claims=claims)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the parent dies (Linux); elsewhere the socket's end-of-file does."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _reply(conn: Connection, kind: str, value: Any) -> None:
    try:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its description (never its SQL parameters)
        value = PermanentFault(f"the ledger write failed: {describe(value)}")
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    conn.send_bytes(data)


def child_main(fd: int, parent: int) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ... and then closes the socket
    conn = Connection(fd)

    try:
        url = pickle.loads(conn.recv_bytes())  # noqa: S301 - from our parent, over a private socket
        ledger = Ledger(create_engine_for(url))
    except EOFError:
        return
    except Exception as exc:
        _reply(conn, "error", exc)
        return
    _reply(conn, "ready", None)
    while True:
        try:
            _, group_id, batch, key_rotation = pickle.loads(conn.recv_bytes())  # noqa: S301 - as above
        except EOFError:  # the parent closed the socket, or died
            break
        try:
            outcome = ledger.write_batch(group_id, batch, key_rotation=key_rotation)
        except Exception as exc:  # the parent's retry policy decides; the child stays ready
            _reply(conn, "error", exc)
            continue
        _reply(conn, "ok", outcome)
    ledger.engine.dispose()


if __name__ == "__main__":
    child_main(int(sys.argv[1]), int(sys.argv[2]))
