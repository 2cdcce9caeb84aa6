"""How the Kafka clients are built: each connection attempt bounded by the retry budget, and the
broker's last answer before a close (a refused login) kept. No broker: nothing here connects."""

from __future__ import annotations

import socket

import pytest
from kafka.net.transport import KafkaTCPTransport

from recon.kafka.clients import _connect, _keep_data_read_before_a_close
from recon.settings import Settings


class Refused(Exception):
    """Not transient: the first attempt is the only one, so no test here sleeps."""


def first_wait(budget: float) -> int:
    """The bootstrap wait (ms) _connect gives the client's constructor on its first attempt."""
    waits: list[int] = []

    def build(bootstrap_timeout_ms: int) -> None:
        waits.append(bootstrap_timeout_ms)
        raise Refused

    with pytest.raises(Refused):
        _connect(Settings(retry_budget_seconds=budget), "connect a test client to Kafka", build)
    return waits[0]


@pytest.mark.parametrize(
    ("budget", "low", "high"),
    [
        (4, 3_000, 4_000),  # what is left of the budget, not kafka-python's 30 s
        (60, 10_000, 10_000),  # at most 10 s, so a refused login is known early under a long budget
        (0, 1_000, 1_000),  # at least 1 s: a budget of 0 still makes one real attempt
    ],
)
def test_an_attempt_waits_what_is_left_of_the_budget_within_bounds(
    budget: float, low: int, high: int
) -> None:
    assert low <= first_wait(budget) <= high


def test_bytes_read_together_with_the_close_reach_the_reader_before_the_close() -> None:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.sendall(b"SaslAuthenticate error response")  # a broker refusing a login answers, then closes
    broker.close()
    transport = KafkaTCPTransport(None, ours)
    _keep_data_read_before_a_close()
    _keep_data_read_before_a_close()  # once is enough; twice changes nothing

    try:
        data, error = transport._sock_recv()
        after, closed = transport._sock_recv()
    finally:
        ours.close()

    assert (data, error) == (b"SaslAuthenticate error response", None)
    assert after == b"" and "socket disconnected" in str(closed)
