#!/usr/bin/env python
"""Throughput of the hub core, end to end, next to raw pika with the same durability.

    .venv/bin/python benchmarks/throughput.py [--messages N] [--only embedded|production|raw]

What one hub message goes through here (the whole core, audit at every step):

    client thread ─► submit(): validate (JSON Schema, data categories) ─► authorise ─► store
    (dossier + message + outbox + 4 audit events, one transaction) ─► relay (outbox ─► broker,
    confirmed, 1 audit event per message) ─► router (consume, need-to-know projection, delivery
    row + 1 audit event) ─► recipient thread (reads its inbox as GET /v1/inbox does, then
    hub.routing.acknowledge: 1 audit event) ─► done.

Two hub configurations, built with hub.bootstrap.build_hub like `wib-hub serve`:
  production  RabbitMQ + PostgreSQL, in a fresh schema and under a fresh queue prefix (both removed
              afterwards, queues included: route, .parking and .retry.*)
  embedded    SQLite file + the embedded transport, in a temporary directory

Load is driven in-process (hub.pipeline.submit from several client threads): the HTTP layer
(FastAPI, token checks, JSON bodies) is not measured by default. Each message is a different
synthetic application (`single-permit.application-submitted`): it opens a dossier and is delivered,
projected, to the competent region; the four regions take turns, each with its own consumer thread.
  --worker-process  relay and routers run in a `wib-hub worker` process beside the benchmark's
  --http            the hub runs as `wib-hub serve` in its own process; clients and inboxes are
                    httpx clients (POST /v1/applications, GET /v1/inbox, POST /v1/inbox/ack)

Raw pika baseline, same run, same broker: a durable quorum queue, persistent messages, publisher
confirms, a consumer with manual acks and the same prefetch, bodies the size of the hub's envelope
for the same applications. Two publishers:
  confirm/msg   BlockingChannel.confirm_delivery(): each publish waits for its confirm (the simplest
                honest durable publisher), one connection per client thread, as many threads as the hub
  batched       SelectConnection with asynchronous confirms, batches of relay_batch messages, each
                batch confirmed before the next (what the hub's relay does through publish_many)

Figures: msgs/s = messages / (last ack − first submit); latency = submit (or publish) → ack of the
same message; where a hub message waited, per hop, is read back from its own audit events. The
load is closed-loop: clients submit as fast as the hub takes them, so the loaded latencies include
queueing behind the backlog; the "one at a time" columns send one message, wait for its ack, and
send the next, which gives the latency of the path itself.

The figures depend on the machine: everything (this process, PostgreSQL, RabbitMQ) shares its cores,
and the Python process is bound to one core by the GIL whatever the thread count.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pika
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, select, text

from hub import audit
from hub.bootstrap import Hub, build_hub
from hub.domain.envelope import Envelope, new_id
from hub.domain.flows import region_party
from hub.messaging.ingress import Submission, submit
from hub.messaging.routing import ROUTE_QUEUE, acknowledge, inbox_item, party_queue
from hub.domain.samples import synthetic_application
from hub.infra.settings import Settings
from hub.infra.store.db import normalise_url, open_engine
from hub.infra.store.schema import audit_events, deliveries
from hub.infra.transport.amqp import retry_queue
from hub.infra.transport.base import RetryPolicy, parking_queue

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

FLOW = "single-permit.application-submitted"
REGIONS = ("flanders", "wallonia", "brussels", "german_speaking")
EVENTS_PER_MESSAGE = 7  # received, validated, authorised, stored, routed, delivered, acknowledged

console = Console(width=None if sys.stdout.isatty() else 200)


# ── figures ──────────────────────────────────────────────────────────────────────────────────

def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class CpuMeter:
    """CPU used over an interval by this process (all threads) and/or other processes, and by the host."""

    def __init__(self, include_self: bool = True, pids: Sequence[int] = ()) -> None:
        self.include_self, self.pids = include_self, list(pids)
        self.proc0, self.host0, self.wall0 = self._procs(), _host_ticks(), time.perf_counter()

    def _procs(self) -> float | None:
        total = time.process_time() if self.include_self else 0.0
        for pid in self.pids:
            cpu = _proc_cpu_s(pid)
            if cpu is None:
                return None
            total += cpu
        return total

    def stop(self) -> dict[str, float | None]:
        wall = time.perf_counter() - self.wall0
        proc1, host1 = self._procs(), _host_ticks()
        busy = None
        if self.host0 and host1:
            total, idle = host1[0] - self.host0[0], host1[1] - self.host0[1]
            busy = 100.0 * (total - idle) / total if total else None
        cores = (proc1 - self.proc0) / wall if wall and proc1 is not None and self.proc0 is not None else None
        return {"py_cores": cores, "host_busy_pct": busy}


def _proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of another process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _host_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]  # idle + iowait


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
    py_cores: float | None = None
    host_busy_pct: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _finish(config: str, submitted: dict[str, float], acked: dict[str, float], cpu: dict[str, Any],
            **extra: Any) -> Result:
    ids = list(submitted)
    missing = [m for m in ids if m not in acked]
    if missing:
        raise RuntimeError(f"{config}: {len(missing)} of {len(ids)} messages never acknowledged")
    start = min(submitted.values())
    end = max(acked[m] for m in ids)
    lat = [(acked[m] - submitted[m]) * 1000 for m in ids]
    wall = end - start
    return Result(config, len(ids), wall, len(ids) / wall, percentile(lat, 50), percentile(lat, 99),
                  py_cores=cpu.get("py_cores"), host_busy_pct=cpu.get("host_busy_pct"), **extra)


def wait_all(ids: Sequence[str], acked: dict[str, float], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        pending = [m for m in pending if m not in acked]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {len(pending)} messages still not acknowledged after {timeout:.0f} s")
        time.sleep(0.005)


def probe(send_one: Callable[[int], str], acked: dict[str, float], count: int, timeout: float = 30.0
          ) -> tuple[float, float]:
    """One message at a time: send, wait for its ack, next. Latency of the path without a backlog."""
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
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(c,), name=f"{name}-{i}", daemon=True)
               for i, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ── the hub, end to end ──────────────────────────────────────────────────────────────────────

def payloads(count: int, offset: int) -> list[dict[str, Any]]:
    """Synthetic applications, built before the clock starts; the regions take turns."""
    return [synthetic_application(offset + i, competent_region=REGIONS[i % len(REGIONS)]) for i in range(count)]


class Inboxes:
    """One thread per recipient: reads its inbox as GET /v1/inbox does, acknowledges every item."""

    def __init__(self, hub: Hub, parties: Sequence[str], poll_s: float, limit: int = 100) -> None:
        self.hub, self.poll_s, self.limit = hub, poll_s, limit
        self.acked: dict[str, float] = {}  # message id → when its (only) delivery was acknowledged
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(p,), name=f"inbox-{p}", daemon=True)
                        for p in parties]
        for t in self.threads:
            t.start()

    def _run(self, party: str) -> None:
        hub, d = self.hub, deliveries.c
        query = (select(deliveries).where(d.recipient == party).where(d.acked_at.is_(None))
                 .order_by(d.id).limit(self.limit))
        while not self.stop.is_set():
            try:
                with hub.engine.connect() as conn:
                    rows = conn.execute(query).mappings().all()
                if not rows:
                    self.stop.wait(self.poll_s)
                    continue
                items = [inbox_item(r) for r in rows]  # what the API would serialise
                # as POST /v1/inbox/ack does: the page acknowledged at once
                acknowledge(hub.commits, hub.registry, party, [item["id"] for item in items])
                now = time.perf_counter()
                for item in items:
                    self.acked[item["message_id"]] = now
            except BaseException as exc:  # reported by the main thread
                self.errors.append(exc)
                self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


@dataclass
class HubSetup:
    settings: Settings
    cleanup: Callable[[], None]
    versions: dict[str, str]


def production_setup(tmp: Path, args: argparse.Namespace) -> HubSetup:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(args.database_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        pg_version = conn.execute(text("SHOW server_version")).scalar_one()
    sep = "&" if "?" in args.database_url else "?"
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = Settings(data_dir=tmp / "data", database_url=f"{args.database_url}{sep}options=-csearch_path%3D{schema}",
                        broker_url=args.amqp_url, queue_prefix=prefix, log_level="WARNING")

    def cleanup() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        # what hub.transport.amqp declares for the route queue and for every queue-delivered party
        from hub.domain.flows import default_contracts_dir, load_registry
        registry = load_registry(settings.contracts_dir or default_contracts_dir())
        queues = [prefix + ROUTE_QUEUE] + [party_queue(p.id, prefix) for p in registry.parties.values()
                                           if p.delivery == "queue"]
        names = [n for q in queues
                 for n in (q, parking_queue(q), *(retry_queue(q, d) for d in sorted(set(RetryPolicy().delays_ms))))]
        delete_queues(args.amqp_url, names)

    return HubSetup(settings, cleanup, {"PostgreSQL": pg_version, "RabbitMQ": rabbitmq_version(args.amqp_url)})


def embedded_setup(tmp: Path, args: argparse.Namespace) -> HubSetup:
    import sqlite3
    settings = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'data' / 'hub.db'}",
                        broker_url=None, queue_prefix="", log_level="WARNING")
    return HubSetup(settings, lambda: None, {"SQLite": sqlite3.sqlite_version})


def run_hub(config: str, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="wib-bench-") as tmpdir:
        setup = (production_setup if config == "production" else embedded_setup)(Path(tmpdir), args)
        try:
            return (_run_hub_http if args.http else _run_hub)(config, setup, args)
        finally:
            setup.cleanup()


def _run_hub(config: str, setup: HubSetup, args: argparse.Namespace) -> Result:
    hub = build_hub(setup.settings)
    worker: subprocess.Popen | None = None
    label = f"hub, {config}"
    if args.worker_process:  # relay and routers in `wib-hub worker`, as the production shape runs them
        worker, _ = start_hub_process(setup.settings, ["worker", "--routers", str(args.routers)])
        label += ", worker process"
    else:
        hub.start_workers(routers=args.routers)
    inboxes = Inboxes(hub, [region_party(r) for r in REGIONS], poll_s=args.poll_ms / 1000)
    ingress = hub.ingress
    try:
        def load(batch: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
            submitted: dict[str, float] = {}
            returned: dict[str, float] = {}

            def client(chunk: Sequence[dict[str, Any]]) -> None:
                for payload in chunk:
                    t0 = time.perf_counter()
                    accepted = submit(ingress, Submission(flow_id=FLOW, sender="portal", payload=payload))
                    returned[accepted.message_id] = time.perf_counter()
                    submitted[accepted.message_id] = t0

            run_threads(client, split(batch, args.clients), "client")
            return submitted, returned

        # warm-up: connections, statement caches, JSON Schema validators, queue leaders — not counted
        warm, _ = load(payloads(args.warmup, offset=1_000_000))
        wait_all(list(warm), inboxes.acked, args.timeout, f"{config} warm-up")

        batch = payloads(args.messages, offset=0)
        cpu = CpuMeter(pids=[worker.pid] if worker else [])
        submitted, returned = load(batch)
        wait_all(list(submitted), inboxes.acked, args.timeout, config)
        usage = cpu.stop()
        if inboxes.errors:
            raise inboxes.errors[0]
        in_submit = [(returned[m] - submitted[m]) * 1000 for m in submitted]
        ingress_wall = max(returned.values()) - min(submitted.values())

        def send_one(i: int) -> str:
            payload = synthetic_application(2_000_000 + i, competent_region=REGIONS[i % len(REGIONS)])
            return submit(ingress, Submission(flow_id=FLOW, sender="portal", payload=payload)).message_id

        un50, un99 = probe(send_one, inboxes.acked, args.probe) if args.probe else (float("nan"),) * 2
        result = _finish(label, submitted, inboxes.acked, usage, unloaded_p50_ms=un50, unloaded_p99_ms=un99,
                         ingress_rate=len(submitted) / ingress_wall, submit_p50_ms=percentile(in_submit, 50))
        inboxes.close()
        result.notes.update(check_store(hub, args.warmup + args.messages + args.probe))
        result.notes["stages"] = stage_latencies(hub.engine, list(submitted))
        result.notes["versions"] = setup.versions
        return result
    finally:
        inboxes.close()
        if worker is not None:
            stop_hub_process(worker)
        hub.close()


def check_store(hub: Hub, expected: int) -> dict[str, Any]:
    """Every message delivered and acknowledged once, seven audit events each, the chain intact."""
    with hub.engine.connect() as conn:
        acked = conn.execute(select(func.count()).select_from(deliveries)
                             .where(deliveries.c.acked_at.is_not(None))).scalar_one()
        events = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
    report = audit.verify(hub.engine)
    problems = []
    if acked != expected:
        problems.append(f"{acked} deliveries acknowledged, {expected} expected")
    if events != expected * EVENTS_PER_MESSAGE:
        problems.append(f"{events} audit events, {expected * EVENTS_PER_MESSAGE} expected")
    if not report.intact:
        problems.append(str(report))
    if problems:
        raise RuntimeError("; ".join(problems))
    return {"audit_events": events, "audit": "intact"}


STAGES = (("received", "routed", "submit → on the broker"), ("routed", "delivered", "route queue → inbox"),
          ("delivered", "acknowledged", "inbox → ack"))


def stage_latencies(engine: Any, message_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Where a message waited, from its own audit events' times: p50 and p99 per hop, in ms."""
    wanted = set(message_ids)
    times: dict[str, dict[str, datetime]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.message_id, audit_events.c.event, audit_events.c.ts)
                            .where(audit_events.c.event.in_(["received", "routed", "delivered", "acknowledged"])))
        for mid, event, ts in rows:
            if mid in wanted:
                times.setdefault(mid, {})[event] = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    out = {}
    for a, b, label in STAGES:
        lat = [(t[b] - t[a]).total_seconds() * 1000 for t in times.values() if a in t and b in t]
        out[label] = (percentile(lat, 50), percentile(lat, 99))
    return out


