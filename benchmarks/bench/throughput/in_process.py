"""The hub in this process, built by hub.bootstrap.build_hub like `wib-hub serve`: client threads
call hub.messaging.ingress.submit_many with --submit-batch messages at a time (1: one message per
call, as a single API request; the HTTP layer is not measured), recipient threads read their
inboxes and acknowledge. The relay and the routers run here, or in a `wib-hub worker` process
(--worker-process), as the production shape runs them."""
from __future__ import annotations

import argparse
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from bench.measure import CpuMeter
from bench.throughput.core import (
    EVENTS_PER_MESSAGE, FLOW, REGIONS, Result, application, check_store, hub_result, payloads, probe, run_threads,
    split, stage_latencies, wait_all,
)
from bench.throughput.setup import HubSetup, start_hub_process, stop_hub_process
from hub.bootstrap import Hub, build_hub
from hub.domain.flows import region_party
from hub.infra.store.schema import deliveries
from hub.messaging.inbox import acknowledge, inbox_item
from hub.messaging.ingress import Accepted, Submission, submit, submit_many


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
                acknowledge(hub.work, hub.registry, party, [item["id"] for item in items])
                now = time.perf_counter()
                for item in items:
                    self.acked[item["message_id"]] = now
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                self.errors.append(exc)
                self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def run_in_process(config: str, setup: HubSetup, args: argparse.Namespace) -> Result:
    """Warm-up, the measured load, the one-at-a-time probe, then the checks on the store."""
    hub = build_hub(setup.settings)
    workers: list[subprocess.Popen] = []
    label = f"hub, {config}"
    processes = args.worker_processes or (1 if args.worker_process else 0)
    if processes:
        for k in range(processes):
            workers.append(start_hub_process(setup.settings, ["worker", "--routers", str(args.routers)],
                                             log_name=f"worker-{k + 1}")[0])
        label += f", {processes} worker process{'es' if processes > 1 else ''}"
    else:
        hub.start_workers(routers=args.routers)
    inboxes = Inboxes(hub, [region_party(r) for r in REGIONS], poll_s=args.poll_ms / 1000)
    ingress = hub.ingress
    try:
        def load(batch: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
            submitted: dict[str, float] = {}
            returned: dict[str, float] = {}

            def client(chunk: Sequence[dict[str, Any]]) -> None:
                step = max(1, args.submit_batch)
                for at in range(0, len(chunk), step):
                    t0 = time.perf_counter()
                    answers = submit_many(ingress, [Submission(flow_id=FLOW, sender="portal", payload=payload)
                                                    for payload in chunk[at:at + step]])
                    t1 = time.perf_counter()
                    for accepted in answers:
                        if not isinstance(accepted, Accepted):
                            raise accepted
                        returned[accepted.message_id] = t1
                        submitted[accepted.message_id] = t0

            run_threads(client, split(batch, args.clients), "client")
            return submitted, returned

        # warm-up: connections, statement caches, JSON Schema validators, queue leaders — not counted
        warm, _ = load(payloads(args.warmup, offset=1_000_000))
        wait_all(list(warm), inboxes.acked, args.timeout, f"{config} warm-up")

        batch = payloads(args.messages, offset=0)
        cpu = CpuMeter(pids=[w.pid for w in workers])
        submitted, returned = load(batch)
        wait_all(list(submitted), inboxes.acked, args.timeout, config)
        usage = cpu.stop()
        if inboxes.errors:
            raise inboxes.errors[0]

        def send_one(i: int) -> str:
            payload = application(2_000_000 + i, turn=i)
            return submit(ingress, Submission(flow_id=FLOW, sender="portal", payload=payload)).message_id

        unloaded = probe(send_one, inboxes.acked, args.probe) if args.probe else (float("nan"),) * 2
        result = hub_result(label, submitted, returned, inboxes.acked, usage, unloaded)
        inboxes.close()
        result.notes.update(check_store(config, hub.engine, setup.settings,
                                        args.warmup + args.messages + args.probe, EVENTS_PER_MESSAGE))
        result.notes["stages"] = stage_latencies(hub.engine, list(submitted))
        result.notes["versions"] = setup.versions
        return result
    finally:
        inboxes.close()
        for w in workers:
            stop_hub_process(w)
        hub.close()
