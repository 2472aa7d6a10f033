"""The ports: what an adapter implements and what the hub hands it. Adapters import this package
and hub.domain, nothing else of the hub; the hub never imports an adapter (import-linter checks both).

    Enricher     asks a source system (ONSS Dimona, DmfA, Limosa; INASTI) about one person
    BackOffice   an authority's back office, as its poller sees it
    Adapter      how an adapter presents itself: contracts, simulator, client, conformance suite;
                 registered by name under the `wib_hub.adapters` entry point group (pyproject.toml)
                 and found by `load_adapters`, in one wiring place (hub.bootstrap)
    Toolkit      the sandbox of simulators and the synthetic population (entry point `wib_hub.toolkit`)
    safexml      the one XML parser for untrusted documents (DTDs, entities and network off)
    probe        whether an endpoint takes a connection at all (one TCP connect, a short timeout)
    oplog        operational logs as JSON lines on stderr, the same for the hub and its adapters

Every call to a source runs through hub.messaging.resilience (timeouts in the client, retries with
back-off, a circuit breaker): a source that is down fails fast with `SourceUnavailable`; the caller
keeps the work and tries again later.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, runtime_checkable

from hub.domain.envelope import utcnow

__all__ = [
    "Subject", "EnrichmentRecord", "SourceUnavailable", "SourceRefused", "Enricher", "BackOffice",
    "BackOfficeEvent", "SourceConfig", "SimulatorConfig", "Check", "Adapter", "load_adapters", "Sandbox",
    "Toolkit", "load_toolkit", "utcnow",
]

Status = Literal["found", "no_data"]


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


@runtime_checkable
class Enricher(Protocol):
    name: str                          # "onss.dimona"
    contract: str
    contract_version: str

    def applies(self, subject: Subject) -> bool: ...

    def fetch(self, subject: Subject) -> EnrichmentRecord: ...


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


class Sandbox(Protocol):
    """The simulators of the installed adapters on local ports, over the synthetic population."""

    def start(self, names: list[str] | None = None, ports: dict[str, int] | None = None) -> dict[str, str]: ...

    def urls(self) -> dict[str, str]: ...

    def faults(self, name: str) -> Any: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Toolkit:
    """What the adapters offer the hub's own tools besides the adapters themselves: the sandbox of
    simulators (the embedded default enriches against it) and the synthetic population they serve.

    Registered as the entry point `wib_hub.toolkit` (pyproject.toml), so that the hub reaches it the
    way it reaches adapters: by name, never by importing adapters.*.
    """

    sandbox: Callable[..., Sandbox]                      # Sandbox(key_dir, host=...): a new one
    shared_sandbox: Callable[[Path, list[str]], Sandbox]  # the process's one, started with these names
    population: Callable[[int], Any]                     # Population(seed): .sample(n, start) → (insz, postcode)


def load_toolkit() -> Toolkit:
    """The installed toolkit (entry point group `wib_hub.toolkit`)."""
    from importlib.metadata import entry_points
    found = list(entry_points(group="wib_hub.toolkit"))
    if not found:
        raise RuntimeError("no wib_hub.toolkit entry point installed (the adapters package provides it)")
    return found[0].load()
