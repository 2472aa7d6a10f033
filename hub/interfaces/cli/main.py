"""The `wib-hub` command: running the hub (serve, api, worker, demo), and one module per command group,
each registered the same way (`app.add_typer`; a module without a group name adds top-level commands).
"""
from __future__ import annotations

import signal
import threading
from typing import Annotated, Optional

import typer

from hub.domain.errors import RegistryError
from hub.infra.settings import ConfigurationError, Settings
from hub.interfaces.cli import (
    audit,
    broker,
    clients,
    clocks,
    contracts,
    designations,
    enrich,
    flows,
    keys,
    retention,
    rights,
    stats,
)
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.options import cli_console

app = typer.Typer(help="wib-hub: the data-exchange hub of the single-permit platform.", no_args_is_help=True)
console = cli_console()
DISTRIBUTION = "wib-hub"   # the installed package whose version `--version` prints

# group name → the module that has its commands (None: top-level commands)
GROUPS = {"flows": flows, "audit": audit, "contracts": contracts, "designations": designations,
          "clocks": clocks, "retention": retention, "rights": rights, "stats": stats,
          "clients": clients, "keys": keys, "broker": broker, None: enrich}
for _name, _module in GROUPS.items():
    app.add_typer(_module.app, name=_name)


def version() -> str:
    """The installed package's version (its metadata), or "unknown" when run from a tree not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"{DISTRIBUTION} {version()}")
        raise typer.Exit(0)


@app.callback()
def _global(show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                       help="print the version and exit")] = False) -> None:
    """wib-hub: the data-exchange hub of the single-permit platform."""


def _build(settings: Settings | None = None):
    from hub.bootstrap import build_hub
    try:
        return build_hub(settings)
    except ConfigurationError as err:
        console.print(err.line, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from err
    except RegistryError as err:
        console.print(f"[red]flow registry refused[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
        raise typer.Exit(2) from err


def _run_api(hub, host: str, port: int, sockets=None) -> None:
    import uvicorn

    from hub.interfaces.api.app import create_app
    from hub.interfaces.api.server import server_config
    server = uvicorn.Server(server_config(create_app(hub), hub.settings, host, port))
    if hub.runtime.started:   # a vital worker thread given up stops the server: the process must go
        threading.Thread(target=lambda: hub.runtime.failed.wait() and setattr(server, "should_exit", True),
                         name="watch-workers", daemon=True).start()
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    if not server.started:   # e.g. the port is taken (uvicorn said why): as uvicorn.run, exit 3
        raise typer.Exit(3)
    _exit_if_failed(hub)


def _exit_if_failed(hub) -> None:
    """A vital worker thread that could not be kept alive ends the process non-zero, for its
    supervisor (systemd, Docker, Kubernetes) to start a new one."""
    if hub.runtime.failed.is_set():
        _, wrong = hub.runtime.live()
        console.print(f"wib-hub stopped: {', '.join(wrong) or 'a vital worker thread failed'} (see the log)",
                      markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def serve(host: Annotated[Optional[str], typer.Option()] = None,
          port: Annotated[Optional[int], typer.Option()] = None) -> None:
    """Everything in one process: API + outbox relay + route workers (embedded default: SQLite + embedded transport)."""
    settings = Settings()
    hub = _build(settings)
    hub.start_workers(role="serve")
    host, port = host or settings.host, port or settings.port
    console.print(f"wib-hub serving on http://{host}:{port}  (store: {hub.engine.url.get_backend_name()}, "
                  f"broker: {type(hub.transport).__name__}; data directory: {settings.data_dir}; "
                  f"client secrets in {settings.resolved_clients_file()})", soft_wrap=True, highlight=False, markup=False)
    try:
        _run_api(hub, host, port)
    finally:
        hub.close()


@app.command()
def api(host: Annotated[Optional[str], typer.Option()] = None,
        port: Annotated[Optional[int], typer.Option()] = None,
        processes: Annotated[int, typer.Option(min=1, max=64, help="API processes sharing the port, each with "
                                                                   "its own hub (one per core)")] = 1) -> None:
    """The API alone (run workers beside it with `wib-hub worker`)."""
    settings = Settings()
    host, port = host or settings.host, port or settings.port
    if processes > 1:
        from hub.interfaces.api.processes import listen, run_processes
        try:
            sock = listen(host, port)
        except OSError as err:
            console.print(f"wib-hub api: cannot listen on {host}:{port}: {err.strerror}", markup=False,
                          highlight=False, soft_wrap=True)
            raise typer.Exit(3) from err
        console.print(f"wib-hub api: {processes} processes on http://{host}:{port}", markup=False, highlight=False)
        raise typer.Exit(run_processes(processes, sock, lambda s: _api_process(settings, host, port, s)))
    if code := _api_process(settings, host, port):
        raise typer.Exit(code)


def _api_process(settings: Settings, host: str, port: int, sock=None) -> int:
    """One API process: its own hub (on the shared socket of `api --processes N`, if given); what it
    exits with."""
    try:
        hub = _build(settings)
        try:
            _run_api(hub, host, port, sockets=None if sock is None else [sock])
        finally:
            hub.close()
    except typer.Exit as done:
        return done.exit_code
    return 0


@app.command()
def worker(routers: Annotated[int, typer.Option(help="route consumers in this process")] = 2) -> None:
    """Outbox relay and route consumers, until SIGINT/SIGTERM."""
    settings = Settings()
    hub = _build(settings)
    hub.start_workers(routers=routers)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    console.print(f"wib-hub worker running ({plural(routers, 'route consumer')}; data directory: {settings.data_dir})",
                  soft_wrap=True, highlight=False, markup=False)
    try:
        while not done.wait(0.5) and not hub.runtime.failed.is_set():
            pass
        _exit_if_failed(hub)
    finally:
        hub.close()


@app.command()
def demo(url: Annotated[Optional[str], typer.Option(help="a running hub; default: one on 127.0.0.1:8080 "
                                                         "if it answers, else an in-process hub")] = None) -> None:
    """Run the whole combined procedure for a synthetic applicant through every flow; print the timeline."""
    from hub.interfaces.cli.demo import run_demo
    raise typer.Exit(run_demo(console, url))


@app.command()
def doctor(data_dir: Annotated[bool, typer.Option("--data-dir", help="print only the data directory in effect "
                                                                   "(absolute; HUB_DATA_DIR, else the platform's user "
                                                                   "data directory) and exit")] = False) -> None:
    """Check the configuration in effect (settings, store, migrations, broker, queues, keys, clients,
    sources, data directory): one row per check; exit 0 when all pass, 1 otherwise."""
    if data_dir:
        from hub.infra.settings import load_settings
        try:
            print(load_settings().data_dir)
        except ConfigurationError as err:
            console.print(err.line, markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from err
        return
    from hub.interfaces.cli.doctor import run_doctor
    raise typer.Exit(run_doctor(console))


def main() -> None:
    """The `wib-hub` command: a store that cannot be reached or is not migrated yet, or a setting
    that is not valid, is a message and exit 2, not a traceback (with SQL in it): one line per
    variable (`HUB_PORT: expected an integer (got 'abc')`) or server (`broker amqp://h:5672/%2F
    unreachable: connection refused at h:5672`), never a password."""
    try:
        app()
    except Exception as err:
        from hub.bootstrap import startup_error
        lines = startup_error(err)
        if not lines:
            raise
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
