"""The flow log per protocol agreement: append, hash chain, signed checkpoints, verify, export.

Its own table, its own commands; never mixed with operational logs, and it holds the hash of a
payload, never the payload. Events reach it through the store's unit of work only
(hub.infra.store.unit_of_work), the one caller of `chain.append`.

    chain.py        AuditEvent, append (the hash chain), verify, tail
    checkpoints.py  signed checkpoints (Ed25519) and the policy that says when to seal
    query.py        the security officer's search
    report.py       the security officer's report
    bundle.py       export a dossier's or a period's events; check a bundle offline
    refusals.py     RefusalLog: refused requests on the record, repeats counted, never a flood
"""
from hub.audit.chain import AuditEvent, Recorder, VerifyReport, tail, verify
from hub.audit.checkpoints import CheckpointPolicy, checkpoint_now

__all__ = ["AuditEvent", "CheckpointPolicy", "Recorder", "VerifyReport", "checkpoint_now", "tail", "verify"]
