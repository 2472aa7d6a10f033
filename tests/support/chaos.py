"""The chaos harness: the production shape as separate processes, real flows over HTTP, one kind of
fault at a time while traffic runs, and what each fault cost (benchmarks/chaos.py prints it,
tests/e2e/test_chaos.py asserts on it).

The deployment (`Deployment`): `wib-hub sandbox` (the source simulators, HUB_SANDBOX=false and
HUB_SOURCES pointing at it, as docker-compose.yml), `wib-hub api`, and one or more `wib-hub worker`,
each its own process, on a PostgreSQL database of their own (CREATE DATABASE wib_chaos_<random> on
the shared server, dropped at the end) and RabbitMQ nodes of their own (tests.support.rabbitnodes).
A supervisor thread plays docker-compose's `restart: unless-stopped`: a hub process that exits by
itself is started again (counted as a crash; one that exits at start-up again is a refused start).
Processes the harness kills it starts again itself after the outage.

The traffic (`Traffic`): the portal submits synthetic applications (POST /v1/applications with an
Idempotency-Key); each region reads its inbox, forwards each application to DVZ
(single-permit.admissible-to-dvz with a message_id of its own, enriched from the sandbox's sources)
and then acknowledges it; DVZ reads and acknowledges. Every POST that fails (connection error,
timeout, 5xx) is sent again with the SAME message id until it is accepted. Expected deliveries are
the recipients the hub named when it accepted a message.

Per fault kind (`run_fault`): traffic starts, the fault is injected once a third of the
applications are accepted, the failed part is brought back after the outage, the rest is sent, and
the harness waits (up to a deadline, never helping) until every expected delivery arrived.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.rabbitnodes import Node, RabbitNodes, free_port, port_open

PG_SERVER = os.environ.get("HUB_CHAOS_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
FAULTS = ("worker", "api", "source", "broker", "database", "cluster")
REGIONS = ("flanders", "wallonia")
APPLICATION_FLOW = "single-permit.application-submitted"
FORWARD_FLOW = "single-permit.admissible-to-dvz"
WARMUP = 6              # applications sent and delivered before the first fault, not counted
CLUSTER_NODE_DOWN_S = 20.0   # the killed cluster node stays down at least this long
FAILOVER_MARGIN_S = 10.0     # accepted this long before the node's return: delivered before it (beyond the
                             # hub's latency under this load, on 2 cores with three nodes beside it)


def pg_server_from_test_url(url: str | None) -> str:
    """postgresql://user@host:port of a database URL (HUB_TEST_DATABASE_URL names a database)."""
    if not url:
        return PG_SERVER
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# ── the database ─────────────────────────────────────────────────────────────────────────────

class OwnDatabase:
    """CREATE DATABASE wib_chaos_<random> on the shared server; dropped (connections ended first) on close."""

    def __init__(self, server: str = PG_SERVER) -> None:
        from sqlalchemy import create_engine
        from hub.infra.store.db import normalise_url
        self.server = server.rstrip("/")
        self.name = f"wib_chaos_{uuid.uuid4().hex[:10]}"
        self._admin = create_engine(normalise_url(f"{self.server}/postgres"), isolation_level="AUTOCOMMIT",
                                    pool_pre_ping=True)
        self._sql(f'CREATE DATABASE "{self.name}"')
        self.url = f"{self.server}/{self.name}"

    def _sql(self, sql: str, **params: Any) -> list:
        from sqlalchemy import text
        with self._admin.connect() as conn:
            r = conn.execute(text(sql), params)
            return list(r) if r.returns_rows else []

    def terminate_connections(self) -> int:
        """pg_terminate_backend of every connection to OUR database (the hub's), never others'."""
        rows = self._sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = :db AND pid <> pg_backend_pid()", db=self.name)
        return sum(1 for (ok,) in rows if ok)

    def rows(self, sql: str) -> list:
        from sqlalchemy import create_engine, text
        from hub.infra.store.db import normalise_url
        engine = create_engine(normalise_url(self.url))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()

    def scalar(self, sql: str) -> Any:
        from sqlalchemy import create_engine, text
        from hub.infra.store.db import normalise_url
        engine = create_engine(normalise_url(self.url))
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def close(self) -> None:
        try:
            self.terminate_connections()
            self._sql(f'DROP DATABASE IF EXISTS "{self.name}"')
        finally:
            self._admin.dispose()


# ── the processes ────────────────────────────────────────────────────────────────────────────