# ── the hub through its HTTP API (--http) ────────────────────────────────────────────────────

def start_hub_process(st: Settings, command: list[str], **env_extra: str) -> tuple[subprocess.Popen, Path]:
    """`wib-hub <command>` in its own process, configured through HUB_* as in a deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(st.data_dir), HUB_DATABASE_URL=st.resolved_database_url(),
               HUB_BROKER_URL=st.resolved_broker_url(), HUB_QUEUE_PREFIX=st.queue_prefix,
               HUB_LOG_LEVEL="WARNING",
               # the benchmark measures the pipeline, not the per-party limiter (its clients poll hard)
               HUB_RATE_LIMIT_PER_SECOND="0", **env_extra)
    st.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = st.data_dir / f"{command[0]}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", "from hub.cli import app; app()", *command],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return proc, log_path


def stop_hub_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_hub_http(config: str, setup: HubSetup, args: argparse.Namespace) -> Result:
    """`wib-hub serve` in its own process (API + relay + one route consumer, as deployed on one
    machine); clients and inboxes are httpx clients in this process, one keep-alive connection each."""
    import httpx

    st = setup.settings
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server, log_path = start_hub_process(st, ["serve"], HUB_HOST="127.0.0.1", HUB_PORT=str(port),
                                         HUB_TOKEN_TTL_SECONDS="3600")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wib-hub serve did not become ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        secrets = json.loads(st.resolved_clients_file().read_text())

        def client_for(party: str) -> httpx.Client:
            r = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials", "client_id": party,
                                                        "client_secret": secrets[party]["secret"]})
            r.raise_for_status()
            return httpx.Client(base_url=base, timeout=60,
                                headers={"Authorization": f"Bearer {r.json()['access_token']}"})

        acked: dict[str, float] = {}
        errors: list[BaseException] = []
        stop = threading.Event()

        def inbox(party: str) -> None:
            http = client_for(party)
            while not stop.is_set():
                try:
                    r = http.get("/v1/inbox", params={"limit": 100})
                    r.raise_for_status()
                    items = r.json()["items"]
                    if not items:
                        stop.wait(args.poll_ms / 1000)
                        continue
                    http.post("/v1/inbox/ack", json={"ids": [i["id"] for i in items]}).raise_for_status()
                    now = time.perf_counter()
                    for item in items:
                        acked[item["message_id"]] = now
                except BaseException as exc:
                    errors.append(exc)
                    stop.wait(0.5)
            http.close()

        inbox_threads = [threading.Thread(target=inbox, args=(region_party(r),), daemon=True, name=f"inbox-{r}")
                         for r in REGIONS]
        for t in inbox_threads:
            t.start()
        portals = [client_for("portal") for _ in range(args.clients)]

        def load(batch: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
            submitted: dict[str, float] = {}
            returned: dict[str, float] = {}

            def client(job: tuple[httpx.Client, Sequence[dict[str, Any]]]) -> None:
                http, chunk = job
                for payload in chunk:
                    t0 = time.perf_counter()
                    r = http.post("/v1/applications", json=payload)
                    if r.status_code != 202:
                        raise RuntimeError(f"POST /v1/applications: {r.status_code} {r.text[:300]}")
                    mid = r.json()["message_id"]
                    returned[mid] = time.perf_counter()
                    submitted[mid] = t0

            run_threads(client, list(zip(portals, split(batch, args.clients))), "client")
            return submitted, returned

        warm, _ = load(payloads(args.warmup, offset=1_000_000))
        wait_all(list(warm), acked, args.timeout, f"{config} warm-up (HTTP)")
        batch = payloads(args.messages, offset=0)
        cpu = CpuMeter(include_self=False, pids=[server.pid])  # the hub's process, not the HTTP clients
        submitted, returned = load(batch)
        wait_all(list(submitted), acked, args.timeout, f"{config} (HTTP)")
        usage = cpu.stop()
        if errors:
            raise errors[0]

        def send_one(i: int) -> str:
            payload = synthetic_application(2_000_000 + i, competent_region=REGIONS[i % len(REGIONS)])
            r = portals[0].post("/v1/applications", json=payload)
            r.raise_for_status()
            return r.json()["message_id"]

        un50, un99 = probe(send_one, acked, args.probe) if args.probe else (float("nan"),) * 2
        in_submit = [(returned[m] - submitted[m]) * 1000 for m in submitted]
        result = _finish(f"hub, {config}, HTTP", submitted, acked, usage, unloaded_p50_ms=un50,
                         unloaded_p99_ms=un99,
                         ingress_rate=len(submitted) / (max(returned.values()) - min(submitted.values())),
                         submit_p50_ms=percentile(in_submit, 50))
        result.notes["ids"] = list(submitted)
        stop.set()
        for t in inbox_threads:
            t.join(timeout=10)
        for c in portals:
            c.close()
    finally:
        stop_hub_process(server)  # uvicorn stops, then `serve` closes the hub
    engine = open_engine(st.resolved_database_url())
    try:
        # the token requests leave audit events of their own: count the deliveries, verify the chain
        with engine.connect() as conn:
            acked_rows = conn.execute(select(func.count()).select_from(deliveries)
                                      .where(deliveries.c.acked_at.is_not(None))).scalar_one()
            events = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
        report = audit.verify(engine)
        stages = stage_latencies(engine, list(result.notes["ids"]))
    finally:
        engine.dispose()
    expected = args.warmup + args.messages + args.probe
    if acked_rows != expected or not report.intact:
        raise RuntimeError(f"{config} (HTTP): {acked_rows} of {expected} acknowledged; {report}")
    del result.notes["ids"]
    result.notes.update(audit_events=events, audit="intact", versions=setup.versions, stages=stages)
    return result


# ── raw pika ─────────────────────────────────────────────────────────────────────────────────

def rabbitmq_version(url: str) -> str:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return str(conn._impl.server_properties.get("version", "?"))  # the broker's own greeting
    finally:
        conn.close()


def delete_queues(url: str, names: Sequence[str]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        for name in names:
            ch.queue_delete(name)  # deleting a queue that is not there is not an error in AMQP 0-9-1
    finally:
        conn.close()


def persistent(message_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id)


class RawConsumer:
    """Manual acks, one per message, with the hub's prefetch."""

    def __init__(self, url: str, queue: str, prefetch: int) -> None:
        self.acked: dict[str, float] = {}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url, queue, prefetch), name="raw-consumer", daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _run(self, url: str, queue: str, prefetch: int) -> None:
        try:
            conn = pika.BlockingConnection(pika.URLParameters(url))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=prefetch)

            def on_message(ch: Any, method: Any, props: pika.BasicProperties, _body: bytes) -> None:
                ch.basic_ack(method.delivery_tag)
                self.acked[props.message_id] = time.perf_counter()

            ch.basic_consume(queue, on_message, auto_ack=False)
            self._ready.set()
            while not self.stop.is_set():
                conn.process_data_events(time_limit=0.05)
            conn.close()
        except BaseException as exc:
            self.errors.append(exc)
            self._ready.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class AsyncConfirmPublisher:
    """A SelectConnection on its own I/O thread; publish_batch returns once the broker confirmed
    every message of the batch (as the hub's publish_many does)."""

    def __init__(self, url: str) -> None:
        self.channel: Any = None
        self.outstanding: dict[int, bool] = {}
        self.seq = 0
        self.failed: str | None = None
        self.done = threading.Event()
        self._ready = threading.Event()
        self.connection = pika.SelectConnection(pika.URLParameters(url), on_open_callback=self._on_open,
                                                on_open_error_callback=self._on_error, on_close_callback=self._on_error)
        self.thread = threading.Thread(target=self.connection.ioloop.start, name="raw-async-publisher", daemon=True)
        self.thread.start()
        if not self._ready.wait(10) or self.channel is None:
            raise RuntimeError("raw async publisher: cannot open a confirming channel")

    def _on_open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, ch: Any) -> None:
        ch.add_on_return_callback(lambda *_: self._fail("unroutable"))

        def confirming(_frame: Any) -> None:
            self.channel = ch
            self._ready.set()

        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=confirming)

    def _on_error(self, _conn: Any, reason: Any) -> None:
        self._fail(f"connection closed: {reason}")
        self._ready.set()
        self.connection.ioloop.stop()

    def _fail(self, why: str) -> None:
        self.failed = self.failed or why
        self.done.set()

    def _on_confirm(self, frame: Any) -> None:
        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            self._fail("nacked")
        tags = list(itertools.takewhile(lambda t: t <= m.delivery_tag, self.outstanding)) if m.multiple \
            else [m.delivery_tag]
        for tag in tags:
            self.outstanding.pop(tag, None)
        if not self.outstanding:
            self.done.set()

    def _send(self, queue: str, items: Sequence[tuple[str, bytes]]) -> None:
        for mid, body in items:
            self.channel.basic_publish("", queue, body, persistent(mid), mandatory=True)
            self.seq += 1
            self.outstanding[self.seq] = True

    def publish_batch(self, queue: str, items: Sequence[tuple[str, bytes]], timeout: float = 60.0) -> None:
        self.done.clear()
        self.connection.ioloop.add_callback_threadsafe(functools.partial(self._send, queue, items))
        if not self.done.wait(timeout):
            raise RuntimeError(f"raw async publisher: batch not confirmed within {timeout:.0f} s")
        if self.failed:
            raise RuntimeError(f"raw async publisher: {self.failed}")

    def close(self) -> None:
        if self.thread.is_alive():
            self.connection.ioloop.add_callback_threadsafe(self.connection.close)
            self.thread.join(5)


