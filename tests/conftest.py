"""Shared fixtures: the real servers (PostgreSQL, RabbitMQ) and a hub wired on each store × transport.

The servers are the production path: when one is unreachable the tests that need it fail, they are
not skipped — unless HUB_TEST_ALLOW_SKIP=1 is set on a machine that has none.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.support import AMQP_URL, PG_URL, SANDBOX_DIR, sqlite_store, start_hub

# The CLI's consoles measure the terminal each time they print (the tests pass COLUMNS to each
# invocation); a width in the environment when they are built, as pytest-xdist gives its workers
# (COLUMNS=80), would fix it for good.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# No test touches the real user data directory (the default of HUB_DATA_DIR, platformdirs'
# user_data_dir, which honours XDG_DATA_HOME): set here, when pytest (and each xdist worker) loads
# this file — before any test module builds Settings — so every Settings(), CliRunner invocation and
# subprocess-started `wib-hub` of the session inherits it. A HUB_DATA_DIR of the caller's shell goes.
os.environ.pop("HUB_DATA_DIR", None)
TEST_XDG_DATA_HOME = tempfile.mkdtemp(prefix="wib-hub-xdg-")
os.environ["XDG_DATA_HOME"] = TEST_XDG_DATA_HOME


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
        return sqlite_store(tmp_path / "hub.db")
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request, tmp_path):
    if request.param == "embedded":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    return request.getfixturevalue("amqp_url")


@pytest.fixture(autouse=True, scope="session")
def _no_real_data_dir():
    """The guard above, checked for the whole session: the default data directory is the test one."""
    from hub.infra.settings import default_data_dir
    assert str(default_data_dir()).startswith(TEST_XDG_DATA_HOME), default_data_dir()
    yield


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SANDBOX_DIR, ignore_errors=True)
    shutil.rmtree(TEST_XDG_DATA_HOME, ignore_errors=True)


@pytest.fixture
def running_hub(tmp_path, store_url, broker_url):
    """The hub on the parametrised store and transport (4 combinations)."""
    yield from start_hub(tmp_path / "data", store_url, broker_url)


@pytest.fixture
def local_hub(tmp_path):
    """The hub in this process for tests about its logic: a SQLite store and the in-memory
    transport (the transports themselves pass the same contract tests, tests/integration)."""
    yield from start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{uuid.uuid4().hex}",
                         max_body_bytes=64 * 1024)
