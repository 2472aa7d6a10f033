"""`wib-hub sandbox`, `wib-hub enrich-batch`, `wib-hub monitor`, `wib-hub synthetic-batch`:
the simulators and the Art. 14 enrichment outside the message path."""
from __future__ import annotations

import csv
import json
import signal
import threading
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hub.infra.settings import Settings
from hub.interfaces.cli.options import store, cli_console

app = typer.Typer()   # top-level commands (no group)
console = cli_console()   # not cut to 80 columns when the output is not a terminal
DIMONA = "onss.dimona"
LEGAL_CONTEXT = "Single-permit cooperation agreement Art. 14 §1"


@app.command()
def sandbox(port: Annotated[int, typer.Option(help="first port; each simulator takes the next one (0: any free port)")] = 8100,
            host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
            latency_ms: Annotated[float, typer.Option(help="latency added to every answer")] = 0.0) -> None:
    """Run every simulator (ONSS Dimona, DmfA, Limosa; INASTI; DVZ and regional back offices) until Ctrl-C."""
    from hub.ports import load_adapters, load_toolkit
    settings = Settings()
    names = list(load_adapters())
    box = load_toolkit().sandbox(settings.resolved_sandbox_dir(), host=host)
    urls = box.start(names, {n: port + i for i, n in enumerate(names)} if port else None)
    table = Table(title="wib-hub sandbox")
    for col in ("adapter", "system", "protocol", "URL"):
        table.add_column(col)
    adapters = load_adapters()
    for name, url in urls.items():
        box.faults(name).latency_ms = latency_ms
        table.add_row(name, adapters[name].system, adapters[name].protocol, url)
    console.print(table)
    console.print(f"OAuth client id 'wib-hub', key {settings.resolved_sandbox_dir() / 'client-key.pem'}; "
                  "faults: POST <URL>/_sim/faults")
    key = getattr(box, "backoffice_api_key", None)   # the adapters' Sandbox; not in the hub.ports protocol
    if key:
        console.print(f"back offices (dvz.back-office, regions.back-office): API key '{key}' (BACKOFFICE_API_KEY); "
                      f"pollers: POLLER_SANDBOX_PORT={port} python -m adapters.dvz --sandbox --once, "
                      "python -m adapters.regions --region flanders --sandbox --once")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    box.stop()


@app.command("synthetic-batch")
def synthetic_batch(count: Annotated[int, typer.Argument(help="how many lines")],
                    out: Annotated[Path, typer.Argument(help="CSV file to write (insz,date,postcode)")],
                    seed: int = 2026) -> None:
    """Write a batch input of synthetic people (the sandbox population; no real person)."""
    from hub.ports import load_toolkit
    today = date.today().isoformat()
    with _progress() as progress, out.open("w", newline="") as f:
        task = progress.add_task("generating", total=count)
        w = csv.writer(f)
        w.writerow(("insz", "date", "postcode"))
        pop = load_toolkit().population(seed)
        for start in range(0, count, 5_000):
            part = pop.sample(min(5_000, count - start), start)
            w.writerows((insz, today, postcode) for insz, postcode in part)
            progress.advance(task, len(part))
    console.print(f"{count} lines written to {out}")


@app.command("enrich-batch")
def enrich_batch(input_file: Annotated[Path, typer.Argument(help="CSV: insz[,date][,postcode]", exists=True, dir_okay=False)],
                 out_dir: Annotated[Path, typer.Option("--out", help="where the per-authority files go")] = Path("enrichment-out"),
                 chunk: Annotated[int, typer.Option(help="people per bulk consultation")] = 500,
                 parallel: Annotated[int, typer.Option(help="consultations in flight")] = 4) -> None:
    """Link a list of INSZ to their Dimona employment data; one result file per competent authority."""
    from hub.lifecycle.batch import BatchInputError, enrich_batch as run, read_lines, record_files
    settings = Settings()
    try:
        lines, rejected = read_lines(input_file, date.today())
    except (BatchInputError, UnicodeDecodeError) as err:
        console.print(f"[red]input refused[/red]: {err}")
        raise typer.Exit(2) from err
    with store(settings, migrate_store=True, create=True) as work:   # a batch may be the first to record
        source = _dimona(settings)
        with _progress() as progress:
            task = progress.add_task("enriching", total=len(lines))
            result = run(source, lines, out_dir, legal_context=LEGAL_CONTEXT, chunk=chunk, parallel=parallel,
                         progress=lambda n: progress.advance(task, n))
        record_files(work, result, DIMONA)
    table = Table(title=f"{result.total} people in {result.elapsed_s:.1f} s ({result.rate:,.0f}/s); "
                        f"{result.employed} with a running Dimona period")
    for col in ("authority", "lines", "file"):
        table.add_column(col)
    for authority, path in sorted(result.files.items()):
        table.add_row(authority, str(result.per_authority[authority]), str(path))
    console.print(table)
    if rejected:  # the good lines are done; the bad ones are listed by line number (no INSZ echoed)
        path = out_dir / f"{input_file.stem}-refused-lines.csv"
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([("line", "reason"), *rejected])
        console.print(f"[yellow]{len(rejected)} lines refused[/yellow], listed in {path}")
        raise typer.Exit(1)


@app.command()
def monitor(as_json: Annotated[bool, typer.Option("--json")] = False,
            out_dir: Annotated[Optional[Path], typer.Option("--out", help="also write one CSV per region")] = None) -> None:
    """Art. 10 6°: holders of an active permit with no running Dimona employment, per controlling region."""
    from hub.lifecycle.monitor import permit_holders_without_employment
    settings = Settings()
    with store(settings, migrate_store=True) as work:
        findings = permit_holders_without_employment(work, _dimona(settings), date.today(), LEGAL_CONTEXT)
    if as_json:
        print(json.dumps(findings, indent=2))
        return
    table = Table(title=f"Permit holders without running employment ({sum(len(v) for v in findings.values())})")
    for col in ("region", "dossier", "INSZ", "last employer", "last period end"):
        table.add_column(col)
    for region, rows in sorted(findings.items()):
        for r in rows:
            table.add_row(region, r["dossier_id"], r["insz"], r["last_employer"] or "-", r["last_period_end"] or "-")
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            with (out_dir / f"{date.today():%Y%m%d}-monitor-{region}.csv").open("w", newline="") as f:
                w = csv.DictWriter(f, ["dossier_id", "insz", "last_employer", "last_period_end"])
                w.writeheader()
                w.writerows(rows)
    console.print(table)


def _dimona(settings: Settings):
    """The Dimona source as the hub calls it (configured URL, else the sandbox's simulator)."""
    from hub.bootstrap import build_sources
    return build_sources(settings, [DIMONA])[DIMONA]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)