def envelope_bodies(count: int) -> list[bytes]:
    """The bytes the hub's relay would put on the route queue for the same applications."""
    return [Envelope(message_id=new_id(), flow_id=FLOW, sender="portal",
                     recipients=(region_party(REGIONS[i % len(REGIONS)]),), purpose=2, correlation_id=new_id(),
                     payload=p, dossier_id=new_id()).to_bytes()
            for i, p in enumerate(payloads(count, offset=0))]


def run_raw(mode: str, bodies: list[bytes], args: argparse.Namespace) -> Result:
    queue = f"bench{uuid.uuid4().hex[:8]}.raw.{mode}"
    conn = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()
    consumer = RawConsumer(args.amqp_url, queue, args.prefetch)
    publisher: AsyncConfirmPublisher | None = None
    probe_conn: pika.BlockingConnection | None = None
    try:
        if mode == "confirm/msg":
            def load(tag: str, count: int) -> dict[str, float]:
                submitted: dict[str, float] = {}

                def client(chunk: Sequence[int]) -> None:
                    c = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
                    ch = c.channel()
                    ch.confirm_delivery()
                    for i in chunk:
                        mid = f"{tag}-{i}"
                        t0 = time.perf_counter()
                        ch.basic_publish("", queue, bodies[i % len(bodies)], persistent(mid), mandatory=True)
                        submitted[mid] = t0
                    c.close()

                run_threads(client, split(range(count), args.clients), "raw-client")
                return submitted

            probe_conn = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
            probe_ch = probe_conn.channel()
            probe_ch.confirm_delivery()

            def send_one(i: int) -> str:
                mid = f"probe-{i}"
                probe_ch.basic_publish("", queue, bodies[i % len(bodies)], persistent(mid), mandatory=True)
                return mid
        else:
            publisher = AsyncConfirmPublisher(args.amqp_url)

            def load(tag: str, count: int) -> dict[str, float]:
                submitted: dict[str, float] = {}
                for start in range(0, count, args.batch):
                    items = [(f"{tag}-{i}", bodies[i % len(bodies)])
                             for i in range(start, min(start + args.batch, count))]
                    t0 = time.perf_counter()
                    for mid, _ in items:
                        submitted[mid] = t0
                    publisher.publish_batch(queue, items)
                return submitted

            def send_one(i: int) -> str:
                mid = f"probe-{i}"
                publisher.publish_batch(queue, [(mid, bodies[i % len(bodies)])])
                return mid

        warm = load("warm", args.warmup)
        wait_all(list(warm), consumer.acked, args.timeout, f"raw {mode} warm-up")
        cpu = CpuMeter()
        submitted = load("run", args.raw_messages)
        wait_all(list(submitted), consumer.acked, args.timeout, f"raw {mode}")
        usage = cpu.stop()
        un50, un99 = probe(send_one, consumer.acked, args.probe) if args.probe else (float("nan"),) * 2
        if consumer.errors:
            raise consumer.errors[0]
        return _finish(f"raw pika, {mode}", submitted, consumer.acked, usage,
                       unloaded_p50_ms=un50, unloaded_p99_ms=un99)
    finally:
        if publisher is not None:
            publisher.close()
        if probe_conn is not None and probe_conn.is_open:
            probe_conn.close()
        consumer.close()
        delete_queues(args.amqp_url, [queue])


