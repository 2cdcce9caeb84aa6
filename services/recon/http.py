"""The operations HTTP endpoint of both services: ``/metrics``, ``/healthz``, ``/readyz`` and extra routes.

A stdlib ``ThreadingHTTPServer`` on a daemon thread; nothing is bound at import time.

- ``GET /metrics``: the Prometheus text format of ``registry`` (the default registry unless given).
- ``GET /healthz``: liveness. 200 ``{"status": "alive"}`` whenever the process can answer.
- ``GET /readyz``: readiness. Calls ``readiness()`` and answers 200 when every check is ok, else 503;
  the body is ``{"status": "ready"|"not ready", "checks": [{"name", "ok", "detail"}, ...]}``. A
  ``readiness`` that raises counts as not ready (its exception's type is named, never its message).
- ``GET <path>`` for each of ``routes``: the handler returns ``(content_type, body)``; a handler that
  raises answers 500 with a fixed text and is logged by exception type.
- Anything else: 404. Methods other than GET and HEAD: 405. Query strings are ignored.

Contract for ``readiness`` and route handlers: they run on the HTTP threads, concurrently with the
service's own loop, so they must be thread-safe and quick (well under a second: a Kubernetes probe
times out). Read state the loop records (when it last polled, what is assigned, when it last committed)
rather than calling a KafkaConsumer, which is not thread-safe.

Check details are for people and land in probe logs: they must not hold secrets or personal data.
As a safety net every detail is cut to 200 characters, passwords in URLs become ``***`` and any run of
16 digits (the shape of a NIK) becomes ``[redacted]``.

Port 0 binds any free port (tests read it back from ``HttpServer.port``). The services treat a
*configured* port 0 as "HTTP off": ``serve_if_enabled`` returns None for it.

Usage::

    server = serve("127.0.0.1", 9464, readiness=lambda: run_checks({"database": db_ok}))
    ...
    server.close()
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "Check",
    "HttpServer",
    "Probe",
    "Readiness",
    "Route",
    "run_checks",
    "safe_detail",
    "serve",
    "serve_if_enabled",
    "stall_probe",
]

log = logging.getLogger("recon.http")

Route = Callable[[], tuple[str, bytes]]
"""An extra route: returns ``(content_type, body)`` for a GET."""
Probe = Callable[[], tuple[bool, str]]
"""One readiness probe: returns ``(ok, detail)``."""

JSON: Final = "application/json"
_DETAIL_MAX: Final = 200
_URL_PASSWORD: Final = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
_NIK_LIKE: Final = re.compile(r"(?<!\d)\d{16}(?!\d)")


def safe_detail(text: str) -> str:
    """``text`` fit for a probe's answer: URL passwords masked, NIK-shaped numbers removed, cut short."""
    text = _NIK_LIKE.sub("[redacted]", _URL_PASSWORD.sub(r"\1:***@", text))
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one named readiness check."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of every readiness check at one moment. Ready when all are ok (and when there are none)."""

    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": [{"name": c.name, "ok": c.ok, "detail": safe_detail(c.detail)} for c in self.checks],
        }


def run_checks(probes: Mapping[str, Probe]) -> Readiness:
    """Run each probe in order; one that raises is a failed check naming only the exception's type."""
    checks = []
    for name, probe in probes.items():
        try:
            ok, detail = probe()
        except Exception as exc:
            ok, detail = False, f"check raised {type(exc).__name__}"
        checks.append(Check(name, bool(ok), detail))
    return Readiness(tuple(checks))


def stall_probe(
    last_progress: Callable[[], float],
    stall_after_seconds: float,
    *,
    has_work: Callable[[], bool] = lambda: True,
    now: Callable[[], float] = time.monotonic,
) -> Probe:
    """A probe that fails once nothing progressed for ``stall_after_seconds`` while there is work.

    ``last_progress`` returns the ``now()`` clock's reading of the last progress (set it to the start
    time before the first); ``has_work`` says whether anything waits (an idle consumer is not stalled).
    """

    def probe() -> tuple[bool, str]:
        quiet = max(0.0, now() - last_progress())
        if quiet <= stall_after_seconds:
            return True, f"last progress {quiet:.0f} s ago"
        if not has_work():
            return True, f"idle for {quiet:.0f} s, nothing waiting"
        return False, f"no progress for {quiet:.0f} s with work waiting (limit {stall_after_seconds:g} s)"

    return probe


