"""recon.http: the endpoint Prometheus scrapes and Kubernetes probes, over real localhost HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from recon import metrics
from recon.http import (
    Check,
    HttpServer,
    Readiness,
    run_checks,
    safe_detail,
    serve,
    serve_if_enabled,
    stall_probe,
)


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def state() -> dict[str, tuple[bool, str]]:
    return {"broker": (True, "3 brokers"), "database": (True, "ok")}


@pytest.fixture
def server(state: dict[str, tuple[bool, str]]) -> Iterator[HttpServer]:
    def readiness() -> Readiness:
        return run_checks({name: (lambda name=name: state[name]) for name in state})

    routes = {"/": lambda: ("text/html; charset=utf-8", b"<p>status</p>")}
    with serve("127.0.0.1", 0, readiness=readiness, routes=routes) as running:
        yield running


def test_port_zero_binds_a_free_port_and_reports_it(server: HttpServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics_serves_the_default_registry_in_prometheus_text_format(server: HttpServer) -> None:
    metrics.RETRIES.labels("database").inc(0)
    status, headers, body = get(server.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST  # text/plain; version=...
    text = body.decode()
    assert "# TYPE recon_retries_total counter" in text
    assert 'recon_retries_total{dependency="database"}' in text
    assert "recon_batch_duration_seconds_bucket" in text


def test_metrics_can_serve_another_registry() -> None:
    registry = CollectorRegistry()
    Counter("only_here_total", "A counter of a private registry", registry=registry).inc(3)
    with serve("127.0.0.1", 0, readiness=lambda: Readiness(()), registry=registry) as running:
        _, _, body = get(running.url + "/metrics")
    assert "only_here_total 3.0" in body.decode()
    assert "recon_" not in body.decode()


def test_healthz_answers_alive_even_when_not_ready(
    server: HttpServer, state: dict[str, tuple[bool, str]]
) -> None:
    state["database"] = (False, "connection refused")
    status, headers, body = get(server.url + "/healthz")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == {"status": "alive"}


def test_readyz_is_200_with_every_check_listed_when_all_pass(server: HttpServer) -> None:
    status, _, body = get(server.url + "/readyz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ready",
        "checks": [
            {"name": "broker", "ok": True, "detail": "3 brokers"},
            {"name": "database", "ok": True, "detail": "ok"},
        ],
    }


def test_readyz_is_503_naming_the_failing_check(
    server: HttpServer, state: dict[str, tuple[bool, str]]
) -> None:
    state["broker"] = (False, "no broker answered for 30 s")
    status, _, body = get(server.url + "/readyz")
    answer = json.loads(body)
    assert status == 503
    assert answer["status"] == "not ready"
    assert [c["name"] for c in answer["checks"] if not c["ok"]] == ["broker"]


def test_readyz_turns_to_503_and_back_without_restart(
    server: HttpServer, state: dict[str, tuple[bool, str]]
) -> None:
    state["database"] = (False, "down")
    assert get(server.url + "/readyz")[0] == 503
    state["database"] = (True, "ok")
    assert get(server.url + "/readyz")[0] == 200


def test_a_probe_that_raises_fails_its_check_without_leaking_the_message() -> None:
    def probe() -> tuple[bool, str]:
        raise ConnectionError("postgresql://recon:hunter2@db:5432/recon refused")

    outcome = run_checks({"database": probe, "broker": lambda: (True, "")})
    assert not outcome.ready
    assert outcome.checks[0] == Check("database", False, "check raised ConnectionError")
    assert outcome.checks[1].ok


def test_a_readiness_function_that_raises_is_a_503() -> None:
    def broken() -> Readiness:
        raise RuntimeError("secret detail")

    with serve("127.0.0.1", 0, readiness=broken) as running:
        status, _, body = get(running.url + "/readyz")
    assert status == 503
    assert b"secret detail" not in body
    assert json.loads(body)["checks"] == [
        {"name": "readiness", "ok": False, "detail": "check raised RuntimeError"}
    ]


def test_readyz_details_never_carry_passwords_or_nik_shaped_numbers() -> None:
    leaky = Readiness(
        (
            Check("database", False, "cannot reach postgresql+psycopg://recon:s3cret@db:5432/recon"),
            Check("ingest", False, "stuck on worker 7271011506900001"),
        )
    )
    with serve("127.0.0.1", 0, readiness=lambda: leaky) as running:
        _, _, body = get(running.url + "/readyz")
    text = body.decode()
    assert "s3cret" not in text and "7271011506900001" not in text
    assert "postgresql+psycopg://recon:***@db:5432/recon" in text


def test_safe_detail_cuts_long_text() -> None:
    assert len(safe_detail("x" * 1000)) == 200


def test_extra_routes_are_served_and_unknown_paths_are_404(server: HttpServer) -> None:
    status, headers, body = get(server.url + "/?refresh=1")
    assert (status, headers["Content-Type"], body) == (200, "text/html; charset=utf-8", b"<p>status</p>")
    assert get(server.url + "/nope")[0] == 404


def test_a_failing_route_answers_500_and_the_server_keeps_serving() -> None:
    def boom() -> tuple[str, bytes]:
        raise ValueError("render failed")

    with serve("127.0.0.1", 0, readiness=lambda: Readiness(()), routes={"/": boom}) as running:
        status, _, body = get(running.url + "/")
        assert (status, body) == (500, b"internal error\n")
        assert get(running.url + "/healthz")[0] == 200


def test_head_has_headers_and_no_body_and_post_is_refused(server: HttpServer) -> None:
    status, headers, body = get(server.url + "/healthz", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0
    status, headers, _ = get(server.url + "/metrics", method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_routes_may_not_shadow_the_built_in_endpoints() -> None:
    with pytest.raises(ValueError, match="/metrics"):
        serve("127.0.0.1", 0, readiness=lambda: Readiness(()), routes={"/metrics": lambda: ("x", b"")})


def test_serves_concurrent_requests() -> None:
    gate = threading.Event()

    def slow() -> tuple[str, bytes]:
        gate.wait(5)
        return "text/plain", b"slow"

    with serve("127.0.0.1", 0, readiness=lambda: Readiness(()), routes={"/slow": slow}) as running:
        waiting = threading.Thread(target=get, args=(running.url + "/slow",))
        waiting.start()
        try:
            assert get(running.url + "/healthz")[0] == 200  # not queued behind the slow request
        finally:
            gate.set()
            waiting.join()


def test_close_frees_the_port_and_is_idempotent() -> None:
    running = serve("127.0.0.1", 0, readiness=lambda: Readiness(()))
    port = running.port
    running.close()
    running.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    again = serve("127.0.0.1", port, readiness=lambda: Readiness(()))  # the port can be bound again
    again.close()


def test_a_busy_port_fails_loudly() -> None:
    with serve("127.0.0.1", 0, readiness=lambda: Readiness(())) as running, pytest.raises(OSError):
        serve("127.0.0.1", running.port, readiness=lambda: Readiness(()))


def test_configured_port_zero_means_off() -> None:
    assert serve_if_enabled("127.0.0.1", 0, readiness=lambda: Readiness(())) is None


def test_stall_probe_fails_only_when_work_waits_past_the_limit() -> None:
    clock = {"now": 1000.0, "last": 1000.0, "lag": 5}
    probe = stall_probe(
        lambda: clock["last"], 120, has_work=lambda: clock["lag"] > 0, now=lambda: clock["now"]
    )
    assert probe() == (True, "last progress 0 s ago")
    clock["now"] = 1120.0
    assert probe()[0]
    clock["now"] = 1121.0
    assert probe() == (False, "no progress for 121 s with work waiting (limit 120 s)")
    clock["lag"] = 0
    assert probe() == (True, "idle for 121 s, nothing waiting")
    clock["lag"], clock["last"] = 5, 1121.0
    assert probe()[0]
