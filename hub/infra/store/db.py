"""Engines and migrations. SQLite for the embedded default, PostgreSQL (psycopg 3) in production."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event

from hub.domain import jsonbytes

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=8, max_overflow=8, json_serializer=_json_text, json_deserializer=jsonbytes.loads)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            # Let SQLAlchemy issue BEGIN itself, as IMMEDIATE: writers queue on the lock instead of
            # failing with "database is locked" when a read transaction tries to upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # readers (see `reader`) take a snapshot and no lock: WAL lets them run beside the writer
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    # pre-ping: a pooled connection the server dropped (a restart, a failover, a terminated
    # backend) is found dead at checkout and replaced, instead of failing the request that drew it;
    # one round trip per checkout, a few per message. While the server is really down, the error
    # reaches the caller, which answers 503 (is_unavailable).
    return create_engine(url, pool_size=16, max_overflow=16, pool_recycle=1800, pool_pre_ping=True,
                         pool_timeout=10, json_serializer=jsonbytes.dumps, json_deserializer=jsonbytes.loads)


def _json_text(value: Any) -> str:
    """JSON columns on SQLite are text (PostgreSQL's driver takes the bytes as they are)."""
    return jsonbytes.dumps(value).decode()


def _store_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    return DBAPIError, PoolTimeout, psycopg.Error


STORE_ERRORS = _store_errors()
"""What the store's driver and pool raise (is_unavailable tells an outage from a fault)."""


def is_unavailable(err: BaseException) -> bool:
    """The store is away (its server down or restarting, a connection lost, the pool exhausted, a
    SQLite file locked beyond its timeout), not a fault of the request or of the code: the caller
    may try again in a moment."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    if isinstance(err, PoolTimeout):
        return True
    if isinstance(err, DBAPIError):
        return bool(err.connection_invalidated) or isinstance(err, (OperationalError, InterfaceError))
    import psycopg
    return isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError))


READ_ONLY = "hub_read_only"


def reader(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read (on SQLite: no write lock)."""
    return engine.execution_options(**{READ_ONLY: True})


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


# Taken by every process that migrates: API processes and workers starting together on a new store
# migrate one after the other (the others then find nothing left to do), never side by side.
MIGRATION_LOCK = 0x77_69_62_68   # "wibh", a PostgreSQL advisory lock key


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; on PostgreSQL one process at a time)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":   # held until this transaction ends
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        command.upgrade(_config(conn), revision)


def head_revision() -> str | None:
    """The newest revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def unreachable_reason(err: BaseException) -> str:
    """Why the store did not answer, in a few words: the driver's own first line (no password: the
    drivers do not print it)."""
    orig = getattr(err, "orig", None) or err
    text = " ".join(str(orig).split("\n")[0].split())
    if "failed: " in text:   # psycopg: connection to server at "h" (ip), port 5432 failed: Connection refused
        text = text.rsplit("failed: ", 1)[1]
    return text[:200] or type(orig).__name__


def check_reachable(engine: Engine) -> None:
    """One round trip to the store; an unreachable store is a line naming host, port and database."""
    from sqlalchemy import text as sql
    from sqlalchemy.exc import DBAPIError

    from hub.infra.settings import Unreachable
    try:
        with engine.connect() as conn:
            conn.execute(sql("SELECT 1"))
    except DBAPIError as err:
        url = engine.url.render_as_string(hide_password=True)
        raise Unreachable("store", "HUB_DATABASE_URL", url, unreachable_reason(err)) from None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
