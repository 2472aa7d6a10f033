"""The flow log per protocol agreement: append, hash chain, verify, query.

Its own table, its own commands; never mixed with operational logs, and it holds the hash of a
payload, never the payload.
"""
from hub.audit.chain import AuditEvent, VerifyReport, append, tail, verify

__all__ = ["AuditEvent", "VerifyReport", "append", "tail", "verify"]
