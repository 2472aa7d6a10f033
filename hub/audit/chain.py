"""Append-only, hash-chained audit events.

Each event's hash covers the previous event's hash and every field of the event, so a modified,
deleted, inserted or reordered event breaks the chain from that point on.

`count` (how many occurrences one event stands for: the refusals hub/audit/refusals.py aggregates)
came later: it is hashed after the HASHED_FIELDS, and only when it is not None, so that every
event written before it (and every event without a count) keeps the hash it always had.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol, Sequence

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from hub.audit import checkpoints as _checkpoints
from hub.audit.checkpoints import CheckpointPolicy
from hub.infra.store.db import reader
from hub.infra.store.schema import audit_events, audit_head

GENESIS = "0" * 64
# json.dumps(values, separators=(",", ":"), ensure_ascii=False), without building an encoder per
# call: the C encoder made once gives the same text ~30 % faster (the pure-Python one if absent)
if json.encoder.c_make_encoder is not None:
    _c_encoder = json.encoder.c_make_encoder(None, None, json.encoder.encode_basestring, None, ":", ",",
                                             False, False, True)

    def _encode(values: list[Any]) -> str:
        return "".join(_c_encoder(values, 0))
else:  # pragma: no cover - CPython always has it
    _encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# The fields an event's hash covers, in this order. Changing it changes every hash: don't.
HASHED_FIELDS = (
    "seq", "ts", "event", "outcome", "flow_id", "message_id", "correlation_id", "dossier_id",
    "actor", "acting_person", "recipient", "purpose", "legal_basis", "data_categories", "reason",
    "payload_hash",
)
# Hashed after them, only when not None (an event without it hashes as it did before it existed).
COUNT_FIELD = "count"


@dataclass(slots=True)
class AuditEvent:
    """One step of one message (or one consultation), with the fields docs/architecture.md names."""

    event: str
    outcome: str = "ok"
    flow_id: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    dossier_id: str | None = None
    actor: str | None = None
    acting_person: str | None = None
    recipient: str | None = None
    purpose: int | None = None
    legal_basis: Sequence[str] = field(default_factory=tuple)
    data_categories: Sequence[str] = field(default_factory=tuple)
    reason: str | None = None
    payload_hash: str | None = None
    # how many occurrences this one event stands for (aggregated refusals); None: one, as always
    count: int | None = None


class Recorder(Protocol):
    """The way into the trail for everything but the unit of work itself (hub.infra.store.unit_of_work):
    hand it the events; it appends them and returns once they are committed."""

    def record(self, events: Sequence[AuditEvent]) -> None: ...


def _micros(ts: datetime) -> int:
    # SQLite hands datetimes back naive; they were written in UTC.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1_000_000)


def _check_count(count: Any) -> None:
    if count is not None and (type(count) is not int or count < 1):
        raise ValueError(f"an audit event's count is a positive integer or None, not {count!r}")


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The reference hash of one stored event (a row of audit_events, or a bundle's event line);
    `count` may be absent from `row` (an event without it)."""
    values = [row[name] for name in HASHED_FIELDS]
    values[1] = _micros(values[1])
    values[12] = list(values[12] or ())
    values[13] = sorted(values[13] or ())
    count = row.get(COUNT_FIELD)
    if count is not None:
        values.append(count)
    material = _encode(values)
    return hashlib.sha256(prev_hash.encode() + material.encode()).hexdigest()


# Built once: statement construction is a measurable share of a message's cost.
_LOCK_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_INSERT_EVENTS = audit_events.insert()
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1).values(seq=bindparam("new_seq"),
                                                                   hash=bindparam("new_hash"))