class HttpServer:
    """A running server. ``port`` is the bound port; ``close()`` stops it (idempotent)."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._closed = False
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def serve(
    host: str,
    port: int,
    *,
    readiness: Callable[[], Readiness],
    routes: Mapping[str, Route] | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> HttpServer:
    """Bind ``host:port`` (0: any free port) and serve on a daemon thread; returns once listening.

    Raises OSError when the address cannot be bound (in use, bad host): the caller should fail loudly.
    Routes may not replace ``/metrics``, ``/healthz`` or ``/readyz`` (ValueError).
    """
    extra = dict(routes or {})
    clash = {"/metrics", "/healthz", "/readyz"} & set(extra)
    if clash:
        raise ValueError(f"routes may not replace the built-in endpoints: {sorted(clash)}")
    for path in extra:
        if not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with '/'")
    handler = _handler_class(readiness, extra, registry)
    server_cls = _V6Server if ":" in host else ThreadingHTTPServer
    server = server_cls((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"recon-http-{port}", daemon=True
    )
    thread.start()
    started = HttpServer(server, thread)
    log.info("http endpoint listening", extra={"url": started.url})
    return started


def serve_if_enabled(
    host: str,
    port: int,
    *,
    readiness: Callable[[], Readiness],
    routes: Mapping[str, Route] | None = None,
) -> HttpServer | None:
    """``serve`` for a configured port; None when the setting is 0 (HTTP turned off)."""
    if port == 0:
        log.info("http endpoint off (port 0)")
        return None
    try:
        return serve(host, port, readiness=readiness, routes=routes)
    except OSError as exc:
        from recon.errors import ConfigError

        raise ConfigError(
            f"cannot serve HTTP on {host}:{port} ({exc.strerror or type(exc).__name__}): set the service's "
            "RECON_*_HTTP_PORT to a free port, or 0 to turn its HTTP endpoint off"
        ) from None


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(
    readiness: Callable[[], Readiness], routes: Mapping[str, Route], registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "rentan-recon"
        sys_version = ""
        timeout = 10  # a client that stops sending does not hold a thread for long

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _unsupported(self) -> None:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"GET or HEAD only\n", True
            )

        do_POST = do_PUT = do_DELETE = do_PATCH = _unsupported

        def _answer(self, *, send_body: bool) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            status, content_type, body = _dispatch(path, readiness, routes, registry)
            self._send(status, content_type, body, send_body)

        def _send(self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status is HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", "GET, HEAD")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http request", extra={"request": format % args})

    return Handler


def _dispatch(
    path: str, readiness: Callable[[], Readiness], routes: Mapping[str, Route], registry: CollectorRegistry
) -> tuple[HTTPStatus, str, bytes]:
    if path == "/metrics":
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(registry)
    if path == "/healthz":
        return HTTPStatus.OK, JSON, _json({"status": "alive"})
    if path == "/readyz":
        try:
            outcome = readiness()
        except Exception as exc:
            # Type only: the message of a connection error may carry a host, a user or worse.
            log.error("readiness check failed", extra={"error": type(exc).__name__})
            outcome = Readiness((Check("readiness", False, f"check raised {type(exc).__name__}"),))
        status = HTTPStatus.OK if outcome.ready else HTTPStatus.SERVICE_UNAVAILABLE
        return status, JSON, _json(outcome.to_json())
    route = routes.get(path)
    if route is None:
        return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n"
    try:
        content_type, body = route()
    except Exception as exc:
        log.exception("route failed", extra={"path": path, "error": type(exc).__name__})
        return HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", b"internal error\n"
    return HTTPStatus.OK, content_type, body


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"
