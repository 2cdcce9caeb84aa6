"""`recon broker start|stop|status|fetch`: the local single-node Kafka for development and tests.

stdout carries only the bootstrap address (``BOOTSTRAP=$(recon broker start)`` works); what
happened goes to stderr.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from recon.broker import LocalBroker, fetch_jars
from recon.cli._app import app, settings_from
from recon.kafka.topics import ensure_topics

broker_app = typer.Typer(
    help="A local single-node Apache Kafka (KRaft) on 127.0.0.1 for development and tests.",
    no_args_is_help=True,
)
app.add_typer(broker_app, name="broker")

Home = Annotated[
    Path | None,
    typer.Option("--home", help="The broker's folder (else the broker_home setting, default .recon/broker)."),
]


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
) -> None:
    """Start the broker unless it runs already, create the service's topics, print the bootstrap address."""
    settings = settings_from(ctx, broker_home=home)
    broker = LocalBroker(home=settings.broker_home, port=port, controller_port=controller_port, heap=heap)
    before, began = broker.status(), time.monotonic()
    bootstrap = broker.start()
    if before.running:
        typer.echo(f"Kafka already running (pid {before.pid}) in {broker.home}", err=True)
    else:
        took = time.monotonic() - began
        typer.echo(f"Kafka started in {took:.1f}s in {broker.home}; log: {broker.log_file}", err=True)
    if topics:
        created = ensure_topics(bootstrap, settings)
        if created:
            typer.echo(f"created topics: {', '.join(created)}", err=True)
    typer.echo(bootstrap)


@broker_app.command()
def stop(ctx: typer.Context, home: Home = None) -> None:
    """Stop the broker (SIGTERM, SIGKILL after 30 s); a no-op when it is not running."""
    broker = LocalBroker(home=_home(ctx, home))
    typer.echo("Kafka stopped" if broker.stop() else f"Kafka was not running in {broker.home}", err=True)


@broker_app.command()
def status(ctx: typer.Context, home: Home = None) -> None:
    """Print the bootstrap address and exit 0 when the broker serves; else say why and exit 1."""
    current = LocalBroker(home=_home(ctx, home)).status()
    if not current.running:
        typer.echo(f"Kafka {current.detail}")
        raise typer.Exit(1)
    typer.echo(current.bootstrap)


@broker_app.command()
def fetch() -> None:
    """Download the Kafka jars into the cache (once); print the folder."""
    typer.echo(fetch_jars())