def append(conn: Connection, events: Iterable[AuditEvent], now: datetime | None = None,
           checkpoints: CheckpointPolicy | None = None) -> int:
    """Append events inside the caller's transaction; returns the last sequence number.

    Only the unit of work calls this (hub.infra.store.unit_of_work): every other writer hands its
    events to it. The head row is locked (FOR UPDATE) so that concurrent transactions extend one
    line, never a fork. A signed checkpoint is written in the same transaction when `checkpoints`
    says one is due.
    """
    events = list(events)
    if not events:
        return 0
    now = now or datetime.now(timezone.utc)
    now = now.astimezone(timezone.utc) if now.tzinfo else now.replace(tzinfo=timezone.utc)
    head = conn.execute(_LOCK_HEAD).one()
    seq, prev = head.seq, head.hash
    ts_us, enc, sha = _micros(now), _encode, hashlib.sha256
    rows = []
    for ev in events:
        seq += 1
        # the HASHED_FIELDS, in order (event_hash, inlined: this loop is the trail's hot path)
        values = [seq, ts_us, ev.event, ev.outcome, ev.flow_id, ev.message_id, ev.correlation_id,
                  ev.dossier_id, ev.actor, ev.acting_person, ev.recipient, ev.purpose,
                  list(ev.legal_basis), sorted(ev.data_categories), ev.reason, ev.payload_hash]
        count = ev.count
        if count is None:
            h = sha((prev + enc(values)).encode()).hexdigest()
        else:  # hashed after the HASHED_FIELDS, only when present (event_hash)
            _check_count(count)
            values.append(count)
            h = sha((prev + enc(values)).encode()).hexdigest()
            values.pop()
        values[1] = now
        values += (prev, h, count)
        rows.append(values)
        prev = h
    _insert(conn, rows)
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    if checkpoints is not None:
        checkpoints.after_append(conn, head.seq, seq, prev, now)
    return seq


_ROW_FIELDS = HASHED_FIELDS + ("prev_hash", "hash", COUNT_FIELD)
_SQLITE_INSERT = (f"INSERT INTO audit_events ({', '.join(_ROW_FIELDS)}) "
                  f"VALUES ({', '.join('?' * len(_ROW_FIELDS))})")
_PG_COPY = f"COPY audit_events ({', '.join(_ROW_FIELDS)}) FROM STDIN"


def _insert(conn: Connection, rows: list[list[Any]]) -> None:
    """Insert rows (values in _ROW_FIELDS order) through the driver: PostgreSQL COPY, SQLite
    executemany, stored exactly as the SQLAlchemy types would store them; other stores: Core."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        with conn.connection.driver_connection.cursor() as cur, cur.copy(_PG_COPY) as copy:
            for r in rows:
                r[12], r[13] = json.dumps(r[12]), json.dumps(r[13])
                copy.write_row(r)
    elif dialect == "sqlite":
        ts = rows[0][1]
        stamp = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d} {ts:%H:%M:%S}.{ts.microsecond:06d}"
        for r in rows:
            r[1], r[12], r[13] = stamp, json.dumps(r[12]), json.dumps(r[13])
        conn.connection.driver_connection.executemany(_SQLITE_INSERT, rows)
    else:
        conn.execute(_INSERT_EVENTS, [dict(zip(_ROW_FIELDS, r)) for r in rows])


def tail(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with reader(engine).connect() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(limit)).mappings()
        found = [dict(r) for r in reversed(list(rows))]
    for r in found:  # SQLite hands datetimes back naive; they were written in UTC
        r["ts"] = r["ts"] if r["ts"].tzinfo else r["ts"].replace(tzinfo=timezone.utc)
    return found


# --- verify --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `verify` (GDPR Art. 5(1)(f), Art. 32(1)(b): integrity of the flow log)."""

    intact: bool
    count: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints: int = 0
    sealed_seq: int = 0
    signatures_checked: bool = True

    @property
    def unsealed(self) -> int:
        """Events after the last signed checkpoint: chained, but not yet covered by a signature."""
        return max(0, self.count - self.sealed_seq)

    def __str__(self) -> str:
        if not self.intact:
            return f"audit chain BROKEN at sequence {self.first_bad_seq}: {self.reason}"
        seal = (f"{self.checkpoints} signed checkpoint{'' if self.checkpoints == 1 else 's'}, sealed up to {self.sealed_seq}, "
                f"{self.unsealed} unsealed after it")
        if not self.signatures_checked and self.checkpoints:
            seal += " (signatures NOT checked: no public key)"
        return f"audit chain intact: {self.count} event{'' if self.count == 1 else 's'}, head {self.head_seq}; {seal}"


_COLUMNS = ", ".join(HASHED_FIELDS + ("prev_hash", "hash", COUNT_FIELD))
_CHUNK = 20_000
_PARALLEL_FROM = 200_000  # below this, one process is faster than starting others


