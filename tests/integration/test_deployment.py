"""The production-shaped deployment parses and names its services; the schema matches its migrations."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.infra.store import current_revision, migrate, open_engine
from hub.infra.store.db import head_revision
from hub.infra.store.schema import metadata

ROOT = Path(__file__).resolve().parents[2]


def test_compose_names_the_services():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"rabbitmq", "postgres", "hub-api", "hub-worker"} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    assert services["hub-api"]["command"][:2] == ["wib-hub", "api"]
    assert services["hub-worker"]["command"][:2] == ["wib-hub", "worker"]
    for name in ("hub-api", "hub-worker"):
        env = services[name]["environment"]
        assert env["HUB_DATABASE_URL"].startswith("postgresql://")
        assert env["HUB_BROKER_URL"].startswith("amqp://")
        # the sources are named, not started in-process: the hub's adapters by name, the sandbox's ports
        sources = json.loads(env["HUB_SOURCES"])
        assert env["HUB_SANDBOX"] == "false" and set(sources) == {"onss.dimona", "onss.dmfa", "onss.limosa",
                                                                  "inasti.self-employed"}
    from hub.ports import load_adapters
    ports = {name: 8100 + i for i, name in enumerate(load_adapters())}
    for name, url in sources.items():
        assert url.endswith(f":{ports[name]}"), (name, url)


def test_migrations_build_exactly_the_schema(store_url):
    engine = open_engine(store_url)
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff
    migrate(engine)  # idempotent
    engine.dispose()
