"""Art. 14 content enricher: ONSS's Dimona, DmfA and Limosa data are added to a dossier when a
region forwards it to DVZ; INASTI's register (and Limosa) to a professional-card application the
region receives. The flows name their sources (`enrich:`).

    route ─► (flow has `enrich`) ─► job opened, the message waits ("enrichment pending")
    enricher ─► applicable sources called concurrently ─► records stored ─► every source answered?
             ─► yes: the message goes back through the outbox and is delivered with its records
             ─► no:  the job is tried again later (backoff); a source that is down delays, never loses

Records are data category `social_security`; only recipients whose rule on the flow names that
category receive them (DVZ and the regions). Each record keeps source, contract and version,
retrieval time and status. One `enriched` audit event per record (its hash, never its content).
"""
from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

import structlog
from sqlalchemy import Connection, select, update

from hub.audit import AuditEvent
from hub.domain.categories import SOCIAL_SECURITY
from hub.domain.envelope import iso_utc, payload_hash, utcnow
from hub.domain.errors import NotAuthorised, UnknownDossier
from hub.domain.flows import Flow, Registry
from hub.domain.parties import DVZ, PLATFORM
from hub.domain.retry import Backoff
from hub.infra.store.schema import dossiers, enrichment_jobs, enrichments, messages, outbox, stored_application
from hub.infra.store.unit_of_work import Batch, UnitOfWork
from hub.infra.store.upsert import insert_ignore
from hub.ports import Enricher, EnrichmentRecord, SourceRefused, SourceUnavailable, Subject
from hub.ports.oplog import Condition

log = structlog.get_logger("hub.messaging.enrichment")


def legal_context(flow: Flow) -> str:
    """CBSS `legalContext` (≤ 64 characters): the flow's Art. 14 basis."""
    basis = next((b for b in flow.legal_basis if b.startswith("Art. 14")), flow.legal_basis[0])
    return f"Single-permit cooperation agreement {basis}"[:64]


def subject_of(application: Mapping[str, Any], flow: Flow, ticket: str, today: datetime) -> Subject | None:
    """Who the sources are asked about; None when the worker has no INSZ yet (nothing to link)."""
    worker = application.get("worker") or {}
    employment = application.get("employment") or {}
    insz = worker.get("insz")
    if not insz:
        return None
    return Subject(insz=insz, reference_date=today.date(),
                   employer=(employment.get("employer") or {}).get("enterprise_number"),
                   legal_context=legal_context(flow), ticket=ticket[:36],
                   posted=bool(employment.get("posted")),
                   self_employed=application.get("application_kind") == "professional_card")


def applicable(sources: Mapping[str, Enricher], flow: Flow, subject: Subject | None) -> list[str]:
    if subject is None:
        return []
    return [name for name in flow.enrich if name in sources and sources[name].applies(subject)]


def enriching_flow(registry: Registry, application: Mapping[str, Any]) -> Flow:
    """The flow whose sources apply to this kind of application: the one reserved to its kind
    (the professional card: INASTI, Limosa), else the one forwarding a dossier to DVZ."""
    flows = [f for f in registry.flows.values() if f.enrich]
    kind = application.get("application_kind")
    for f in flows:
        if kind in f.payload_constraints.get("/application_kind", ()):
            return f
    return next(f for f in flows if f.attach_dossier)


def open_jobs(w: Batch, registry: Registry, envelopes: Sequence[Any], now: datetime) -> dict[str, str]:
    """For each envelope whose flow enriches: the state of its job, opening one if there is none.

    Called inside the router's write; returns message id → "pending" | "done"."""
    wanted = [e for e in envelopes if registry.flow(e.flow_id).enrich]
    if not wanted:
        return {}
    ids = [e.message_id for e in wanted]
    states = dict(w.conn.execute(select(enrichment_jobs.c.message_id, enrichment_jobs.c.state)
                                 .where(enrichment_jobs.c.message_id.in_(ids))).all())
    new = [dict(message_id=e.message_id, dossier_id=e.dossier_id, sources=[], state="pending", attempts=0,
                next_attempt_at=now, last_error=None, created_at=now, completed_at=None)
           for e in wanted if e.message_id not in states]
    if new:
        insert_ignore(w.conn, enrichment_jobs, new, ("message_id",))
        states.update({row["message_id"]: "pending" for row in new})
    return states