def _verify_range(url_or_engine, lo: int, hi: int, cuts: Sequence[int]) -> dict[str, Any]:
    """Check events lo..hi on their own: sequence without gaps, links, each event's own hash.

    Runs in a worker process on large chains; the caller stitches ranges together. `cuts` are the
    checkpoint seqs in lo..hi: for each, the digest of its interval (ranges start after a cut).
    """
    from hub.infra.store import open_engine
    own = isinstance(url_or_engine, Engine)
    engine = url_or_engine if own else open_engine(url_or_engine)
    sha, enc, loads, fromiso, utc = hashlib.sha256, _encode, json.loads, datetime.fromisoformat, timezone.utc
    out: dict[str, Any] = {"lo": lo, "bad": None, "first_prev": None, "last_hash": None, "count": 0,
                           "digests": {}}
    cut_iter = iter(cuts)
    next_cut = next(cut_iter, None)
    interval = sha()
    expected, prev, count = lo, None, 0
    last_ts, ts_us, lists, sorted_lists = None, 0, {}, {}
    columns = _COLUMNS
    if engine.dialect.name == "postgresql":  # text is cheaper to fetch than parsed values, and cached
        columns = (_COLUMNS.replace("ts,", "ts::text,", 1).replace("legal_basis", "legal_basis::text")
                   .replace("data_categories", "data_categories::text"))
    try:
        with reader(engine).connect() as conn:
            start = lo
            while start <= hi:
                end = min(hi, start + _CHUNK - 1)
                rows = conn.exec_driver_sql(
                    f"SELECT {columns} FROM audit_events WHERE seq >= {int(start)} AND seq <= {int(end)} "
                    "ORDER BY seq").fetchall()
                for r in rows:
                    seq = r[0]
                    if seq != expected:
                        out["bad"] = (expected, f"sequence {expected} missing (next stored is {seq})")
                        return out
                    if prev is None:
                        out["first_prev"] = r[16]
                    elif r[16] != prev:
                        out["bad"] = (seq, "previous-hash link broken")
                        return out
                    ts, lb, dc = r[1], r[12], r[13]
                    if ts != last_ts:  # one append's events share their time
                        last_ts, t = ts, (fromiso(ts) if type(ts) is str else ts)
                        if t.tzinfo is None:
                            t = t.replace(tzinfo=utc)
                        ts_us = int(t.timestamp() * 1_000_000)  # as _micros
                    if type(lb) is str:  # SQLite: JSON text, a handful of distinct values
                        lb = lists.get(lb) or lists.setdefault(lb, list(loads(lb) or ()))
                    else:
                        lb = list(lb or ())
                    if type(dc) is str:
                        dc = sorted_lists.get(dc) or sorted_lists.setdefault(dc, sorted(loads(dc) or ()))
                    else:
                        dc = sorted(dc or ())
                    values = [seq, ts_us, r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                              r[11], lb, dc, r[14], r[15]]
                    if r[18] is not None:  # the count, hashed only when present (event_hash)
                        values.append(r[18])
                    material = enc(values)
                    h = r[17]
                    if sha((r[16] + material).encode()).hexdigest() != h:
                        out["bad"] = (seq, "event content does not match its hash")
                        return out
                    interval.update(h.encode())
                    if seq == next_cut:
                        out["digests"][seq] = (interval.hexdigest(), h)
                        interval = sha()
                        next_cut = next(cut_iter, None)
                    prev, expected, count = h, seq + 1, count + 1
                    out["last_hash"], out["count"] = h, count
                start = end + 1
    finally:
        if not own:
            engine.dispose()
    return out


def _ranges(top: int, cuts: list[int], parts: int) -> list[tuple[int, int]]:
    """Split 1..top into up to `parts` ranges, each starting right after a checkpoint (or in the
    unsealed tail), so that every checkpoint interval lies inside one range."""
    bounds: list[int] = []
    for k in range(1, parts):
        target = top * k // parts
        if cuts and target <= cuts[-1]:
            i = bisect.bisect_right(cuts, target) - 1
            target = cuts[i] if i >= 0 else 0
        if target > (bounds[-1] if bounds else 0):
            bounds.append(target)
    edges = [0, *bounds, top]
    return [(a + 1, b) for a, b in zip(edges, edges[1:]) if b > a]


