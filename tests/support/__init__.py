"""What the tests share besides fixtures: the servers' URLs, a hub built for a test and its client,
a migrated SQLite store. Imported as `tests.support` (one module, one sandbox per test process)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

# One sandbox (the source simulators) for the whole test session, shared by every hub a test starts.
SANDBOX_DIR = Path(tempfile.mkdtemp(prefix="wib-sandbox-"))


def hub_settings(data_dir: Path, database_url: str, broker_url: str, **kw):
    from hub.infra.settings import Settings
    kw.setdefault("queue_prefix", f"t{uuid.uuid4().hex[:8]}.")
    kw.setdefault("sandbox_dir", SANDBOX_DIR)
    return Settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url, **kw)


class HubClient:
    """The API as a party sees it: tokens per party, JSON in and out."""

    def __init__(self, hub, client):
        self.hub, self.http = hub, client
        self.secrets = json.loads(hub.settings.resolved_clients_file().read_text())
        self._tokens: dict[str, str] = {}

    def token(self, party: str, acting_person: str | None = None) -> str:
        key = f"{party}/{acting_person}"
        if key not in self._tokens:
            form = {"grant_type": "client_credentials", "client_id": party,
                    "client_secret": self.secrets[party]["secret"]}
            if acting_person:
                form["acting_person"] = acting_person
            r = self.http.post("/oauth/token", data=form)
            assert r.status_code == 200, r.text
            self._tokens[key] = r.json()["access_token"]
        return self._tokens[key]

    def as_(self, party: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(party)}"}

    def post(self, party: str, path: str, body) -> "object":
        return self.http.post(path, json=body, headers=self.as_(party))

    def get(self, party: str, path: str, **kw):
        return self.http.get(path, headers=self.as_(party), **kw)

    def refusals(self) -> list[dict]:
        """The `rejected` events, once the app's RefusalLog has written what it holds (a repeated
        refusal of the same kind is counted, not written, until its window ends)."""
        from sqlalchemy import select

        from hub.infra.store.schema import audit_events
        self.http.app.state.refusals.flush(final=True)
        with self.hub.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == "rejected")
                                                  .order_by(audit_events.c.seq)).mappings()]

    def refused(self) -> int:
        """How many refusals the trail holds (an aggregated event counts its `count`)."""
        return sum(e["count"] or 1 for e in self.refusals())


def start_hub(data_dir: Path, database_url: str, broker_url: str, **settings):
    """A hub with its workers behind a TestClient; yields a HubClient, then stops and cleans up."""
    from fastapi.testclient import TestClient

    from hub.bootstrap import build_hub
    from hub.interfaces.api.app import create_app
    hub = build_hub(hub_settings(data_dir, database_url, broker_url, **settings))
    hub.start_workers()
    try:
        with TestClient(create_app(hub)) as client:
            yield HubClient(hub, client)
    finally:
        shut_down(hub)


def shut_down(hub) -> None:
    """Stop the workers, remove the test's queues from the broker, close."""
    hub.stop_workers()
    hub.transport.delete(hub.route_queue)
    hub.close()


_MIGRATED: Path | None = None


def sqlite_store(path: Path) -> str:
    """The URL of a SQLite store at `path`, already migrated: a copy of one store migrated once per
    test session (the hub's migrate() then finds it at head). The migrations themselves are tested
    on their own (test_deployment) and on every PostgreSQL store."""
    global _MIGRATED
    if _MIGRATED is None:
        from hub.infra.store import migrate, open_engine
        template = SANDBOX_DIR / "migrated.db"
        engine = open_engine(f"sqlite:///{template}")
        migrate(engine)
        engine.dispose()   # the last connection closed: the WAL is folded into the file
        _MIGRATED = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_MIGRATED, path)
    return f"sqlite:///{path}"
