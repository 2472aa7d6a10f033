"""The worker threads of a hub process (`wib-hub serve`, `wib-hub worker`): the outbox relay, the
route consumers, the AMQP ingress consumers (one per party with `ingress: queue`), the enricher, and
the periodic work — sealing the audit tail, the statutory clocks, retention. hub.bootstrap builds the
parts; this module only runs them, and keeps them running.

Every thread runs under a supervisor: a loop that raises is logged once and started again with
back-off; one that keeps failing (`GIVE_UP` crashes in a row, each within `STEADY_S` of its start)
is given up, and if it is vital (relay, routers, enricher) the process is no longer live —
`/livez` answers 503 and `wib-hub worker` / `serve` exit non-zero, for their supervisor (systemd,
Docker, Kubernetes) to start a new one. A vital loop that beats (relay, enricher) and has not beaten
for `STALE_S` is not live either: it is stuck. Each process writes its heartbeat, with the state of
every thread, to the store (`worker_heartbeats`) for `/readyz` and `wib-hub doctor` to show.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from hub.domain.clocks import ClockRules
from hub.domain.envelope import utcnow
from hub.domain.retry import Backoff
from hub.infra.settings import Settings
from hub.infra.store import heartbeats
from hub.infra.store.unit_of_work import UnitOfWork
from hub.infra.transport import Transport
from hub.lifecycle import clocks, retention
from hub.messaging.enrichment import Enrichment
from hub.messaging.ingress import Ingress
from hub.messaging.queue_ingress import QueueIngress
from hub.messaging.relay import Relay
from hub.messaging.router import Router
from hub.ports.oplog import Condition

__all__ = ["GIVE_UP", "Parts", "Runtime", "STALE_S", "Thread"]

log = structlog.get_logger("hub")

GIVE_UP = 8         # crashes in a row after which a thread is given up
STEADY_S = 30.0     # a thread that ran this long before crashing starts its count again
STALE_S = 60.0      # a vital thread that beats and has not for this long is stuck
_RESTART = Backoff(base_s=0.5, cap_s=15.0, jitter=0.5)   # a crashed thread
_REDECLARE = Backoff(base_s=0.2, cap_s=5.0, jitter=0.5)  # the broker away: a broker back is used within 5 s


class Parts(Protocol):
    """What the runtime runs: the parts hub.bootstrap built (its Hub)."""

    settings: Settings
    work: UnitOfWork
    transport: Transport
    ingress: Ingress
    enrichment: Enrichment
    clocks: ClockRules
    wake: threading.Event          # the outbox has news
    enrich_wake: threading.Event   # a message waits for its sources
    queues: Sequence[str]          # what the workers need declared on the broker
    entrances: Sequence[str]       # of those, the ones parties publish to (AMQP ingress): with their exchange

    def relay(self) -> Relay: ...

    def router(self) -> Router: ...

    def queue_ingresses(self) -> list[QueueIngress]: ...


@dataclass
class Thread:
    """One supervised worker thread, as `/readyz`, `/livez` and the heartbeat show it."""

    name: str
    vital: bool
    beats: bool                       # its loop calls beat(): a silence means it is stuck
    started: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    restarts: int = 0
    crashes_in_a_row: int = 0
    given_up: bool = False
    done: bool = False                # a one-off task that finished
    last_error: str | None = None
    thread: threading.Thread | None = None

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return not self.given_up and self.thread is not None and self.thread.is_alive()

    def stuck(self, now: float) -> bool:
        return self.beats and now - self.last_beat > STALE_S

    def view(self, now: float) -> dict[str, Any]:
        return {"alive": self.alive, "done": self.done, "vital": self.vital, "restarts": self.restarts,
                "beat_age_s": round(now - self.last_beat, 1) if self.beats else None,
                "last_error": self.last_error}


class Runtime:
    def __init__(self, hub: Parts):
        self.hub = hub
        self.stopping = threading.Event()
        self.failed = threading.Event()      # a vital thread was given up: the process must go
        self.threads: dict[str, Thread] = {}
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at: datetime | None = None
        self.role = "worker"

    @property
    def started(self) -> bool:
        return bool(self.threads)

    def start(self, routers: int = 1, *, role: str = "worker") -> None:
        hub, settings = self.hub, self.hub.settings
        self.role, self.started_at = role, utcnow()
        relay = hub.relay()
        self._spawn("relay", lambda beat: relay.run(self.stopping, hub.wake, settings.relay_poll_seconds, beat=beat),
                    vital=True, beats=True)
        for i in range(routers):
            router = hub.router()
            self._spawn(f"router-{i}", lambda beat, r=router: r.run(self.stopping, settings.worker_prefetch),
                        vital=True)
        for ingress in hub.queue_ingresses():   # the parties that send on the broker (AMQP ingress)
            self._spawn(f"ingress-{ingress.party}",
                        lambda beat, q=ingress: q.run(self.stopping, settings.worker_prefetch), vital=True)
        self._spawn("enricher", lambda beat: hub.enrichment.run(self.stopping, hub.enrich_wake, beat=beat),
                    vital=True, beats=True)
        self._spawn("queues", self._declare_queues, once=True)
        # an idle hub still seals its audit tail (busy ones seal as they append)
        self._every("audit-sealer", settings.audit_checkpoint_seconds, lambda: hub.work.seal())
        if settings.clock_scan_seconds > 0:
            self._every("clocks", settings.clock_scan_seconds, self._scan_clocks)
        if settings.retention_run_seconds > 0:
            self._every("retention", settings.retention_run_seconds, self._retain)
        if settings.heartbeat_seconds > 0:
            self._every("heartbeat", settings.heartbeat_seconds, self._heartbeat, first=True)

    def stop(self) -> None:
        self.stopping.set()
        self.hub.wake.set()
        self.hub.enrich_wake.set()
        for t in self.threads.values():
            if t.thread is not None:
                t.thread.join(timeout=10)
        if self.started_at is not None and self.hub.settings.heartbeat_seconds > 0:
            try:
                heartbeats.forget(self.hub.work.engine, self.process_id)
            except Exception:  # noqa: BLE001 - the store is away: the row goes stale by itself
                pass

    # --- health -----------------------------------------------------------------------------

    def health(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {name: t.view(now) for name, t in self.threads.items()}

    def live(self) -> tuple[bool, list[str]]:
        """Whether this process's vital threads run (and those that beat, beat): (live, what is wrong)."""
        now = time.monotonic()
        wrong = [f"{t.name} given up" if t.given_up else f"{t.name} not running" if not t.alive
                 else f"{t.name} silent for {now - t.last_beat:.0f} s"
                 for t in self.threads.values() if t.vital and (not t.alive or t.stuck(now))]
        return not wrong and not self.failed.is_set(), wrong

    # --- the periodic work ------------------------------------------------------------------

    def _declare_queues(self, beat: Callable[[], None]) -> None:
        """The queues the workers need, declared once the broker answers (it need not at start-up:
        the outbox holds what is accepted meanwhile); tried again with back-off, one line per change."""
        broker = Condition(log, "broker.declare")
        failures = 0
        while not self.stopping.is_set():
            try:
                for queue in self.hub.queues:
                    self.hub.transport.declare(queue)
                for queue in self.hub.entrances:
                    self.hub.transport.declare_entrance(queue)
            except Exception as err:  # noqa: BLE001 - the broker is away: later
                broker.failed(err, meanwhile="accepted messages wait in the outbox")
                self.stopping.wait(_REDECLARE.delay(failures))
                failures += 1
                continue
            broker.ok(queues=len(self.hub.queues))
            return

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

    def _heartbeat(self) -> None:
        heartbeats.beat(self.hub.work.engine, self.process_id, role=self.role, started_at=self.started_at,
                        threads=self.health(), now=utcnow())

    def _every(self, name: str, seconds: float, work: Callable[[], object], *, first: bool = False) -> None:
        """Run `work` every `seconds` until stopped (`first`: once at once too); a failed round is
        logged once per change of state and the next one tries again."""
        state = Condition(log, name)

        def loop(beat: Callable[[], None]) -> None:
            if not first and self.stopping.wait(seconds):
                return
            while not self.stopping.is_set():
                beat()
                try:
                    work()
                    state.ok()
                except Exception as err:  # noqa: BLE001 - the next round tries again
                    state.failed(err)
                if self.stopping.wait(seconds):
                    return
        self._spawn(name, loop)

    # --- supervision ------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[Callable[[], None]], None], *, vital: bool = False,
               beats: bool = False, once: bool = False) -> None:
        """`target(beat)` in a supervised thread; `once`: its return means done (else it is a loop
        that returns only when the runtime stops)."""
        state = Thread(name, vital, beats)
        self.threads[name] = state
        state.thread = threading.Thread(target=self._supervise, args=(state, target, once), name=name, daemon=True)
        state.thread.start()

    def _supervise(self, state: Thread, target: Callable[[Callable[[], None]], None], once: bool) -> None:
        """Run `target` until the runtime stops; a crash (or a loop's return before that) starts it
        again with back-off, and `GIVE_UP` crashes in a row give it up."""
        while not self.stopping.is_set():
            state.started = state.last_beat = time.monotonic()
            try:
                target(state.beat)
                if once or self.stopping.is_set():
                    state.done = once
                    return
                error = "returned"
            except Exception as err:  # noqa: BLE001 - that is what the supervisor is for
                error = type(err).__name__
                log.error("worker_thread_crashed", thread=state.name, error=error, exc_info=True)
            state.last_error = error
            steady = time.monotonic() - state.started > STEADY_S
            state.crashes_in_a_row = 1 if steady else state.crashes_in_a_row + 1
            if state.crashes_in_a_row >= GIVE_UP:
                state.given_up = True
                log.error("worker_thread_given_up", thread=state.name, vital=state.vital, error=error,
                          crashes=state.crashes_in_a_row)
                if state.vital:
                    self.failed.set()
                return
            delay = _RESTART.delay(state.crashes_in_a_row - 1)
            log.warning("worker_thread_restarting", thread=state.name, error=error, in_s=round(delay, 2),
                        crashes_in_a_row=state.crashes_in_a_row)
            if self.stopping.wait(delay):
                return
            state.restarts += 1
