"""Fixtures of the integration tests (the servers' own are in tests/conftest.py)."""
from tests.support.transport import broker  # noqa: F401 (the transport contract's fixture: every transport)
