"""`wib-hub stats`: the anonymous statistics in the terminal, and the yearly Eurostat file (Art. 31–32).

Reads the hub's store straight from the settings (no hub is started). Like the API, each command
leaves one `consulted` audit event (actor: ONSS, the platform's processor that runs the hub; the
acting person with --operator), with no data category and no filter values in the reason.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from hub.domain.errors import HubError
from hub.domain.parties import PLATFORM
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.options import (
    REGION_HELP,
    REGIONS,
    choice,
    cli_console,
    region_name,
    store,
)

console = cli_console()
OPERATOR_PARTY = PLATFORM   # the processor's operator runs the CLI
MIN_CELL = 5   # = hub.stats.queries.DEFAULT_MIN_CELL (not imported here: the CLI starts without SQLAlchemy)

app = typer.Typer(help="Anonymous statistics for DVZ, the regions and Eurostat (Art. 31-32).")

Year = Annotated[Optional[int], typer.Option(help="the period's year (submission for applications, decision "
                                                  "for decisions and processing times)")]
Quarter = Annotated[Optional[int], typer.Option(help="1-4, within --year")]
Region = Annotated[Optional[str], typer.Option(help=REGION_HELP,
                                               callback=choice("--region", REGIONS, region_name))]
PermitType = Annotated[Optional[str], typer.Option("--permit-type", help="the application's category, e.g. eu_blue_card")]
By = Annotated[str, typer.Option(help="comma-separated: permit_type, decision_kind, region, nationality, year, quarter")]
MinCell = Annotated[int, typer.Option("--min-cell", min=1,
                                      help="in breakdowns by nationality, counts below this read '<N'")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of tables")]
Operator = Annotated[Optional[str], typer.Option("--operator", help="the person consulting (recorded as acting person)")]


def _fail(message: str) -> typer.Exit:
    console.print(message)
    return typer.Exit(2)


def _run(what: str, kinds: list[str], operator: str | None, compute):
    """Compute on the store, then record the consultation; store and input faults exit 2."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from hub.lifecycle.stats import record_draw
    with store() as work:
        try:
            result = compute(work.reads)
            record_draw(work, OPERATOR_PARTY, operator, f"cli stats {what}", kinds)
            return result
        except HubError as err:
            raise _fail(f"[red]{err.code}[/red]: {_detail(err.detail)}") from err
        except (OperationalError, ProgrammingError) as err:
            raise _fail(f"[red]store not ready[/red]: {type(err.orig).__name__} — has the hub run its migrations "
                        f"on {work.engine.url.render_as_string(hide_password=True)}?") from err


def _detail(detail: Any) -> str:
    """A refusal's detail in one line; a problem of a named query parameter names its option."""
    if isinstance(detail, list):
        return "; ".join(f"--{p['name'].replace('_', '-')}: {p.get('detail', '')}" if "name" in p
                         else f"{p.get('path', '')}: {p.get('message', '')}" for p in detail)
    return str(detail)


def _filter(year, quarter, region, permit_type):
    from hub.lifecycle.stats.queries import StatsFilter
    try:
        return StatsFilter(year=year, quarter=quarter, region=region, permit_type=permit_type)
    except HubError as err:
        raise _fail(f"[red]{err.code}[/red]: {_detail(err.detail)}") from err


def _dims(by: str) -> tuple[str, ...]:
    from hub.lifecycle.stats.queries import parse_by
    try:
        return parse_by(by)
    except HubError as err:
        raise _fail(f"[red]{err.code}[/red]: {_detail(err.detail)}") from err


@app.callback(invoke_without_command=True)
def overview(ctx: typer.Context) -> None:
    """Without a command: applications, decisions and processing times per permit type, all years."""
    if ctx.invoked_subcommand is None:
        summary(year=None, quarter=None, region=None, permit_type=None, by="permit_type",
                min_cell=MIN_CELL, as_json=False, operator=None)
        times(year=None, quarter=None, region=None, permit_type=None, by="permit_type",
              min_cell=MIN_CELL, as_json=False, operator=None)


@app.command()
def summary(year: Year = None, quarter: Quarter = None, region: Region = None, permit_type: PermitType = None,
            by: By = "permit_type", min_cell: MinCell = MIN_CELL, as_json: AsJson = False,
            operator: Operator = None) -> None:
    """Applications (by submission period) and decisions (by decision period) per group."""
    from hub.lifecycle.stats.queries import counts
    dims, where = _dims(by), _filter(year, quarter, region, permit_type)
    table = _run("summary", _kinds(dims, where), operator, lambda e: counts(e, dims, where, min_cell))
    if as_json:
        print(json.dumps(table.as_json(), ensure_ascii=False))
        return
    console.print(_render(table, "Applications and decisions", where))


