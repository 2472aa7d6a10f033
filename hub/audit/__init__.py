"""The flow log per protocol agreement: append, hash chain, signed checkpoints, verify, export.

Its own table, its own commands; never mixed with operational logs, and it holds the hash of a
payload, never the payload.
"""
from hub.audit.chain import AuditEvent, VerifyReport, append, tail, verify
from hub.audit.checkpoints import checkpoint_now

__all__ = ["AuditEvent", "VerifyReport", "append", "checkpoint_now", "tail", "verify"]
