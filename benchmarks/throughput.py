#!/usr/bin/env python
"""Throughput of the hub core, end to end, next to raw pika with the same durability.

    .venv/bin/python benchmarks/throughput.py [--messages N] [--only embedded|production|raw]

What one hub message goes through here (the whole core, audit at every step):

    client thread ─► submit(): validate (JSON Schema, data categories) ─► authorise ─► store
    (dossier + message + outbox + 4 audit events, one transaction) ─► relay (outbox ─► broker,
    confirmed, 1 audit event per message) ─► router (consume, need-to-know projection, delivery
    row + 1 audit event) ─► recipient thread (reads its inbox as GET /v1/inbox does, then
    hub.messaging.inbox.acknowledge: 1 audit event) ─► done.

Two hub configurations, built with hub.bootstrap.build_hub like `wib-hub serve`:
  production  RabbitMQ + PostgreSQL, in a fresh schema and under a fresh queue prefix (both removed
              afterwards, queues included: route, .parking and .delay.*)
  embedded    SQLite file + the embedded transport, in a temporary directory

Load is driven in-process (hub.messaging.ingress.submit from several client threads): the HTTP layer
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

This file reads the options and prints the figures; the runs themselves are in bench/throughput/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench.measure import console, machine
from bench.services import add_service_options
from bench.throughput.amqp_ingress import run_amqp_ingress
from bench.throughput.core import REGIONS, Result
from bench.throughput.in_process import run_in_process
from bench.throughput.over_http import run_over_http
from bench.throughput.raw import MODES, envelope_bodies, run_raw
from bench.throughput.setup import hub_setup
from bench.throughput.tables import detail_table, stage_table, summary_table
from hub.infra.settings import Settings


def options(argv: Sequence[str] | None) -> argparse.Namespace:
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
    p.add_argument("--http-batch", type=int, metavar="N",
                   help="with --http: clients POST /v1/messages:batch, N messages per request (default: one per request)")
    p.add_argument("--http-processes", type=int, metavar="N",
                   help="with --http: `wib-hub api --processes N` and a `wib-hub worker` instead of `serve`")
    p.add_argument("--http-rate", type=float, metavar="R",
                   help="with --http: clients send R requests per second in all (open loop; default: closed loop)")
    p.add_argument("--amqp-ingress", action="store_true",
                   help="production only: publish the applications on the portal's AMQP ingress queue instead "
                        "(bench/throughput/amqp_ingress.py; needs rabbitmqctl for the portal's broker user)")
    p.add_argument("--worker-process", action="store_true",
                   help="relay and routers in a `wib-hub worker` process beside this one (not with --http)")
    p.add_argument("--worker-processes", type=int, default=0, metavar="N",
                   help="relay and routers in N `wib-hub worker` processes sharing the work (not with --http; "
                        "--worker-process is N=1)")
    p.add_argument("--submit-batch", type=int, default=1,
                   help="in-process clients hand over this many submissions at once (ingress.submit_many); "
                        "default 1: one submit() per message")
    p.add_argument("--probe", type=int, default=50, help="messages sent one at a time after the run (default 50)")
    p.add_argument("--poll-ms", type=float, default=10.0, help="inbox poll interval when empty (default 10)")
    p.add_argument("--batch", type=int, default=Settings.model_fields["relay_batch"].default,
                   help="raw batched publisher: messages per confirmed batch (default: the relay's batch)")
    p.add_argument("--prefetch", type=int, default=Settings.model_fields["worker_prefetch"].default,
                   help="raw consumer prefetch (default: the hub's worker prefetch)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting for acks after this many seconds")
    add_service_options(p, database_help="PostgreSQL for the production configuration",
                        broker_help="RabbitMQ for the production configuration and raw pika")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def run_hub(config: str, args: argparse.Namespace) -> Result:
    with hub_setup(config, args) as setup:
        return (run_amqp_ingress if args.amqp_ingress else run_over_http if args.http
                else run_in_process)(config, setup, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = options(argv)
    want = {args.only} if args.only else {"raw", "embedded", "production"}
    m = machine()
    console.print(f"[bold]wib-hub throughput[/]: {args.messages} messages per hub configuration "
                  f"({args.raw_messages} per raw baseline) after {args.warmup} warm-up, {args.clients} client threads, "
                  f"{'HTTP, `wib-hub serve`' if args.http else f'{args.routers} routers'}, "
                  f"{len(REGIONS)} inbox threads; "
                  f"{m['cores']} cores, {m['memory']}, Python {m['python']}")
    results: list[Result] = []
    started = time.perf_counter()
    if "raw" in want:
        bodies = envelope_bodies(500)
        size = statistics.mean(len(b) for b in bodies)
        console.print(f"raw pika: bodies are the hub's envelopes for the same applications, "
                      f"{size:,.0f} bytes on average")
        for mode in MODES:
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
