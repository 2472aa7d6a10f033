"""`wib-hub designations list`: the list of designated persons kept for the supervisory authority
(Art. 16 for health data, Art. 17 for criminal records), from contracts/designations.yaml."""
from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hub.interfaces.cli.options import contracts, cli_console

COLUMNS = ("party", "person", "role", "categories", "designated_by", "designated_on", "confidentiality")

app = typer.Typer(help="Designated persons for health data and criminal records (Art. 15–17).",
                               no_args_is_help=True)
console = cli_console()   # not cut to 80 columns when the output is not a terminal


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _rows(contracts_dir: Path | None) -> tuple[list[dict[str, str]], dict[str, bool]]:
    designations = contracts(contracts_dir).designations
    rows = [{"party": d.party, "person": d.person, "role": d.role, "categories": " ".join(d.categories),
             "designated_by": d.designated_by, "designated_on": d.designated_on.isoformat(),
             "confidentiality": "yes" if d.confidentiality else "no"} for d in designations.listing()]
    systems = {p: entry.systems for p, entry in sorted(designations.parties.items())}
    return rows, systems


@app.command("list")
def list_designations(
        fmt: Annotated[Format, typer.Option("--format", help="table (default), csv or json")] = Format.table,
        contracts_dir: Annotated[Optional[Path], typer.Option(help="default: HUB_CONTRACTS_DIR or the repository's")] = None,
) -> None:
    """The list of persons with access to special categories, for the supervisory authority (Art. 16, 17)."""
    rows, systems = _rows(contracts_dir)
    if fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if fmt is Format.json:
        body = {"designations": [{**r, "categories": r["categories"].split(),
                                  "confidentiality": r["confidentiality"] == "yes"} for r in rows],
                "systems": systems}
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} designated persons (Art. 16–17)")
    for col in COLUMNS:
        table.add_column(col)
    for r in rows:
        table.add_row(*(r[c] for c in COLUMNS))
    console.print(table)
    for party, allowed in systems.items():
        note = "may receive special categories for its designated persons (back office accountable)" \
            if allowed else "never receives special categories"
        console.print(f"  {party}: back-office system client {note}")

