"""The security officer's commands: `audit search`, `audit report` (Art. 8 §2; GDPR art. 32) and
`flows register`, the record of processing activities (GDPR art. 30) generated from the registry.

The CLI reads the store directly, so it records its own consultation of the trail: one `consulted`
event per search or report, actor the security-officer party, reason naming the filters' kinds.
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.domain.errors import HubError, RegistryError
from hub.interfaces.cli.options import iso_time, refused
from hub.infra.settings import Settings

console = Console()
OFFICER_PARTY = "security-officer"

Officer = Annotated[Optional[str], typer.Option("--officer", help="the person consulting (recorded as acting person)")]
Since = Annotated[Optional[str], typer.Option(help="ISO 8601, inclusive; without an offset: UTC")]
Until = Annotated[Optional[str], typer.Option(help="ISO 8601, exclusive; without an offset: UTC")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of tables")]


class Format(str, Enum):
    md = "md"
    csv = "csv"




def _engine():
    from hub.infra.store import open_engine
    return open_engine(Settings().resolved_database_url())


def register(audit_app: typer.Typer, flows_app: typer.Typer) -> None:
    """Add the officer's commands to `wib-hub audit` and `wib-hub flows`."""
    audit_app.command("search")(audit_search)
    audit_app.command("report")(audit_report)
    flows_app.command("register")(flows_register)


def audit_search(
        dossier: Annotated[Optional[str], typer.Option(help="dossier id")] = None,
        party: Annotated[Optional[str], typer.Option(help="party as actor or recipient")] = None,
        acting_person: Annotated[Optional[str], typer.Option(help="the person who acted")] = None,
        flow: Annotated[Optional[str], typer.Option(help="flow id")] = None,
        purpose: Annotated[Optional[int], typer.Option(help="Art. 10 n° (1–9)")] = None,
        outcome: Annotated[Optional[str], typer.Option(help="ok, rejected, …")] = None,
        event: Annotated[Optional[str], typer.Option(help="received, delivered, consulted, …")] = None,
        since: Since = None, until: Until = None,
        after: Annotated[int, typer.Option(help="sequence number: the previous page's next")] = 0,
        limit: Annotated[int, typer.Option(help="events per page (1–1000)")] = 50,
        as_json: AsJson = False, officer: Officer = None) -> None:
    """Search the audit trail by dossier, party, acting person, flow, purpose, outcome, time range."""
    from hub.audit.query import AuditFilter, jsonable, record_consultation, search
    from hub.interfaces.cli.demo import CATEGORY_SHORT
    engine = _engine()
    try:
        criteria = AuditFilter(dossier=dossier, party=party, acting_person=acting_person, flow=flow,
                               purpose=purpose, outcome=outcome, event=event,
                               since=iso_time(since, "--since"), until=iso_time(until, "--until"))
        page = search(engine, criteria, after=after, limit=limit)
    except HubError as err:
        raise refused(err) from err
    record_consultation(engine, "search", OFFICER_PARTY, officer, criteria.kinds(), "cli", dossier_id=dossier)
    if as_json:
        print(json.dumps(page.as_json(), ensure_ascii=False))
        return
    table = Table(title=f"{len(page.items)} audit events" + (f" matching {', '.join(criteria.kinds())}"
                                                              if criteria.kinds() else ""),
                  caption=f"more: --after {page.next_after}" if page.next_after else "last page")
    for col in ("seq", "time (UTC)", "event", "outcome", "flow", "actor → recipient", "person", "art. 10",
                "dossier", "data", "reason"):
        table.add_column(col)
    for r in page.items:
        row = jsonable(r)
        parties = (r["actor"] or "?") + (f" → {r['recipient']}" if r["recipient"] not in (None, r["actor"]) else "")
        table.add_row(str(r["seq"]), row["ts"][:23], r["event"],
                      f"[red]{r['outcome']}[/red]" if r["outcome"] == "rejected" else r["outcome"],
                      (r["flow_id"] or "").split(".", 1)[-1], parties, r["acting_person"] or "",
                      str(r["purpose"] or ""), (r["dossier_id"] or "")[:8],
                      ",".join(CATEGORY_SHORT.get(c, c) for c in r["data_categories"]), r["reason"] or "")
    console.print(table)


def audit_report(since: Since = None, until: Until = None,
                 office_hours: Annotated[Optional[str], typer.Option(
                     help='e.g. "Mon-Fri 08:00-18:00 Europe/Brussels"; default: HUB_OFFICE_HOURS')] = None,
                 as_json: AsJson = False, officer: Officer = None) -> None:
    """Denied attempts per party, special-category accesses per person, consultations outside office
    hours, flows used by a party for the first time."""
    from hub.audit.query import record_consultation
    from hub.audit.report import OfficeHours, build_report, count_events, tables
    engine = _engine()
    start, end = iso_time(since, "--since"), iso_time(until, "--until")
    try:
        hours = OfficeHours.parse(office_hours or Settings().office_hours)
        total = count_events(engine, start, end)
        with Progress(TextColumn("reading the audit trail"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                      disable=as_json) as progress:
            task = progress.add_task("events", total=total)
            report = build_report(engine, start, end, hours,
                                  progress=lambda n: progress.update(task, completed=n))
    except HubError as err:
        raise refused(err) from err
    kinds = [k for k, v in (("since", since), ("until", until), ("office_hours", office_hours)) if v]
    record_consultation(engine, "report", OFFICER_PARTY, officer, kinds, "cli")
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return
    for table in tables(report):
        console.print(table)
    console.print(f"{report.events_read} events read")


def flows_register(fmt: Annotated[Format, typer.Option("--format", help="md or csv")] = Format.md,
                   output: Annotated[Optional[Path], typer.Option("--output", "-o", help="file; default: stdout")] = None,
                   contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """The record of processing activities (GDPR art. 30), one entry per flow of the protocol agreement."""
    from hub.domain.flows import default_contracts_dir, load_registry
    from hub.lifecycle.processing_register import build_register, to_csv, to_markdown
    try:
        registry = load_registry(contracts_dir or Settings().contracts_dir or default_contracts_dir())
    except RegistryError as err:
        console.print(f"[red]✗[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
        raise typer.Exit(2) from err
    entries = build_register(registry)
    text = to_csv(entries) if fmt is Format.csv else to_markdown(entries, registry)
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"[green]✓[/green] record of processing: {len(entries)} flows → {output}")
