"""`wib-hub contracts …`: the integration engineers' tools — list and show the contract catalogue,
print a valid example of a message contract, validate a file against a contract, run an adapter's
conformance suite against any endpoint.

Adapters are found through the `wib_hub.adapters` entry points; hub code never imports adapters.*.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.syntax import Syntax
from rich.table import Table

from hub.registry.catalogue import Catalogue, ContractFileMissing, UnknownContract, UnsafeDocument, load_catalogue
from hub.domain.errors import RegistryError
from hub.infra.settings import Settings
from hub.interfaces.cli.options import cli_console
from hub.ports.probe import unreachable

app = typer.Typer(help="The contract catalogue: list, show, validate, and conformance runs.", no_args_is_help=True)
console = cli_console()   # not cut to 80 columns when the output is not a terminal
ADAPTER_GROUP = "wib_hub.adapters"
_LEXERS = {"xsd": "xml", "wsdl": "xml", "openapi": "yaml", "jsonschema": "json"}


def _catalogue() -> Catalogue:
    try:
        return load_catalogue(Settings().contracts_dir)
    except RegistryError as err:
        console.print(f"[red]catalogue refused[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
        raise typer.Exit(2) from err


@app.command("list")
def list_contracts() -> None:
    """Every contract: name, system, protocol, version, file, used for."""
    catalogue = _catalogue()
    table = Table(title=f"{len(catalogue.entries)} contracts")
    for col in ("name", "system", "protocol", "version", "file", "used for"):
        table.add_column(col, overflow="fold")
    for e in catalogue:
        file = e.file if e.exists else f"[red]{e.file} (missing)[/red]"
        table.add_row(e.name, e.system, e.protocol, e.version, file, e.used_for)
    console.print(table)
    missing = catalogue.missing()
    if missing:
        console.print(f"[yellow]{len(missing)} listed file(s) missing:[/yellow] "
                      + ", ".join(f"contracts/{e.file}" for e in missing))


@app.command()
def show(name: Annotated[str, typer.Argument(help="contract name (see `contracts list`)")],
         source: Annotated[bool, typer.Option("--source", help="print the whole file, highlighted")] = False) -> None:
    """Metadata, then a summary (elements, operations, components) or the file itself."""
    catalogue = _catalogue()
    try:
        entry, _ = catalogue.lookup(name)
    except UnknownContract as err:
        console.print(f"[red]unknown contract[/red] {err.detail}")
        raise typer.Exit(2) from err
    meta = Table(show_header=False, title=entry.name)
    for key, value in entry.to_json().items():
        meta.add_row(key, "—" if value is None or value == "" else str(value))
    console.print(meta)
    if not entry.exists:
        console.print(f"[red]contracts/{entry.file} does not exist[/red]")
        raise typer.Exit(1)
    if source or entry.kind == "jsonschema":
        console.print(Syntax(entry.path.read_text(encoding="utf-8"), _LEXERS[entry.kind], line_numbers=True))
        return
    for section, items in catalogue.summary(entry).items():
        console.print(f"[bold]{section}[/bold] ({len(items)})")
        for item in items:
            console.print(f"  {item}", markup=False, highlight=False)


@app.command()
def validate(name: Annotated[str, typer.Argument(help="contract name, or name#Component for OpenAPI")],
             file: Annotated[Path, typer.Argument(help="the document to check", exists=True, dir_okay=False)]) -> None:
    """Exit 0 and "valid", or a table of problems (path, line, rule, message) and exit 1; unknown name: exit 2."""
    catalogue = _catalogue()
    try:
        problems = catalogue.validate(name, file.read_bytes(), file.name)
    except UnknownContract as err:
        console.print(f"[red]unknown contract[/red] {err.detail}")
        raise typer.Exit(2) from err
    except ContractFileMissing as err:
        console.print(f"[red]contract file missing[/red] {err.detail}")
        raise typer.Exit(2) from err
    except UnsafeDocument as err:
        console.print(f"[red]refused[/red] {err.detail}")
        raise typer.Exit(1) from err
    if not problems:
        console.print(f"[green]valid[/green] against {name}")
        return
    table = Table(title=f"{len(problems)} problem(s) against {name}")
    for col in ("path", "line", "rule", "message"):
        table.add_column(col, overflow="fold")
    for p in problems:
        table.add_row(p.path or "/", "" if p.line is None else str(p.line), p.rule, p.message)
    console.print(table)
    raise typer.Exit(1)


SEED_MAX = 10**6


@app.command()
def example(name: Annotated[str, typer.Argument(metavar="NAME", help="message contract, e.g. application, admissibility-decision "
                                                     "(contracts/messages/<NAME>.schema.json)")],
            seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="another seed, another synthetic person "
                                                                        "and documents")] = 0,
            dossier: Annotated[Optional[str], typer.Option(help="the dossier id the example names, if it names "
                                                                "one")] = None) -> None:
    """A valid, synthetic example of a message contract, as indented JSON on stdout (nothing else):
    `wib-hub contracts example application > app.json`. Optional authority fields (x-bound-to) are
    left out: the hub fills them in. Unknown name: exit 2."""
    from hub.domain import samples
    from hub.interfaces.cli.options import registry
    known = sorted(set(registry().contracts) & set(samples.EXAMPLE_PAYLOADS))
    if name not in known:
        typer.echo(f"unknown_contract: no message contract named {name[:80]!r}; known: {', '.join(known)}", err=True)
        raise typer.Exit(2)
    print(json.dumps(samples.example(name, seed, dossier or samples.DOSSIER_ID), ensure_ascii=False, indent=2))


def _load_adapter(name: str) -> Any:
    for ep in entry_points(group=ADAPTER_GROUP):
        if ep.name == name:
            return ep.load()
    return None




def _default_key_file() -> Path | None:
    candidate = Settings().resolved_sandbox_dir() / "client-key.pem"
    return candidate if candidate.is_file() else None


@app.command("test")
def conformance_test(
        adapter_name: Annotated[str, typer.Argument(metavar="ADAPTER", help="adapter name, e.g. onss.dimona")],
        url: Annotated[str, typer.Option(help="the endpoint to check: a partner's test bed, the real source, a simulator")],
        client_id: Annotated[str, typer.Option(help="OAuth2 client id at REST sources")] = "wib-hub",
        key_file: Annotated[Optional[Path], typer.Option(help="private_key_jwt signing key (PEM); default: the "
                                                              "sandbox key when it exists")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False) -> None:
    """Run an adapter's conformance suite against URL; exit 1 if any check fails, 2 if the adapter is unknown
    or URL does not take a connection (one line: `unreachable: URL: reason`)."""
    known = sorted(ep.name for ep in entry_points(group=ADAPTER_GROUP))
    try:
        adapter = _load_adapter(adapter_name)
    except Exception as err:  # noqa: BLE001 - an adapter package that does not import is reported, not raised
        console.print(f"[red]adapter {adapter_name} could not be loaded:[/red] {type(err).__name__}: {err}")
        raise typer.Exit(2) from err
    if adapter is None:
        console.print(f"[red]unknown adapter[/red] {adapter_name!r}; known: {', '.join(known)}")
        raise typer.Exit(2)
    key_path = key_file or _default_key_file()
    if key_file is not None and not key_file.is_file():
        console.print(f"[red]key file not found:[/red] {key_file}")
        raise typer.Exit(2)
    # SourceConfig lives beside the Adapter type: take it from the loaded object's module
    base = sys.modules[type(adapter).__module__]
    config = base.SourceConfig(url=url, client_id=client_id,
                               private_key_pem=key_path.read_bytes() if key_path else None)
    with console.status(f"running {adapter.name} conformance checks against {url} …", spinner="dots"):
        try:
            checks = list(adapter.conformance(config))
        except Exception as err:  # noqa: BLE001 - a suite that crashes is a failed run, with its reason
            checks = [base.Check("conformance suite", False, f"{type(err).__name__}: {err}")]
    failed = [c for c in checks if not c.passed]
    # nothing passed: if the endpoint does not take a connection, that is the one cause — say it once
    # (the adapters' suites stop at their own reachability check: one failed check, not twelve)
    if len(failed) == len(checks) and (reason := unreachable(url)) is not None:
        typer.echo(f"unreachable: {url}: {reason}", err=True)
        raise typer.Exit(2)
    if as_json:
        print(json.dumps({"adapter": adapter.name, "url": url, "passed": not failed,
                          "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks]},
                         ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"{adapter.name} ({adapter.system}, {adapter.protocol}) at {url}")
        for col in ("check", "result", "detail"):
            table.add_column(col, overflow="fold")
        for c in checks:
            table.add_row(c.name, "[green]pass[/green]" if c.passed else "[red]FAIL[/red]", c.detail)
        console.print(table)
        console.print(f"[green]{len(checks)} checks passed[/green]" if not failed
                      else f"[red]{len(failed)} of {len(checks)} checks failed[/red]")
    raise typer.Exit(1 if failed or not checks else 0)
