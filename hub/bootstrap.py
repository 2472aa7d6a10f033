"""The one wiring place: reads the settings, picks store and transport, loads contracts/, builds the
parts and hands each what it needs. Nothing else builds a part of the hub; hub.runtime runs them.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Engine, text

from hub.audit import CheckpointPolicy
from hub.audit.checkpoints import ensure_key
from hub.domain.clocks import ClockRules
from hub.domain.consultation import Consultation
from hub.domain.designations import Designations
from hub.domain.envelope import utcnow
from hub.domain.flows import Registry
from hub.infra import oplog
from hub.infra.auth import Client, StoredReplayCache, TokenIssuer, ensure_clients_file, ensure_token_key, load_clients
from hub.infra.settings import ConfigurationError, Settings, Unreachable, safe_url, settings_errors
from hub.infra.store import heartbeats, migrate, open_engine
from hub.infra.store.db import check_reachable
from hub.infra.store.unit_of_work import UnitOfWork
from hub.infra.transport import Transport, open_transport
from hub.messaging.enrichment import Enrichment
from hub.messaging.ingress import Ingress
from hub.messaging.queue_ingress import QueueIngress
from hub.messaging.queues import ROUTE_QUEUE, ingress_queue, party_queue, reply_queue
from hub.messaging.relay import Relay
from hub.messaging.resilience import Resilient
from hub.messaging.router import Router
from hub.ports import Enricher, SourceConfig, load_adapters, load_toolkit
from hub.registry import Contracts
from hub.registry import load as load_contracts
from hub.runtime import Runtime

__all__ = ["Hub", "build_hub", "build_sources", "check_settings", "check_token_url", "checkpoint_policy", "hub_queues",
           "open_broker", "open_work", "probe_broker", "read_clients", "startup_error"]

log = structlog.get_logger("hub")

BROKER_CHECK_S = 5.0   # /readyz asks the broker at most this often


@dataclass
class Hub:
    settings: Settings
    contracts: Contracts
    engine: Engine
    transport: Transport
    tokens: TokenIssuer
    work: UnitOfWork
    sources: dict[str, Enricher] = field(default_factory=dict)
    wake: threading.Event = field(default_factory=threading.Event)          # the outbox has news
    enrich_wake: threading.Event = field(default_factory=threading.Event)   # a message waits for its sources

    def __post_init__(self) -> None:
        self.ingress = Ingress(self.registry, self.work, on_stored=self.wake.set,
                               opens={"professional_card": self.settings.professional_card_start})
        self.enrichment = Enrichment(self.registry, self.work, self.sources, on_complete=self.wake.set,
                                     parallel=self.settings.enrich_parallel,
                                     retry_max_s=self.settings.enrich_retry_max_seconds,
                                     lease_s=self.settings.enrich_lease_seconds)
        self.runtime = Runtime(self)
        self.enrichment.holder = self.runtime.process_id
        self._broker_check: tuple[float, bool] | None = None   # (when, answered), for /readyz

    # contracts/, as loaded and checked at start-up
    @property
    def registry(self) -> Registry:
        return self.contracts.registry

    @property
    def designations(self) -> Designations:               # Art. 16, 17: deny by default
        return self.contracts.designations

    @property
    def consultations(self) -> Mapping[str, Consultation]:  # Art. 25, 26
        return self.contracts.consultations

    @property
    def clocks(self) -> ClockRules:                       # the statutory clocks
        return self.contracts.clocks

    @property
    def reads(self) -> Engine:
        return self.work.reads

    @property
    def queues(self) -> list[str]:
        """What the workers need declared on the broker: the route queue and every party queue."""
        return hub_queues(self.settings, self.registry)

    @property
    def entrances(self) -> list[str]:
        """The queues outside publishers write to (the AMQP ingress queues): declared with their way in."""
        return [ingress_queue(p.id, self.settings.queue_prefix) for p in self.registry.parties.values()
                if p.ingress == "queue"]

    @property
    def route_queue(self) -> str:
        return self.settings.queue_prefix + ROUTE_QUEUE

    def relay(self) -> Relay:
        return Relay(self.work, self.transport, batch=self.settings.relay_batch, queue=self.route_queue)

    def router(self) -> Router:
        return Router(self.registry, self.work, self.transport, queue=self.route_queue,
                      queue_prefix=self.settings.queue_prefix, on_enrichment_pending=self.enrich_wake.set,
                      designations=self.designations)

    def queue_ingresses(self) -> list[QueueIngress]:
        """A consumer of the ingress queue of each party that sends on the broker (`ingress: queue`)."""
        return [QueueIngress(self.ingress, self.transport, party.id, queue_prefix=self.settings.queue_prefix,
                             max_body_bytes=self.settings.max_body_bytes)
                for party in self.registry.parties.values() if party.ingress == "queue"]

    def start_workers(self, routers: int = 1, *, role: str = "worker") -> None:
        """Outbox relay, route consumers, enricher and the periodic work, as supervised threads of
        this process (`serve`, `worker`)."""
        self.runtime.start(routers, role=role)

    def stop_workers(self) -> None:
        self.runtime.stop()

    def workers(self) -> list[dict]:
        """The hub processes whose workers beat lately (their rows in the store), for /readyz."""
        now = utcnow()
        try:
            fresh, _ = heartbeats.alive(self.reads, now, self.settings.heartbeat_seconds)
        except Exception:  # noqa: BLE001 - the store was just reachable; a race is "none known"
            return []
        return [{"process": r["process_id"], "role": r["role"], "threads": r["threads"],
                 "beat_age_s": round((now - r["beat_at"]).total_seconds(), 1)} for r in fresh]

    def ready(self) -> dict[str, bool]:
        """What this process can reach: the store (it cannot accept without it) and the broker (the
        API accepts without it, into the outbox; the workers wait for it); and, in a process
        running workers, whether they all run."""
        checks = {"store": False, "broker": False}
        try:
            with self.reads.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["store"] = True
        except Exception:  # noqa: BLE001 - not ready is the answer
            pass
        checks["broker"] = self._broker_answers()
        if self.runtime.started:
            checks["workers"] = self.runtime.live()[0]
        return checks

    def _broker_answers(self) -> bool:
        """Whether the broker answers, asked at most every BROKER_CHECK_S: a RabbitMQ node by one
        short connection attempt per address (not the transport's own connections, one per thread
        of the API), another transport by its ping."""
        now = time.monotonic()
        checked = self._broker_check
        if checked is not None and now - checked[0] < BROKER_CHECK_S:
            return checked[1]
        from hub.infra.transport import split_urls
        url = self.settings.resolved_broker_url()
        try:
            if url.partition("://")[0].lower() in ("amqp", "amqps"):
                answers = any(probe_broker(u, timeout_s=2.0) is None for u in split_urls(url))
            else:
                answers = bool(self.transport.ping())
        except Exception:  # noqa: BLE001 - not answering is the answer
            answers = False
        self._broker_check = (time.monotonic(), answers)
        return answers

    def close(self) -> None:
        ran = self.runtime.started
        self.stop_workers()
        if ran:  # a hub that ran workers seals its audit tail on the way out
            try:
                self.work.seal()
            except Exception as err:  # noqa: BLE001 - closing goes on; verify will show the tail unsealed
                log.warning("audit_seal_failed", error=type(err).__name__)
        self.enrichment.close()
        self.work.close()
        self.transport.close()
        self.engine.dispose()


def build_hub(settings: Settings | None = None, *, contracts: Contracts | None = None) -> Hub:
    """A hub on `settings` (default: the environment); `contracts`: contracts/ already loaded (default:
    loaded from settings.contracts_dir, once per process while the files do not change)."""
    settings = settings or Settings()
    oplog.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    contracts = contracts or load_contracts(settings.contracts_dir)
    registry = contracts.registry
    check_settings(settings)
    clients_file = settings.resolved_clients_file()
    if settings.clients_file is None:
        ensure_clients_file(clients_file, registry.parties)
    clients = read_clients(clients_file)
    check_token_url(settings, clients, clients_file)   # before anything is opened
    transport = open_broker(settings, hub_queues(settings, registry))   # before the store: a broker
    try:                                                                  # misconfigured leaves it untouched
        work = open_work(settings, seal=True, migrate_store=True)
    except BaseException:
        transport.close()
        raise
    key = settings.token_key or ensure_token_key(settings.resolved_token_key_file())
    roles = {p.id: p.roles for p in registry.parties.values()}
    tokens = TokenIssuer(key, clients, roles, settings.token_ttl_seconds,
                         replays=StoredReplayCache(work.engine))   # a replay to any API process is refused
    wanted = sorted({name for flow in registry.flows.values() for name in flow.enrich})
    return Hub(settings, contracts, work.engine, transport, tokens, work, build_sources(settings, wanted))


def check_settings(settings: Settings) -> None:
    """What the settings' types cannot say, checked at start-up rather than when first used."""
    from hub.audit.report import OfficeHours
    from hub.domain.errors import HubError
    try:
        OfficeHours.parse(settings.office_hours)
    except HubError:
        raise ConfigurationError("environment", "HUB_OFFICE_HOURS",
                                 f"expected days, hours and a time zone like 'Mon-Fri 08:00-18:00 Europe/Brussels' "
                                 f"(got {settings.office_hours[:40]!r})") from None
    if settings.clients_file is not None and not settings.clients_file.is_file():
        raise ConfigurationError("environment", "HUB_CLIENTS_FILE", f"no such file {settings.clients_file}")
    if settings.source_key_file is not None and not settings.source_key_file.is_file():
        raise ConfigurationError("environment", "HUB_SOURCE_KEY_FILE", f"no such file {settings.source_key_file}")


