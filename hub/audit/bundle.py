"""Audit export bundles: a dossier's or a time range's events, verifiable offline.

GDPR Art. 5(2) (accountability) and Art. 28(3)(h) (the processor makes available the information
needed to demonstrate compliance): an authority or auditor receives a file it can check without
the hub's database.

Format (JSON lines, each line canonical JSON: sorted keys, no spaces, UTF-8):

    {"type":"header", "format":"wib-hub-audit-bundle/1", "scope":…, "public_key":<raw hex>, …}
    per sealed checkpoint interval that holds an exported event, in sequence order:
        {"type":"event", …every hashed field…, "prev_hash", "hash"}   an exported event
                                   ("count" too, when the event has one: it is hashed then only)
        {"type":"hash", "seq", "hash"}                                 any other event: hash only
        {"type":"checkpoint", …the signed checkpoint…}
    {"type":"event", …}  exported events after the last checkpoint (reported as unsealed)
    {"type":"seal", "signature":…}   Ed25519 over every byte before this line

Why this shape: a dossier's events are not contiguous in the chain, and the other events are
other people's data. An exported event proves its own content (its hash is recomputed from its
fields and stored prev_hash); its place in the sealed chain is proven by the checkpoint's interval
digest, recomputed from the hashes of every event of the interval in order — the other events are
present by hash only, never by content. The seal line makes any change to any byte of the file
(order, whitespace, header, scope) fail verification.
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, and_, select

from hub.audit import checkpoints
from hub.audit.chain import COUNT_FIELD, HASHED_FIELDS, AuditEvent, Recorder, event_hash
from hub.domain.parties import PLATFORM
from hub.infra.store.db import reader
from hub.infra.store.schema import audit_checkpoints, audit_events

FORMAT = "wib-hub-audit-bundle/1"
CHECKPOINT_FIELDS = ("seq", "from_seq", "count", "head_hash", "digest", "ts_us", "key_id", "signature")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _event_line(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row[name] for name in HASHED_FIELDS}
    out["ts"] = _utc(row["ts"]).isoformat(timespec="microseconds")
    out["legal_basis"] = list(row["legal_basis"] or ())
    out["data_categories"] = sorted(row["data_categories"] or ())
    if row.get(COUNT_FIELD) is not None:  # as the chain: present only when the event has one
        out[COUNT_FIELD] = row[COUNT_FIELD]
    return {"type": "event", **out, "prev_hash": row["prev_hash"], "hash": row["hash"]}


@dataclass
class ExportSummary:
    events: int
    hash_only: int
    checkpoints: int
    unsealed: int
    bytes: int


def export(engine: Engine, signer: checkpoints.Signer, out: Path, *, recorder: Recorder,
           dossier_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
           actor: str = PLATFORM) -> ExportSummary:
    """Write the bundle of a dossier's events, or of the events with since <= ts < until, and
    record the export as an `exported` audit event (by the processor, ONSS, Art. 8 §1)."""
    if dossier_id is not None:
        where, scope = audit_events.c.dossier_id == dossier_id, {"dossier_id": dossier_id}
    else:
        if since is None or until is None:
            raise ValueError("export needs a dossier or a time range (since and until)")
        where = and_(audit_events.c.ts >= since, audit_events.c.ts < until)
        scope = {"since": _utc(since).isoformat(), "until": _utc(until).isoformat()}
    with reader(engine).connect() as conn:
        wanted = set(conn.execute(select(audit_events.c.seq).where(where)).scalars())
        cps = [dict(r) for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).mappings()]
        cuts = [cp["seq"] for cp in cps]
        sealed = cuts[-1] if cuts else 0
        intervals = sorted({bisect.bisect_left(cuts, s) for s in wanted if s <= sealed})
        lines = [_line({"type": "header", "format": FORMAT, "scope": scope,
                        "exported_at": datetime.now(timezone.utc).isoformat(),
                        "public_key": checkpoints.public_raw(signer.public_key).hex(),
                        "key_id": signer.key_id, "events": len(wanted)})]
        summary = ExportSummary(len(wanted), 0, len(intervals), 0, 0)
        for i in intervals:
            cp = cps[i]
            rows = conn.execute(select(audit_events).where(audit_events.c.seq >= cp["from_seq"],
                                                           audit_events.c.seq <= cp["seq"])
                                .order_by(audit_events.c.seq)).mappings()
            for row in rows:
                if row["seq"] in wanted:
                    lines.append(_line(_event_line(dict(row))))
                else:
                    lines.append(_line({"type": "hash", "seq": row["seq"], "hash": row["hash"]}))
                    summary.hash_only += 1
            lines.append(_line({"type": "checkpoint", **{k: cp[k] for k in CHECKPOINT_FIELDS}}))
        tail = sorted(s for s in wanted if s > sealed)
        if tail:
            rows = conn.execute(select(audit_events).where(audit_events.c.seq.in_(tail))
                                .order_by(audit_events.c.seq)).mappings()
            lines.extend(_line(_event_line(dict(r))) for r in rows)
        summary.unsealed = len(tail)
    body = b"".join(lines)
    data = body + _line({"type": "seal", "signature": signer.sign(body)})
    out.write_bytes(data)
    summary.bytes = len(data)
    # the export itself is a step of the trail
    recorder.record([AuditEvent("exported", dossier_id=dossier_id, actor=actor,
                                reason=f"audit bundle: {len(wanted)} events"
                                       + ("" if dossier_id else f", {scope['since']} to {scope['until']}"))])
    return summary


@dataclass
class BundleReport:
    intact: bool
    events: int = 0
    hash_only: int = 0
    checkpoints: int = 0
    unsealed: list[int] = field(default_factory=list)
    first_bad_seq: int | None = None
    reason: str | None = None
    pinned: bool = False
    scope: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.intact:
            where = f" at sequence {self.first_bad_seq}" if self.first_bad_seq is not None else ""
            return f"bundle BROKEN{where}: {self.reason}"
        text = (f"bundle intact: {self.events} event{'' if self.events == 1 else 's'}, {self.hash_only} hash-only, "
                f"{self.checkpoints} signed checkpoint{'' if self.checkpoints == 1 else 's'}")
        if self.unsealed:
            text += f"; {len(self.unsealed)} unsealed (after the last checkpoint): {self.unsealed}"
        return text


class _Broken(Exception):
    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def verify_bundle(data: bytes, pinned: Ed25519PublicKey | None = None) -> BundleReport:
    """Check a bundle with nothing but its bytes (and, if given, the expected public key)."""
    report = BundleReport(False, pinned=pinned is not None)
    try:
        _check(data, pinned, report)
    except _Broken as err:
        report.first_bad_seq, report.reason = err.seq, err.reason
        return report
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        report.reason = f"malformed bundle ({type(err).__name__})"
        return report
    report.intact = True
    return report


def _parse(raw: bytes, n: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise _Broken(None, f"line {n} is not JSON") from None
    if not isinstance(obj, dict) or _line(obj) != raw + b"\n":
        raise _Broken(obj.get("seq") if isinstance(obj, dict) and isinstance(obj.get("seq"), int) else None,
                      f"line {n} is not in canonical form")
    return obj


def _check(data: bytes, pinned: Ed25519PublicKey | None, report: BundleReport) -> None:
    if not data.endswith(b"\n"):
        raise _Broken(None, "bundle does not end with its seal line")
    raw_lines = data[:-1].split(b"\n")
    if len(raw_lines) < 2:
        raise _Broken(None, "bundle has no header or no seal")
    header = _parse(raw_lines[0], 1)
    if header.get("type") != "header" or header.get("format") != FORMAT:
        raise _Broken(None, "first line is not a bundle header of format " + FORMAT)
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(header["public_key"]))
    except (KeyError, TypeError, ValueError):
        raise _Broken(None, "header holds no valid Ed25519 public key") from None
    if pinned is not None and checkpoints.public_raw(pinned) != checkpoints.public_raw(key):
        raise _Broken(None, "bundle is signed with another key than the pinned one")
    report.scope = header.get("scope") or {}
    interval: list[tuple[int, str]] = []
    last_seq = 0
    for n, raw in enumerate(raw_lines[1:-1], start=2):
        obj = _parse(raw, n)
        kind, seq = obj.get("type"), obj.get("seq")
        if not isinstance(seq, int) or seq < last_seq or (seq == last_seq and kind != "checkpoint"):
            raise _Broken(seq if isinstance(seq, int) else None, f"line {n}: sequence out of order")
        if kind == "checkpoint":
            _check_interval(obj, interval, key)
            report.checkpoints += 1
            interval = []
            continue
        if interval and seq != interval[-1][0] + 1:
            raise _Broken(interval[-1][0] + 1, f"sequence {interval[-1][0] + 1} missing")
        if kind == "hash":
            report.hash_only += 1
            interval.append((seq, obj["hash"]))
        elif kind == "event":
            _check_event(obj, interval)
            report.events += 1
            interval.append((seq, obj["hash"]))
        else:
            raise _Broken(seq, f"line {n}: unknown line type {kind!r}")
        last_seq = seq
    report.unsealed = [s for s, _ in interval]
    if report.events != header.get("events"):
        raise _Broken(None, f"header announces {header.get('events')} events, {report.events} found")
    seal = _parse(raw_lines[-1], len(raw_lines))
    body = data[:len(data) - len(raw_lines[-1]) - 1]
    if seal.get("type") != "seal" or not checkpoints.verify_signature(key, str(seal.get("signature")), body):
        raise _Broken(None, "seal signature does not verify: the file was changed after export")


def _check_event(obj: dict[str, Any], interval: list[tuple[int, str]]) -> None:
    seq = obj["seq"]
    try:
        row = {name: obj[name] for name in HASHED_FIELDS}
        row["ts"] = datetime.fromisoformat(obj["ts"])
        if COUNT_FIELD in obj:  # written only when the event has one: then a positive integer
            count = obj[COUNT_FIELD]
            if type(count) is not int or count < 1:
                raise ValueError("count")
            row[COUNT_FIELD] = count
        recomputed = event_hash(obj["prev_hash"], row)
    except (KeyError, TypeError, ValueError):
        raise _Broken(seq, "event line lacks a field or holds a malformed one") from None
    if recomputed != obj["hash"]:
        raise _Broken(seq, "event content does not match its hash")
    if interval and interval[-1][1] != obj["prev_hash"]:
        raise _Broken(seq, "previous-hash link broken")


def _check_interval(cp: dict[str, Any], interval: list[tuple[int, str]], key: Ed25519PublicKey) -> None:
    try:
        problem = checkpoints.check(cp, key, cp["from_seq"])
    except (KeyError, TypeError, ValueError):
        raise _Broken(cp.get("seq"), "checkpoint line lacks a field or holds a malformed one") from None
    if problem:
        raise _Broken(cp["seq"], problem)
    seqs = [s for s, _ in interval]
    if seqs != list(range(cp["from_seq"], cp["seq"] + 1)):
        missing = next((s for s in range(cp["from_seq"], cp["seq"] + 1) if s not in set(seqs)), cp["from_seq"])
        raise _Broken(missing, f"interval of checkpoint {cp['seq']} incomplete: sequence {missing} missing")
    if checkpoints.interval_digest(h for _, h in interval) != cp["digest"] or interval[-1][1] != cp["head_hash"]:
        raise _Broken(cp["from_seq"], f"events {cp['from_seq']}..{cp['seq']} do not match signed checkpoint {cp['seq']}")