# ── report ───────────────────────────────────────────────────────────────────────────────────

def fmt(value: float | None, spec: str = ".0f") -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return format(value, spec)


def detail_table(results: list[Result]) -> Table:
    t = Table(title="Runs in detail", title_justify="left")
    for col in ("configuration", "msgs", "wall s", "msgs/s", "p50 ms", "p99 ms", "1-at-a-time p50 ms",
                "1-at-a-time p99 ms", "ingress/s", "in submit() p50 ms", "Python CPU (cores)", "host busy %",
                "host CPU ms/msg", "checks"):
        t.add_column(col, justify="left" if col in ("configuration", "checks") else "right")
    for r in results:
        checks = f"{r.notes['audit_events']} events, chain {r.notes['audit']}" if "audit" in r.notes else ""
        t.add_row(r.config, str(r.messages), fmt(r.wall_s, ".2f"), fmt(r.rate), fmt(r.p50_ms, ".1f"),
                  fmt(r.p99_ms, ".1f"), fmt(r.unloaded_p50_ms, ".1f"), fmt(r.unloaded_p99_ms, ".1f"),
                  fmt(r.ingress_rate), fmt(r.submit_p50_ms, ".1f"), fmt(r.py_cores, ".2f"),
                  fmt(r.host_busy_pct), fmt(host_ms_per_message(r), ".2f"), checks)
    return t


