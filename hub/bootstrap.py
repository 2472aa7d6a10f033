"""The one wiring place: reads settings, picks store and transport, loads the registry.

Everything else receives what it needs from here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Engine, text

from hub import oplog
from hub.auth import TokenIssuer, ensure_clients_file, ensure_token_key, load_clients
from hub.flows import Registry, default_contracts_dir, load_registry
from hub.pipeline import Ingress
from hub.routing import ROUTE_QUEUE, Relay, Router, party_queue
from hub.settings import Settings
from hub.store import migrate, open_engine, reader
from hub.store.group_commit import GroupCommit
from hub.transport import Transport, open_transport

log = structlog.get_logger("hub")


@dataclass
class Hub:
    settings: Settings
    registry: Registry
    engine: Engine
    transport: Transport
    tokens: TokenIssuer
    wake: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.reads = reader(self.engine)
        self.commits = GroupCommit(self.engine)
        self.ingress = Ingress(self.registry, self.engine, on_stored=self.wake.set, commits=self.commits)

    @property
    def route_queue(self) -> str:
        return self.settings.queue_prefix + ROUTE_QUEUE

    def relay(self) -> Relay:
        return Relay(self.engine, self.transport, batch=self.settings.relay_batch, queue=self.route_queue)

    def router(self) -> Router:
        return Router(self.registry, self.commits, self.transport, queue=self.route_queue,
                      queue_prefix=self.settings.queue_prefix)

    def start_workers(self, routers: int = 1) -> None:
        """Outbox relay + route consumers, as threads of this process (`serve`, `worker`)."""
        relay = self.relay()
        self._spawn("relay", lambda: relay.run(self.stop, self.wake, self.settings.relay_poll_seconds))
        for i in range(routers):
            router = self.router()
            self._spawn(f"router-{i}", lambda r=router: r.run(self.stop, self.settings.worker_prefetch))

    def _spawn(self, name: str, target) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def ready(self) -> dict[str, bool]:
        checks = {"store": False, "broker": False}
        try:
            with self.reads.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["store"] = True
        except Exception:
            log.warning("store_not_ready")
        try:
            checks["broker"] = bool(self.transport.ping())
        except Exception:
            log.warning("broker_not_ready")
        return checks

    def stop_workers(self) -> None:
        self.stop.set()
        self.wake.set()
        for t in self.threads:
            t.join(timeout=10)

    def close(self) -> None:
        self.stop_workers()
        self.transport.close()
        self.engine.dispose()


def build_hub(settings: Settings | None = None) -> Hub:
    settings = settings or Settings()
    oplog.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(settings.contracts_dir or default_contracts_dir())
    engine = open_engine(settings.resolved_database_url())
    migrate(engine)
    transport = open_transport(settings.resolved_broker_url())
    transport.declare(settings.queue_prefix + ROUTE_QUEUE)
    for party in registry.parties.values():
        if party.delivery == "queue":
            transport.declare(party_queue(party.id, settings.queue_prefix))
    clients_file = settings.resolved_clients_file()
    if settings.clients_file is None:
        ensure_clients_file(clients_file, registry.parties)
    key = settings.token_key or ensure_token_key(settings.token_key_file or settings.data_dir / "token.key")
    roles = {p.id: p.roles for p in registry.parties.values()}
    tokens = TokenIssuer(key, load_clients(clients_file), roles, settings.token_ttl_seconds)
    return Hub(settings, registry, engine, transport, tokens)
