"""`wib-hub flows check | register`: the flow registry (the protocol agreement as data), checked as at
start-up, and the record of processing activities (GDPR art. 30) generated from it."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hub.interfaces.cli.options import registry as load_registry

app = typer.Typer(help="The flow registry (the protocol agreement as data).", no_args_is_help=True)
console = Console()


class Format(str, Enum):
    md = "md"
    csv = "csv"


@app.command("check")
def flows_check(contracts_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    """Load and cross-check every flow, party and contract; name the file and field of any fault."""
    registry = load_registry(contracts_dir)
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
