"""The one wiring place: reads settings, picks store and transport, loads the registry.

Everything else receives what it needs from here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Engine, text

from hub.ports import Enricher, Resilient, SourceConfig, load_adapters
from hub.infra import oplog
from hub.audit import checkpoint_now
from hub.infra.auth import StoredReplayCache, TokenIssuer, ensure_clients_file, ensure_token_key, load_clients
from hub.lifecycle.clocks import ClockRules, load_clocks
from hub.domain.consultation import Consultation, load_consultations
from hub.domain.designations import Designations, load_designations
from hub.messaging.enrichment import Enrichment
from hub.domain.envelope import utcnow
from hub.domain.flows import Registry, default_contracts_dir, load_registry
from hub.messaging.ingress import Ingress
from hub.messaging.routing import ROUTE_QUEUE, Relay, Router, party_queue
from hub.infra.settings import Settings
from hub.infra.store import migrate, open_engine, reader
from hub.infra.store.unit_of_work import GroupCommit
from hub.infra.transport import Transport, open_transport

log = structlog.get_logger("hub")


@dataclass
class Hub:
    settings: Settings
    registry: Registry
    engine: Engine
    transport: Transport
    tokens: TokenIssuer
    sources: dict[str, Enricher] = field(default_factory=dict)
    consultations: dict[str, Consultation] = field(default_factory=dict)   # Art. 25, 26
    designations: Designations = field(default_factory=Designations)      # Art. 16, 17: deny by default
    clocks: ClockRules | None = None                                      # statutory clocks (contracts/clocks.yaml)
    wake: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.reads = reader(self.engine)
        self.commits = GroupCommit(self.engine)
        self.ingress = Ingress(self.registry, self.engine, on_stored=self.wake.set, commits=self.commits,
                              opens={"professional_card": self.settings.professional_card_start})
        self.enrich_wake = threading.Event()
        self.enrichment = Enrichment(self.registry, self.engine, self.commits, self.sources,
                                     on_complete=self.wake.set, parallel=self.settings.enrich_parallel,
                                     retry_max_s=self.settings.enrich_retry_max_seconds)

    @property
    def route_queue(self) -> str:
        return self.settings.queue_prefix + ROUTE_QUEUE

    def relay(self) -> Relay:
        return Relay(self.engine, self.transport, batch=self.settings.relay_batch, queue=self.route_queue)

    def router(self) -> Router:
        return Router(self.registry, self.commits, self.transport, queue=self.route_queue,
                      queue_prefix=self.settings.queue_prefix, on_enrichment_pending=self.enrich_wake.set,
                      designations=self.designations)

    def start_workers(self, routers: int = 1) -> None:
        """Outbox relay + route consumers, as threads of this process (`serve`, `worker`)."""
        relay = self.relay()
        self._spawn("relay", lambda: relay.run(self.stop, self.wake, self.settings.relay_poll_seconds))
        for i in range(routers):
            router = self.router()
            self._spawn(f"router-{i}", lambda r=router: r.run(self.stop, self.settings.worker_prefetch))
        self._spawn("enricher", lambda: self.enrichment.run(self.stop, self.enrich_wake))
        self._spawn("audit-sealer", self._seal_periodically)
        if self.clocks is not None and self.settings.clock_scan_seconds > 0:
            self._spawn("clocks", self._scan_clocks)
        if self.settings.retention_run_seconds > 0:
            self._spawn("retention", self._retain_periodically)

    def _retain_periodically(self) -> None:
        """Art. 27: delete the dossiers whose retention ended, every retention_run_seconds, in
        batches (one transaction each: nothing half-deleted); a stopping hub ends between batches."""
        from hub.lifecycle import retention
        while not self.stop.wait(self.settings.retention_run_seconds):
            try:
                r = retention.run(self.engine, utcnow(), batch=self.settings.retention_batch, stop=self.stop)
                if r.dossiers or r.remaining:
                    log.info("retention_run", dossiers=r.dossiers, rows=r.total_rows, remaining=r.remaining,
                             elapsed_s=round(r.elapsed_s, 3))
            except Exception as err:  # noqa: BLE001 - the next round tries again
                log.warning("retention_failed", error=type(err).__name__)

    def _scan_clocks(self) -> None:
        """Statutory clocks (61/27-4, 61/29-4, 61/29-5): start, stop, remind, expire or deem
        authorised, every clock_scan_seconds. Safe beside other workers doing the same."""
        from hub.lifecycle import clocks
        while not self.stop.wait(self.settings.clock_scan_seconds):
            try:
                clocks.sync(self.ingress, self.clocks, utcnow())
            except Exception as err:  # noqa: BLE001 - the next round tries again
                log.warning("clock_scan_failed", error=type(err).__name__)

    def _seal_periodically(self) -> None:
        """An idle hub still seals its audit tail every audit_checkpoint_seconds (busy ones seal as they append)."""
        while not self.stop.wait(self.settings.audit_checkpoint_seconds):
            try:
                checkpoint_now(self.engine)
            except Exception as err:  # noqa: BLE001 - the next round tries again
                log.warning("audit_seal_failed", error=type(err).__name__)

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
        self.enrich_wake.set()
        for t in self.threads:
            t.join(timeout=10)

    def close(self) -> None:
        self.stop_workers()
        if self.threads:  # a hub that ran workers seals its audit tail on the way out
            try:
                checkpoint_now(self.engine)
            except Exception as err:  # noqa: BLE001 - closing goes on; verify will show the tail unsealed
                log.warning("audit_seal_failed", error=type(err).__name__)
        self.enrichment.close()
        self.transport.close()
        self.engine.dispose()


def build_hub(settings: Settings | None = None) -> Hub:
    settings = settings or Settings()
    oplog.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(settings.contracts_dir or default_contracts_dir())
    designations = load_designations(settings.contracts_dir or default_contracts_dir(), registry)
    clocks = load_clocks(settings.contracts_dir or default_contracts_dir(), registry)
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
    tokens = TokenIssuer(key, load_clients(clients_file), roles, settings.token_ttl_seconds,
                         replays=StoredReplayCache(engine))   # a replay to any API process is refused
    from hub.audit import checkpoints  # signed checkpoints of the audit chain (GDPR Art. 32)
    checkpoints.configure(engine, checkpoints.ensure_key(settings.resolved_audit_key_file()),
                          settings.audit_checkpoint_events, settings.audit_checkpoint_seconds)
    wanted = sorted({name for flow in registry.flows.values() for name in flow.enrich})
    hub = Hub(settings, registry, engine, transport, tokens, build_sources(settings, wanted))
    hub.consultations = load_consultations(settings.contracts_dir or default_contracts_dir(), registry)
    hub.designations = designations
    hub.clocks = clocks
    return hub


def build_sources(settings: Settings, wanted: list[str]) -> dict[str, Enricher]:
    """Enrichment sources by name: configured URLs, else (embedded default) the sandbox's
    simulators. Each behind retries with jittered backoff and a circuit breaker."""
    if not wanted:
        return {}
    adapters = load_adapters()
    unknown = [n for n in wanted if n not in adapters or adapters[n].make_enricher is None]
    if unknown:
        raise RuntimeError(f"flows name enrichment sources with no installed adapter: {', '.join(unknown)}")
    urls = {n: settings.sources[n] for n in wanted if n in settings.sources}
    missing = [n for n in wanted if n not in urls]
    key_file = settings.source_key_file
    if missing and settings.sandbox:
        from adapters.sandbox import shared_sandbox
        box = shared_sandbox(settings.resolved_sandbox_dir(), missing)
        urls.update({n: box.urls()[n] for n in missing})
        key_file = key_file or settings.resolved_sandbox_dir() / "client-key.pem"
    elif missing:  # a dossier would wait for ever: refuse to start instead
        raise RuntimeError(f"no URL for enrichment sources {', '.join(missing)} (HUB_SOURCES) and the sandbox is off")
    key = key_file.read_bytes() if key_file else None
    return {n: Resilient(adapters[n].make_enricher(SourceConfig(
                url, timeout_s=settings.source_timeout_seconds, client_id=settings.source_client_id,
                private_key_pem=key)))
            for n, url in urls.items()}