@app.command()
def times(year: Year = None, quarter: Quarter = None, region: Region = None, permit_type: PermitType = None,
          by: By = "permit_type", min_cell: MinCell = MIN_CELL, as_json: AsJson = False,
          operator: Operator = None) -> None:
    """Days from complete to decision per group: median and p90 (nearest rank)."""
    from hub.lifecycle.stats.queries import processing_times
    dims, where = _dims(by), _filter(year, quarter, region, permit_type)
    table = _run("times", _kinds(dims, where), operator, lambda e: processing_times(e, dims, where, min_cell))
    if as_json:
        print(json.dumps(table.as_json(), ensure_ascii=False))
        return
    console.print(_render(table, "Processing times, complete → decision (days)", where))


@app.command("eurostat")
def eurostat_file(year: Annotated[int, typer.Option(help="the reference year")],
                  out: Annotated[Optional[Path], typer.Option("--out", help="CSV file; default: stdout")] = None,
                  min_cell: Annotated[Optional[int], typer.Option("--min-cell", min=1, help=(
                      "write counts below N as '<N' (default: exact, as Eurostat receives them)"))] = None,
                  operator: Operator = None) -> None:
    """The year's residence-permit file for Eurostat (Reg. 862/2007 art. 6): year, reason, citizenship,
    validity, kind, count."""
    from hub.lifecycle.stats import eurostat
    table = _run("eurostat", ["year"], operator, lambda e: eurostat.rows(e, year, min_cell))
    text = eurostat.to_csv(table)
    if out is None:
        print(text, end="")
        return
    out.write_text(text, encoding="utf-8", newline="")
    overview_table = Table(title=f"Eurostat residence permits {year}: {plural(len(table), 'row')} → {out}")
    for col in ("reason", *eurostat.KINDS.values(), "WITHDRAWN"):
        overview_table.add_column(col, justify="left" if col == "reason" else "right")
    per: dict[str, dict[str, int]] = {}
    exact = all(isinstance(r["count"], int) for r in table)
    for r in table:
        if isinstance(r["count"], int):
            per.setdefault(r["reason"], {}).setdefault(r["kind"], 0)
            per[r["reason"]][r["kind"]] += r["count"]
    for reason, kinds in per.items():
        overview_table.add_row(reason, *(str(kinds.get(k, 0)) for k in ("FIRST", "CHANGE", "RENEWAL", "WITHDRAWN")))
    if not exact:
        overview_table.caption = "sums of the unsuppressed cells only"
    console.print(overview_table)


def _kinds(dims, where) -> list[str]:
    return ([f"by={','.join(dims)}"] if dims else []) + where.kinds()


_EMPTY = {"decision_kind": "(undecided)", "nationality": "(unknown)"}


def _render(table, title: str, where) -> Table:
    from hub.lifecycle.stats.queries import PERMIT_LABELS
    filters = ", ".join(f"{k} {getattr(where, k)}" for k in where.kinds())
    caption = []
    if table.suppressed:
        caption.append(f"by nationality: counts under {table.min_cell} read '<{table.min_cell}'; totals exact")
    out = Table(title=title + (f" ({filters})" if filters else ""), caption="; ".join(caption) or None)
    if not table.by:   # no breakdown: the total alone
        out.add_column("")
        for m in table.measures:
            out.add_column(m.replace("_", " "), justify="right")
        out.add_row("[bold]total[/bold]", *(f"[bold]{_num(table.total[m])}[/bold]" for m in table.measures))
        return out
    for d in table.by:
        out.add_column(d.replace("_", " "))
    for m in table.measures:
        out.add_column(m.replace("_", " "), justify="right")
    for r in table.rows:
        cells = []
        for d in table.by:
            v = r[d]
            cells.append(PERMIT_LABELS.get(v, v) if d == "permit_type" else _EMPTY.get(d, "–") if v is None else str(v))
        out.add_row(*cells, *(_num(r[m]) for m in table.measures))
    out.add_section()
    out.add_row("[bold]total[/bold]", *[""] * (len(table.by) - 1),
                *(f"[bold]{_num(table.total[m])}[/bold]" for m in table.measures))
    return out


def _num(v: Any) -> str:
    return "–" if v is None else str(v)
