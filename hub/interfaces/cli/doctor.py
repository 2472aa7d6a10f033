"""`wib-hub doctor`: the start-up checks against the configuration in effect, one row per check.

It changes nothing: what `serve` creates on its first start (the SQLite store, the embedded broker,
the generated keys and clients file) is "not created yet", a warning, not a failure. Exit 0 when no
check fails, 1 otherwise.
"""
from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hub.infra.settings import ConfigurationError, Settings, safe_url, settings_errors
from hub.interfaces.cli.labels import plural
from hub.ports.probe import unreachable

OK, WARN, FAIL = "ok", "warn", "fail"
MARK = {OK: "[green]✓[/green]", WARN: "[yellow]![/yellow]", FAIL: "[red]✗[/red]"}
TIMEOUT_S = 2.0          # a source or server that does not answer within this is unreachable
NOT_CREATED = "not created yet (`wib-hub serve` creates it on first start)"


@dataclass
class Row:
    check: str
    status: str
    detail: str


class Doctor:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, check: str, status: str, detail: str) -> None:
        self.rows.append(Row(check, status, detail))

    def run(self, check: str, fn: Callable[[], tuple[str, str]]) -> str:
        """One check; an unexpected error is its failure, named, and the next check runs."""
        try:
            status, detail = fn()
        except ConfigurationError as err:
            status, detail = FAIL, err.line
        except Exception as err:  # noqa: BLE001 - the doctor reports, it does not stop
            status, detail = FAIL, f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
        self.add(check, status, detail)
        return status

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for r in self.rows)