def verify(engine: Engine, public_key=None, workers: int | None = None,
           progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Recompute the chain and check every signed checkpoint; name the first bad sequence number.

    Detects a modified, deleted, inserted or reordered event and a truncated tail; events after
    the last checkpoint are reported as unsealed. `public_key` (Ed25519) checks the checkpoint
    signatures too (without it: their continuity and digests only, and the report says so).
    Large chains are checked in parallel processes over ranges, then stitched.
    """
    with reader(engine).connect() as conn:
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        top = conn.execute(select(func.max(audit_events.c.seq))).scalar() or 0
        cps = _checkpoints.load_all(conn)
    cuts = [cp["seq"] for cp in cps]
    top = max(top, head.seq)
    parts = 1 if top < _PARALLEL_FROM else (workers or os.cpu_count() or 1)
    ranges = _ranges(top, cuts, parts) if top else []
    results = _run_ranges(engine, ranges, cuts, parts, progress)
    chain_bad, prev, count = None, GENESIS, 0
    digests: dict[int, tuple[str, str]] = {}
    for res in results:
        if res["count"] and res["first_prev"] != prev:
            chain_bad = (res["lo"], "previous-hash link broken")
            break
        digests.update(res["digests"])
        count += res["count"]
        prev = res["last_hash"] or prev
        if res["bad"]:
            chain_bad = res["bad"]
            break
    if chain_bad is None and (head.seq != count or head.hash != prev):
        chain_bad = (count + 1 if head.seq > count else head.seq + 1,
                     f"chain head says {head.seq} events, {count} found: tail truncated or head altered")
    cp_bad = _check_checkpoints(cps, digests, public_key, count if chain_bad is None else None)
    bad = min((b for b in (chain_bad, cp_bad) if b), default=None, key=lambda b: b[0])
    sealed = cps[-1]["seq"] if cps else 0
    if bad:
        return VerifyReport(False, count, head.seq, bad[0], bad[1], len(cps), sealed, public_key is not None)
    return VerifyReport(True, count, head.seq, checkpoints=len(cps), sealed_seq=sealed,
                        signatures_checked=public_key is not None)


def _run_ranges(engine: Engine, ranges, cuts, parts, progress) -> list[dict[str, Any]]:
    def cuts_in(lo: int, hi: int) -> list[int]:
        return cuts[bisect.bisect_left(cuts, lo):bisect.bisect_right(cuts, hi)]
    if parts <= 1:
        results = []
        for lo, hi in ranges:
            results.append(_verify_range(engine, lo, hi, cuts_in(lo, hi)))
            if progress:
                progress(results[-1]["count"])
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    url = engine.url.render_as_string(hide_password=False)
    method = "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(parts, mp_context=multiprocessing.get_context(method)) as pool:
        futures = {pool.submit(_verify_range, url, lo, hi, cuts_in(lo, hi)): lo for lo, hi in ranges}
        done = {}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            if progress:
                progress(done[futures[fut]]["count"])
    return [done[lo] for lo, _ in ranges]


def _check_checkpoints(cps, digests, public_key, chain_count: int | None) -> tuple[int, str] | None:
    """Each checkpoint: its own signature, then the events it seals (digest and head hash)."""
    expected_from = 1
    for cp in cps:
        if public_key is not None:
            problem = _checkpoints.check(cp, public_key, expected_from)
            if problem:
                return (min(cp["from_seq"], expected_from) if "missing" in problem else cp["seq"], problem)
        elif cp["from_seq"] != expected_from or cp["count"] != cp["seq"]:
            return (expected_from, f"checkpoint {cp['seq']} does not follow the previous one")
        expected_from = cp["seq"] + 1
        if cp["seq"] in digests:
            digest, head_hash = digests[cp["seq"]]
            if digest != cp["digest"] or head_hash != cp["head_hash"]:
                return (cp["from_seq"], f"events {cp['from_seq']}..{cp['seq']} do not match signed "
                                        f"checkpoint {cp['seq']}: rewritten")
        elif chain_count is not None and cp["seq"] > chain_count:
            return (chain_count + 1, f"signed checkpoint {cp['seq']} seals events up to {cp['seq']}, "
                                     f"the chain ends at {chain_count}: tail truncated")
    return None
