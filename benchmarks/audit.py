#!/usr/bin/env python
"""Audit trail: append rate with chaining and signed checkpoints, and verify time.

    .venv/bin/python benchmarks/audit.py [--appends N] [--batch B] [--verify-events N] [--only sqlite|postgres]

Append: `hub.audit.chain.append` as the hub calls it, through the store's unit of work
(`UnitOfWork.transaction`: the events recorded, appended at commit) with its CheckpointPolicy:
checkpoints signed every 1,000 events (Ed25519, default N; T = 60 s), B events per transaction
(batched, as group commit does) and, for reference, one event per transaction. Events look like
the hub's (flow, message, dossier, actor, recipient, purpose, legal bases, data categories,
payload hash).
Verify: a chain of N events (default 1,000,000) checked by `hub.audit.verify` — every event's
own hash, every link, every checkpoint's signature and interval digest — with 1 process and with
one per CPU. SQLite: a file in a temporary directory; PostgreSQL: a fresh schema, dropped after
(HUB_TEST_DATABASE_URL or --database-url, as the tests).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.services import add_service_options, temp_schema
from hub import audit
from hub.audit import AuditEvent, CheckpointPolicy
from hub.audit.checkpoints import Signer, ensure_key
from hub.infra.store import migrate, open_engine
from hub.infra.store.unit_of_work import UnitOfWork


def events(first: int, n: int) -> list[AuditEvent]:
    return [AuditEvent("delivered", flow_id="single-permit.application-submitted", message_id=f"m{i:012d}",
                       correlation_id=f"c{i:012d}", dossier_id=f"{uuid.UUID(int=i // 4)}", actor="portal",
                       recipient="region.flanders", purpose=2, legal_basis=["Art. 19", "Art. 10 2°"],
                       data_categories=["identification", "employment", "residence"], payload_hash="ab" * 32)
            for i in range(first, first + n)]


def fill(work: UnitOfWork, total: int, batch: int) -> float:
    """Append `total` events, `batch` per transaction; the seconds it took."""
    start = time.perf_counter()
    done = 0
    while done < total:
        n = min(batch, total - done)
        evs = events(done, n)
        with work.transaction() as tx:
            tx.record(evs)
        done += n
    return time.perf_counter() - start


def bench_store(name: str, url: str, signer: Signer, args: argparse.Namespace) -> dict[str, Any]:
    engine = open_engine(url)
    migrate(engine)
    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=1000, every_seconds=60.0))
    out: dict[str, Any] = {"store": name}
    try:
        # building the AuditEvent objects is inside the timing: it is the caller's cost
        secs = fill(work, args.appends, args.batch)
        out["batched"] = args.appends / secs
        secs = fill(work, args.single, 1)
        out["single"] = args.single / secs
        if args.verify_events:
            have = args.appends + args.single
            if args.verify_events > have:
                fill(work, args.verify_events - have, 2000)
            for workers in (1, os.cpu_count() or 1):
                t = time.perf_counter()
                report = audit.verify(engine, public_key=signer.public_key, workers=workers)
                out[f"verify_{workers}"] = time.perf_counter() - t
                assert report.intact, report
            out["verified"] = report.count
            out["checkpoints"] = report.checkpoints
    finally:
        work.close()
        engine.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--appends", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--single", type=int, default=5_000)
    p.add_argument("--verify-events", type=int, default=1_000_000)
    p.add_argument("--only", choices=["sqlite", "postgres"])
    add_service_options(p, broker=False)
    args = p.parse_args()
    print(f"{platform.python_version()} on {os.cpu_count()} CPUs; {args.appends:,} appends in batches of "
          f"{args.batch}, {args.single:,} single; verify {args.verify_events:,}")
    with tempfile.TemporaryDirectory() as tmp:
        signer = ensure_key(Path(tmp) / "audit.pem")
        results = []
        if args.only in (None, "sqlite"):
            results.append(bench_store("sqlite", f"sqlite:///{tmp}/hub.db", signer, args))
            print(results[-1], flush=True)
        if args.only in (None, "postgres"):
            with temp_schema(args.database_url) as schema:
                results.append(bench_store("postgres", schema.url, signer, args))
            print(results[-1], flush=True)
    cpus = os.cpu_count() or 1
    print(f"\n| store | appends/s batched ({args.batch}/tx) | appends/s single | verify {args.verify_events:,}: "
          f"1 process | {cpus} processes |\n|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['store']} | {r['batched']:,.0f} | {r['single']:,.0f} | {r.get('verify_1', 0):.1f} s | "
              f"{r.get(f'verify_{cpus}', 0):.1f} s |")


if __name__ == "__main__":
    main()