def _age_mode(path: Path) -> tuple[str, str]:
    st = path.stat()
    days = int((time.time() - st.st_mtime) // 86400)
    mode = stat.S_IMODE(st.st_mode)
    detail = f"{path} ({days} d old, mode {mode:04o})"
    if mode & 0o077:
        return FAIL, f"{detail}: readable by others, expected mode 0600 (chmod 600 {path})"
    return OK, detail


def _key_file(variable: str, explicit: Path | None, default: Path) -> tuple[str, str]:
    path = explicit or default
    if path.is_file():
        return _age_mode(path)
    if explicit is not None:
        return FAIL, f"{variable}: no such file {path}"
    return WARN, f"{path}: {NOT_CREATED}"


def known_revision(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from hub.infra.store.db import MIGRATIONS
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic says "unknown" in several ways
        return False


def _tcp(url: str) -> tuple[str, str]:
    reason = unreachable(url, TIMEOUT_S)
    return (OK, f"{safe_url(url)} answers") if reason is None else (FAIL, f"{safe_url(url)} unreachable: {reason}")


def run_doctor(console: Console) -> int:
    doc = Doctor()
    try:
        settings = Settings()
    except Exception as err:
        lines = settings_errors(err)
        if not lines:
            raise
        doc.add("settings", FAIL, "; ".join(lines))
        return _print(console, doc)

    def check_settings() -> tuple[str, str]:
        from hub.bootstrap import check_settings as check
        check(settings)
        return OK, "environment read (HUB_*), office hours " + repr(settings.office_hours)
    doc.run("settings", check_settings)

    data_dir = settings.data_dir.resolve()
    doc.run("data directory", lambda: (OK, f"{data_dir}") if data_dir.is_dir()
            else (WARN, f"{data_dir}: {NOT_CREATED}"))

    state: dict[str, object] = {}

    def contracts() -> tuple[str, str]:
        from hub.registry import load
        loaded = load(settings.contracts_dir)
        state["registry"] = loaded.registry
        reg = loaded.registry
        return OK, f"{len(reg.flows)} flows, {len(reg.parties)} parties ({settings.contracts_dir or 'contracts/'})"
    doc.run("contracts", contracts)

    store_url = settings.resolved_database_url()
    sqlite = store_url.startswith("sqlite")

    def store() -> tuple[str, str]:
        if sqlite:
            path = Path(store_url.split("///", 1)[1])
            if not path.is_file():
                return WARN, f"{store_url}: {NOT_CREATED}"
        from sqlalchemy import create_engine

        from hub.infra.store.db import check_reachable, normalise_url
        engine = create_engine(normalise_url(store_url), pool_pre_ping=False,
                               connect_args={} if sqlite else {"connect_timeout": int(TIMEOUT_S) + 1})
        try:
            check_reachable(engine)
            state["engine"] = engine
        except Exception:
            engine.dispose()
            raise
        return OK, f"{safe_url(store_url)} answers ({engine.url.get_backend_name()})"
    doc.run("store reachable", store)

    def migrations() -> tuple[str, str]:
        from hub.infra.store.db import current_revision, head_revision
        head = head_revision()
        engine = state.get("engine")
        if engine is None:
            if sqlite and not Path(store_url.split("///", 1)[1]).is_file():
                return WARN, f"head {head}; store {NOT_CREATED}"
            return FAIL, "the store does not answer"
        current = current_revision(engine)  # type: ignore[arg-type]
        if current == head:
            return OK, f"at head {head}"
        if current is None:
            return WARN, f"not migrated yet (head {head}; `wib-hub serve` or `wib-hub worker` migrates it)"
        if not known_revision(current):
            return FAIL, f"at {current}, unknown to this code (head {head}): a newer hub migrated this store"
        return WARN, f"at {current}, head is {head} (`wib-hub serve` or `wib-hub worker` migrates it)"
    doc.run("migrations at head", migrations)

    broker_url = settings.resolved_broker_url()
    scheme = broker_url.partition("://")[0].lower()

    def broker() -> tuple[str, str]:
        if scheme in ("sqlite", "embedded"):
            path = Path(broker_url.split("///", 1)[1])
            if not path.is_file():
                return WARN, f"embedded {path}: {NOT_CREATED}"
            return OK, f"embedded {path}"
        if scheme == "memory":
            return OK, f"in-process {broker_url} (tests only)"
        if scheme not in ("amqp", "amqps"):
            return FAIL, f"HUB_BROKER_URL: unknown scheme {scheme!r} (expected amqp://, amqps://, sqlite:///)"
        import pika

        from hub.infra.transport import split_urls
        from hub.infra.transport.amqp import connection_reason
        answers, down = [], []
        for url in split_urls(broker_url):   # every node of a cluster
            params = pika.URLParameters(url)
            params.socket_timeout = params.stack_timeout = TIMEOUT_S
            params.connection_attempts, params.retry_delay = 1, 0
            try:
                conn = pika.BlockingConnection(params)
            except Exception as err:  # noqa: BLE001 - every way of not answering is the same row
                down.append(f"{safe_url(url)} unreachable: {connection_reason(err, params)}")
                continue
            answers.append(safe_url(url))
            if "amqp" in state:
                conn.close()
            else:
                state["amqp"] = (conn, params)
        if not answers:
            return FAIL, "broker " + "; ".join(down)
        if down:   # the hub runs on the nodes that answer; the cluster has lost some
            return WARN, f"{', '.join(answers)} answer{'s' if len(answers) == 1 else ''}; " + "; ".join(down)
        return OK, f"{', '.join(answers)} answer{'s' if len(answers) == 1 else ''}"
    doc.run("broker reachable", broker)

    def queues() -> tuple[str, str]:
        from hub.bootstrap import hub_queues
        registry = state.get("registry")
        if registry is None:
            return FAIL, "contracts not loaded"
        names = hub_queues(settings, registry)  # type: ignore[arg-type]
        if scheme not in ("amqp", "amqps"):
            return OK, f"the route queue and {plural(len(names) - 1, 'party queue')}: the embedded transport needs no declaring"
        if "amqp" not in state:
            return FAIL, "the broker does not answer"
        import pika.exceptions as px
        conn, _ = state["amqp"]  # type: ignore[misc]
        missing = []
        for name in names:
            ch = conn.channel()
            try:
                ch.queue_declare(name, passive=True)
            except px.ChannelClosedByBroker as err:
                if err.reply_code != 404:
                    raise
                missing.append(name)
            finally:
                if ch.is_open:
                    ch.close()
        if missing:
            return WARN, (f"{len(names) - len(missing)} of {len(names)} declared; not yet: {', '.join(missing[:4])}"
                          f"{' …' if len(missing) > 4 else ''} (`wib-hub serve` or `wib-hub worker` declares them)")
        return OK, f"{names[0]} and {plural(len(names) - 1, 'party queue')} declared"
    doc.run("queues declared", queues)

    def workers() -> tuple[str, str]:
        from hub.domain.envelope import utcnow
        from hub.infra.store import heartbeats
        engine = state.get("engine")
        if engine is None:
            store_row = next(r for r in doc.rows if r.check == "store reachable")
            return (WARN, "none: the store is not created yet") if store_row.status == WARN \
                else (FAIL, "unknown: the store does not answer")
        within = heartbeats.window_s(settings.heartbeat_seconds)
        try:
            fresh, stale = heartbeats.alive(engine, utcnow(), settings.heartbeat_seconds)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a store older than the heartbeats: the migrations row says so
            return WARN, "no heartbeats in this store yet (not migrated to head)"
        gone = f"; {plural(len(stale), 'process', 'processes')} stopped beating without stopping ({_who(stale)})" if stale else ""
        if not fresh:
            return WARN, (f"no worker process beat in the last {within:.0f} s (`wib-hub worker` or `wib-hub serve` "
                          f"runs them){gone}")
        broken = [f"{r['process_id']}: {name} given up"
                  for r in fresh for name, t in (r["threads"] or {}).items()
                  if t.get("vital") and not t.get("alive")]
        threads = sum(len(r["threads"] or {}) for r in fresh)
        restarts = sum(t.get("restarts", 0) for r in fresh for t in (r["threads"] or {}).values())
        detail = (f"{plural(len(fresh), 'process', 'processes')} ({_who(fresh)}), {plural(threads, 'thread')}, "
                  f"{plural(restarts, 'restart')}{gone}")
        if broken:
            return FAIL, f"{detail}; not running: {', '.join(broken[:4])}"
        return OK, detail
    doc.run("workers alive", workers)

    def token_key() -> tuple[str, str]:
        if settings.token_key:
            return (OK, "from HUB_TOKEN_KEY") if len(settings.token_key) >= 32 else \
                (FAIL, "HUB_TOKEN_KEY: expected at least 32 characters")
        return _key_file("HUB_TOKEN_KEY_FILE", settings.token_key_file, settings.data_dir / "token.key")
    doc.run("token key", token_key)
    doc.run("audit signing key", lambda: _key_file("HUB_AUDIT_KEY_FILE", settings.audit_key_file,
                                                   settings.resolved_audit_key_file()))

    def clients() -> tuple[str, str]:
        from hub.bootstrap import check_token_url, read_clients
        path = settings.resolved_clients_file()
        if settings.clients_file is None and not path.is_file():
            return WARN, f"{path}: {NOT_CREATED}"
        found = read_clients(path)
        check_token_url(settings, found, path)
        keyed = sorted(p for p, c in found.items() if c.public_keys)
        detail = f"{path}: {len(found)} parties, {len(keyed)} with private_key_jwt"
        if keyed:
            detail += f" ({', '.join(keyed[:3])}{' …' if len(keyed) > 3 else ''}), HUB_TOKEN_URL {settings.token_url}"
        registry = state.get("registry")
        unknown = sorted(set(found) - set(registry.parties)) if registry is not None else []  # type: ignore[attr-defined]
        if unknown:
            return FAIL, f"{detail}; not parties of contracts/: {', '.join(unknown[:5])}"
        status, mode = _age_mode(path)
        if status != OK:   # plain secrets others can read fail; hashes only are a warning
            plain = any(isinstance(e, dict) and e.get("secret") for e in json.loads(path.read_text()).values())
            return FAIL if plain else WARN, f"{detail}; {mode.split(': ', 1)[-1]}"
        return OK, detail
    doc.run("clients file", clients)

    def sources() -> tuple[str, str]:
        registry = state.get("registry")
        if registry is None:
            return FAIL, "contracts not loaded"
        wanted = sorted({n for flow in registry.flows.values() for n in flow.enrich})  # type: ignore[attr-defined]
        if not wanted:
            return OK, "no flow enriches"
        configured = {n: settings.sources[n] for n in wanted if n in settings.sources}
        missing = [n for n in wanted if n not in configured]
        parts, status = [], OK
        for name, url in configured.items():
            st, detail = _tcp(url)
            parts.append(f"{name} {detail}")
            if st != OK:
                status = FAIL
        if missing and settings.sandbox:
            parts.append(f"{', '.join(missing)}: the sandbox's simulators (HUB_SANDBOX)")
        elif missing:
            status = FAIL
            parts.append(f"HUB_SOURCES: no URL for {', '.join(missing)} and HUB_SANDBOX is false")
        extra = sorted(set(settings.sources) - set(wanted))
        if extra:
            parts.append(f"not used by any flow: {', '.join(extra)}")
        return status, "; ".join(parts)
    doc.run("sources", sources)

    for key in ("engine",):
        engine = state.get(key)
        if engine is not None:
            engine.dispose()  # type: ignore[attr-defined]
    if "amqp" in state:
        try:
            state["amqp"][0].close()  # type: ignore[index]
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
    return _print(console, doc)


def _who(rows: list[dict]) -> str:
    names = [f"{r['role']} {r['host']}:{r['pid']}" for r in rows]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _print(console: Console, doc: Doctor) -> int:
    table = Table(title="wib-hub doctor", show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for row in doc.rows:
        table.add_row(MARK[row.status], row.check, row.detail.replace("[", "\\["))
    console.print(table)
    fails = sum(r.status == FAIL for r in doc.rows)
    warns = sum(r.status == WARN for r in doc.rows)
    console.print(f"{len(doc.rows)} checks: {fails} failed, {warns} warnings" if fails or warns
                  else f"{len(doc.rows)} checks passed")
    return 1 if doc.failed else 0

