"""`wib-hub clocks due | sync | rules`: the statutory procedure clocks (contracts/clocks.yaml;
Law of 15 December 1980, 61/27-4, 61/27-5, 61/29-4, 61/29-5)."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Optional

import typer
from rich.table import Table

from hub.domain.errors import RegistryError
from hub.infra.settings import Settings
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.options import (
    cli_console,
    contracts,
    iso_time,
    party_id,
    registry_refused,
    store,
)

app = typer.Typer(help="Statutory procedure clocks: due dates, reminders, deemed authorisation.",
                         no_args_is_help=True)
console = cli_console()



def _within(value: str) -> timedelta:
    from hub.lifecycle.clocks import parse_duration
    try:
        return parse_duration(value)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--within") from None


def _rules(settings: Settings, check: bool = True):
    """The clock rules; `check`: cross-checked against the flow registry as at start-up."""
    from hub.registry import default_contracts_dir, load_clocks
    if check:
        return contracts(settings.contracts_dir).clocks
    try:
        return load_clocks(settings.contracts_dir or default_contracts_dir(), None)
    except RegistryError as err:
        raise registry_refused(err) from err


@app.command("due")
def due_command(
        within: Annotated[str, typer.Option(help="window ahead of now: 7d, 36h, 2w, 1d12h")] = "7d",
        holder: Annotated[Optional[str], typer.Option(help="only the clocks this party holds (dvz, region.flanders, …)",
                                                           callback=party_id)] = None,
        now: Annotated[Optional[str], typer.Option(help="ISO date-time instead of the current time")] = None,
        limit: Annotated[int, typer.Option(min=1, help="at most this many rows")] = 1000,
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Running clocks due within the window, and overdue ones, soonest first."""
    from hub.lifecycle.clocks import due
    at, window = iso_time(now, "--now", default_now=True), _within(within)
    settings = Settings()
    rules = _rules(settings, check=False)     # only read here; the hub checks the file when it starts
    with store(settings) as work:
        rows = due(work.reads, at, window, holder, limit=limit)
    if as_json:
        out = []
        for v in rows:
            rule = rules.get(v.rule)
            out.append({**v.as_json(at), "days_left": rules.calendar.days_left(v.due_at, at),
                        "legal_basis": list(rule.legal_basis) if rule else []})
        print(json.dumps({"now": at.isoformat(), "within": within, "holder": holder, "clocks": out},
                         ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{plural(len(rows), 'clock')} due by {(at + window).astimezone(rules.calendar.zone):%Y-%m-%d %H:%M}"
                        + (f" held by {holder}" if holder else "") + " (and overdue)")
    for col in ("dossier", "clock", "holder", "started", "due day", "days left", "state", "reminded", "at expiry"):
        table.add_column(col, no_wrap=col in ("dossier", "clock"))
    for v in rows:
        rule = rules.get(v.rule)
        left = rules.calendar.days_left(v.due_at, at)
        state = "[red]overdue[/red]" if v.overdue(at) else v.outcome
        table.add_row(v.dossier_id, v.rule, v.holder, f"{rules.calendar.local_date(v.started_at)}",
                      f"{rules.calendar.local_date(v.due_at)}", f"[red]{left}[/red]" if left < 0 else str(left),
                      state, "yes" if v.reminded_at else "no", rule.on_expiry if rule else "")
    console.print(table)
    console.print("due day: the last day, Belgian calendar days (contracts/clocks.yaml); "
                  "`wib-hub clocks rules` for the legal basis")


@app.command("sync")
def sync_command(
        now: Annotated[Optional[str], typer.Option(help="ISO date-time instead of the current time")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
) -> None:
    """One pass now: start new clocks, stop met ones, send reminders, expire (or deem authorised) late ones."""
    from hub.bootstrap import build_hub
    from hub.lifecycle import clocks
    at = iso_time(now, "--now", default_now=True)
    settings = Settings()
    try:
        hub = build_hub(settings)
    except RegistryError as err:
        raise registry_refused(err) from err
    try:
        result = clocks.sync(hub.ingress, hub.clocks, at)
    finally:
        hub.close()
    if as_json:
        print(json.dumps({"now": at.isoformat(), **result.as_json()}, indent=2))
        return
    console.print(f"clocks at {at.isoformat()}: {result.started} started, {result.stopped} stopped, "
                  f"{plural(len(result.reminded), 'reminder')} sent, {len(result.expired)} expired, "
                  f"{len(result.deemed)} deemed authorised" + (f", {result.voided} void" if result.voided else ""))
    for dossier_id in result.deemed:
        console.print(f"  deemed authorised: dossier {dossier_id} (61/27-4 §2, 61/27-5 §3)")
    for clock_id, code in result.failed:
        console.print(f"  [yellow]clock {clock_id}: message refused ({code})[/yellow]")
    if result.failed:
        raise typer.Exit(1)


@app.command("rules")
def rules_command(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False) -> None:
    """The rules of contracts/clocks.yaml, checked as at start-up."""
    from hub.domain.clocks import describe
    rules = _rules(Settings())
    if as_json:
        print(json.dumps([describe(r) for r in rules], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{plural(len(rules.rules), 'statutory clock')} (Law of 15 December 1980)")
    for col in ("clock", "applies to", "from", "days", "holder", "reminder", "at expiry", "articles"):
        table.add_column(col, no_wrap=col == "clock")
    for r in rules:
        scope = ", ".join(sorted(r.categories)) + " (" + "/".join(sorted(r.request_types)) + ")"
        if r.application:
            scope += " " + ", ".join(f"{k}={str(v).lower()}" for k, v in r.application.items())
        articles = "; ".join(b.removeprefix("Law of 15 December 1980, ") for b in r.legal_basis)
        table.add_row(r.id, scope, r.starts.removesuffix("_at").removesuffix("_since"), str(r.days), r.holder,
                      "—" if r.remind_days_before is None else f"{r.remind_days_before} d",
                      r.on_expiry.replace("_", " "), articles)
    console.print(table)
    fixed = [r.id for r in rules if not r.next_working_day]
    console.print("A due day on a Saturday, Sunday or Belgian public holiday moves to the next working day"
                  + (f", except for: {', '.join(fixed)}" if fixed else "") + ".")

