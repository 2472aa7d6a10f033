"""A hub served by uvicorn, as `wib-hub serve` serves it (hub.interfaces.api.server.server_config),
on a free local port in a thread: for the tests that need the real HTTP edge (header limits, the
Host a client claims, a generated client) rather than an in-process TestClient.

`served_hub(kind, data_dir)` builds the hub on a store and a transport — "sqlite" (a migrated SQLite
store and the in-memory transport, as `local_hub`) or "postgres" (a fresh PostgreSQL schema and
RabbitMQ, as the production path) — starts its workers, serves it and yields a `Served`: the hub,
its base URL and a HubClient over a real HTTP client. Usable at any fixture scope (the PostgreSQL
schema is made and dropped here, not by the function-scoped `pg_schema_url`).

Also what the tests that count rows share: `stored_counts`, `dossier_row`, `audit_since`, `max_seq`.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select, text

from tests.support import AMQP_URL, PG_URL, HubClient, hub_settings, shut_down, sqlite_store

KINDS = ("sqlite", "postgres")


def free_port() -> int:
    """A port to listen on, below the ephemeral range (adapters.simulator.free_port says why)."""
    from adapters.simulator import free_port as pick
    return pick()


@contextmanager
def serving(app: Any, settings: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """`app` served by uvicorn with the hub's one server configuration; yields its base URL."""
    import uvicorn

    from hub.interfaces.api.server import server_config
    port = free_port()
    server = uvicorn.Server(server_config(app, settings, host, port))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the hub's server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards (any scope)."""
    from hub.infra.store.db import normalise_url
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def servers_unreachable(kind: str) -> Exception | None:
    """Why `kind`'s servers cannot be reached (PostgreSQL and RabbitMQ for "postgres"), or None."""
    if kind != "postgres":
        return None
    try:
        import pika

        from hub.infra.store.db import normalise_url
        engine = create_engine(normalise_url(PG_URL))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as err:  # noqa: BLE001 - any failure to connect means the same here
        return err
    return None


@contextmanager
def store_and_broker(kind: str, data_dir: Path) -> Iterator[tuple[str, str]]:
    if kind == "sqlite":
        yield sqlite_store(data_dir / "hub.db"), f"memory://{uuid.uuid4().hex}"
    elif kind == "postgres":
        with pg_schema() as url:
            yield url, AMQP_URL
    else:
        raise ValueError(kind)


@dataclass
class Served:
    hub: Any
    url: str
    store_url: str
    client: HubClient            # tokens per party; .http is an httpx.Client on `url`
    stop: Callable[[], None]     # stop the server and the hub now (idempotent); the store stays until the end

    @property
    def http(self) -> httpx.Client:
        return self.client.http

    def fresh(self) -> httpx.Client:
        """A client of its own (its own connection): what one request does to a connection stays there."""
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False)


@contextmanager
def served_hub(kind: str, data_dir: Path, **settings: Any) -> Iterator[Served]:
    """The hub on `kind`'s store and transport, its workers running, served on a free port."""
    from hub.bootstrap import build_hub
    from hub.interfaces.api.app import create_app
    data_dir.mkdir(parents=True, exist_ok=True)
    with store_and_broker(kind, data_dir) as (store, broker), ExitStack() as running:
        hub = build_hub(hub_settings(data_dir / "data", store, broker, **settings))
        hub.start_workers()
        running.callback(shut_down, hub)
        url = running.enter_context(serving(create_app(hub), hub.settings))
        http = running.enter_context(httpx.Client(base_url=url, timeout=30, trust_env=False))
        yield Served(hub, url, store, HubClient(hub, http), running.close)


# ── what a refusal must not have changed ─────────────────────────────────────────────────────

def stored_counts(engine: Engine) -> dict[str, int]:
    """Rows of every table a request could have stored something in (the audit trail apart)."""
    from hub.infra.store import schema
    tables = [schema.dossiers, schema.messages, schema.outbox, schema.deliveries, schema.rights_requests,
              schema.enrichment_jobs, schema.enrichments, schema.dossier_clocks, schema.stats_facts]
    with engine.connect() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables}
        counts["deliveries_acked"] = conn.execute(select(func.count()).select_from(schema.deliveries)
                                                  .where(schema.deliveries.c.acked_at.is_not(None))).scalar_one()
    return counts


def settled_counts(engine: Engine, quiet: float = 0.15, timeout: float = 10.0) -> dict[str, int]:
    """The counts once the workers stand still (the same twice, `quiet` seconds apart)."""
    deadline = time.monotonic() + timeout
    last = stored_counts(engine)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = stored_counts(engine)
        if now == last:
            return now
        last = now
    return last


def dossier_row(engine: Engine, dossier_id: str) -> dict[str, Any]:
    from hub.infra.store.schema import dossiers
    with engine.connect() as conn:
        row = conn.execute(select(dossiers).where(dossiers.c.id == dossier_id)).mappings().one()
    return dict(row)


def max_seq(engine: Engine) -> int:
    from hub.infra.store.schema import audit_events
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(audit_events.c.seq), 0))).scalar_one()


def audit_since(engine: Engine, seq: int) -> list[dict[str, Any]]:
    from hub.infra.store.schema import audit_events
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.seq > seq)
                                              .order_by(audit_events.c.seq)).mappings()]


def wait_until(check, timeout: float = 15.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
