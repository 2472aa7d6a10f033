#!/usr/bin/env python
"""The hub under faults: the production shape as processes, real flows over HTTP, one fault at a time.

    .venv/bin/python benchmarks/chaos.py [--messages N] [--faults worker,api,...] [--json F]

What runs (tests/support/chaos.py): `wib-hub sandbox` (the source simulators; the hub has
HUB_SANDBOX=false and HUB_SOURCES pointing at it), `wib-hub api`, `--workers` `wib-hub worker`
processes, on a PostgreSQL database of its own (CREATE DATABASE wib_chaos_<random> on the shared
server, dropped at the end) and RabbitMQ nodes of its own (tests/support/rabbitnodes.py: one node,
and a 3-node cluster for the `cluster` fault, HUB_BROKER_URL listing the three).

The traffic: the portal submits applications; each region forwards each one to DVZ
(admissible-to-dvz, enriched from the sandbox's sources) and acknowledges it; DVZ acknowledges.
Every failed POST is sent again with the same message id until it is accepted.

The faults, one kind at a time, injected once a third of a kind's applications are accepted:
  worker    SIGKILL of one worker, started again after the outage
  api       SIGKILL of the API process, started again after the outage
  source    SIGKILL of the sandbox (every source down), started again after the outage
  broker    SIGKILL of the (single) broker node's beam.smp, started again after the outage
  database  pg_terminate_backend of every connection to the hub's database (twice, 1 s apart)
  cluster   SIGKILL of the cluster node the workers are connected to, restarted after 10 s (at least
            the outage); recovery counts from the kill (the other two nodes serve on), and "failover s"
            is the kill → the last delivery of what was accepted while the node was down, all of it
            before the node was back (never: some waited for the killed node)

Figures per kind: applications, messages accepted, deliveries expected (the recipients the hub
named), received (unique per recipient), lost, duplicated (seen again after its ack, or under two
delivery ids), 5xx answers by status ("503+RA": with Retry-After, acceptable during an outage),
transport errors, outage, recovery (failed part back → first delivery; → the kind's last delivery),
(backlog: → the last delivery of what was accepted before it was back), whether the stall ended by itself (within --drain-timeout), outbox rows not relayed, and the route
queue's retry and parking queues. At the end `wib-hub audit verify` per deployment.
A supervisor restarts a hub process that exits by itself (as `restart: unless-stopped`), counted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support.chaos import FAULTS, PG_SERVER, Report, pg_server_from_test_url, run_chaos  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)


def options(argv: Sequence[str] | None) -> argparse.Namespace:
    import os
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--messages", type=int, default=2000,
                   help="messages per fault kind (default 2000): half applications, half their forwards to DVZ")
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, in order (default {','.join(FAULTS)})")
    p.add_argument("--workers", type=int, default=2, help="wib-hub worker processes (default 2)")
    p.add_argument("--outage", type=float, default=3.0, help="seconds a killed part stays down (default 3)")
    p.add_argument("--drain-timeout", type=float, default=150.0,
                   help="seconds to wait, after the failed part is back, for every expected delivery (default 150)")
    p.add_argument("--enrich-retry-max", type=float, default=None,
                   help="HUB_ENRICH_RETRY_MAX_SECONDS for the hub (default: the hub's own default)")
    p.add_argument("--source-latency-ms", type=float, default=100.0,
                   help="latency the sandbox adds to every source answer (default 100)")
    p.add_argument("--pg-server", default=pg_server_from_test_url(os.environ.get("HUB_TEST_DATABASE_URL")) or PG_SERVER,
                   help="PostgreSQL server (no database) on which to create the run's own database")
    p.add_argument("--keep-logs", type=Path, default=None,
                   help="copy the hub processes' logs here (default: a new /tmp/wib-chaos-logs-* directory)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def fmt(v: object) -> str:
    if v is None:
        return "[red]never[/]"
    if isinstance(v, float):
        return f"{v:.1f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {n}" for k, n in v.items()) or "0"
    return str(v)


def render(report: Report) -> None:
    t = Table(title=f"wib-hub chaos — hub at {report.hub_commit}")
    cols = ("fault", "apps", "accepted", "expected", "received", "lost", "dup", "5xx", "transport err",
            "outage s", "flow s", "backlog s", "drain s", "failover s", "stall ended", "outbox pending", "retry/parking", "crashes", "verdict")
    for c in cols:
        t.add_column(c, justify="left" if c in ("fault", "5xx", "crashes", "verdict") else "right")
    for f in report.faults:
        rp = sum(v or 0 for q, v in f.queues.items() if ".retry." in q or q.endswith(".parking"))
        crashes = {**{k: f"{v} crash" for k, v in f.crashes.items()},
                   **{k: f"{v} refused start" for k, v in f.refused_starts.items()}}
        red = lambda n: f"[red]{n}[/]" if n else "0"  # noqa: E731
        t.add_row(f.fault, str(f.applications), str(f.accepted), str(f.expected), str(f.received), red(f.lost),
                  red(f.duplicated), fmt(f.http_5xx), str(f.transport_errors), fmt(f.outage_s), fmt(f.flow_s),
                  fmt(f.backlog_s), fmt(f.drain_s), "" if f.failover_s == -1.0 else fmt(f.failover_s), "yes" if f.stall_ended else "[red]no[/]",
                  red(f.outbox_pending) if f.outbox_pending is not None else "?", red(rp), fmt(crashes),
                  "[green]ok[/]" if f.ok else "[red]FAIL[/]")
    console.print(t)
    a = Table(title="audit verify, per deployment")
    a.add_column("deployment")
    a.add_column("intact")
    a.add_column("verdict")
    for label, verdict in report.audit.items():
        a.add_row(label, "[green]yes[/]" if report.audit_intact.get(label) else "[red]no[/]", verdict[-300:])
    console.print(a)
    tm = Table(title="start-up times (s)")
    tm.add_column("what")
    tm.add_column("s", justify="right")
    for k, v in report.timings.items():
        tm.add_row(k, f"{v:.1f}")
    console.print(tm)
    for f in report.faults:
        for n in f.notes:
            console.print(f"{f.fault}: {n}", markup=False)
        if f.error:
            console.print(f"[red]{f.fault} error:[/] {f.error[:1500]}")
    if report.answer_examples:
        console.print("[bold]answers seen[/] (first ones):")
        for e in report.answer_examples:
            console.print("  " + e, markup=False)
    if report.duplicate_examples:
        console.print("[bold]duplicates[/]:")
        for e in report.duplicate_examples:
            console.print("  " + e, markup=False)
    if report.misbehaviour:
        console.print("[bold]hub log lines worth reading[/]:")
        for e in report.misbehaviour[:60]:
            console.print("  " + e, markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = options(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    extra = {}
    if args.enrich_retry_max is not None:
        extra["HUB_ENRICH_RETRY_MAX_SECONDS"] = str(args.enrich_retry_max)
    apps = max(1, args.messages // 2)
    import tempfile
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="wib-chaos-logs-"))
    console.print(f"[bold]wib-hub chaos[/]: {', '.join(faults)}; {apps} applications (+ their forwards) per fault, "
                  f"{args.workers} workers, outage {args.outage:.0f} s")
    t0 = time.monotonic()
    report = run_chaos(faults, applications=apps, workers=args.workers, outage=args.outage,
                       drain_timeout=args.drain_timeout, extra_env=extra, pg_server=args.pg_server,
                       source_latency_ms=args.source_latency_ms, keep_logs=logs,
                       progress=lambda s: console.print(f"[dim]{time.monotonic() - t0:6.1f}s {s}[/]", markup=True))
    report.timings["total_s"] = round(time.monotonic() - t0, 1)
    render(report)
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    console.print(f"the hub processes' logs: {logs}")
    console.print(f"total {time.monotonic() - t0:.0f} s: " + ("[green]every fault survived[/]" if report.ok
                                                               else "[red]the hub did not survive every fault[/]"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
