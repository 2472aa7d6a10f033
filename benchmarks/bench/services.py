"""PostgreSQL and RabbitMQ for a benchmark: where they are, and leaving nothing behind on them.

The servers are found as the tests find them (HUB_TEST_DATABASE_URL, HUB_TEST_AMQP_URL), so that a
machine set up for the test suite runs the benchmarks as is. Every run writes into a schema and
queues of its own, removed afterwards even when the run fails: a benchmark must not leave rows or
messages that a later run, or the test suite sharing the servers, would trip over.
"""
from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pika
from sqlalchemy import create_engine, text

from hub.infra.settings import Settings
from hub.infra.store.db import normalise_url
from hub.infra.transport import open_transport
from hub.registry import load as load_contracts

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def add_service_options(parser: argparse.ArgumentParser, *, broker: bool = True,
                        database_help: str | None = None, broker_help: str | None = None) -> None:
    """--database-url (and, with `broker`, --amqp-url), defaulting to the tests' servers."""
    parser.add_argument("--database-url", default=PG_URL, help=database_help)
    if broker:
        parser.add_argument("--amqp-url", default=AMQP_URL, help=broker_help)


@dataclass(frozen=True)
class TempSchema:
    name: str
    url: str              # the database URL with this schema first on the search path
    server_version: str


@contextmanager
def temp_schema(database_url: str, prefix: str = "bench_") -> Iterator[TempSchema]:
    """A fresh PostgreSQL schema for one run, dropped with everything in it afterwards. Callers
    dispose of their own engines on it first: DROP SCHEMA waits for the locks they hold."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(database_url))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
            version = conn.execute(text("SHOW server_version")).scalar_one()
        sep = "&" if "?" in database_url else "?"
        try:
            yield TempSchema(name, f"{database_url}{sep}options=-csearch_path%3D{name}", version)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()


def queue_prefix() -> str:
    """A queue prefix no other run uses (Settings.queue_prefix)."""
    return f"bench{uuid.uuid4().hex[:8]}."


def delete_hub_queues(settings: Settings) -> None:
    """Remove what a hub on `settings` declared at start-up (hub.bootstrap: the route queue and each
    queue-delivered party's queue), each with its retry and parking companions. The transport that
    declared them deletes them: the companions' names are its own business."""
    from hub.bootstrap import hub_queues
    queues = hub_queues(settings, load_contracts(settings.contracts_dir).registry)   # AMQP ingress queues too
    transport = open_transport(settings.resolved_broker_url())
    try:
        for queue in queues:
            transport.delete(queue)
    finally:
        transport.close()


def delete_queues(url: str, names: Sequence[str]) -> None:
    """Remove plain queues (the raw pika baseline's), straight through pika."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        for name in names:
            ch.queue_delete(name)  # deleting a queue that is not there is not an error in AMQP 0-9-1
    finally:
        conn.close()


def rabbitmq_version(url: str) -> str:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return str(conn._impl.server_properties.get("version", "?"))  # the broker's own greeting
    finally:
        conn.close()
