"""`recon broker start|stop|status|fetch`: the local single-node Kafka for development and tests.

stdout carries only what scripts take: the bootstrap address (``BOOTSTRAP=$(recon broker start)``
works), or with ``--security sasl-ssl`` the client settings as ``export RECON_...=...`` lines
(``eval "$(recon broker start --security sasl-ssl)"``); what happened goes to stderr, and never a
password.
"""

from __future__ import annotations

import shlex
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from recon.broker import SASL_LISTENER, SCRAM_MECHANISM, LocalBroker, SaslSsl, fetch_jars, sasl_ssl_in
from recon.cli._app import app, settings_from
from recon.kafka.topics import ensure_topics
from recon.settings import ENV_PREFIX

broker_app = typer.Typer(
    help="A local single-node Apache Kafka (KRaft) on 127.0.0.1 for development and tests.",
    no_args_is_help=True,
)
app.add_typer(broker_app, name="broker")

Home = Annotated[
    Path | None,
    typer.Option("--home", help="The broker's folder (else the broker_home setting, default .recon/broker)."),
]


class Security(StrEnum):
    plaintext = "plaintext"
    sasl_ssl = "sasl-ssl"


def _home(ctx: typer.Context, home: Path | None) -> Path:
    return settings_from(ctx, broker_home=home).broker_home


@broker_app.command()
def start(
    ctx: typer.Context,
    home: Home = None,
    port: Annotated[int, typer.Option("--port", help="Client (PLAINTEXT) port.")] = 9092,
    controller_port: Annotated[int, typer.Option("--controller-port", help="KRaft controller port.")] = 9093,
    heap: Annotated[str, typer.Option("--heap", help="JVM maximum heap (-Xmx).")] = "512m",
    topics: Annotated[bool, typer.Option("--topics/--no-topics", help="Create the service's topics.")] = True,
    security: Annotated[
        Security,
        typer.Option(
            "--security",
            help="sasl-ssl: also a SASL_SSL listener (SCRAM-SHA-512, a throwaway CA), and print the "
            "client settings as export lines for eval.",
        ),
    ] = Security.plaintext,
    sasl_port: Annotated[
        int, typer.Option("--sasl-port", help="SASL_SSL port (--security sasl-ssl).")
    ] = 9094,
    user: Annotated[
        str, typer.Option("--user", help="SCRAM user (--security sasl-ssl); its password is generated.")
    ] = "recon",
) -> None:
    """Start the broker unless it runs already, create the service's topics, print how to reach it."""
    settings = settings_from(ctx, broker_home=home)
    sasl = (
        sasl_ssl_in(settings.broker_home, port=sasl_port, user=user)
        if security is Security.sasl_ssl
        else None
    )
    broker = LocalBroker(
        home=settings.broker_home, port=port, controller_port=controller_port, heap=heap, security=sasl
    )
    before, began = broker.status(), time.monotonic()
    bootstrap = broker.start()
    if before.running:
        typer.echo(f"Kafka already running (pid {before.pid}) in {broker.home}", err=True)
    else:
        took = time.monotonic() - began
        typer.echo(f"Kafka started in {took:.1f}s in {broker.home}; log: {broker.log_file}", err=True)
    if topics:
        # Over PLAINTEXT, the local tools' listener, whatever RECON_KAFKA_* an earlier eval exported.
        plain = settings.model_copy(
            update={"kafka_bootstrap_servers": bootstrap, "kafka_security_protocol": "PLAINTEXT"}
        )
        created = ensure_topics(bootstrap, plain)
        if created:
            typer.echo(f"created topics: {', '.join(created)}", err=True)
    if sasl is None:
        typer.echo(bootstrap)
        return
    address = broker.listeners()[SASL_LISTENER]
    typer.echo(
        f"{SASL_LISTENER} on {address}: {SCRAM_MECHANISM} user {user!r} (password in {broker.scram_file}), "
        f"CA {broker.ca_file}",
        err=True,
    )
    for name, value in client_settings(broker, sasl, user).items():
        typer.echo(f"export {name}={shlex.quote(value)}")


def client_settings(broker: LocalBroker, sasl: SaslSsl, user: str) -> dict[str, str]:
    """The RECON_* settings a client of the broker's SASL_SSL listener needs (see docs/security.md)."""
    return {
        f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS": broker.listeners().get(SASL_LISTENER, sasl.bootstrap),
        f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL": SASL_LISTENER,
        f"{ENV_PREFIX}KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
        f"{ENV_PREFIX}KAFKA_SASL_USERNAME": user,
        f"{ENV_PREFIX}KAFKA_SASL_PASSWORD": sasl.users[user],
        f"{ENV_PREFIX}KAFKA_SSL_CAFILE": str(broker.ca_file),
    }


@broker_app.command()
def stop(ctx: typer.Context, home: Home = None) -> None:
    """Stop the broker (SIGTERM, SIGKILL after 30 s); a no-op when it is not running."""
    broker = LocalBroker(home=_home(ctx, home))
    typer.echo("Kafka stopped" if broker.stop() else f"Kafka was not running in {broker.home}", err=True)


@broker_app.command()
def status(ctx: typer.Context, home: Home = None) -> None:
    """Print the bootstrap address and exit 0 when the broker serves (its listeners on stderr); else
    say why and exit 1."""
    broker = LocalBroker(home=_home(ctx, home))
    current = broker.status()
    if not current.running:
        typer.echo(f"Kafka {current.detail}")
        raise typer.Exit(1)
    for name, address in current.listeners.items():
        detail = ""
        if name == SASL_LISTENER:
            users = ", ".join(sorted(broker.scram_users() or {})) or "none"
            detail = f" ({SCRAM_MECHANISM} users: {users}; CA {broker.ca_file})"
        typer.echo(f"{name} {address}{detail}", err=True)
    typer.echo(current.bootstrap)


@broker_app.command()
def fetch() -> None:
    """Download the Kafka jars into the cache (once); print the folder."""
    typer.echo(fetch_jars())