def read_clients(path: Path) -> dict[str, Client]:
    """The clients file; one that is missing or unreadable names HUB_CLIENTS_FILE."""
    try:
        return load_clients(path)
    except FileNotFoundError:
        raise ConfigurationError("environment", "HUB_CLIENTS_FILE", f"no such file {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        reason = err.args[0] if isinstance(err, ValueError) and err.args else type(err).__name__
        raise ConfigurationError("environment", "HUB_CLIENTS_FILE",
                                 f"expected a JSON object of parties and credentials in {path} "
                                 f"({str(reason)[:120]})") from None


def hub_queues(settings: Settings, registry: Registry) -> list[str]:
    """The queues the hub declares: the route queue, every party queue, and the ingress and reply
    queues of every party that sends on the broker."""
    prefix, parties = settings.queue_prefix, registry.parties.values()
    return [prefix + ROUTE_QUEUE] + [
        party_queue(party.id, prefix) for party in parties if party.delivery == "queue"] + [
        queue for party in parties if party.ingress == "queue"
        for queue in (ingress_queue(party.id, prefix), reply_queue(party.id, prefix))]


# What a broker says when it is configured wrongly (it never will answer) rather than down for now
# (refused, no answer, no route: it may be back in a minute): the hub refuses to start on the
# former, and starts anyway and waits on the latter.
_BROKER_WRONG = ("authentication refused", "access to virtual host", "unknown host", "not a broker URL")


def open_broker(settings: Settings, queues: Sequence[str] = ()) -> Transport:
    """The transport of the settings with `queues` declared. A broker configured wrongly (unknown
    host, user or password refused, a virtual host not there) is a line naming it, and the process
    does not start; one that is down (connection refused, no answer) is one warning, and the hub
    starts without it: the API accepts into the outbox, the workers declare the queues and relay
    once it answers (hub.runtime)."""
    from hub.infra.transport import TransportError, split_urls
    url = settings.resolved_broker_url()
    reasons = [(u, probe_broker(u)) for u in split_urls(url)]
    wrong = [(u, r) for u, r in reasons if r and r.startswith(_BROKER_WRONG)]
    if wrong:
        raise Unreachable("broker", "HUB_BROKER_URL", *wrong[0])
    try:
        transport = open_transport(url)
    except ValueError as err:
        raise ConfigurationError("environment", "HUB_BROKER_URL", f"{err} (got {safe_url(url)!r})") from None
    if all(r for _, r in reasons):   # not one node answers: start, and wait for it
        _waiting_for_broker(", ".join(safe_url(u) for u, _ in reasons), reasons[0][1])
        return transport
    try:
        for queue in queues:
            transport.declare(queue)
    except (TransportError, OSError) as err:
        reason = str(err).removeprefix("broker unreachable: ")
        if reason.startswith(_BROKER_WRONG) or not str(err).startswith("broker unreachable"):
            transport.close()
            raise Unreachable("broker", "HUB_BROKER_URL", url, reason) from None
        _waiting_for_broker(safe_url(url), reason)
    return transport


def _waiting_for_broker(broker: str, reason: str | None) -> None:
    log.warning("broker.unavailable", broker=broker, reason=reason,
                meanwhile="accepting into the outbox; workers wait for the broker")


def probe_broker(url: str, timeout_s: float = 5.0) -> str | None:
    """One connection attempt to one RabbitMQ address (no retries, a short timeout): None when it
    answers, else why not in a few words (`connection refused at h:5672`, `unknown host 'h'`).
    Other URLs: None."""
    if url.partition("://")[0].lower() not in ("amqp", "amqps"):
        return None
    import pika

    from hub.infra.transport.amqp import connection_reason
    try:
        params = pika.URLParameters(url)
    except Exception as err:  # noqa: BLE001 - pika says what is wrong with the URL in its own ways
        return f"not a broker URL ({type(err).__name__})"
    params.socket_timeout = params.stack_timeout = timeout_s
    params.connection_attempts, params.retry_delay = 1, 0
    try:
        pika.BlockingConnection(params).close()
    except Exception as err:  # noqa: BLE001 - every way of not answering is one line
        return connection_reason(err, params)
    return None


def startup_error(err: BaseException) -> list[str] | None:
    """The lines a command prints for an error of its configuration, or None for any other error:
    a bad variable, a store or broker that does not answer, a store not migrated."""
    lines = settings_errors(err) if isinstance(err, Exception) else None
    if lines:
        return lines
    if isinstance(err, ConfigurationError):
        return [err.line]
    from sqlalchemy.exc import DBAPIError, ProgrammingError
    if isinstance(err, ProgrammingError):
        return ["store error: ProgrammingError — is the store migrated? (`wib-hub serve` or `wib-hub worker` migrates it)"]
    if isinstance(err, DBAPIError):
        from hub.infra.store.db import unreachable_reason
        try:
            url = Settings().resolved_database_url()
        except Exception:  # noqa: BLE001 - the settings were read once already: this is for the line only
            url = "the store"
        return [Unreachable("store", "HUB_DATABASE_URL", url, unreachable_reason(err)).line]
    from hub.infra.transport import TransportError
    if isinstance(err, TransportError) and str(err).startswith("broker unreachable"):
        try:
            url = Settings().resolved_broker_url()
        except Exception:  # noqa: BLE001
            url = "the broker"
        return [Unreachable("broker", "HUB_BROKER_URL", url, str(err).removeprefix("broker unreachable: ")).line]
    return None


def check_token_url(settings: Settings, clients: Mapping[str, Client], clients_file: Path) -> None:
    """The `aud` of a client assertion is the token URL of the settings, never one derived from a
    request (its Host and X-Forwarded-* are the caller's to choose). A party with a public key
    authenticates by assertion, so without HUB_TOKEN_URL the hub does not start; with client
    secrets only it is not needed (an assertion is then refused: no key is registered)."""
    url = settings.token_url
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigurationError("environment", "HUB_TOKEN_URL",
                                     f"not an absolute http(s) URL without query or fragment: {url[:100]!r}")
        return
    keyed = sorted(party for party, client in clients.items() if client.public_keys)
    if keyed:
        named = ", ".join(keyed[:3]) + (f" and {len(keyed) - 3} more" if len(keyed) > 3 else "")
        raise ConfigurationError(str(clients_file), "HUB_TOKEN_URL",
                                 f"{named} authenticate with private_key_jwt: set HUB_TOKEN_URL to the public URL "
                                 "of /oauth/token, the audience their assertions name")


def checkpoint_policy(settings: Settings) -> CheckpointPolicy:
    """Signed checkpoints of the audit chain (GDPR Art. 32): the key (created on first use, mode 0600)
    and how often to seal."""
    return CheckpointPolicy(ensure_key(settings.resolved_audit_key_file()), settings.audit_checkpoint_events,
                            settings.audit_checkpoint_seconds)


def open_work(settings: Settings, *, seal: bool = False, migrate_store: bool = False) -> UnitOfWork:
    """The store of `settings` behind its unit of work. `seal`: sign checkpoints as events are appended
    (the hub; commands that delete or export); without it, the running hub's sealer seals them later."""
    url = settings.resolved_database_url()
    if url.partition("://")[0].lower().split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
        raise ConfigurationError("environment", "HUB_DATABASE_URL",
                                 f"expected postgresql://user@host:5432/db or sqlite:///path (got {safe_url(url)!r})")
    try:
        engine = open_engine(url)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy's ArgumentError and the like: the URL is wrong
        raise ConfigurationError("environment", "HUB_DATABASE_URL",
                                 f"not a store URL: {type(err).__name__} (got {safe_url(url)!r})") from None
    if engine.url.get_backend_name() != "sqlite":   # a server: say which one does not answer, before using it
        try:
            check_reachable(engine)
        except Unreachable:
            engine.dispose()
            raise
    if migrate_store:
        migrate(engine)
    return UnitOfWork(engine, checkpoint_policy(settings) if seal else None)


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
        box = load_toolkit().shared_sandbox(settings.resolved_sandbox_dir(), missing)
        urls.update({n: box.urls()[n] for n in missing})
        key_file = key_file or settings.resolved_sandbox_dir() / "client-key.pem"
    elif missing:  # a dossier would wait for ever: refuse to start instead
        raise ConfigurationError("environment", "HUB_SOURCES",
                                 f"expected a URL for the enrichment sources {', '.join(missing)} "
                                 "(HUB_SANDBOX is false)")
    key = key_file.read_bytes() if key_file else None
    return {n: Resilient(adapters[n].make_enricher(SourceConfig(
                url, timeout_s=settings.source_timeout_seconds, client_id=settings.source_client_id,
                private_key_pem=key)))
            for n, url in urls.items()}
