"""`wib-hub audit …`: the audit trail — who exchanged or consulted what, why and when.

    tail, search, report     the security officer's view (Art. 8 §2; GDPR art. 32); a search or a
                             report is itself recorded as a `consulted` event (the kinds of filter,
                             never their values)
    verify, export           integrity (GDPR Art. 5(1)(f), 32(1)(b)) and demonstrating it offline with
                             an export bundle (Art. 5(2), 28(3)(h)); checkpoint, public-key
"""
from __future__ import annotations

import json
from pathlib import Path
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

from hub.domain.errors import HubError
from hub.infra.settings import Settings
from hub.interfaces.cli.labels import CATEGORY_SHORT, plural
from hub.interfaces.cli.options import (
    AUDIT_EVENTS,
    AUDIT_OUTCOMES,
    choice,
    cli_console,
    iso_time,
    party_id,
    refused,
    resolve_id,
    store,
)

app = typer.Typer(help="The audit trail: who exchanged or consulted what, why and when.", no_args_is_help=True)
console = cli_console()
OFFICER_PARTY = "security-officer"

Officer = Annotated[Optional[str], typer.Option("--officer", help="the person consulting (recorded as acting person)")]
Since = Annotated[Optional[str], typer.Option(help="ISO 8601, inclusive; without an offset: UTC")]
Until = Annotated[Optional[str], typer.Option(help="ISO 8601, exclusive; without an offset: UTC")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of tables")]


def _times(r) -> str:
    """" ×N" for an event that stands for N occurrences (aggregated refusals), else nothing."""
    return f" ×{r['count']:,}" if r.get("count") is not None else ""


def _short(value: str | None) -> str:
    """An id in a table: its first 8 characters on a terminal, whole when the output is a pipe or a file."""
    return (value or "")[:8] if console.is_terminal else value or ""


def _verified(report) -> str:
    """A verify report (the chain's or a bundle's) as one line."""
    if not report.intact:
        return str(report)
    if hasattr(report, "sealed_seq"):   # the chain in the store (hub.audit.chain.VerifyReport)
        seal = (f"{plural(report.checkpoints, 'signed checkpoint')}, sealed up to {report.sealed_seq}, "
                f"{report.unsealed:,} unsealed after it")
        if not report.signatures_checked and report.checkpoints:
            seal += " (signatures NOT checked: no public key)"
        return f"audit chain intact: {plural(report.count, 'event')}, head {report.head_seq}; {seal}"
    text = (f"bundle intact: {plural(report.events, 'event')}, {report.hash_only:,} hash-only, "
            f"{plural(report.checkpoints, 'signed checkpoint')}")
    if report.unsealed:
        text += f"; {len(report.unsealed):,} unsealed (after the last checkpoint): {report.unsealed}"
    return text


@app.command("tail")
def audit_tail(n: Annotated[int, typer.Option("-n", help="how many events")] = 20,
               as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False) -> None:
    """The last events of the trail (hashes, never payloads)."""
    from hub import audit
    with store() as work:
        rows = audit.tail(work.reads, n)
    if as_json:
        for r in rows:
            print(json.dumps({**r, "ts": r["ts"].isoformat()}, ensure_ascii=False))
        return
    table = Table(title=f"last {plural(len(rows), 'audit event')}")
    for col in ("seq", "time", "event", "flow", "actor → recipient", "art. 10", "dossier", "data", "reason", "hash"):
        table.add_column(col)
    for r in rows:
        outcome = "" if r["outcome"] in ("ok", r["event"]) else f" [red]{r['outcome']}[/red]"
        parties = (r["actor"] or "?") + (f" → {r['recipient']}" if r["recipient"] not in (None, r["actor"]) else "")
        event = f"[red]{r['event']}[/red]" if r["outcome"] == "rejected" else r["event"]
        table.add_row(str(r["seq"]), r["ts"].strftime("%H:%M:%S.%f")[:-3], event + outcome + _times(r),
                      (r["flow_id"] or "").split(".", 1)[-1], parties, str(r["purpose"] or ""),
                      _short(r["dossier_id"]),
                      ",".join(CATEGORY_SHORT.get(c, c) for c in r["data_categories"] or []),
                      r["reason"] or "", r["hash"][:8])
    console.print(table)


@app.command("search")
def audit_search(
        dossier: Annotated[Optional[str], typer.Option(help="dossier id, or a unique prefix of it (≥ 4 characters, "
                                                       "as a table shows it)")] = None,
        party: Annotated[Optional[str], typer.Option(help="party as actor or recipient", callback=party_id)] = None,
        acting_person: Annotated[Optional[str], typer.Option(help="the person who acted")] = None,
        flow: Annotated[Optional[str], typer.Option(help="flow id")] = None,
        purpose: Annotated[Optional[int], typer.Option(help="Art. 10 n° (1–9)")] = None,
        outcome: Annotated[Optional[str], typer.Option(help=f"one of {', '.join(AUDIT_OUTCOMES)}",
                                                       callback=choice("--outcome", AUDIT_OUTCOMES))] = None,
        event: Annotated[Optional[str], typer.Option(help=f"one of {', '.join(AUDIT_EVENTS)}",
                                                     callback=choice("--event", AUDIT_EVENTS))] = None,
        since: Since = None, until: Until = None,
        after: Annotated[int, typer.Option(help="sequence number: the previous page's next")] = 0,
        limit: Annotated[int, typer.Option(help="events per page (1–1000)")] = 50,
        as_json: AsJson = False, officer: Officer = None) -> None:
    """Search the audit trail by dossier, party, acting person, flow, purpose, outcome, time range."""
    from hub.audit.query import AuditFilter, jsonable, record_consultation, search
    from hub.infra.store.schema import audit_events
    with store() as work:
        if dossier is not None:
            dossier = resolve_id(work.reads, audit_events.c.dossier_id, dossier, "dossier")
        try:
            criteria = AuditFilter(dossier=dossier, party=party, acting_person=acting_person, flow=flow,
                                   purpose=purpose, outcome=outcome, event=event,
                                   since=iso_time(since, "--since"), until=iso_time(until, "--until"))
            page = search(work.reads, criteria, after=after, limit=limit)
        except HubError as err:
            raise refused(err) from err
        record_consultation(work, "search", OFFICER_PARTY, officer, criteria.kinds(), "cli", dossier_id=dossier)
    if as_json:
        print(json.dumps(page.as_json(), ensure_ascii=False))
        return
    table = Table(title=plural(len(page.items), "audit event") + (f" matching {', '.join(criteria.kinds())}"
                                                              if criteria.kinds() else ""),
                  caption=f"more: --after {page.next_after}" if page.next_after else "last page")
    for col in ("seq", "time (UTC)", "event", "outcome", "flow", "actor → recipient", "person", "art. 10",
                "dossier", "data", "reason"):
        table.add_column(col)
    for r in page.items:
        row = jsonable(r)
        parties = (r["actor"] or "?") + (f" → {r['recipient']}" if r["recipient"] not in (None, r["actor"]) else "")
        table.add_row(str(r["seq"]), row["ts"][:23], r["event"] + _times(r),
                      f"[red]{r['outcome']}[/red]" if r["outcome"] == "rejected" else r["outcome"],
                      (r["flow_id"] or "").split(".", 1)[-1], parties, r["acting_person"] or "",
                      str(r["purpose"] or ""), _short(r["dossier_id"]),
                      ",".join(CATEGORY_SHORT.get(c, c) for c in r["data_categories"]), r["reason"] or "")
    console.print(table)


@app.command("report")
def audit_report(since: Since = None, until: Until = None,
                 office_hours: Annotated[Optional[str], typer.Option(
                     help='e.g. "Mon-Fri 08:00-18:00 Europe/Brussels"; default: HUB_OFFICE_HOURS')] = None,
                 as_json: AsJson = False, officer: Officer = None) -> None:
    """Denied attempts per party, special-category accesses per person, consultations outside office
    hours, flows used by a party for the first time."""
    from hub.audit.query import record_consultation
    from hub.audit.report import OfficeHours, build_report, count_events, tables
    start, end = iso_time(since, "--since"), iso_time(until, "--until")
    with store() as work:
        try:
            hours = OfficeHours.parse(office_hours or Settings().office_hours)
            total = count_events(work.reads, start, end)
            with Progress(TextColumn("reading the audit trail"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=cli_console(stderr=True), transient=True,
                          disable=as_json) as progress:
                task = progress.add_task("events", total=total)
                report = build_report(work.reads, start, end, hours,
                                      progress=lambda n: progress.update(task, completed=n))
        except HubError as err:
            raise refused(err) from err
        kinds = [k for k, v in (("since", since), ("until", until), ("office_hours", office_hours)) if v]
        record_consultation(work, "report", OFFICER_PARTY, officer, kinds, "cli")
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return
    for table in tables(report):
        console.print(table)
    console.print(f"{plural(report.events_read, 'event')} read")


def _public_key(settings: Settings, pinned: Optional[Path]):
    from hub.audit import checkpoints
    if pinned is not None:
        return checkpoints.load_public_key(pinned)
    key_file = settings.resolved_audit_key_file()
    return checkpoints.load_signer(key_file).public_key if key_file.exists() else None


@app.command("verify")
def verify(bundle: Annotated[Optional[Path], typer.Option("--bundle", help="check an export bundle offline, without the database")] = None,
           public_key: Annotated[Optional[Path], typer.Option("--public-key", help="PEM of the expected audit key (pins it)")] = None,
           workers: Annotated[Optional[int], typer.Option(help="processes for large chains (default: CPUs)")] = None) -> None:
    """Recompute the hash chain and check the signed checkpoints; name the first bad event.

    With --bundle: check an exported bundle with nothing but the file (and --public-key)."""
    if bundle is not None:
        from hub.audit import checkpoints
        from hub.audit.bundle import verify_bundle
        pinned = checkpoints.load_public_key(public_key) if public_key else None
        report = verify_bundle(bundle.read_bytes(), pinned)
        if pinned is None:
            console.print("[yellow]warning: key not pinned (--public-key): the bundle was checked against "
                          "the public key it carries itself[/yellow]")
        console.print(("[green]" if report.intact else "[red]") + _verified(report))
        raise typer.Exit(0 if report.intact else 1)
    from sqlalchemy import select

    from hub import audit
    from hub.infra.store.schema import audit_head
    settings = Settings()
    key = _public_key(settings, public_key)
    with store(settings) as work:
        with work.reads.connect() as conn:
            total = conn.execute(select(audit_head.c.seq)).scalar() or 0
        with Progress(TextColumn("verifying audit chain"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("verify", total=total)
            report = audit.verify(work.engine, public_key=key, workers=workers,
                                  progress=lambda n: progress.advance(task, n))
    console.print(("[green]" if report.intact else "[red]") + _verified(report))
    raise typer.Exit(0 if report.intact else 1)


@app.command("export")
def export(out: Annotated[Path, typer.Option("--out", help="bundle file to write (JSON lines)")],
           dossier: Annotated[Optional[str], typer.Option("--dossier", help="a dossier's events: its id, or a unique "
                                                          "prefix of it (≥ 4 characters)")] = None,
           since: Annotated[Optional[str], typer.Option("--since", help="ISO 8601, inclusive")] = None,
           until: Annotated[Optional[str], typer.Option("--until", help="ISO 8601, exclusive")] = None) -> None:
    """Export a dossier's or a time range's events as a bundle that `audit verify --bundle` checks offline."""
    from hub.audit import bundle, checkpoints
    from hub.infra.store.schema import audit_events
    if (dossier is None) == (since is None and until is None) or (dossier is None and (since is None or until is None)):
        raise typer.BadParameter("give either --dossier ID or both --since and --until")
    settings = Settings()
    signer = checkpoints.ensure_key(settings.resolved_audit_key_file())
    with store(settings) as work:
        if dossier is not None:
            dossier = resolve_id(work.reads, audit_events.c.dossier_id, dossier, "dossier")
        with console.status("exporting audit events"):
            summary = bundle.export(work.engine, signer, out, recorder=work, dossier_id=dossier,
                                    since=iso_time(since, "--since"), until=iso_time(until, "--until"))
    table = Table(title=f"audit bundle {out.name}")
    for col in ("events", "hash-only", "checkpoints", "unsealed", "bytes", "key id"):
        table.add_column(col, justify="right")
    table.add_row(str(summary.events), str(summary.hash_only), str(summary.checkpoints), str(summary.unsealed),
                  f"{summary.bytes:,}", signer.key_id)
    console.print(table)
    if summary.unsealed:
        console.print(f"[yellow]{plural(summary.unsealed, 'event is', 'events are')} after the last checkpoint (unsealed); "
                      "run `wib-hub audit checkpoint` first to seal them[/yellow]")


@app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the chain head now (seals the events after the last checkpoint)."""
    with store(seal=True) as work:
        row = work.seal()
    console.print(f"checkpoint signed at sequence {row['seq']}" if row else "nothing unsealed: no checkpoint needed")


@app.command("public-key")
def public_key() -> None:
    """Print the audit key's public half (PEM), to pin it when verifying bundles."""
    from hub.audit import checkpoints
    print(checkpoints.ensure_key(Settings().resolved_audit_key_file()).public_pem(), end="")