@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    killed_by_us: bool = False
    crashes: int = 0              # exits we did not cause
    refused_starts: int = 0       # exits within 10 s of a start
    started_at: float = 0.0
    exits: list[str] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log, "ab") as f:
            f.write(f"\n=== start {time.strftime('%H:%M:%S')} ===\n".encode())
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.monotonic()
        self.killed_by_us = False

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the fault: the process gets no chance to clean up."""
        self.killed_by_us = True
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGINT, as an operator stops it (the hub seals its audit tail), SIGKILL after 20 s."""
        self.killed_by_us = True
        if self.alive():
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log_tail(self, n: int = 2500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _hub_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from hub.interfaces.cli.main import main; main()", *args]


class Deployment:
    """sandbox + api + workers as processes on our own database and broker node(s)."""

    def __init__(self, workdir: Path, database: OwnDatabase, broker_urls: Sequence[str], *, workers: int = 2,
                 routers: int = 2, source_latency_ms: float = 100.0,
                 extra_env: dict[str, str] | None = None) -> None:
        from hub.ports import load_adapters
        self.workdir = workdir
        self.database = database
        self.broker_urls = list(broker_urls)
        self.data_dir = workdir / "data"
        self.sandbox_dir = workdir / "sandbox"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = f"chaos{uuid.uuid4().hex[:8]}."
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        names = list(load_adapters())
        self.sandbox_port = self._free_range(len(names))
        self.source_ports = {n: self.sandbox_port + i for i, n in enumerate(names)}
        sources = {n: f"http://127.0.0.1:{p}" for n, p in self.source_ports.items()
                   if n in ("onss.dimona", "onss.dmfa", "onss.limosa", "inasti.self-employed")}
        base = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env = {**base,
                    "HUB_DATA_DIR": str(self.data_dir), "HUB_DATABASE_URL": database.url,
                    "HUB_BROKER_URL": ",".join(self.broker_urls), "HUB_QUEUE_PREFIX": self.prefix,
                    "HUB_HOST": "127.0.0.1", "HUB_PORT": str(self.port),
                    "HUB_SANDBOX": "false", "HUB_SOURCES": json.dumps(sources),
                    "HUB_SOURCE_KEY_FILE": str(self.sandbox_dir / "client-key.pem"),
                    "HUB_SANDBOX_DIR": str(self.sandbox_dir),
                    "HUB_TOKEN_TTL_SECONDS": "3600", "HUB_LOG_LEVEL": "INFO",
                    # the clients poll their inboxes hard: the per-party limiter is not under test
                    "HUB_RATE_LIMIT_PER_SECOND": "0", "HUB_TOKEN_RATE_LIMIT_PER_MINUTE": "0",
                    **(extra_env or {})}
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.sandbox = Proc("sandbox", _hub_argv("sandbox", "--port", str(self.sandbox_port),
                                                 "--latency-ms", str(source_latency_ms)), self.env,
                            logs / "sandbox.log")
        self.api = Proc("api", _hub_argv("api"), self.env, logs / "api.log")
        self.workers = [Proc(f"worker{i + 1}", _hub_argv("worker", "--routers", str(routers)), self.env,
                             logs / f"worker{i + 1}.log") for i in range(workers)]
        self._supervise = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.events: list[tuple[float, str]] = []
        self.late: list[Proc] = []

    @staticmethod
    def _free_range(n: int) -> int:
        # below the kernel's ephemeral range (32768-60999: client sockets, and free_port's picks),
        # each port bound once to be sure nothing holds it
        import socket
        rnd = random.Random()
        for _ in range(200):
            first = rnd.randrange(20000, 32700 - n)
            ok = True
            for port in range(first, first + n):
                if port in (5672, 15672, 25672):
                    ok = False
                    break
                with socket.socket() as sock:
                    try:
                        sock.bind(("127.0.0.1", port))
                    except OSError:
                        ok = False
                        break
            if ok:
                return first
        raise RuntimeError("no free port range for the sandbox")

    @property
    def hub_procs(self) -> list[Proc]:
        return [self.api, *self.workers]

    def note(self, what: str) -> None:
        self.events.append((time.monotonic(), what))

    # start-up -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        self.sandbox.start()
        self.wait_sources(timeout)
        self.api.start()          # first: it writes the keys and clients.json the workers read
        self.wait_api(timeout)
        for w in self.workers:
            w.start()
        deadline = time.monotonic() + timeout
        while not all("worker running" in w.log_tail(100000) for w in self.workers):
            for w in self.workers:
                if not w.alive():
                    raise RuntimeError(f"{w.name} exited at start-up ({w.popen.returncode}):\n{w.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start:\n" + "\n".join(w.log_tail() for w in self.workers))
            time.sleep(0.1)
        self._supervise.set()
        self._supervisor = threading.Thread(target=self._supervise_loop, daemon=True, name="supervisor")
        self._supervisor.start()

    def wait_sources(self, timeout: float = 30.0) -> float:
        t0 = time.monotonic()
        deadline = t0 + timeout
        while not all(port_open(p) for p in self.source_ports.values()):
            if not self.sandbox.alive():
                raise RuntimeError(f"the sandbox exited:\n{self.sandbox.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not listen:\n{self.sandbox.log_tail()}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def wait_api(self, timeout: float = 60.0) -> float:
        """Until the API process answers /livez (it serves; whether it is ready is its own business)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            try:
                if httpx.get(f"{self.base_url}/livez", timeout=1).status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            if not self.api.alive() and self.api.refused_starts == 0 and not self._supervise.is_set():
                raise RuntimeError(f"wib-hub api exited at start-up:\n{self.api.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"wib-hub api did not answer within {timeout:.0f} s:\n{self.api.log_tail()}")
            time.sleep(0.1)

    def _supervise_loop(self) -> None:
        """docker-compose's `restart: unless-stopped`: a hub process that exited by itself starts again."""
        while self._supervise.is_set():
            for p in self.hub_procs + [self.sandbox]:
                if p.popen is not None and p.popen.poll() is not None and not p.killed_by_us:
                    code = p.popen.returncode
                    quick = time.monotonic() - p.started_at < 10
                    p.exits.append(f"{time.strftime('%H:%M:%S')} exit {code}{' at start-up' if quick else ''}")
                    if quick:
                        p.refused_starts += 1
                    else:
                        p.crashes += 1
                    self.note(f"{p.name} exited by itself ({code}); supervisor restarts it")
                    time.sleep(1.0)   # the restart policy's delay
                    if self._supervise.is_set():
                        p.start()
            time.sleep(0.2)

    def mark(self, what: str) -> None:
        """A line in every process's log (opened for appending: it lands between whole lines)."""
        for p in [*self.hub_procs, self.sandbox]:
            with open(p.log, "ab") as f:
                f.write(f"=== {what} {time.strftime('%H:%M:%S')} ===\n".encode())

    def late_processes(self) -> list[Proc]:
        """An extra worker and an extra API (on a port of its own), started during an outage."""
        port = free_port()
        env = {**self.env, "HUB_PORT": str(port)}
        logs = self.workdir / "logs"
        late = [Proc("worker-late", _hub_argv("worker", "--routers", "1"), self.env, logs / "worker-late.log"),
                Proc("api-late", _hub_argv("api"), env, logs / "api-late.log")]
        late[1].port = port   # type: ignore[attr-defined]
        self.late.extend(late)
        return late

    def came_up(self, p: Proc) -> bool:
        if p.name.startswith("worker"):
            return "worker running" in p.log_tail(10 ** 6)
        try:
            return httpx.get(f"http://127.0.0.1:{p.port}/livez", timeout=1).status_code == 200  # type: ignore[attr-defined]
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        for p in self.late:
            p.stop()
        self._supervise.clear()
        if self._supervisor:
            self._supervisor.join(timeout=5)
        for p in [*self.workers, self.api, self.sandbox]:
            p.stop()

    # tools ----------------------------------------------------------------------------------
    def secrets(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "clients.json").read_text())

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return subprocess.run(_hub_argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def hub_pids(self, procs: Sequence[Proc] | None = None) -> set[int]:
        return {p.popen.pid for p in (procs or self.hub_procs) if p.alive()}

    def broker_peers(self, procs: Sequence[Proc] | None = None) -> Counter:
        """Established TCP connections from the hub's processes, counted by the broker port they go to."""
        pids = self.hub_pids(procs)
        out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True).stdout
        peers: Counter = Counter()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 5 or "pid=" not in line:
                continue
            peer_port = int(parts[3].rsplit(":", 1)[1])
            for chunk in line.split("pid=")[1:]:
                if int(chunk.split(",")[0]) in pids:
                    peers[peer_port] += 1
        return peers

    def queue_depths(self) -> dict[str, int | None]:
        """Messages in the route queue's retry and parking companions (and the route queue), by name."""
        import pika
        from hub.domain.retry import RetryPolicy
        from hub.messaging.queues import ROUTE_QUEUE
        route = self.prefix + ROUTE_QUEUE
        names = [route, f"{route}.parking", *(f"{route}.delay.{d}" for d in sorted(set(RetryPolicy().delays_ms)))]
        for url in self.broker_urls:
            try:
                conn = pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1&socket_timeout=3"))
            except Exception:  # noqa: BLE001 - that node is down: the next one
                continue
            try:
                depths: dict[str, int | None] = {}
                for name in names:
                    ch = conn.channel()
                    try:
                        depths[name] = ch.queue_declare(name, passive=True).method.message_count
                        ch.close()
                    except pika.exceptions.ChannelClosedByBroker:
                        depths[name] = None   # not declared
                return depths
            finally:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
        return {n: None for n in names}

    def delete_queues(self) -> None:
        import pika
        for url in self.broker_urls:
            try:
                conn = pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1&socket_timeout=3"))
            except Exception:  # noqa: BLE001
                continue
            try:
                for name in self.queue_depths():
                    conn.channel().queue_delete(name)
            except Exception:  # noqa: BLE001 - throwaway nodes: best effort
                pass
            finally:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
            return


# ── the traffic ──────────────────────────────────────────────────────────────────────────────

@dataclass
class Answers:
    """What the clients saw: statuses of 5xx answers (with or without Retry-After), transport errors."""
    status_5xx: Counter = field(default_factory=Counter)      # "500", "503+RA", "503" ...
    transport_errors: Counter = field(default_factory=Counter)
    other_4xx: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def saw(self, r: httpx.Response, what: str) -> None:
        if r.status_code >= 500:
            key = f"{r.status_code}{'+RA' if r.status_code == 503 and 'retry-after' in r.headers else ''}"
            self.status_5xx[key] += 1
            if len(self.examples) < 8:
                self.examples.append(f"{what} → {r.status_code}: {r.text[:200]}")
        elif r.status_code >= 400 and r.status_code != 429:
            self.other_4xx[str(r.status_code)] += 1
            if len(self.examples) < 8:
                self.examples.append(f"{what} → {r.status_code}: {r.text[:200]}")


class Party:
    """One party's HTTP client: a token (fetched again after a 401 or a restart), retries on failure."""

    def __init__(self, base_url: str, party: str, secret: str, answers: Answers, stop: threading.Event) -> None:
        self.base_url, self.party, self.secret, self.answers, self.stop = base_url, party, secret, answers, stop
        self.http = httpx.Client(base_url=base_url, timeout=10, trust_env=False)
        self._token: str | None = None

    def _auth(self) -> dict[str, str]:
        while self._token is None:
            try:
                r = self.http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": self.party,
                                                         "client_secret": self.secret})
                if r.status_code == 200:
                    self._token = r.json()["access_token"]
                    break
                self.answers.saw(r, "POST /oauth/token")
            except httpx.TransportError as exc:
                self.answers.transport_errors[type(exc).__name__] += 1
            if self.stop.wait(0.3):
                raise InterruptedError
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, *, ok: Sequence[int] = (200, 202), until: float | None = None,
                headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response | None:
        """The request again (the same body: the same message id) until it answers one of `ok`."""
        delay = 0.1
        while True:
            try:
                r = self.http.request(method, path, headers={**self._auth(), **(headers or {})}, **kw)
                if r.status_code in ok:
                    return r
                if r.status_code == 401:
                    self._token = None
                else:
                    self.answers.saw(r, f"{method} {path}")
                    if r.status_code == 429 or r.status_code == 503:
                        delay = max(delay, float(r.headers.get("retry-after", delay) or delay))
                    elif 400 <= r.status_code < 500:
                        return r        # a refusal: sending it again will not help
            except httpx.TransportError as exc:
                self.answers.transport_errors[type(exc).__name__] += 1
            if (until is not None and time.monotonic() > until) or self.stop.wait(delay):
                return None
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self.http.close()


