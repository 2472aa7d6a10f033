#!/usr/bin/env python
"""Art. 27 deletion at scale on PostgreSQL, and its effect on concurrent message throughput.

    .venv/bin/python benchmarks/retention.py [--dossiers 1000000] [--batch 1000] [--no-throughput]

1. Load, in a fresh PostgreSQL schema (dropped at the end), `--dossiers` expired dossiers with what
   the hub keeps for each: the dossier row (application with a document), 2 messages and their
   outbox rows, 3 deliveries (projections), 1 enrichment job and 2 enrichments, 1 clock, and its
   anonymous stats_facts row: 12 rows to delete per dossier, loaded with COPY through psycopg.
   The same number again expires one year later (set B) for step 3.
2. `hub.lifecycle.retention.run` deletes set A alone, through the store's unit of work: rows/s and
   dossiers/s (each dossier also appends its `deleted` audit event, checkpoints signed as in
   production).
3. `benchmarks/throughput.py --only production` (RabbitMQ + PostgreSQL, its own schema on the same
   server) runs alone, then again while set B is being deleted: both message rates, and the
   deletion's rate while they overlap.

Ids are random UUIDs and retain_until is random, so the deletion walks the tables' indexes in an
order unrelated to how the rows were written, as it would in production. The figures depend on the
machine: this process, PostgreSQL and RabbitMQ share its cores.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select, text

from bench.measure import console, machine
from bench.services import add_service_options, temp_schema
from hub import audit
from hub.audit import CheckpointPolicy
from hub.audit.checkpoints import ensure_key
from hub.domain.dossier import add_years
from hub.infra.settings import Settings
from hub.infra.store.db import migrate, open_engine
from hub.infra.store.schema import audit_events, stats_facts
from hub.infra.store.unit_of_work import UnitOfWork
from hub.lifecycle import retention

HERE = Path(__file__).resolve().parent

SET_A = datetime(2015, 1, 1, tzinfo=timezone.utc)     # set A expires over 2015-2019
SET_B = datetime(2021, 1, 1, tzinfo=timezone.utc)     # set B over 2021 (after set A's `now`)
NOW_A, NOW_B = datetime(2020, 1, 1, tzinfo=timezone.utc), datetime(2022, 1, 1, tzinfo=timezone.utc)


# ── bulk load (COPY, text format) ────────────────────────────────────────────────────────────────

def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S+00")


def _rows(n: int, expire_from: datetime, spread_days: int, rng: random.Random, doc_bytes: int
          ) -> Iterator[dict[str, list[str]]]:
    """Per chunk of dossiers: COPY text lines per table (JSON without tabs, newlines or backslashes)."""
    document = "A" * doc_bytes
    chunk = 2000
    for start in range(0, n, chunk):
        out: dict[str, list[str]] = {t: [] for t in COPY_COLUMNS}
        for _ in range(min(chunk, n - start)):
            did, fact = str(uuid.uuid4()), str(uuid.uuid4())
            m1, m2 = str(uuid.uuid4()), str(uuid.uuid4())
            retain = expire_from + timedelta(seconds=rng.randrange(spread_days * 86400))
            created = add_years(retain, -10)     # granted: kept 10 years from submission
            c, n1, d = _ts(created), _ts(created + timedelta(days=120)), _ts(created + timedelta(days=118))
            insz = f"{rng.randrange(10**11):011d}"
            passport = f"EP{rng.randrange(10**7):07d}"
            app = ('{"application_kind":"single_permit","category":"single_permit","competent_region":"flanders",'
                   f'"worker":{{"insz":"{insz}","passport_number":"{passport}","given_name":"Synthetic",'
                   f'"family_name":"Person","nationality":"IND"}},"employer":{{"kbo":"0123456789"}},'
                   f'"documents":[{{"kind":"passport","content":"{document}"}}]}}')
            out["dossiers"].append("\t".join((
                did, "single_permit", "single_permit", "region.flanders", "notified", "granted", "granted", app,
                c, n1, insz, passport, c, "residence_authorisation", "work_authorisation", d, n1,
                _ts(retain), fact)))
            out["stats_facts"].append("\t".join((fact, "single_permit", "single_permit", "first", "flanders", "IND",
                                                 str(created.year), str((created.month - 1) // 3 + 1), "notified",
                                                 "granted", "granted", "work_authorisation", "f")))
            payload = f'{{"worker":{{"insz":"{insz}","passport_number":"{passport}"}},"dossier_id":"{did}"}}'
            for mid, at in ((m1, c), (m2, d)):
                out["messages"].append("\t".join((mid, "single-permit.application-submitted", "portal",
                                                  '["region.flanders","dvz"]', "1", did, did, "0" * 64, payload, at)))
                out["outbox"].append(f"{mid}\t{at}\t{at}")
            for mid, recipient, at in ((m1, "region.flanders", c), (m1, "dvz", c), (m2, "dvz", d)):
                out["deliveries"].append("\t".join((mid, recipient, "single-permit.application-submitted", "portal",
                                                    did, did, "1", '["identity","employment"]', payload, at, at)))
            out["enrichment_jobs"].append(f'{m2}\t{did}\t["onss.dimona","onss.dmfa"]\tdone\t1\t{d}\t{d}\t{d}')
            for source in ("onss.dimona", "onss.dmfa"):
                out["enrichments"].append("\t".join((m2, did, source, source, "1.0", "found", d, "12",
                                                     f'{{"insz":"{insz}","periods":[{{"from":"2014-01-01"}}]}}')))
            out["dossier_clocks"].append(f"{did}\tsingle_permit.decision\tregion.flanders\t{c}\t{d}\t{d}\tmet")
        yield out


COPY_COLUMNS = {
    "dossiers": "id, application_kind, category, competent_region, state, residence_outcome, work_outcome, "
                "application, created_at, updated_at, subject_insz, subject_passport, complete_at, "
                "residence_decision_kind, work_decision_kind, decided_at, notified_at, retain_until, fact_id",
    "stats_facts": "id, permit_type, application_kind, request_type, region, nationality, submitted_year, "
                   "submitted_quarter, state, residence_outcome, work_outcome, decision_kind, deemed_authorised",
    "messages": "id, flow_id, sender, recipients, purpose, dossier_id, correlation_id, payload_hash, payload, received_at",
    "outbox": "message_id, created_at, relayed_at",
    "deliveries": "message_id, recipient, flow_id, sender, dossier_id, correlation_id, purpose, data_categories, "
                  "payload, delivered_at, acked_at",
    "enrichment_jobs": "message_id, dossier_id, sources, state, attempts, next_attempt_at, created_at, completed_at",
    "enrichments": "message_id, dossier_id, source, contract, contract_version, status, retrieved_at, elapsed_ms, data",
    "dossier_clocks": "dossier_id, rule, holder, started_at, due_at, stopped_at, outcome",
}


def load(engine, n: int, expire_from: datetime, spread_days: int, seed: int, doc_bytes: int,
         advance: Callable[[int], None]) -> int:
    """COPY n dossiers with all their rows into every table (one COPY stream per table, interleaved
    by chunk). Returns the rows written."""
    rng = random.Random(seed)
    total = 0
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        pg.execute("SET synchronous_commit = off")
        for out in _rows(n, expire_from, spread_days, rng, doc_bytes):
            with pg.cursor() as cur:
                for table, lines in out.items():
                    with cur.copy(f"COPY {table} ({COPY_COLUMNS[table]}) FROM STDIN") as copy:
                        copy.write("\n".join(lines) + "\n")
                    total += len(lines)
            pg.commit()
            advance(len(out["dossiers"]))
    finally:
        raw.close()
    return total


def drop_indexes(engine, schema: str) -> list[str]:
    """Drop the loaded tables' indexes and keys (a bulk load is faster without them); returns the
    statements that put them back, exactly as the migrations made them."""
    tables = list(COPY_COLUMNS)
    with engine.begin() as conn:
        keys = conn.execute(text(
            "SELECT c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = :s AND c.contype IN ('p', 'u') "
            "AND c.conrelid::regclass::text = ANY(:t)"), {"s": schema, "t": tables}).all()
        names = {k[0] for k in keys}
        plain = [(i, d) for i, d in conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s AND tablename = ANY(:t)"),
            {"s": schema, "t": tables}) if i not in names]
        for name, _ in plain:
            conn.execute(text(f'DROP INDEX "{schema}"."{name}"'))
        for name, table, _ in keys:
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    return ([f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, table, definition in keys]
            + [definition for _, definition in plain])


def create_indexes(engine, statements: list[str]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for statement in statements:
            conn.execute(text(statement))


# ── throughput beside the deletion ───────────────────────────────────────────────────────────────

def throughput(args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """benchmarks/throughput.py --only production, as a subprocess; its result (msgs/s, p50, p99)."""
    out = Path(tempfile.mkdtemp(prefix="wib-ret-")) / f"{tag}.json"
    cmd = [sys.executable, str(HERE / "throughput.py"), "--only", "production", "--messages",
           str(args.throughput_messages), "--warmup", str(args.throughput_warmup), "--probe", "0",
           "--database-url", args.database_url, "--amqp-url", args.amqp_url, "--json", str(out)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"throughput.py failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")
        r = json.loads(out.read_text())["results"][0]
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return {"msgs_per_s": r["rate"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "wall_s": r["wall_s"],
            "run_s": time.perf_counter() - started}


# ── the run ──────────────────────────────────────────────────────────────────────────────────────

def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console)


def delete(work: UnitOfWork, now: datetime, batch: int, description: str,
           marks: list[tuple[float, int]] | None = None) -> retention.RetentionResult:
    with _progress() as bar:
        task = bar.add_task(description, total=None, rate="")
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - t0
            if marks is not None:
                marks.append((time.perf_counter(), done))
            bar.update(task, completed=done, total=total,
                       rate=f"{done / elapsed:,.0f} dossiers/s" if elapsed and done else "")
        return retention.run(work, now, batch=batch, progress=progress)


def options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dossiers", type=int, default=1_000_000, help="expired dossiers deleted alone (default 1,000,000)")
    p.add_argument("--concurrent-dossiers", type=int, help="expired dossiers deleted beside the throughput run "
                                                             "(default: as --dossiers, at most 300,000: enough to "
                                                             "outlast it)")
    p.add_argument("--batch", type=int, default=Settings.model_fields["retention_batch"].default,
                   help="dossiers per deleting transaction (default: HUB_RETENTION_BATCH's default)")
    p.add_argument("--document-bytes", type=int, default=2000, help="size of the document in each application")
    p.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True,
                   help="run benchmarks/throughput.py alone and beside the deletion")
    p.add_argument("--throughput-messages", type=int, default=3000)
    p.add_argument("--throughput-warmup", type=int, default=300)
    p.add_argument("--verify", action="store_true", help="verify the audit chain after the deletions")
    add_service_options(p)
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    concurrent_n = args.concurrent_dossiers if args.concurrent_dossiers is not None else min(args.dossiers, 300_000)
    if not args.throughput:
        concurrent_n = 0
    m = machine()
    console.print(f"[bold]wib-hub retention[/]: {args.dossiers:,} expired dossiers (+{concurrent_n:,} for the "
                  f"concurrent run), batches of {args.batch}; {m['cores']} cores, {m['memory']}, {m['date']}")
    with temp_schema(args.database_url, prefix="bench_ret_") as schema, \
            tempfile.TemporaryDirectory(prefix="wib-ret-key-") as key_dir:
        figures: dict[str, Any] = {"machine": {**m, "postgresql": schema.server_version},
                                   "args": {k: v for k, v in vars(args).items()
                                            if k not in ("database_url", "amqp_url", "json")}}
        # the deletions' audit events are sealed as the hub seals its own
        signer = ensure_key(Path(key_dir) / "audit.key")
        work = UnitOfWork(open_engine(schema.url), CheckpointPolicy(signer, every_events=1000, every_seconds=60.0))
        try:
            run(args, work, schema.name, concurrent_n, figures)
        finally:
            work.close()
            work.engine.dispose()
    summary(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


def run(args: argparse.Namespace, work: UnitOfWork, schema: str, concurrent_n: int, figures: dict[str, Any]) -> None:
    """Load both sets into `schema`, delete set A alone, then set B beside throughput.py, and check
    what is left; the figures go into `figures`."""
    engine = work.engine
    migrate(engine)
    rebuild = drop_indexes(engine, schema)

    t0 = time.perf_counter()
    rows = 0
    with _progress() as bar:
        for name, n, start, seed in (("A", args.dossiers, SET_A, 1), ("B", concurrent_n, SET_B, 2)):
            if not n:
                continue
            task = bar.add_task(f"COPY set {name}", total=n, rate="")
            rows += load(engine, n, start, 1800 if name == "A" else 300, seed, args.document_bytes,
                         lambda k, task=task: bar.advance(task, k))
    copy_s = time.perf_counter() - t0
    with console.status(f"building {len(rebuild)} indexes and keys…"):
        create_indexes(engine, rebuild)
    load_s = time.perf_counter() - t0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        size = conn.execute(text("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
                                 "AND c.relkind = 'r'"), {"s": schema}).scalar_one()
    console.print(f"loaded {rows:,} rows in {load_s:.0f} s (COPY {copy_s:.0f} s, then the indexes); "
                  f"schema {size} after VACUUM ANALYZE")
    figures["load"] = {"rows": rows, "seconds": round(load_s, 1), "copy_seconds": round(copy_s, 1),
                       "size": size}

    alone = delete(work, NOW_A, args.batch, "deleting set A alone")
    assert alone.dossiers == args.dossiers, alone.as_dict()
    console.print(f"deleted {alone.dossiers:,} dossiers, {alone.total_rows:,} rows in {alone.elapsed_s:.1f} s: "
                  f"[bold]{alone.rows_per_s:,.0f} rows/s, {alone.dossiers_per_s:,.0f} dossiers/s[/]")
    figures["deletion_alone"] = alone.as_dict()

    if args.throughput:
        with console.status("throughput.py --only production, alone…"):
            base = throughput(args, "alone")
        console.print(f"throughput alone: {base['msgs_per_s']:,.0f} msgs/s (p50 {base['p50_ms']:.0f} ms, "
                      f"p99 {base['p99_ms']:.0f} ms)")
        marks: list[tuple[float, int]] = []
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.setdefault(
            "result", delete(work, NOW_B, args.batch, "deleting set B beside throughput.py", marks)))
        worker.start()
        while not marks:          # the deletion has counted its work and started
            time.sleep(0.05)
        tp_start = time.perf_counter()
        beside = throughput(args, "beside")
        tp_end = time.perf_counter()
        worker.join()
        concurrent = box["result"]
        inside = [(t, d) for t, d in marks if tp_start <= t <= tp_end]
        overlap = None
        if len(inside) >= 2:
            (ta, da), (tb, db) = inside[0], inside[-1]
            overlap = (db - da) / (tb - ta) if tb > ta else None
        finished_early = marks[-1][0] < tp_end
        console.print(f"throughput beside the deletion: {beside['msgs_per_s']:,.0f} msgs/s (p50 "
                      f"{beside['p50_ms']:.0f} ms, p99 {beside['p99_ms']:.0f} ms)"
                      + (" [yellow](the deletion ended before the throughput run did)[/]" if finished_early else ""))
        figures["throughput_alone"] = base
        figures["throughput_beside_deletion"] = beside
        figures["deletion_beside_throughput"] = {**concurrent.as_dict(),
                                                 "dossiers_per_s_while_overlapping": overlap and round(overlap, 1),
                                                 "ended_before_throughput": finished_early}

    with engine.connect() as conn:
        left = conn.execute(text("SELECT (SELECT count(*) FROM dossiers) + (SELECT count(*) FROM messages) + "
                                 "(SELECT count(*) FROM outbox) + (SELECT count(*) FROM deliveries) + "
                                 "(SELECT count(*) FROM enrichment_jobs) + (SELECT count(*) FROM enrichments) + "
                                 "(SELECT count(*) FROM dossier_clocks)")).scalar_one()
        facts = conn.execute(select(func.count()).select_from(stats_facts)).scalar_one()
        deleted_events = conn.execute(select(func.count()).select_from(audit_events)
                                      .where(audit_events.c.event == "deleted")).scalar_one()
    expected = args.dossiers + concurrent_n
    console.print(f"check: {left} dossier rows left, {facts:,} statistics rows kept (of {expected:,}), "
                  f"{deleted_events:,} `deleted` audit events")
    assert left == 0 and facts == expected and deleted_events == expected
    if args.verify:
        with console.status("audit verify…"):
            policy = work.checkpoints
            report = audit.verify(engine, public_key=policy.signer.public_key if policy else None)
        console.print(str(report))
        assert report.intact


def summary(f: dict[str, Any]) -> None:
    table = Table(title="retention benchmark")
    for col in ("run", "dossiers", "rows", "seconds", "rows/s", "dossiers/s", "msgs/s", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col != "run" else "left")
    a = f["deletion_alone"]
    table.add_row("deletion alone", f"{a['dossiers']:,}", f"{a['total_rows']:,}", f"{a['elapsed_s']:.1f}",
                  f"{a['rows_per_s']:,.0f}", f"{a['dossiers_per_s']:,.0f}", "", "", "")
    if "throughput_alone" in f:
        t = f["throughput_alone"]
        table.add_row("throughput.py alone", "", "", f"{t['wall_s']:.1f}", "", "", f"{t['msgs_per_s']:,.0f}",
                      f"{t['p50_ms']:.0f}", f"{t['p99_ms']:.0f}")
        b, d = f["throughput_beside_deletion"], f["deletion_beside_throughput"]
        table.add_row("throughput.py beside deletion", "", "", f"{b['wall_s']:.1f}", "", "",
                      f"{b['msgs_per_s']:,.0f}", f"{b['p50_ms']:.0f}", f"{b['p99_ms']:.0f}")
        overlap = d["dossiers_per_s_while_overlapping"]
        table.add_row("deletion beside throughput.py", f"{d['dossiers']:,}", f"{d['total_rows']:,}",
                      f"{d['elapsed_s']:.1f}", f"{d['rows_per_s']:,.0f}",
                      f"{d['dossiers_per_s']:,.0f}" + (f" ({overlap:,.0f} overlapping)" if overlap else ""), "", "", "")
        ratio = b["msgs_per_s"] / t["msgs_per_s"] if t["msgs_per_s"] else float("nan")
        table.caption = f"message throughput beside the deletion: {ratio:.0%} of its rate alone"
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
