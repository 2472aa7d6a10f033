"""Shared fixtures: the real servers (PostgreSQL, RabbitMQ) and a hub wired on each store × transport.

The servers are the production path: when one is unreachable the tests that need it fail, they are
not skipped — unless HUB_TEST_ALLOW_SKIP=1 is set on a machine that has none.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _unavailable(what: str, err: Exception):
    if os.environ.get("HUB_TEST_ALLOW_SKIP") == "1":
        pytest.skip(f"{what} unreachable: {err}")
    pytest.fail(f"{what} unreachable ({err}); start it, or set HUB_TEST_ALLOW_SKIP=1 to skip", pytrace=False)


@pytest.fixture
def pg_schema_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    from hub.infra.store.db import normalise_url
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(normalise_url(PG_URL))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as err:  # noqa: BLE001 - any connection failure means the same here
        _unavailable("PostgreSQL", err)
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def amqp_url():
    import pika
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as err:  # noqa: BLE001
        _unavailable("RabbitMQ", err)
    return AMQP_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request, tmp_path):
    if request.param == "embedded":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    return request.getfixturevalue("amqp_url")


# One sandbox (the source simulators) for the whole test session, shared by every hub a test starts.
SANDBOX_DIR = Path(tempfile.mkdtemp(prefix="wib-sandbox-"))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SANDBOX_DIR, ignore_errors=True)


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


def start_hub(data_dir: Path, database_url: str, broker_url: str, **settings):
    """A hub with its workers behind a TestClient; yields a HubClient, then stops and cleans up."""
    from fastapi.testclient import TestClient

    from hub.interfaces.api.app import create_app
    from hub.bootstrap import build_hub
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


@pytest.fixture
def running_hub(tmp_path, store_url, broker_url):
    """The hub on the parametrised store and transport (4 combinations)."""
    yield from start_hub(tmp_path / "data", store_url, broker_url)


@pytest.fixture
def embedded_hub(tmp_path):
    """The hub on its embedded default: SQLite store, embedded transport."""
    yield from start_hub(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}",
                         f"sqlite:///{tmp_path / 'broker.db'}", max_body_bytes=64 * 1024)
