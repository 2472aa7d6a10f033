"""Small helpers the source adapters share: their enrichers' HTTP sessions and base class, and
their conformance runs (picking people from the synthetic population, recording checks)."""
from __future__ import annotations

import functools
import ssl
from typing import Any, Callable, Iterable

import httpx
import requests

from hub.ports import Check, SourceConfig
from hub.ports.probe import PROBE_TIMEOUT_S, unreachable as probe_unreachable


@functools.lru_cache(maxsize=None)
def tls_context() -> ssl.SSLContext:
    """The TLS settings httpx would make for each client (trust store, environment), made once per
    process and shared: loading the trust store is most of what building a client costs."""
    return httpx.create_ssl_context()


def http_client(config: SourceConfig) -> httpx.Client:
    """An httpx client for one source: its timeout, a pool of `config.max_connections` kept alive."""
    return httpx.Client(timeout=config.timeout_s, verify=tls_context(), limits=httpx.Limits(
        max_connections=config.max_connections, max_keepalive_connections=config.max_connections))


def pooled_session(config: SourceConfig) -> requests.Session:
    """A requests session with one connection pool of `config.max_connections` for http and https."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=config.max_connections)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ClientEnricher:
    """An Enricher (hub.ports) around one source client; subclasses set `name`, `contract`,
    `contract_version` and define `applies` and `fetch`."""

    name: str
    contract: str
    contract_version: str

    def __init__(self, client: Any):
        self.client = client


def with_and_without(sample: Iterable[tuple[str, Any]], has: Callable[[str], bool]) -> tuple[str | None, str | None]:
    """The first INSZ of `sample` for which `has` holds and the first for which it does not."""
    found = missing = None
    for insz, _ in sample:
        yes = has(insz)
        found = found or (insz if yes else None)
        missing = missing or (None if yes else insz)
        if found and missing:
            break
    return found, missing


def run_check(checks: list[Check], name: str, fn: Callable[[], str | None]) -> None:
    """Run one conformance check and record it: a failed assertion or any error is a failed check."""
    try:
        checks.append(Check(name, True, fn() or ""))
    except AssertionError as err:
        checks.append(Check(name, False, str(err)))
    except Exception as err:  # noqa: BLE001 - a conformance run reports, it does not crash
        checks.append(Check(name, False, f"{type(err).__name__}: {err}"))


REACHABLE_CHECK = "endpoint reachable"


def unreachable(config: SourceConfig) -> str | None:
    """Before a conformance run: whether the endpoint takes a connection (hub.ports.probe), within
    the config's timeout (at most PROBE_TIMEOUT_S); None when it does, else the reason."""
    return probe_unreachable(config.url, min(config.timeout_s, PROBE_TIMEOUT_S))


def reachability(config: SourceConfig) -> list[Check]:
    """[] when the endpoint answers a TCP connect; else the one failed check a dead URL gets, so a
    conformance run stops there instead of failing every check on the same cause."""
    reason = unreachable(config)
    return [] if reason is None else [Check(REACHABLE_CHECK, False, reason)]