def records_for(conn: Connection, message_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored records of these messages, as recipients see them."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not message_ids:
        return out
    rows = conn.execute(select(enrichments).where(enrichments.c.message_id.in_(list(message_ids)))
                        .order_by(enrichments.c.id)).mappings()
    for r in rows:
        out.setdefault(r["message_id"], []).append(public_record(r))
    return out


def public_record(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"source": r["source"], "contract": r["contract"], "contract_version": r["contract_version"],
            "status": r["status"], "retrieved_at": iso_utc(r["retrieved_at"]),
            "elapsed_ms": r["elapsed_ms"], "data": r["data"]}


def competent_dossier(work: UnitOfWork, party: str, dossier_id: str) -> dict[str, Any]:
    """The dossier, if `party` may have its social-security data: Art. 14 gives ONSS's and INASTI's
    data to DVZ and the regions — for a dossier, DVZ and its competent region."""
    with work.reads.connect() as conn:
        d = conn.execute(select(dossiers.c.id, dossiers.c.competent_region, stored_application)
                         .where(dossiers.c.id == dossier_id)).mappings().first()
    if d is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if party not in (DVZ, d["competent_region"]):
        raise NotAuthorised("only DVZ and the competent region receive social-security data (Art. 14)",
                            code="not_competent")
    return dict(d)


def read_records(work: UnitOfWork, party: str, acting_person: str | None, dossier_id: str) -> list[dict[str, Any]]:
    """A dossier's stored records, for DVZ or its competent region; the read is on the record (Art. 11)."""
    competent_dossier(work, party, dossier_id)
    with work.reads.connect() as conn:
        rows = conn.execute(select(enrichments).where(enrichments.c.dossier_id == dossier_id)
                            .order_by(enrichments.c.id)).mappings().all()
    work.record([AuditEvent("consulted", dossier_id=dossier_id, actor=party, acting_person=acting_person,
                            data_categories=[SOCIAL_SECURITY], reason="GET /v1/dossiers/enrichment")])
    return [public_record(r) for r in rows]


@dataclass
class Enrichment:
    """The enricher worker: takes due jobs, calls their sources, stores what came back."""

    registry: Registry
    work: UnitOfWork
    sources: Mapping[str, Enricher]
    on_complete: Callable[[], None] = lambda: None
    parallel: int = 16
    batch: int = 50
    retry_max_s: float = 10.0
    lease_s: float = 10.0              # renewed every third of it while the calls run
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    holder: str = field(default_factory=lambda: f"enricher-{uuid.uuid4().hex[:12]}")

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="enrich")
        self.backoff = Backoff(base_s=0.5, cap_s=self.retry_max_s, jitter=0.5)
        self.leases = Condition(log, "enrichment.lease")   # renewals failing: one line per outage
        self._beat: Callable[[], None] = lambda: None       # the runtime's heartbeat, while run() runs

    def run_once(self) -> int:
        """One pass over the due jobs; returns how many completed."""
        now = self.clock()
        jobs = self._claim(now)
        if not jobs:
            return 0
        with self.work.reads.connect() as conn:
            ids = [j["message_id"] for j in jobs]
            envs = {m["id"]: m for m in conn.execute(select(messages).where(messages.c.id.in_(ids))).mappings()}
            apps = dict(conn.execute(select(dossiers.c.id, stored_application).where(
                dossiers.c.id.in_({j["dossier_id"] for j in jobs if j["dossier_id"]}))).all())
            have = {(r.message_id, r.source) for r in conn.execute(
                select(enrichments.c.message_id, enrichments.c.source).where(enrichments.c.message_id.in_(ids)))}
        plans = []
        for job in jobs:
            msg = envs[job["message_id"]]
            flow = self.registry.flow(msg["flow_id"])
            subject = subject_of(apps.get(job["dossier_id"]) or {}, flow, msg["correlation_id"], now)
            wanted = applicable(self.sources, flow, subject)
            calls = {name: self.pool.submit(self._call, name, subject)
                     for name in wanted if (job["message_id"], name) not in have}
            plans.append((job, msg, flow, wanted, calls))
        self._await([f for *_, calls in plans for f in calls.values()], [j["message_id"] for j in jobs])
        done = 0
        for job, msg, flow, wanted, calls in plans:
            results = {name: future.result() for name, future in calls.items()}
            done += self._store(job, msg, flow, wanted, results)
        if done:
            self.on_complete()
        return done

    def _await(self, futures: list[Any], held: list[str]) -> None:
        """Wait for the source calls, renewing the lease on `held` every third of it: a living
        holder keeps its jobs however long the sources take, a dead one loses them within lease_s."""
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=self.lease_s / 3)
            self._beat()   # waiting on slow sources is not being stuck
            if pending:
                self._renew(held)

    def _renew(self, held: list[str]) -> None:
        try:
            with self.work.engine.begin() as conn:
                conn.execute(update(enrichment_jobs).where(
                    enrichment_jobs.c.message_id.in_(held), enrichment_jobs.c.state == "pending",
                    enrichment_jobs.c.claimed_by == self.holder,
                ).values(next_attempt_at=self.clock() + timedelta(seconds=self.lease_s)))
        except Exception as err:  # noqa: BLE001 - the store is away: the lease may lapse, the work stays once
            self.leases.failed(err, meanwhile="the lease may lapse; a job taken over is stored once")
            return
        self.leases.ok()

    def _claim(self, now: datetime) -> list[dict[str, Any]]:
        """Take the due jobs for a while (a lease of lease_s, renewed while their calls run), so that
        enrichers in other worker processes leave them alone; a dead holder's jobs come back when
        its lease runs out."""
        with self.work.engine.begin() as conn:   # a lease is bookkeeping: no audit event
            due = select(enrichment_jobs).where(enrichment_jobs.c.state == "pending",
                                                enrichment_jobs.c.next_attempt_at <= now) \
                .order_by(enrichment_jobs.c.next_attempt_at).limit(self.batch)
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            jobs = [dict(j) for j in conn.execute(due).mappings()]
            if jobs:
                conn.execute(update(enrichment_jobs)
                             .where(enrichment_jobs.c.message_id.in_([j["message_id"] for j in jobs]))
                             .values(next_attempt_at=now + timedelta(seconds=self.lease_s), claimed_by=self.holder))
        return jobs

    def _call(self, name: str, subject: Subject) -> EnrichmentRecord | Exception:
        try:
            return self.sources[name].fetch(subject)
        except (SourceUnavailable, SourceRefused) as err:
            return err
        except Exception as err:  # noqa: BLE001 - a bug in one adapter must not stop the others
            log.error("enrichment_source_error", source=name, error=type(err).__name__)
            return SourceUnavailable(type(err).__name__)

    def _store(self, job, msg, flow: Flow, wanted: list[str], results: dict[str, Any]) -> int:
        now = self.clock()
        missing = [n for n, r in results.items() if isinstance(r, SourceUnavailable)]
        complete = not missing

        taken_over: list[bool] = []

        def write(w: Batch) -> list[AuditEvent]:
            events, rows = [], []
            for name, result in results.items():
                if isinstance(result, SourceUnavailable):
                    continue
                row = self._row(msg, name, result, now, self.sources[name].contract)
                rows.append(row)
                events.append(AuditEvent(
                    "enriched", outcome="ok" if row["status"] != "refused" else "refused", flow_id=flow.id,
                    message_id=msg["id"], correlation_id=msg["correlation_id"], dossier_id=msg["dossier_id"],
                    actor=PLATFORM, purpose=flow.purpose, legal_basis=flow.legal_basis, data_categories=[SOCIAL_SECURITY],
                    reason=f"{name} {row['status']} ({row['contract']} {row['contract_version']}, "
                           f"{row['elapsed_ms']} ms)", payload_hash=payload_hash(row["data"])))
            values: dict[str, Any] = dict(sources=wanted, attempts=job["attempts"] + 1, claimed_by=None)
            if complete:
                values.update(state="done", completed_at=now, last_error=None)
            else:
                values.update(next_attempt_at=now + timedelta(seconds=self._backoff(job["attempts"])),
                              last_error="; ".join(f"{n}: {type(results[n]).__name__}" for n in missing))
                if job["attempts"] == 0:
                    events.append(AuditEvent(
                        "enrichment_pending", outcome="delayed", flow_id=flow.id, message_id=msg["id"],
                        correlation_id=msg["correlation_id"], dossier_id=msg["dossier_id"], actor=PLATFORM,
                        purpose=flow.purpose, reason="unavailable: " + ", ".join(missing)))
            # only while it is ours: a holder whose lease lapsed (a pause, a lost store) and was taken
            # over stores nothing; the one that took the job over does the work, once
            ours = w.conn.execute(update(enrichment_jobs).where(
                enrichment_jobs.c.message_id == msg["id"], enrichment_jobs.c.state == "pending",
                enrichment_jobs.c.claimed_by == self.holder).values(**values)).rowcount
            if not ours:
                taken_over.append(True)
                return []
            insert_ignore(w.conn, enrichments, rows, ("message_id", "source"))
            if complete:
                w.conn.execute(outbox.insert().values(message_id=msg["id"], created_at=now))
            return events

        self.work.write(write)
        if taken_over:
            log.info("enrichment_taken_over", message_id=msg["id"])
            return 0
        if not complete:
            log.warning("enrichment_pending", message_id=msg["id"], sources=missing, attempt=job["attempts"] + 1)
        return int(complete)

    def on_demand(self, dossier: Mapping[str, Any], party: str, acting_person: str | None,
                  request_id: str) -> tuple[list[dict[str, Any]], list[str]]:
        """An authority asks for fresh data on a dossier now (Art. 14): the applicable sources are
        called at once; what they answer is stored and returned, the sources that are down are named."""
        flow = enriching_flow(self.registry, dossier["application"])
        now = self.clock()
        subject = subject_of(dossier["application"], flow, request_id, now)
        wanted = applicable(self.sources, flow, subject)
        results = dict(zip(wanted, self.pool.map(lambda n: self._call(n, subject), wanted)))
        msg = {"id": request_id, "dossier_id": dossier["id"], "correlation_id": request_id}
        rows = [self._row(msg, n, r, now, self.sources[n].contract) for n, r in results.items()
                if not isinstance(r, SourceUnavailable)]

        def write(w: Batch) -> list[AuditEvent]:
            insert_ignore(w.conn, enrichments, rows, ("message_id", "source"))
            return [AuditEvent("enriched", outcome="ok" if r["status"] != "refused" else "refused",
                               message_id=request_id, correlation_id=request_id, dossier_id=dossier["id"],
                               actor=party, acting_person=acting_person, recipient=party, purpose=flow.purpose,
                               legal_basis=flow.legal_basis, data_categories=[SOCIAL_SECURITY],
                               reason=f"on demand: {r['source']} {r['status']}", payload_hash=payload_hash(r["data"]))
                    for r in rows]

        self.work.write(write)
        return [public_record(r) for r in rows], [n for n, r in results.items() if isinstance(r, SourceUnavailable)]

    @staticmethod
    def _row(msg, name: str, result: EnrichmentRecord | SourceRefused, now: datetime,
             contract: str) -> dict[str, Any]:
        base = dict(message_id=msg["id"], dossier_id=msg["dossier_id"], source=name)
        if isinstance(result, SourceRefused):
            # the source understood and said no: recorded, so the dossier does not wait forever
            return dict(base, contract=contract, contract_version="-", status="refused", retrieved_at=now,
                        elapsed_ms=0, data={"reason": str(result)[:200]})
        return dict(base, contract=result.contract, contract_version=result.contract_version,
                    status=result.status, retrieved_at=result.retrieved_at, elapsed_ms=round(result.elapsed_ms),
                    data=result.data)

    def _backoff(self, attempts: int) -> float:
        """The wait before the next pass over a job still waiting for a source (capped at retry_max_s)."""
        return self.backoff.delay(attempts, self.rng)

    def run(self, stop: threading.Event, wake: threading.Event, idle_s: float = 0.2,
            beat: Callable[[], None] = lambda: None) -> None:
        """Pass over the due jobs until stopped; a pass that fails (the store away) is logged once
        per change of state and tried again; the jobs stay pending."""
        passes = Condition(log, "enrichment")
        self._beat = beat
        while not stop.is_set():
            beat()
            try:
                done = self.run_once()
                passes.ok()
                if done:
                    continue
            except Exception as err:  # noqa: BLE001 - keep the worker alive; the job stays pending
                passes.failed(err, meanwhile="the jobs stay pending")
                stop.wait(1.0)
            wake.wait(idle_s)
            wake.clear()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
