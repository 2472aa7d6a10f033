"""`wib-hub broker users`: the RabbitMQ users and permissions of the parties that send on the broker
(`ingress: queue` in contracts/parties.yaml), as a definitions file for `rabbitmqctl import_definitions`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hub.infra.settings import Settings
from hub.interfaces.cli.options import contracts
from hub.messaging.queues import broker_grants

app = typer.Typer(help="What an operator applies on RabbitMQ for the AMQP ingress.", no_args_is_help=True)


@app.command("users")
def users(
        vhost: Annotated[str, typer.Option(help="the virtual host of HUB_BROKER_URL")] = "/",
        prefix: Annotated[Optional[str], typer.Option(help="queue prefix (default: HUB_QUEUE_PREFIX)")] = None,
        password_hash: Annotated[Optional[list[str]], typer.Option(
            "--password-hash", help="party=hash (from `rabbitmqctl hash_password`); repeatable")] = None,
        contracts_dir: Annotated[Optional[Path], typer.Option(help="default: HUB_CONTRACTS_DIR or the repository's")] = None,
) -> None:
    """Print the definitions JSON: one user per ingress party (named as the party), its write limited to
    its own ingress exchange, its read to its reply queue (and its party queue). Users without a
    --password-hash get an empty one: set it on the broker (`rabbitmqctl change_password`)."""
    hashes = {}
    for item in password_hash or []:
        party, sep, value = item.partition("=")
        if not sep or not value:
            raise typer.BadParameter(f"expected party=hash, got {item[:40]!r}", param_hint="--password-hash")
        hashes[party] = value
    registry = contracts(contracts_dir).registry
    unknown = sorted(set(hashes) - {p.id for p in registry.parties.values() if p.ingress == "queue"})
    if unknown:
        raise typer.BadParameter(f"not a party with an ingress queue: {', '.join(unknown)}", param_hint="--password-hash")
    queue_prefix = Settings().queue_prefix if prefix is None else prefix
    print(json.dumps(broker_grants(registry.parties.values(), queue_prefix, vhost, hashes), indent=2))