def host_ms_per_message(r: Result) -> float | None:
    if r.host_busy_pct is None or not os.cpu_count():
        return None
    return r.host_busy_pct / 100 * os.cpu_count() / r.rate * 1000


def stage_table(results: list[Result]) -> Table | None:
    hubs = [r for r in results if "stages" in r.notes]
    if not hubs:
        return None
    t = Table(title="Where a hub message waits (from its audit events; p50 / p99 ms, under the load)",
              title_justify="left")
    t.add_column("configuration")
    t.add_column("in submit() p50", justify="right")
    for _, _, label in STAGES:
        t.add_column(label, justify="right")
    for r in hubs:
        t.add_row(r.config, fmt(r.submit_p50_ms, ".1f"),
                  *(f"{fmt(p50, '.1f')} / {fmt(p99, '.1f')}" for p50, p99 in r.notes["stages"].values()))
    return t


def summary_table(results: list[Result]) -> Table:
    raw = {r.config: r for r in results if r.config.startswith("raw")}
    per_msg, batched = raw.get("raw pika, confirm/msg"), raw.get("raw pika, batched")
    t = Table(title="Summary (ratio = hub msgs/s ÷ raw pika msgs/s; target ≥ 0.30)", title_justify="left")
    for col in ("configuration", "messages", "msgs/s", "p50 ms", "p99 ms", "÷ raw confirm/msg", "÷ raw batched"):
        t.add_column(col, justify="left" if col == "configuration" else "right")
    for r in results:
        t.add_row(r.config, str(r.messages), fmt(r.rate), fmt(r.p50_ms, ".1f"), fmt(r.p99_ms, ".1f"),
                  _ratio(r, per_msg), _ratio(r, batched))
    return t