@dataclass
class Ledger:
    """Every message the harness sent and every delivery it saw, per recipient."""
    accepted: dict[str, list[str]] = field(default_factory=dict)         # message id → recipients named
    accepted_at: dict[str, float] = field(default_factory=dict)
    phase_of: dict[str, str] = field(default_factory=dict)
    seen: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))  # (party, msg) → delivery ids
    received_at: dict[tuple[str, str], float] = field(default_factory=dict)
    acked: set[tuple[str, str]] = field(default_factory=set)
    duplicates: Counter = field(default_factory=Counter)                # phase → count
    duplicate_examples: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expected(self, phase: str | None = None) -> set[tuple[str, str]]:
        with self.lock:
            return {(r, m) for m, rs in self.accepted.items() for r in rs
                    if phase is None or self.phase_of.get(m) == phase}

    def outstanding(self, phase: str | None = None) -> set[tuple[str, str]]:
        exp = self.expected(phase)
        with self.lock:
            return {k for k in exp if k not in self.received_at}


class Traffic:
    """Portal threads submitting, region threads forwarding, DVZ reading; all over HTTP."""

    def __init__(self, deployment: Deployment, ledger: Ledger, answers: Answers, *, portals: int = 2) -> None:
        self.d, self.ledger, self.answers, self.portals = deployment, ledger, answers, portals
        self.stop = threading.Event()
        secrets = deployment.secrets()
        mk = lambda party: Party(deployment.base_url, party, secrets[party]["secret"], answers, self.stop)  # noqa: E731
        self._mk = mk
        self.readers = {f"region.{r}": mk(f"region.{r}") for r in REGIONS} | {"dvz": mk("dvz")}
        self.threads = [threading.Thread(target=self._read, args=(p,), daemon=True, name=f"inbox-{p}")
                        for p in self.readers]
        for t in self.threads:
            t.start()
        self.phase = "warmup"
        self.errors: list[BaseException] = []

    def _record_accepted(self, mid: str, r: httpx.Response) -> None:
        body = r.json()
        with self.ledger.lock:
            if body["message_id"] != mid:
                self.ledger.refused.append(f"{mid}: answered as {body['message_id']}")
            if mid not in self.ledger.accepted:
                self.ledger.accepted[mid] = list(body.get("recipients") or [])
                self.ledger.accepted_at[mid] = time.monotonic()
                self.ledger.phase_of[mid] = self.phase

    def submit(self, phase: str, serials: Sequence[int], on_each: Callable[[int], None] | None = None) -> None:
        """The applications of `serials`, spread over the portal threads, each until accepted."""
        from hub.domain import samples
        self.phase = phase
        done = [0]
        lock = threading.Lock()

        def portal(chunk: Sequence[int]) -> None:
            party = self._mk("portal")
            try:
                for serial in chunk:
                    mid = f"app-{phase}-{serial}"
                    payload = samples.synthetic_application(serial, REGIONS[serial % len(REGIONS)])
                    r = party.request("POST", "/v1/applications", json=payload, ok=(200, 202),
                                      headers={"Idempotency-Key": mid})
                    if r is None:
                        return
                    if r.status_code in (200, 202):
                        self._record_accepted(r.json()["message_id"], r)
                        self.ledger.phase_of.setdefault(r.json()["message_id"], phase)
                    else:
                        self.ledger.refused.append(f"{mid}: {r.status_code} {r.text[:200]}")
                    with lock:
                        done[0] += 1
                        n = done[0]
                    if on_each:
                        on_each(n)
            except InterruptedError:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                self.errors.append(exc)
            finally:
                party.close()

        chunks = [serials[i::self.portals] for i in range(self.portals)]
        threads = [threading.Thread(target=portal, args=(c,), daemon=True, name=f"portal-{i}")
                   for i, c in enumerate(chunks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _read(self, party_id: str) -> None:
        from hub.domain import samples
        party = self.readers[party_id]
        ledger = self.ledger
        while not self.stop.is_set():
            try:
                r = party.request("GET", "/v1/inbox", ok=(200,), params={"limit": 100})
                if r is None:
                    continue
                items = r.json()["items"] if r.status_code == 200 else []
                if not items:
                    self.stop.wait(0.05)
                    continue
                now = time.monotonic()
                for item in items:
                    key = (party_id, item["message_id"])
                    with ledger.lock:
                        before = set(ledger.seen[key])
                        dup = key in ledger.acked or bool(before and item["id"] not in before)
                        ledger.seen[key].add(item["id"])
                        ledger.received_at.setdefault(key, now)
                        if dup:
                            ph = ledger.phase_of.get(item["message_id"], "?")
                            ledger.duplicates[ph] += 1
                            if len(ledger.duplicate_examples) < 10:
                                ledger.duplicate_examples.append(f"{party_id} {item['message_id']} delivery {item['id']}"
                                                                 f" ({'after ack' if key in ledger.acked else f'also as {sorted(before)}'})")
                    if party_id.startswith("region.") and item.get("flow", FORWARD_FLOW) != FORWARD_FLOW \
                            and item["message_id"].startswith("app-"):
                        fwd = f"fwd-{item['message_id']}"
                        payload = samples.sample_admissibility_decision(item["dossier_id"], region=party_id)
                        body = {"flow": FORWARD_FLOW, "payload": payload, "dossier_id": item["dossier_id"],
                                "message_id": fwd}
                        rr = party.request("POST", "/v1/messages", json=body, ok=(200, 202))
                        if rr is None:
                            break
                        if rr.status_code in (200, 202):
                            with ledger.lock:
                                phase = ledger.phase_of.get(item["message_id"], self.phase)
                            self._record_forward(fwd, rr, phase)
                        else:
                            with ledger.lock:
                                ledger.refused.append(f"{fwd}: {rr.status_code} {rr.text[:200]}")
                ra = party.request("POST", "/v1/inbox/ack", ok=(200,), json={"ids": [i["id"] for i in items]})
                if ra is not None and ra.status_code == 200:
                    with ledger.lock:
                        for item in items:
                            ledger.acked.add((party_id, item["message_id"]))
            except InterruptedError:
                return
            except BaseException as exc:  # noqa: BLE001
                self.errors.append(exc)
                self.stop.wait(0.5)

    def _record_forward(self, mid: str, r: httpx.Response, phase: str) -> None:
        body = r.json()
        with self.ledger.lock:
            if mid not in self.ledger.accepted:
                self.ledger.accepted[mid] = list(body.get("recipients") or [])
                self.ledger.accepted_at[mid] = time.monotonic()
                self.ledger.phase_of[mid] = phase

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)
        for p in self.readers.values():
            p.close()

# ── one fault kind ───────────────────────────────────────────────────────────────────────────

@dataclass
class FaultResult:
    fault: str
    applications: int = 0
    accepted: int = 0                  # messages accepted (applications + forwards)
    expected: int = 0                  # deliveries the hub named at acceptance
    received: int = 0                  # unique (recipient, message) seen in an inbox
    lost: int = 0
    duplicated: int = 0
    http_5xx: dict[str, int] = field(default_factory=dict)   # "500": …, "503+RA": … (with Retry-After)
    http_500: int = 0                  # 5xx answers that are failures (all but 503 with Retry-After)
    other_4xx: dict[str, int] = field(default_factory=dict)
    transport_errors: int = 0          # connection refused/reset, timeouts (the API was away)
    outage_s: float = 0.0              # fault injected → failed part back
    flow_s: float | None = None        # failed part back → first delivery after it
    drain_s: float | None = None       # failed part back → the phase's last expected delivery
    backlog_s: float | None = None     # failed part back → the last delivery of what was accepted before
    failover_s: float | None = -1.0    # cluster: kill → last delivery of what was accepted while the node was down,
                                       # all before it was back (None: the hub waited for it)
    stall_ended: bool = False          # drained within the deadline, without help
    outbox_pending: int | None = None
    queues: dict[str, int | None] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)            # hub processes that exited by themselves
    refused_starts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (self.error is None and self.failover_s is not None and self.lost == 0 and self.duplicated == 0 and self.http_500 == 0
                and self.stall_ended and not self.outbox_pending and not self.crashes and not self.refused_starts
                and not any(self.queues.get(q) for q in self.queues if ".delay." in q or q.endswith(".parking")))


