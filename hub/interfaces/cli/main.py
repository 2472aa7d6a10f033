"""The `wib-hub` command."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hub.interfaces.cli import contracts as cli_contracts, enrich as cli_enrich
from hub.domain.errors import RegistryError
from hub.infra.settings import Settings

app = typer.Typer(help="wib-hub: the data-exchange hub of the single-permit platform.", no_args_is_help=True)
flows_app = typer.Typer(help="The flow registry (the protocol agreement as data).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: who exchanged or consulted what, why and when.",
                        no_args_is_help=True)
app.add_typer(flows_app, name="flows")
app.add_typer(audit_app, name="audit")
console = Console()


def _build(settings: Settings | None = None):
    from hub.bootstrap import build_hub
    try:
        return build_hub(settings)
    except RegistryError as err:
        console.print(f"[red]flow registry refused[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
        raise typer.Exit(2) from err


def _run_api(hub, host: str, port: int) -> None:
    import uvicorn
    from hub.interfaces.api.app import create_app
    uvicorn.run(create_app(hub), host=host, port=port, log_level="warning")


@app.command()
def serve(host: Annotated[Optional[str], typer.Option()] = None,
          port: Annotated[Optional[int], typer.Option()] = None) -> None:
    """Everything in one process: API + outbox relay + route workers (embedded default: SQLite + embedded transport)."""
    settings = Settings()
    hub = _build(settings)
    hub.start_workers()
    host, port = host or settings.host, port or settings.port
    console.print(f"wib-hub serving on http://{host}:{port}  (store: {hub.engine.url.get_backend_name()}, "
                  f"broker: {type(hub.transport).__name__}; client secrets in {settings.resolved_clients_file()})")
    try:
        _run_api(hub, host, port)
    finally:
        hub.close()


@app.command()
def api(host: Annotated[Optional[str], typer.Option()] = None,
        port: Annotated[Optional[int], typer.Option()] = None) -> None:
    """The API alone (run workers beside it with `wib-hub worker`)."""
    settings = Settings()
    hub = _build(settings)
    try:
        _run_api(hub, host or settings.host, port or settings.port)
    finally:
        hub.close()


@app.command()
def worker(routers: Annotated[int, typer.Option(help="route consumers in this process")] = 2) -> None:
    """Outbox relay and route consumers, until SIGINT/SIGTERM."""
    hub = _build()
    hub.start_workers(routers=routers)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    console.print(f"wib-hub worker running ({routers} route consumers)")
    done.wait()
    hub.close()


@flows_app.command("check")
def flows_check(contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """Load and cross-check every flow, party and contract; name the file and field of any fault."""
    from hub.domain.flows import default_contracts_dir, load_registry
    try:
        registry = load_registry(contracts_dir or Settings().contracts_dir or default_contracts_dir())
    except RegistryError as err:
        console.print(f"[red]✗[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
        raise typer.Exit(2) from err
    table = Table(title=f"{len(registry.flows)} flows, {len(registry.parties)} parties, "
                        f"{len(registry.contracts)} message contracts")
    for col in ("flow", "purpose", "senders", "recipients", "contract", "categories", "open"):
        table.add_column(col)
    for f in registry.flows.values():
        table.add_row(f.id, f"Art. 10 {f.purpose}°", ", ".join(f.senders),
                      ", ".join(r.party for r in f.recipients), f.message,
                      ", ".join(sorted(f.data_categories)), "yes" if f.enabled else "no")
    console.print(table)
    console.print("[green]✓ registry valid[/green]")


from hub.interfaces.cli import audit as cli_audit  # noqa: E402  audit verify | export | checkpoint | public-key
cli_audit.register(audit_app)


@audit_app.command("tail")
def audit_tail(n: Annotated[int, typer.Option("-n", help="how many events")] = 20,
               as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False) -> None:
    """The last events of the trail (hashes, never payloads)."""
    import json

    from hub import audit
    from hub.interfaces.cli.demo import CATEGORY_SHORT
    from hub.infra.store import open_engine
    rows = audit.tail(open_engine(Settings().resolved_database_url()), n)
    if as_json:
        for r in rows:
            print(json.dumps({**r, "ts": r["ts"].isoformat()}, ensure_ascii=False))
        return
    table = Table(title=f"last {len(rows)} audit events")
    for col in ("seq", "time", "event", "flow", "actor → recipient", "art. 10", "dossier", "data", "reason", "hash"):
        table.add_column(col)
    for r in rows:
        outcome = "" if r["outcome"] in ("ok", r["event"]) else f" [red]{r['outcome']}[/red]"
        parties = (r["actor"] or "?") + (f" → {r['recipient']}" if r["recipient"] not in (None, r["actor"]) else "")
        event = f"[red]{r['event']}[/red]" if r["outcome"] == "rejected" else r["event"]
        table.add_row(str(r["seq"]), r["ts"].strftime("%H:%M:%S.%f")[:-3], event + outcome,
                      (r["flow_id"] or "").split(".", 1)[-1], parties, str(r["purpose"] or ""),
                      (r["dossier_id"] or "")[:8],
                      ",".join(CATEGORY_SHORT.get(c, c) for c in r["data_categories"] or []),
                      r["reason"] or "", r["hash"][:8])
    console.print(table)


@app.command()
def demo(url: Annotated[Optional[str], typer.Option(help="a running hub; default: one on 127.0.0.1:8080 "
                                                         "if it answers, else an in-process hub")] = None) -> None:
    """Run the whole combined procedure for a synthetic applicant through every flow; print the timeline."""
    from hub.interfaces.cli.demo import run_demo
    raise typer.Exit(run_demo(console, url))


cli_enrich.register(app)
from hub.interfaces.cli import security as cli_security  # noqa: E402  audit search | report, flows register
cli_security.register(audit_app, flows_app)
app.add_typer(cli_contracts.app, name="contracts")
from hub.interfaces.cli import designations as cli_designations  # noqa: E402  designations list (Art. 16–17)
cli_designations.register(app)
from hub.interfaces.cli import clocks as cli_clocks, retention as cli_retention, rights as cli_rights, stats as cli_stats  # noqa: E402  the dossier's life (Art. 27-32)
for _module in (cli_clocks, cli_retention, cli_rights, cli_stats):
    _module.register(app)



def main() -> None:
    """The `wib-hub` command: a store that cannot be reached or is not migrated yet is a message and
    exit 2, not a traceback (with SQL in it)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError
    try:
        app()
    except (OperationalError, ProgrammingError) as err:
        console.print(f"[red]store error[/red]: {type(err).__name__} — is the store reachable, and migrated? "
                      "(`wib-hub serve` or `wib-hub worker` migrates it)")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
