"""`wib-hub flows list | check | register | example`: the flow registry (the protocol agreement as data),
listed, checked as at start-up, the record of processing activities (GDPR art. 30) generated from it,
and an example of what a party sends on a flow."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hub.interfaces.cli.options import registry as load_registry, cli_console

app = typer.Typer(help="The flow registry (the protocol agreement as data).", no_args_is_help=True)
console = cli_console()   # not cut to 80 columns when the output is not a terminal


class Format(str, Enum):
    md = "md"
    csv = "csv"


def _flows_table(registry, title: str, *, checked: bool = False) -> Table:
    """One row per flow of the registry: id, senders, recipients, purpose (Art. 10), enabled; `checked`
    adds what `flows check` cross-checks (the message contract, the data categories)."""
    table = Table(title=title)
    cols = ["flow", "senders", "recipients", "purpose"] + (["contract", "categories"] if checked else []) + ["enabled"]
    for col in cols:
        table.add_column(col, overflow="fold")
    for f in registry.flows.values():
        row = [f.id, ", ".join(f.senders), ", ".join(r.party for r in f.recipients), f"Art. 10 {f.purpose}°"]
        if checked:
            row += [f.message, ", ".join(sorted(f.data_categories))]
        table.add_row(*row, "yes" if f.enabled else "no")
    return table


@app.command("list")
def flows_list(contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """Every flow of the registry: id, senders, recipients, purpose, enabled (`flows example FLOW` for
    what to send on one)."""
    registry = load_registry(contracts_dir)
    console.print(_flows_table(registry, f"{len(registry.flows)} flows"))


@app.command("check")
def flows_check(contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """Load and cross-check every flow, party and contract; name the file and field of any fault."""
    registry = load_registry(contracts_dir)
    console.print(_flows_table(registry, f"{len(registry.flows)} flows, {len(registry.parties)} parties, "
                                         f"{len(registry.contracts)} message contracts", checked=True))
    console.print("[green]✓ registry valid[/green]")


@app.command("register")
def flows_register(fmt: Annotated[Format, typer.Option("--format", help="md or csv")] = Format.md,
                   output: Annotated[Optional[Path], typer.Option("--output", "-o", help="file; default: stdout")] = None,
                   contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """The record of processing activities (GDPR art. 30), one entry per flow of the protocol agreement."""
    from hub.lifecycle.processing_register import build_register, to_csv, to_markdown
    registry = load_registry(contracts_dir)
    entries = build_register(registry)
    text = to_csv(entries) if fmt is Format.csv else to_markdown(entries, registry)
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"[green]✓[/green] record of processing: {len(entries)} flows → {output}")


@app.command("example")
def flows_example(flow_id: Annotated[str, typer.Argument(metavar="FLOW", help="flow id (see `flows list`)")],
                  seed: Annotated[int, typer.Option(min=0, max=10**6, help="another seed, another synthetic "
                                                                           "person and documents")] = 0,
                  dossier: Annotated[Optional[str], typer.Option(help="the dossier the message is about; default: "
                                                                      "a placeholder")] = None,
                  contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """What to POST on FLOW, as indented JSON on stdout (nothing else): the envelope of /v1/messages, or
    the application itself for /v1/applications. Who may send it, and where, on stderr. Unknown flow: exit 2."""
    from hub.domain import samples
    registry = load_registry(contracts_dir)
    flow = registry.flows.get(flow_id)
    if flow is None or flow_id not in samples.FLOW_SAMPLES:
        typer.echo(f"unknown_flow: no flow named {flow_id[:80]!r}; known: "
                   f"{', '.join(sorted(set(registry.flows) & set(samples.FLOW_SAMPLES)))}", err=True)
        raise typer.Exit(2)
    dossier_id = dossier or samples.DOSSIER_ID
    payload = samples.flow_example(flow_id, seed, dossier_id)
    senders = ", ".join(f"{s} ({', '.join(registry.parties_matching(s))})" if "*" in s else s for s in flow.senders)
    if flow.creates_dossier:
        body: dict = payload
        typer.echo(f"# {flow_id}: sent by {senders} to POST /v1/applications (the body is the "
                   f"{flow.message} itself; the hub opens the dossier)", err=True)
    else:
        body = {"flow": flow_id, "payload": payload, "dossier_id": dossier_id}
        where = "" if dossier else f"; dossier_id {dossier_id} is a placeholder: give yours with --dossier"
        typer.echo(f"# {flow_id}: sent by {senders} to POST /v1/messages ({flow.message}{where})", err=True)
    print(json.dumps(body, ensure_ascii=False, indent=2))
