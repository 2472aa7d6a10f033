"""The adapter ports: an Enricher asks a source system about one person, a BackOffice is polled.

`hub/` knows these shapes only; the concrete adapters register themselves by name through the
`wib_hub.enrichers` entry point group (see pyproject.toml) and are chosen in one wiring place.

Every call to a source runs through `Resilient`: a timeout (in the client), bounded retries with
jittered exponential backoff, and a circuit breaker per source. A source that is down makes the
call fail fast with `SourceUnavailable`; the caller keeps the work and tries again later.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Literal, Protocol, runtime_checkable

__all__ = [
    "Subject", "EnrichmentRecord", "SourceUnavailable", "SourceRefused", "Enricher",
    "CircuitBreaker", "CircuitOpen", "RetryPolicy", "Resilient", "BackOffice", "BackOfficeEvent",
    "SourceConfig", "SimulatorConfig", "Check", "Adapter", "load_adapters", "utcnow",
]

Status = Literal["found", "no_data"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Subject:
    """Who a source is asked about, and under which legal context (CBSS `legalContext`, ≤ 64 chars)."""

    insz: str
    reference_date: date
    employer: str | None = None        # enterprise number of the employer, when known
    legal_context: str = "Cooperation agreement single permit, Art. 14"
    ticket: str = ""                   # our correlation id, repeated by the source
    posted: bool = False               # the worker is posted to Belgium (Limosa applies)
    self_employed: bool = False        # professional card (INASTI applies)


@dataclass(frozen=True)
class EnrichmentRecord:
    """What one source said about one subject, in the hub's canonical shape.

    `data` follows contracts/enrichment/<source>.schema.json; it is data category social_security.
    """

    source: str                        # e.g. "onss.dimona"
    contract: str                      # the contract file name, e.g. "dimona-rest"
    contract_version: str              # e.g. "v2" or "20231"
    status: Status
    retrieved_at: datetime
    elapsed_ms: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "contract": self.contract, "contract_version": self.contract_version,
                "status": self.status, "retrieved_at": self.retrieved_at.isoformat(),
                "elapsed_ms": round(self.elapsed_ms, 1), "data": self.data}


class SourceUnavailable(Exception):
    """Transient: timeout, connection refused, 5xx, SOAP server fault, malformed answer, circuit open.
    The work is kept and tried again later."""


class SourceRefused(Exception):
    """Permanent: the source understood and refused (4xx other than 401/429, a client SOAP fault).
    Retrying the same request cannot help; a person must look."""


class CircuitOpen(SourceUnavailable):
    pass


@runtime_checkable
class Enricher(Protocol):
    name: str                          # "onss.dimona"
    contract: str
    contract_version: str

    def applies(self, subject: Subject) -> bool: ...

    def fetch(self, subject: Subject) -> EnrichmentRecord: ...


@dataclass
class CircuitBreaker:
    """Closed → (failure_threshold consecutive failures) → open → (reset_after_s) → half-open:
    one trial call; success closes, failure opens again."""

    failure_threshold: int = 5
    reset_after_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self) -> None:
        with self._lock:
            if self.state == "open":
                if self.clock() - self.opened_at < self.reset_after_s:
                    raise CircuitOpen("circuit open")
                self.state = "half-open"
            elif self.state == "half-open":
                # one trial at a time; the others fail fast until it answers
                raise CircuitOpen("circuit half-open, trial running")

    def success(self) -> None:
        with self._lock:
            self.state, self.failures = "closed", 0

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == "half-open" or self.failures >= self.failure_threshold:
                self.state, self.opened_at = "open", self.clock()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_s: float = 0.05
    cap_s: float = 1.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)]."""
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt))


@dataclass
class Resilient:
    """An Enricher behind retries and a circuit breaker; itself an Enricher."""

    inner: Enricher
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def contract(self) -> str:
        return self.inner.contract

    @property
    def contract_version(self) -> str:
        return self.inner.contract_version

    def applies(self, subject: Subject) -> bool:
        return self.inner.applies(subject)

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        return self._guarded(lambda: self.inner.fetch(subject))

    def fetch_many(self, subjects: list[Subject], **options: Any) -> list[EnrichmentRecord]:
        """The source's bulk consultation when it has one (one call for many people), else one by one."""
        bulk = getattr(self.inner, "fetch_many", None)
        if bulk is None:
            return [self.fetch(s) for s in subjects]
        return self._guarded(lambda: bulk(subjects, **options))

    def _guarded(self, call: Callable[[], Any]) -> Any:
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            self.breaker.before_call()
            try:
                record = call()
            except SourceUnavailable as err:
                self.breaker.failure()
                last = err
                if attempt + 1 < self.retry.attempts:
                    self.sleep(self.retry.delay(attempt, self.rng))
                continue
            except SourceRefused:
                self.breaker.success()  # the source is up; the request is wrong
                raise
            self.breaker.success()
            return record
        raise SourceUnavailable(f"{self.name}: {last}") from last


@dataclass(frozen=True)
class BackOfficeEvent:
    """One new thing in an authority's back office (a submission, a decision) since the cursor."""

    event_id: str                      # stable in the source; makes the hub message id
    flow: str                          # the hub flow it becomes
    dossier_id: str | None
    correlation_id: str | None
    payload: dict[str, Any]


class BackOffice(Protocol):
    """A DVZ or regional back office, as its poller sees it."""

    party: str

    def events_since(self, cursor: str | None, limit: int) -> tuple[list[BackOfficeEvent], str | None]: ...

    def deliver(self, item: dict[str, Any]) -> None: ...


# ---- how an adapter presents itself to the hub, the sandbox and the contract tools ----

@dataclass(frozen=True)
class SourceConfig:
    """Where and how to reach a source system (the real one, a partner's test bed, or our simulator)."""

    url: str
    timeout_s: float = 5.0
    client_id: str = "wib-hub"                  # OAuth2 client id at REST sources
    private_key_pem: bytes | None = None        # its private_key_jwt signing key (RS256)
    api_key: str | None = None                  # static bearer key (back offices)
    max_connections: int = 32


@dataclass(frozen=True)
class SimulatorConfig:
    population: Any                             # adapters.population.Population
    faults: Any                                 # adapters.simulator.Faults
    clients: dict[str, bytes] = field(default_factory=dict)  # OAuth client id → public key PEM


@dataclass(frozen=True)
class Check:
    """One line of a conformance run: what was checked against the endpoint, and the result."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Adapter:
    """One source or back-office system: its contracts, its simulator, its client, its conformance suite.

    Registered under the `wib_hub.adapters` entry point group; the hub looks adapters up by name.
    """

    name: str                                   # "onss.dimona"
    system: str                                 # "ONSS Dimona"
    protocol: str                               # "REST" | "SOAP"
    contracts: tuple[str, ...]                  # files under contracts/
    make_simulator: Callable[[SimulatorConfig], Any]              # → ASGI app (a FaultInjector)
    conformance: Callable[[SourceConfig], list[Check]]
    make_enricher: Callable[[SourceConfig], Enricher] | None = None


def load_adapters() -> dict[str, Adapter]:
    """Every installed adapter, by name (entry point group `wib_hub.adapters`)."""
    from importlib.metadata import entry_points
    found = {}
    for ep in entry_points(group="wib_hub.adapters"):
        adapter = ep.load()
        found[adapter.name] = adapter
    return dict(sorted(found.items()))
