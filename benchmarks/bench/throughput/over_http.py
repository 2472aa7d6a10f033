"""The hub as `wib-hub serve` in its own process (API + relay + route consumers, as deployed on one
machine), driven through its HTTP API (--http): clients POST /v1/applications, inboxes GET
/v1/inbox and POST /v1/inbox/ack, each an httpx client with one keep-alive connection. With
--http-batch N the clients POST /v1/messages:batch, N applications per request, instead; with
--http-rate R they send R requests per second between them (open loop) instead of as fast as
answered (closed loop), and the time in a request counts from when it was due; with
--http-processes N the hub runs as in production, `wib-hub api --processes N` beside a
`wib-hub worker`, instead of one `serve`."""
from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from adapters.simulator import free_port
from bench.measure import CpuMeter
from bench.throughput.core import (
    FLOW, REGIONS, Result, application, check_store, hub_result, payloads, probe, run_threads, split, stage_latencies,
    wait_all,
)
from bench.throughput.setup import HubSetup, start_hub_process, stop_hub_process
from hub.domain.flows import region_party
from hub.infra.store.db import open_engine


def _wait_ready(base: str, server: subprocess.Popen, log_path: Path) -> None:
    """Until /readyz answers 200; fails with the end of the server's log if it exits or takes a minute."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"wib-hub serve did not become ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    """The processes `wib-hub api --processes N` forked (Linux /proc)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_over_http(config: str, setup: HubSetup, args: argparse.Namespace) -> Result:
    """One run through the API; the store is checked after `serve` stopped (it sealed the tail)."""
    st = setup.settings
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(HUB_HOST="127.0.0.1", HUB_PORT=str(port), HUB_TOKEN_TTL_SECONDS="3600")
    worker = None
    if args.http_processes:   # the production shape: N API processes on one port, the workers apart
        server, log_path = start_hub_process(st, ["api", "--processes", str(args.http_processes)], **env)
        worker, _ = start_hub_process(st, ["worker", "--routers", str(args.routers)])
    else:
        server, log_path = start_hub_process(st, ["serve"], **env)
    try:
        _wait_ready(base, server, log_path)
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
                except BaseException as exc:  # noqa: BLE001 - reported by the main thread
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

            def batches(http: httpx.Client, chunk: Sequence[dict[str, Any]], size: int) -> None:
                for start in range(0, len(chunk), size):
                    t0 = time.perf_counter()
                    r = http.post("/v1/messages:batch",
                                  json={"messages": [{"flow": FLOW, "payload": p} for p in chunk[start:start + size]]})
                    results = r.json().get("results") if r.status_code == 200 else None
                    if results is None or any(x["status"] != 202 for x in results):
                        raise RuntimeError(f"POST /v1/messages:batch: {r.status_code} {r.text[:300]}")
                    now = time.perf_counter()
                    for x in results:
                        returned[x["message_id"]], submitted[x["message_id"]] = now, t0

            def client(job: tuple[httpx.Client, Sequence[dict[str, Any]]]) -> None:
                http, chunk = job
                if args.http_batch:
                    return batches(http, chunk, args.http_batch)
                # --http-rate: open loop, each client on its own schedule; a request's time counts from
                # when it was due, so a server that falls behind shows it (no coordinated omission)
                every = len(portals) / args.http_rate if args.http_rate else 0.0
                due = time.perf_counter() + every * portals.index(http) / len(portals)
                for payload in chunk:
                    if every:
                        time.sleep(max(0.0, due - time.perf_counter()))
                        t0, due = due, due + every
                    else:
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
        # the hub's processes (API children and worker included), not the HTTP clients
        cpu = CpuMeter(include_self=False, pids=[server.pid, *_children(server.pid)] + ([worker.pid] if worker else []))
        submitted, returned = load(batch)
        wait_all(list(submitted), acked, args.timeout, f"{config} (HTTP)")
        usage = cpu.stop()
        if errors:
            raise errors[0]

        def send_one(i: int) -> str:
            r = portals[0].post("/v1/applications", json=application(2_000_000 + i, turn=i))
            r.raise_for_status()
            return r.json()["message_id"]

        unloaded = probe(send_one, acked, args.probe) if args.probe else (float("nan"),) * 2
        label = f"hub, {config}, HTTP" + (f", batch {args.http_batch}" if args.http_batch else "") \
            + (f", api ×{args.http_processes} + worker" if args.http_processes else "") \
            + (f", {args.http_rate:g} requests/s offered" if args.http_rate else "")
        result = hub_result(label, submitted, returned, acked, usage, unloaded)
        stop.set()
        for t in inbox_threads:
            t.join(timeout=10)
        for c in portals:
            c.close()
    finally:
        stop_hub_process(server)  # uvicorn stops, then `serve` closes the hub
        if worker is not None:
            stop_hub_process(worker)
    engine = open_engine(st.resolved_database_url())
    try:
        # the token requests leave audit events of their own: the deliveries are counted, not the events
        result.notes.update(check_store(f"{config} (HTTP)", engine, st, args.warmup + args.messages + args.probe,
                                        None))
        result.notes.update(stages=stage_latencies(engine, list(submitted)), versions=setup.versions)
    finally:
        engine.dispose()
    return result
