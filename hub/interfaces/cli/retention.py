"""`wib-hub retention run [--dry-run] [--now ISO] [--batch N] [--json]`: Art. 27 automatic deletion.

A dry run lists what would go (ids, category, state, retain_until, rule; never personal data) and
counts the rows per table; a real run deletes in batches behind a progress bar and prints a
summary. The worker runs the same `hub.lifecycle.retention.run` every HUB_RETENTION_RUN_SECONDS.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from hub.infra.settings import Settings
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.options import cli_console, iso_time, store

console = cli_console()
app = typer.Typer(help="Art. 27: retention periods and automatic deletion of dossiers.",
                            no_args_is_help=True)



@app.command("run")
def run(dry_run: Annotated[bool, typer.Option("--dry-run", help="list and count what would be deleted; change nothing")] = False,
        now: Annotated[Optional[str], typer.Option("--now", help="ISO 8601 time to judge retain_until against "
                                                   "(default: now; without an offset: UTC)")] = None,
        batch: Annotated[Optional[int], typer.Option("--batch", min=1, help="dossiers per transaction "
                                                     "(default: HUB_RETENTION_BATCH)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="the result as JSON on stdout")] = False,
        show: Annotated[int, typer.Option("--show", min=0, help="dry run: dossiers listed in the table")] = 50,
        allow_future: Annotated[bool, typer.Option("--allow-future", help="tests only: a real run with --now "
                                                   "later than the clock (deletes before the period ends)")] = False,
        ) -> None:
    """Delete the dossiers whose retention period ended (Art. 27 §2), with their messages, deliveries,
    enrichment and clocks; keep the anonymous statistics; one `deleted` audit event per dossier."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub.infra import oplog
    from hub.lifecycle import retention
    settings = Settings()
    at = iso_time(now, "--now", default_now=True)
    if not dry_run and not allow_future and at > datetime.now(timezone.utc):
        console.print(f"[red]refused[/red]: --now {at.isoformat()} is in the future; a real run would delete "
                      "dossiers before their retention ends. Use --dry-run (or --allow-future in a test store).")
        raise typer.Exit(2)
    oplog.configure(settings.log_level)
    out = cli_console(stderr=True) if as_json else console
    # a real run's `deleted` events are sealed like the hub's own (signed checkpoints)
    with store(settings, seal=not dry_run) as work:
        try:
            if dry_run:
                listed = retention.expired(work.reads, at, limit=None if as_json else show)
                with out.status("counting what would be deleted"):
                    result = retention.run(work, at, batch=batch or settings.retention_batch, dry_run=True)
            else:
                listed = []
                with Progress(TextColumn("deleting expired dossiers"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                              console=out, transient=as_json) as bar:
                    task = bar.add_task("delete", total=None, rate="")

                    def progress(done: int, total: int) -> None:
                        elapsed = bar.tasks[task].elapsed or 0.0
                        bar.update(task, completed=done, total=total,
                                   rate=f"{done / elapsed:,.0f} dossiers/s" if elapsed else "")
                    result = retention.run(work, at, batch=batch or settings.retention_batch, progress=progress)
                if result.dossiers:
                    work.seal()
        except SQLAlchemyError as err:
            out.print(f"[red]store error[/red]: {type(err).__name__} (is the store reachable and migrated? "
                      "`wib-hub serve` or `wib-hub worker` migrates it)")
            raise typer.Exit(1) from None
    import structlog
    structlog.get_logger("hub.lifecycle.retention").info(
        "retention_run", dry_run=dry_run, dossiers=result.dossiers, rows=result.total_rows,
        remaining=result.remaining, elapsed_s=round(result.elapsed_s, 3))
    if as_json:
        body = result.as_dict()
        if dry_run:
            body["expired"] = [d.as_dict() for d in listed]
        print(json.dumps(body, ensure_ascii=False))
        return
    if dry_run:
        _print_listed(listed, result.dossiers, at)
    _print_summary(result)


def _print_listed(listed, total: int, at: datetime) -> None:
    from hub.lifecycle.retention import RULES
    table = Table(title=f"{plural(total, 'dossier')} past their retention at {at.isoformat(timespec='seconds')} (dry run)")
    table.add_column("dossier", no_wrap=True, min_width=36)
    for col in ("category", "state", "retain until", "rule"):
        table.add_column(col)
    for d in listed:
        table.add_row(d.id, d.category, d.state, d.retain_until.date().isoformat(), RULES[d.rule])
    if total > len(listed):
        table.caption = f"… and {total - len(listed):,} more (--show N, or --json for all)"
    console.print(table)


def _print_summary(result) -> None:
    verb = "would delete" if result.dry_run else "deleted"
    console.print(f"retention run: {verb} {plural(result.dossiers, 'dossier')}, {plural(result.total_rows, 'row')}")
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in result.rows.items():
        table.add_row(name, f"{n:,}")
    table.add_row("[bold]total[/bold]", f"[bold]{result.total_rows:,}[/bold]")
    console.print(table)
    rules = ", ".join(f"{n} {rule}" for rule, n in sorted(result.by_rule.items())) or "none"
    line = (f"{plural(result.batches, 'batch', 'batches')} in {result.elapsed_s:.2f} s "
            f"({result.rows_per_s:,.0f} rows/s, {result.dossiers_per_s:,.0f} dossiers/s); by rule: {rules}")
    console.print(line)
    if result.dry_run:
        console.print("[yellow]dry run: nothing was deleted[/yellow]")
    else:
        console.print("kept: anonymous statistics (stats_facts), the audit trail (one `deleted` event per dossier), "
                      "rights requests")
        if result.remaining:
            console.print(f"[yellow]{plural(result.remaining, 'expired dossier was', 'expired dossiers were')} "
                          "being changed during the run and "
                          "were left for the next one[/yellow]")