def _wait_marker(proc: Proc, marker: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.log_tail(10 ** 7).count(marker) >= count:
            return True
        time.sleep(0.1)
    return False


def inject(kind: str, d: Deployment, db: OwnDatabase, nodes: Sequence[Node], outage: float,
           notes: list[str], node_back: list[float] | None = None) -> tuple[float, float]:
    """The fault, then the failed part brought back; (t injected, t back) on the monotonic clock."""
    if kind == "worker":
        # kill a worker while it holds leased enrichment jobs (it is calling the sources for them):
        # a dead holder's jobs must come back to the others. The holder is read from
        # enrichment_jobs.claimed_by ("host:pid:…") where the hub records it, else worker1.
        victim, leased, wait_until = d.workers[0], 0, time.monotonic() + 5
        while time.monotonic() < wait_until:
            try:
                rows = db.rows("SELECT claimed_by FROM enrichment_jobs WHERE state = 'pending' "
                               "AND next_attempt_at > now() AND claimed_by IS NOT NULL")
                pids = Counter(int(r[0].split(":")[1]) for r in rows if r[0] and r[0].count(":") >= 2
                               and r[0].split(":")[1].isdigit())
                holders = [w for w in d.workers if w.alive() and w.popen.pid in pids]
                if holders:
                    victim, leased = holders[0], pids[holders[0].popen.pid]
                    break
            except Exception:  # noqa: BLE001 - a hub without claimed_by: leases as next_attempt_at far ahead
                try:
                    leased = int(db.scalar("SELECT count(*) FROM enrichment_jobs WHERE state = 'pending' "
                                           "AND next_attempt_at > now() + interval '45 seconds'") or 0)
                except Exception:  # noqa: BLE001
                    leased = 0
                if leased:
                    break
            time.sleep(0.05)
        before = victim.log_tail(10 ** 7).count("worker running")
        notes.append(f"killed {victim.name} while it held {leased} leased enrichment job(s)")
        t0 = time.monotonic()
        victim.kill()
        time.sleep(outage)
        victim.start()
        if not _wait_marker(victim, "worker running", before + 1, 60):
            notes.append(f"{victim.name} did not report running after its restart: {victim.log_tail(600)}")
        return t0, time.monotonic()
    if kind == "api":
        t0 = time.monotonic()
        d.api.kill()
        time.sleep(outage)
        d.api.start()
        try:
            d.wait_api(60)
        except RuntimeError as exc:
            notes.append(str(exc)[:800])
        return t0, time.monotonic()
    if kind == "source":
        t0 = time.monotonic()
        d.sandbox.kill()
        time.sleep(outage)
        d.sandbox.start()
        d.wait_sources(30)
        return t0, time.monotonic()
    if kind == "broker":
        [node] = nodes
        t0 = time.monotonic()
        node.kill()
        # a process that starts while the broker is down (a host rebooted, a replica rescheduled)
        # must come up and wait for it: a new worker and a new API process start now, beside the
        # running ones (nothing that did not die is restarted); stopped once the phase is over
        late = d.late_processes()
        for p in late:
            p.start()
        deadline = time.monotonic() + max(outage, 20.0)
        while time.monotonic() < deadline:
            if time.monotonic() - t0 >= outage and all(not p.alive() or d.came_up(p) for p in late):
                break
            time.sleep(0.2)
        for p in late:
            if not p.alive():
                p.refused_starts += 1
                lines = [ln for ln in p.log_tail(4000).splitlines() if ln.strip() and not ln.startswith("===")]
                notes.append(f"{p.name}, started while the broker was down, exited "
                             f"({p.popen.returncode}): {lines[-1][:300] if lines else ''}")
            elif not d.came_up(p):
                notes.append(f"{p.name}, started while the broker was down, did not come up within 20 s")
            else:
                notes.append(f"{p.name}, started while the broker was down, came up")
        node.start()
        took = node.wait_ready(90)
        notes.append(f"broker node back in {took:.1f} s after its restart")
        return t0, time.monotonic()
    if kind == "database":
        t0 = time.monotonic()
        n1 = db.terminate_connections()
        time.sleep(min(outage, 1.0))
        n2 = db.terminate_connections()
        notes.append(f"terminated {n1} + {n2} connections")
        return t0, time.monotonic()
    if kind == "cluster":
        peers = d.broker_peers(d.workers)
        by_port = {n.port: n for n in nodes}
        connected = [p for p, _ in peers.most_common() if p in by_port]
        victim = by_port[connected[0]] if connected else nodes[0]
        notes.append(f"killed {victim.nodename} (workers' connections per node: "
                     f"{ {by_port[p].name: n for p, n in peers.items() if p in by_port} })")
        t0 = time.monotonic()
        victim.kill()

        def bring_back() -> None:
            # down long enough to see the hub carry on without it (the other two nodes serve)
            time.sleep(max(outage, CLUSTER_NODE_DOWN_S))
            try:
                victim.start()
                took = victim.wait_ready(90)
                node_back[0] = time.monotonic()
                notes.append(f"{victim.nodename} restarted after {max(outage, CLUSTER_NODE_DOWN_S):.0f} s, "
                             f"back in {took:.1f} s")
            except Exception as exc:  # noqa: BLE001
                notes.append(f"{victim.nodename} did not come back: {exc}"[:600])
        threading.Thread(target=bring_back, daemon=True).start()
        return t0, t0   # the cluster serves on: recovery counts from the kill itself
    raise ValueError(kind)


def run_fault(kind: str, d: Deployment, traffic: Traffic, db: OwnDatabase, nodes: Sequence[Node], *,
              applications: int, serial0: int, outage: float, drain_timeout: float,
              progress: Callable[[str], None] = lambda s: None) -> FaultResult:
    res = FaultResult(kind, applications=applications)
    d.mark(f"phase {kind}")
    ledger, answers = traffic.ledger, traffic.answers
    s5, tr, o4 = Counter(answers.status_5xx), sum(answers.transport_errors.values()), Counter(answers.other_4xx)
    crashes0 = {p.name: p.crashes for p in d.hub_procs + [d.sandbox]}
    refused0 = {p.name: p.refused_starts for p in d.hub_procs + [d.sandbox] + d.late}
    times: dict[str, float] = {}
    node_back = [float("inf")]          # the cluster fault: when the killed node answered again
    trigger = threading.Event()

    def faulting() -> None:
        trigger.wait()
        try:
            progress(f"{kind}: fault injected")
            times["t0"], times["back"] = inject(kind, d, db, nodes, outage, res.notes, node_back)
            progress(f"{kind}: failed part back after {times['back'] - times['t0']:.1f} s")
        except Exception as exc:  # noqa: BLE001
            res.error = f"fault injection failed: {exc}"[:1500]
            times.setdefault("t0", time.monotonic())
            times["back"] = time.monotonic()

    at = max(1, applications // 3)
    back_event = threading.Event()

    def paced(n: int) -> None:
        # a third before the fault, a third during it (retried until accepted), the last third once
        # the failed part is back: traffic must flow again after it
        if n >= at:
            trigger.set()
        if n >= 2 * at:
            back_event.wait(120)

    def faulting_then_mark() -> None:
        faulting()
        back_event.set()

    fault_thread = threading.Thread(target=faulting_then_mark, daemon=True, name=f"fault-{kind}")
    fault_thread.start()
    traffic.submit(kind, list(range(serial0, serial0 + applications)), on_each=paced)
    trigger.set()
    fault_thread.join()
    back = times["back"]
    res.outage_s = round(back - times["t0"], 2)
    # the harness only waits: every stall must end by itself
    deadline = back + drain_timeout
    if kind == "cluster":
        # a hub that does not fail over still drains once the killed node is back: wait for it, so
        # that the figures tell "no failover" from "never recovered"
        node_wait = time.monotonic() + 60
        while node_back[0] == float("inf") and time.monotonic() < node_wait:
            time.sleep(0.1)
        if node_back[0] != float("inf"):
            deadline = max(deadline, node_back[0] + drain_timeout)
    apps = {m for m, ph in ledger.phase_of.items() if ph == kind and m.startswith("app-")}
    while time.monotonic() < deadline:
        with ledger.lock:
            fwds = sum(1 for m, ph in ledger.phase_of.items() if ph == kind and m.startswith("fwd-"))
        if not ledger.outstanding(kind) and fwds >= len(apps):
            break
        time.sleep(0.2)
    with ledger.lock:
        after = [t for t in ledger.received_at.values() if t >= back]
        phase_keys = {(r, m) for m, rs in ledger.accepted.items() if ledger.phase_of.get(m) == kind for r in rs}
        got = {k for k in phase_keys if k in ledger.received_at}
        res.accepted = sum(1 for ph in ledger.phase_of.values() if ph == kind)
        fwds = sum(1 for m, ph in ledger.phase_of.items() if ph == kind and m.startswith("fwd-"))
        res.duplicated = ledger.duplicates.get(kind, 0)
    res.expected = len(phase_keys) + (len(apps) - fwds)          # a forward never sent is a delivery lost
    res.received = len(got)
    res.lost = res.expected - res.received
    with ledger.lock:
        missing = sorted(k for k in phase_keys if k not in ledger.received_at)
        unforwarded = sorted(m for m in apps if f"fwd-{m}" not in ledger.accepted)
    if missing:
        res.notes.append(f"never received ({len(missing)}): " + ", ".join(f"{r} {m}" for r, m in missing[:5]))
    if unforwarded:
        res.notes.append(f"applications never forwarded (their region never got them) ({len(unforwarded)}): "
                         + ", ".join(unforwarded[:5]))
    res.stall_ended = res.lost == 0
    if after:
        res.flow_s = round(min(after) - back, 2)
    if res.stall_ended:
        res.drain_s = round(max(0.0, max(ledger.received_at[k] for k in phase_keys) - back), 2) if phase_keys else 0.0
    with ledger.lock:
        backlog = [ledger.received_at.get(k) for k in phase_keys if ledger.accepted_at.get(k[1], 0) <= back]
    if backlog and all(t is not None for t in backlog):
        res.backlog_s = round(max(0.0, max(backlog) - back), 2)
    if kind == "cluster":
        # failover: what was accepted while the node was down (up to FAILOVER_MARGIN_S before its
        # return) was all delivered before it was back: the hub carried on through the two other nodes
        t0, nb = times["t0"], node_back[0]
        with ledger.lock:
            during = [(r, m) for m, rs in ledger.accepted.items() for r in rs
                      if t0 < ledger.accepted_at.get(m, 0) < nb - FAILOVER_MARGIN_S]
            late = [k for k in during if ledger.received_at.get(k, float("inf")) >= nb]
            got = [ledger.received_at[k] for k in during if k in ledger.received_at]
            latency = sorted(ledger.received_at[k] - ledger.accepted_at[k[1]] for k in during if k in ledger.received_at)
        if during and not late:
            res.failover_s = round(max(got) - t0, 2)
            res.notes.append(f"failover: {len(during)} deliveries of messages accepted while the node was down, "
                             f"latency p50 {latency[len(latency) // 2]:.1f} s, max {latency[-1]:.1f} s")
        else:
            res.failover_s = None
            res.notes.append(f"no failover: {len(late)} of {len(during)} deliveries of messages accepted while the "
                             f"node was down came only after it was back ({nb - t0:.1f} s after the kill)")
    if len(apps) < applications:
        res.notes.append(f"only {len(apps)} of {applications} applications accepted")
    res.http_5xx = dict(Counter(answers.status_5xx) - s5)
    res.http_500 = sum(v for k, v in res.http_5xx.items() if k != "503+RA")
    res.other_4xx = dict(Counter(answers.other_4xx) - o4)
    res.transport_errors = sum(answers.transport_errors.values()) - tr
    res.crashes = {p.name: p.crashes - crashes0[p.name] for p in d.hub_procs + [d.sandbox]
                   if p.crashes - crashes0[p.name]}
    res.refused_starts = {p.name: p.refused_starts - refused0.get(p.name, 0) for p in d.hub_procs + [d.sandbox]
                          + d.late if p.refused_starts - refused0.get(p.name, 0)}
    try:
        res.outbox_pending = int(db.scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL"))
    except Exception as exc:  # noqa: BLE001
        res.notes.append(f"outbox not readable: {exc}"[:300])
    res.queues = d.queue_depths()
    for p in d.late:          # the processes started during the broker outage have had their say
        p.stop()
    return res


# ── a whole run ──────────────────────────────────────────────────────────────────────────────

@dataclass
class Report:
    faults: list[FaultResult] = field(default_factory=list)
    audit: dict[str, str] = field(default_factory=dict)         # deployment → `audit verify` verdict line
    audit_intact: dict[str, bool] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    hub_commit: str = ""
    misbehaviour: list[str] = field(default_factory=list)        # log lines worth reading
    duplicate_examples: list[str] = field(default_factory=list)
    answer_examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.faults) and all(f.ok for f in self.faults) and bool(self.audit_intact) \
            and all(self.audit_intact.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "faults_ok": {f.fault: f.ok for f in self.faults}}


_INTERESTING = ("error", "Traceback", "exception", "unreachable", "died", "lease", "failed")


def _log_evidence(d: Deployment, label: str, limit: int = 6) -> list[str]:
    """Per process and phase, the first line of each kind of error or warning (by its `event`)."""
    out = []
    for p in d.hub_procs + d.late:
        phase = "start"
        seen: set[tuple[str, str]] = set()
        for ln in p.log_tail(10 ** 8).splitlines():
            if ln.startswith("=== phase "):
                phase = ln.split()[2]
                continue
            if not any(w.lower() in ln.lower() for w in _INTERESTING):
                continue
            try:
                kind = json.loads(ln).get("event", ln[:60])
            except ValueError:
                kind = ln[:60] if not ln.startswith(" ") else "traceback"
            if (phase, kind) in seen or sum(1 for ph, _ in seen if ph == phase) >= limit:
                continue
            seen.add((phase, kind))
            out.append(f"[{label} {p.name} during {phase}] {ln[:500]}")
    return out


def _hub_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s", "--", "hub"],
                              capture_output=True, text=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def _deployment_run(label: str, faults: Sequence[str], workdir: Path, db: OwnDatabase, nodes: Sequence[Node], *,
                    applications: int, workers: int, outage: float, drain_timeout: float, extra_env: dict[str, str],
                    source_latency_ms: float, report: Report, progress: Callable[[str], None],
                    keep_logs: Path | None = None) -> None:
    d = Deployment(workdir, db, [n.url for n in nodes], workers=workers, extra_env=extra_env,
                   source_latency_ms=source_latency_ms)
    t0 = time.monotonic()
    try:
        try:
            d.start()
        except RuntimeError as exc:
            for kind in faults:
                report.faults.append(FaultResult(kind, applications=applications,
                                                 error=f"the deployment did not start: {exc}"[:2000]))
            report.misbehaviour.append(f"[{label}] the deployment did not start: {str(exc)[:1500]}")
            return
        report.timings[f"{label}_deployment_start_s"] = round(time.monotonic() - t0, 1)
        ledger, answers = Ledger(), Answers()
        traffic = Traffic(d, ledger, answers)
        try:
            traffic.submit("warmup", list(range(WARMUP)))
            # the warm-up delivered (forwards included) before the first fault: what a fault holds up
            # is then its own kind's traffic
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with ledger.lock:
                    fwds = sum(1 for m, ph in ledger.phase_of.items() if ph == "warmup" and m.startswith("fwd-"))
                if fwds >= WARMUP and not ledger.outstanding("warmup"):
                    break
                time.sleep(0.1)
            else:
                report.misbehaviour.append(f"[{label}] the warm-up was not delivered within 60 s")
            serial = 1000
            for kind in faults:
                progress(f"{label}: {kind} ({applications} applications)")
                r = run_fault(kind, d, traffic, db, nodes, applications=applications, serial0=serial,
                              outage=outage, drain_timeout=drain_timeout, progress=progress)
                serial += applications
                report.faults.append(r)
                progress(f"{kind}: lost {r.lost}, duplicated {r.duplicated}, 5xx {r.http_5xx}, "
                         f"drain {r.drain_s} s")
        finally:
            traffic.close()
            report.duplicate_examples += ledger.duplicate_examples
            report.answer_examples += answers.examples
            if traffic.errors:
                report.misbehaviour.append(f"[{label}] harness thread error: {traffic.errors[0]!r}"[:600])
        d.stop()
        v = d.cli("audit", "verify")
        verdict = (v.stdout + v.stderr).strip()
        report.audit[label] = verdict[-600:]
        report.audit_intact[label] = v.returncode == 0 and "intact" in verdict.lower() \
            and "not intact" not in verdict.lower()
    finally:
        report.misbehaviour += _log_evidence(d, label)
        if keep_logs is not None:
            import shutil
            shutil.copytree(workdir / "logs", keep_logs / label, dirs_exist_ok=True)
        for p in d.hub_procs + [d.sandbox]:
            if p.exits:
                report.misbehaviour.append(f"[{label} {p.name}] exits by itself: {p.exits[:6]}")
        d.stop()
        d.delete_queues()


def run_chaos(faults: Sequence[str] = FAULTS, *, applications: int = 1000, workers: int = 2, outage: float = 3.0,
              drain_timeout: float = 90.0, extra_env: dict[str, str] | None = None, source_latency_ms: float = 100.0,
              keep_logs: Path | None = None, pg_server: str = PG_SERVER, progress: Callable[[str], None] = lambda s: None) -> Report:
    """Every fault kind of `faults` (single-node ones on one deployment, `cluster` on a second one on a
    3-node cluster started meanwhile); everything it made is removed afterwards."""
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
    report = Report(hub_commit=_hub_commit())
    extra_env = extra_env or {}
    single = [f for f in faults if f != "cluster"]
    with tempfile.TemporaryDirectory(prefix="wib-chaos-") as tmp, RabbitNodes() as rn:
        cluster_box: dict[str, Any] = {}

        def start_cluster() -> None:
            try:
                t = time.monotonic()
                cluster_box["nodes"] = rn.start(3)
                cluster_box["took"] = time.monotonic() - t
            except BaseException as exc:  # noqa: BLE001
                cluster_box["error"] = exc

        cluster_thread = None
        if single:
            t = time.monotonic()
            nodes = rn.start(1)
            report.timings["node_start_s"] = round(time.monotonic() - t, 1)
            if "cluster" in faults:      # started while the single-node faults run
                cluster_thread = threading.Thread(target=start_cluster, daemon=True)
                cluster_thread.start()
            db = OwnDatabase(pg_server)
            try:
                _deployment_run("single", single, Path(tmp) / "single", db, nodes, applications=applications,
                                workers=workers, outage=outage, drain_timeout=drain_timeout,
                                extra_env=extra_env, source_latency_ms=source_latency_ms, report=report,
                                progress=progress, keep_logs=keep_logs)
            finally:
                db.close()
        if "cluster" in faults:
            if cluster_thread is None:
                start_cluster()
            else:
                cluster_thread.join()
            if "error" in cluster_box:
                report.faults.append(FaultResult("cluster", applications=applications,
                                                 error=f"the cluster did not start: {cluster_box['error']}"[:1500]))
            else:
                report.timings["cluster_start_s"] = round(cluster_box["took"], 1)
                report.timings.update({f"cluster_{k}": round(v, 1) for k, v in rn.timings.items()
                                       if k.startswith(("join", "start_3"))})
                db = OwnDatabase(pg_server)
                try:
                    _deployment_run("cluster", ["cluster"], Path(tmp) / "cluster", db, cluster_box["nodes"],
                                    applications=applications, workers=workers, outage=outage,
                                    drain_timeout=drain_timeout, extra_env=extra_env,
                                    source_latency_ms=source_latency_ms, report=report, progress=progress,
                                    keep_logs=keep_logs)
                finally:
                    db.close()
    return report
