"""Authentication (Art. 8 §2; GDPR art. 32): private_key_jwt for parties, the acting person, the
optional mTLS header and per-party rate limits — and the attacks on them, each refused with one
`rejected` audit event and nothing else stored.

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import pytest

from hub.infra.auth import load_clients
from tests.support.authentication import (
    TOKEN_URL,
    assertion,
    write_clients,
)


def test_a_replay_to_another_api_process_is_refused(tmp_path, store_url):
    """Several `wib-hub api` processes share the store: an assertion used at one is refused at the
    other (each process has its own TokenIssuer; the replay cache is the `assertion_ids` table)."""
    from hub.domain.errors import NotAuthenticated
    from hub.infra.auth import StoredReplayCache, TokenIssuer
    from hub.infra.store import migrate, open_engine
    engine = open_engine(store_url)
    migrate(engine)
    clients = load_clients(write_clients(tmp_path / "clients.json"))
    first, second = (TokenIssuer("k" * 48, clients, {}, replays=StoredReplayCache(engine)) for _ in range(2))
    signed = assertion("dvz")
    assert first.check_assertion(signed, [TOKEN_URL]) == "dvz"
    with pytest.raises(NotAuthenticated) as err:
        second.check_assertion(signed, [TOKEN_URL])
    assert err.value.code == "assertion_replayed"
    assert second.check_assertion(assertion("dvz"), [TOKEN_URL]) == "dvz"     # a fresh jti passes
    engine.dispose()
