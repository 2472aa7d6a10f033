"""The worker threads of a hub process (`wib-hub serve`, `wib-hub worker`): the outbox relay, the
route consumers, the enricher, and the periodic work — sealing the audit tail, the statutory clocks,
retention. hub.bootstrap builds the parts; this module only runs them.
"""
from __future__ import annotations

import threading
from typing import Callable, Protocol

import structlog

from hub.domain.clocks import ClockRules
from hub.domain.envelope import utcnow
from hub.infra.settings import Settings
from hub.infra.store.unit_of_work import UnitOfWork
from hub.lifecycle import clocks, retention
from hub.messaging.enrichment import Enrichment
from hub.messaging.ingress import Ingress
from hub.messaging.relay import Relay
from hub.messaging.router import Router

__all__ = ["Parts", "Runtime"]

log = structlog.get_logger("hub")


class Parts(Protocol):
    """What the runtime runs: the parts hub.bootstrap built (its Hub)."""

    settings: Settings
    work: UnitOfWork
    ingress: Ingress
    enrichment: Enrichment
    clocks: ClockRules
    wake: threading.Event          # the outbox has news
    enrich_wake: threading.Event   # a message waits for its sources

    def relay(self) -> Relay: ...

    def router(self) -> Router: ...


class Runtime:
    def __init__(self, hub: Parts):
        self.hub = hub
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def started(self) -> bool:
        return bool(self.threads)

    def start(self, routers: int = 1) -> None:
        hub, settings = self.hub, self.hub.settings
        relay = hub.relay()
        self._spawn("relay", lambda: relay.run(self.stopping, hub.wake, settings.relay_poll_seconds))
        for i in range(routers):
            router = hub.router()
            self._spawn(f"router-{i}", lambda r=router: r.run(self.stopping, settings.worker_prefetch))
        self._spawn("enricher", lambda: hub.enrichment.run(self.stopping, hub.enrich_wake))
        # an idle hub still seals its audit tail (busy ones seal as they append)
        self._every("audit-sealer", settings.audit_checkpoint_seconds, "audit_seal_failed", lambda: hub.work.seal())
        if settings.clock_scan_seconds > 0:
            self._every("clocks", settings.clock_scan_seconds, "clock_scan_failed", self._scan_clocks)
        if settings.retention_run_seconds > 0:
            self._every("retention", settings.retention_run_seconds, "retention_failed", self._retain)

    def stop(self) -> None:
        self.stopping.set()
        self.hub.wake.set()
        self.hub.enrich_wake.set()
        for t in self.threads:
            t.join(timeout=10)

    def _scan_clocks(self) -> None:
        """Statutory clocks (61/27-4, 61/29-4, 61/29-5): start, stop, remind, expire or deem
        authorised. Safe beside other workers doing the same."""
        clocks.sync(self.hub.ingress, self.hub.clocks, utcnow())

    def _retain(self) -> None:
        """Art. 27: delete the dossiers whose retention ended, in batches (one transaction each:
        nothing half-deleted); a stopping hub ends between batches."""
        r = retention.run(self.hub.work, utcnow(), batch=self.hub.settings.retention_batch, stop=self.stopping)
        if r.dossiers or r.remaining:
            log.info("retention_run", dossiers=r.dossiers, rows=r.total_rows, remaining=r.remaining,
                     elapsed_s=round(r.elapsed_s, 3))

    def _every(self, name: str, seconds: float, failure: str, work: Callable[[], object]) -> None:
        """Run `work` every `seconds` until stopped; a failed round is logged and the next one tries again."""
        def loop() -> None:
            while not self.stopping.wait(seconds):
                try:
                    work()
                except Exception as err:  # noqa: BLE001 - the next round tries again
                    log.warning(failure, error=type(err).__name__)
        self._spawn(name, loop)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)
