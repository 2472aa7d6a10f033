"""`wib-hub rights list | export`: data-subject requests for the controllers' operators (Art. 28–29;
GDPR arts. 12, 15, 20).

The CLI reads the store directly, so it records its own consultations: a `consulted` event for a
list (a count, no names), one per dossier for an export.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hub.domain.errors import HubError
from hub.domain.parties import PLATFORM
from hub.infra.settings import Settings
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.options import (
    cli_console,
    contracts,
    iso_time,
    party_id,
    refused,
    resolve_id,
    store,
)

app = typer.Typer(help="Data-subject requests: access, rectification, erasure, restriction, "
                              "portability, objection (Art. 28–29).", no_args_is_help=True)
console = cli_console()
OPERATOR_PARTY = PLATFORM   # who runs the CLI when no controller is named: the processor's operator

Now = Annotated[Optional[str], typer.Option("--now", help="ISO 8601 time to judge due dates by (default: now)")]
Person = Annotated[Optional[str], typer.Option("--person", help="the operator (recorded as acting person)")]




@app.command("list")
def list_requests(controller: Annotated[Optional[str], typer.Option(help="dvz, region.flanders, …; default: all",
                                                                    callback=party_id)] = None,
                  overdue: Annotated[bool, typer.Option("--overdue", help="only open requests past their due date")] = False,
                  now: Now = None, person: Person = None,
                  as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False) -> None:
    """The requests, oldest due first; open ones past their due date are flagged overdue."""
    from hub.lifecycle import rights
    when = iso_time(now, "--now", default_now=True)
    with store() as work:
        found = rights.list_requests(work.reads, controller, when, overdue_only=overdue)
        rights.record_listing(work, controller or OPERATOR_PARTY, person, len(found), "cli", when)
    if as_json:
        print(json.dumps({"now": when.isoformat(), "controller": controller,
                          "requests": [r.as_json(when) for r in found]}, ensure_ascii=False))
        return
    late = sum(r.overdue(when) for r in found)
    table = Table(title=plural(len(found), "rights request") + (f" for {controller}" if controller else "")
                  + (f", [red]{late} overdue[/red]" if late else ""),
                  caption="due: one calendar month from receipt (GDPR art. 12(3)), next working day if it falls "
                          "on a weekend or holiday")
    for col in ("reference", "kind", "concerning", "controller", "from", "received", "due", "state"):
        table.add_column(col)
    for r in found:
        state = "[red]overdue[/red]" if r.overdue(when) else r.state + (" (late)" if r.as_json(when)["late"] else "")
        table.add_row(r.id, r.kind, r.concerning, r.controller, r.submitted_by,
                      r.received_at.isoformat(timespec="minutes"), r.due_at.date().isoformat(), state)
    console.print(table)


@app.command("export")
def export(out: Annotated[Path, typer.Option("--out", help="JSON file to write (mode 0600: personal data)")],
           insz: Annotated[Optional[str], typer.Option("--insz", help="the person's INSZ/NISS")] = None,
           passport: Annotated[Optional[str], typer.Option("--passport", help="the person's passport number")] = None,
           request: Annotated[Optional[str], typer.Option("--request", help="an access or portability request "
                                                          "(its id, or a unique prefix of it, ≥ 4 characters): "
                                                          "its person and controller")] = None,
           controller: Annotated[Optional[str], typer.Option(help="the controller the export is made for "
                                                             "(recorded as actor); required without --request",
                                                             callback=party_id)] = None,
           person: Person = None, now: Now = None) -> None:
    """The person's data across all dossiers found by INSZ or passport number, as JSON (GDPR art. 15, 20)."""
    from hub.lifecycle import rights
    when = iso_time(now, "--now", default_now=True)
    if request is None and not controller:
        console.print("[red]controller_required[/red]: name the controller the export is for (--controller)")
        raise typer.Exit(2)
    try:
        if request is None:
            rights.check_identifiers(insz, passport)
        settings = Settings()
        loaded = contracts(settings.contracts_dir)
        registry, designations = loaded.registry, loaded.designations
        with store(settings) as work:
            if request is not None:
                from hub.infra.store.schema import rights_requests
                request = resolve_id(work.reads, rights_requests.c.id, request, "request", "rights request")
                req = rights.get_request(work.reads, request)
                controller = controller or req.controller
                body = rights.export_for_request(work, registry, request, controller, when, acting_person=person,
                                                 special=designations.visible(controller, person))
            else:
                if controller not in registry.parties:
                    console.print(f"[red]unknown_party[/red]: {controller[:64]!r}")
                    raise typer.Exit(2)
                body = rights.export_subject(work, registry, insz=insz, passport=passport, actor=controller,
                                             acting_person=person, special=designations.visible(controller, person),
                                             now=when)
    except HubError as err:
        raise refused(err) from err
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, ensure_ascii=False, indent=2)
    full = sum(d["content"] == "full" for d in body["dossiers"])
    console.print(f"[green]✓[/green] {out}: {plural(len(body['dossiers']), 'dossier')} ({full} with content for "
                  f"{controller}), {plural(len(body['rights_requests']), 'rights request')}; format {body['format']}")