def _ratio(r: Result, base: Result | None) -> str:
    if base is None or r.config.startswith("raw"):
        return "–"
    ratio = r.rate / base.rate
    return f"[{'green' if ratio >= 0.30 else 'red'}]{ratio:.2f}[/]"


def machine() -> dict[str, str]:
    info = {"cores": str(os.cpu_count()), "python": platform.python_version()}
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        info["memory"] = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return info


# ── main ─────────────────────────────────────────────────────────────────────────────────────

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=2000, help="messages measured per configuration (default 2000)")
    p.add_argument("--only", choices=("embedded", "production", "raw"), help="run one configuration only")
    p.add_argument("--warmup", type=int, default=300, help="messages sent first and not counted (default 300)")
    p.add_argument("--clients", type=int, default=4, help="client threads submitting (and raw publishers) (default 4)")
    p.add_argument("--routers", type=int, default=2, help="route consumers, hub.start_workers(routers=K) (default 2)")
    p.add_argument("--raw-messages", type=int, default=10000,
                   help="messages per raw pika baseline (default 10000: it is fast, more make a steadier figure)")
    p.add_argument("--http", action="store_true",
                   help="drive the hub through the HTTP API of `wib-hub serve` (its own process) instead")
    p.add_argument("--worker-process", action="store_true",
                   help="relay and routers in a `wib-hub worker` process beside this one (not with --http)")
    p.add_argument("--probe", type=int, default=50, help="messages sent one at a time after the run (default 50)")
    p.add_argument("--poll-ms", type=float, default=10.0, help="inbox poll interval when empty (default 10)")
    p.add_argument("--batch", type=int, default=Settings.model_fields["relay_batch"].default,
                   help="raw batched publisher: messages per confirmed batch (default: the relay's batch)")
    p.add_argument("--prefetch", type=int, default=Settings.model_fields["worker_prefetch"].default,
                   help="raw consumer prefetch (default: the hub's worker prefetch)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting for acks after this many seconds")
    p.add_argument("--database-url", default=PG_URL, help="PostgreSQL for the production configuration")
    p.add_argument("--amqp-url", default=AMQP_URL, help="RabbitMQ for the production configuration and raw pika")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    want = {args.only} if args.only else {"raw", "embedded", "production"}
    m = machine()
    console.print(f"[bold]wib-hub throughput[/]: {args.messages} messages per hub configuration "
                  f"({args.raw_messages} per raw baseline) after {args.warmup} warm-up, {args.clients} client threads, "
                  f"{'HTTP, `wib-hub serve`' if args.http else f'{args.routers} routers'}, "
                  f"{len(REGIONS)} inbox threads; "
                  f"{m['cores']} cores, {m.get('memory', '?')}, Python {m['python']}")
    results: list[Result] = []
    started = time.perf_counter()
    if "raw" in want:
        bodies = envelope_bodies(500)
        size = statistics.mean(len(b) for b in bodies)
        console.print(f"raw pika: bodies are the hub's envelopes for the same applications, "
                      f"{size:,.0f} bytes on average")
        for mode in ("confirm/msg", "batched"):
            with console.status(f"raw pika, {mode}…"):
                r = run_raw(mode, bodies, args)
            r.notes["body_bytes"] = round(size)
            results.append(r)
            console.print(f"  {r.config}: {r.rate:,.0f} msgs/s")
    for config in ("embedded", "production"):
        if config in want:
            with console.status(f"hub, {config}…"):
                r = run_hub(config, args)
            results.append(r)
            versions = ", ".join(f"{k} {v}" for k, v in r.notes["versions"].items())
            console.print(f"  {r.config}: {r.rate:,.0f} msgs/s ({versions})")
    console.print()
    console.print(detail_table(results))
    console.print("[dim]msgs/s = messages ÷ (last ack − first submit). p50/p99: submit → ack under the "
                  "closed-loop load (queueing included); 1-at-a-time: one message in flight. ingress/s: submits "
                  "accepted per second during the load; in submit(): time a client waited for its answer. Python "
                  "CPU: cores used by the hub's processes (--http: the `serve` process only; raw: the publisher and "
                  "consumer). host busy: all cores, all processes (PostgreSQL and RabbitMQ included); host CPU "
                  "ms/msg = busy cores ÷ msgs/s.[/]")
    if (stages := stage_table(results)) is not None:
        console.print(stages)
    console.print(summary_table(results))
    console.print(f"total {time.perf_counter() - started:.0f} s. Latencies under load include queueing behind the "
                  "backlog (closed loop); the one-at-a-time columns are the path alone.")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "args": {k: v for k, v in vars(args).items()
                                                                 if k not in ("database_url", "amqp_url", "json")},
                                         "results": [asdict(r) for r in results]}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
