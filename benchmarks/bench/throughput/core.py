"""What every throughput run shares: the message, the closed-loop load, the figures of a run, and
the checks that a hub run delivered what it was given (a fast run that loses messages is no run)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, select

from bench.measure import percentile
from hub import audit
from hub.audit.checkpoints import load_public_key
from hub.domain.samples import synthetic_application
from hub.infra.settings import Settings
from hub.infra.store.schema import audit_events, deliveries

FLOW = "single-permit.application-submitted"
REGIONS = ("flanders", "wallonia", "brussels", "german_speaking")
EVENTS_PER_MESSAGE = 4  # accepted, routed, delivered, acknowledged
STAGES = (("accepted", "routed", "submit → on the broker"), ("routed", "delivered", "route queue → inbox"),
          ("delivered", "acknowledged", "inbox → ack"))


@dataclass
class Result:
    config: str
    messages: int
    wall_s: float
    rate: float
    p50_ms: float
    p99_ms: float
    unloaded_p50_ms: float = float("nan")
    unloaded_p99_ms: float = float("nan")
    ingress_rate: float | None = None  # hub only: submits accepted per second while loading
    submit_p50_ms: float | None = None  # hub only: time inside submit() (what an API call would wait)
    submit_p99_ms: float | None = None
    py_cores: float | None = None
    host_busy_pct: float | None = None
    pg_cores: float | None = None      # PostgreSQL's processes (all backends), over the same interval
    mq_cores: float | None = None      # RabbitMQ's
    notes: dict[str, Any] = field(default_factory=dict)


def finish(config: str, submitted: dict[str, float], acked: dict[str, float], cpu: dict[str, Any],
           **extra: Any) -> Result:
    """The figures of a run: rate = messages / (last ack − first submit), latency submit → ack."""
    ids = list(submitted)
    missing = [m for m in ids if m not in acked]
    if missing:
        raise RuntimeError(f"{config}: {len(missing)} of {len(ids)} messages never acknowledged")
    start = min(submitted.values())
    end = max(acked[m] for m in ids)
    lat = [(acked[m] - submitted[m]) * 1000 for m in ids]
    wall = end - start
    return Result(config, len(ids), wall, len(ids) / wall, percentile(lat, 50), percentile(lat, 99),
                  py_cores=cpu.get("py_cores"), host_busy_pct=cpu.get("host_busy_pct"),
                  pg_cores=cpu.get("pg_cores"), mq_cores=cpu.get("mq_cores"), **extra)


def hub_result(config: str, submitted: dict[str, float], returned: dict[str, float], acked: dict[str, float],
               cpu: dict[str, Any], unloaded: tuple[float, float]) -> Result:
    """A hub run's figures, with what the clients saw of ingress: its rate, and the time in submit()."""
    in_submit = [(returned[m] - submitted[m]) * 1000 for m in submitted]
    return finish(config, submitted, acked, cpu, unloaded_p50_ms=unloaded[0], unloaded_p99_ms=unloaded[1],
                  ingress_rate=len(submitted) / (max(returned.values()) - min(submitted.values())),
                  submit_p50_ms=percentile(in_submit, 50), submit_p99_ms=percentile(in_submit, 99))


def wait_all(ids: Sequence[str], acked: dict[str, float], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        pending = [m for m in pending if m not in acked]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {len(pending)} messages still not acknowledged after {timeout:.0f} s")
        # the times are the inbox threads' to note; this only waits, and must not take the hub's GIL
        # (a scan every 5 ms was 3.6 % of the samples of a loaded run)
        time.sleep(0.05)


def probe(send_one: Callable[[int], str], acked: dict[str, float], count: int, timeout: float = 30.0
          ) -> tuple[float, float]:
    """One message at a time: send, wait for its ack, next. Latency of the path without a backlog
    (p50, p99 in ms; NaN when `count` is 0)."""
    lat = []
    for i in range(count):
        t0 = time.perf_counter()
        mid = send_one(i)
        deadline = time.monotonic() + timeout
        while mid not in acked:
            if time.monotonic() > deadline:
                raise RuntimeError(f"probe message {i} not acknowledged within {timeout:.0f} s")
            time.sleep(0.0005)
        lat.append((acked[mid] - t0) * 1000)
    return percentile(lat, 50), percentile(lat, 99)


def split(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    return [items[i::parts] for i in range(parts)]


def run_threads(target: Callable[[Any], None], chunks: Sequence[Any], name: str) -> None:
    """Runs target(chunk) on one thread per chunk; re-raises the first failure."""
    errors: list[BaseException] = []

    def wrapped(chunk: Any) -> None:
        try:
            target(chunk)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(c,), name=f"{name}-{i}", daemon=True)
               for i, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def payloads(count: int, offset: int) -> list[dict[str, Any]]:
    """Synthetic applications, built before the clock starts; the regions take turns."""
    return [application(offset + i, turn=i) for i in range(count)]


def application(serial: int, turn: int) -> dict[str, Any]:
    """Synthetic application number `serial`, for the region whose `turn` it is."""
    return synthetic_application(serial, competent_region=REGIONS[turn % len(REGIONS)])


def check_store(what: str, engine: Engine, settings: Settings, expected: int, events_per_message: int | None
                ) -> dict[str, Any]:
    """Every message delivered and acknowledged once, `events_per_message` audit events each (None:
    not counted, other events share the trail), the chain intact and its checkpoints signed with
    the hub's key. Raises, naming the run (`what`), if not."""
    with engine.connect() as conn:
        acked = conn.execute(select(func.count()).select_from(deliveries)
                             .where(deliveries.c.acked_at.is_not(None))).scalar_one()
        events = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    report = audit.verify(engine, public_key=load_public_key(settings.resolved_audit_key_file()))
    problems = []
    if acked != expected:
        problems.append(f"{acked} deliveries acknowledged, {expected} expected")
    if events_per_message is not None and events != expected * events_per_message:
        problems.append(f"{events} audit events, {expected * events_per_message} expected")
    if not report.intact:
        problems.append(str(report))
    if problems:
        raise RuntimeError(f"{what}: {'; '.join(problems)}")
    return {"audit_events": events, "audit": "intact"}


def stage_latencies(engine: Engine, message_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Where a message waited, from its own audit events' times: p50 and p99 per hop, in ms."""
    wanted = set(message_ids)
    times: dict[str, dict[str, datetime]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.message_id, audit_events.c.event, audit_events.c.ts)
                            .where(audit_events.c.event.in_(["accepted", "routed", "delivered", "acknowledged"])))
        for mid, event, ts in rows:
            if mid in wanted:
                times.setdefault(mid, {})[event] = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    out = {}
    for a, b, label in STAGES:
        lat = [(t[b] - t[a]).total_seconds() * 1000 for t in times.values() if a in t and b in t]
        out[label] = (percentile(lat, 50), percentile(lat, 99))
    return out
