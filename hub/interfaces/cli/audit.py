"""`wib-hub audit verify | export | checkpoint | public-key`: the audit trail's integrity commands.

GDPR Art. 5(1)(f) and Art. 32(1)(b) (integrity of the flow log), Art. 5(2) and Art. 28(3)(h)
(demonstrating it to an authority or auditor, offline, with an export bundle).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.interfaces.cli.options import iso_time
from hub.infra.settings import Settings

console = Console()


def _engine(settings: Settings):
    from hub.infra.store import open_engine
    return open_engine(settings.resolved_database_url())


def _public_key(settings: Settings, pinned: Optional[Path]):
    from hub.audit import checkpoints
    if pinned is not None:
        return checkpoints.load_public_key(pinned)
    key_file = settings.resolved_audit_key_file()
    return checkpoints.load_signer(key_file).public_key if key_file.exists() else None



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
        console.print(("[green]" if report.intact else "[red]") + str(report))
        raise typer.Exit(0 if report.intact else 1)
    from hub import audit
    from hub.infra.store.schema import audit_head
    from sqlalchemy import select
    settings = Settings()
    engine = _engine(settings)
    key = _public_key(settings, public_key)
    with engine.connect() as conn:
        total = conn.execute(select(audit_head.c.seq)).scalar() or 0
    with Progress(TextColumn("verifying audit chain"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("verify", total=total)
        report = audit.verify(engine, public_key=key, workers=workers,
                              progress=lambda n: progress.advance(task, n))
    engine.dispose()
    console.print(("[green]" if report.intact else "[red]") + str(report))
    raise typer.Exit(0 if report.intact else 1)


def export(out: Annotated[Path, typer.Option("--out", help="bundle file to write (JSON lines)")],
           dossier: Annotated[Optional[str], typer.Option("--dossier", help="a dossier's events")] = None,
           since: Annotated[Optional[str], typer.Option("--since", help="ISO 8601, inclusive")] = None,
           until: Annotated[Optional[str], typer.Option("--until", help="ISO 8601, exclusive")] = None) -> None:
    """Export a dossier's or a time range's events as a bundle that `audit verify --bundle` checks offline."""
    from hub.audit import bundle, checkpoints
    if (dossier is None) == (since is None and until is None) or (dossier is None and (since is None or until is None)):
        raise typer.BadParameter("give either --dossier ID or both --since and --until")
    settings = Settings()
    engine = _engine(settings)
    signer = checkpoints.ensure_key(settings.resolved_audit_key_file())
    with console.status("exporting audit events"):
        summary = bundle.export(engine, signer, out, dossier_id=dossier,
                                since=iso_time(since, "--since"),
                                until=iso_time(until, "--until"))
    engine.dispose()
    table = Table(title=f"audit bundle {out.name}")
    for col in ("events", "hash-only", "checkpoints", "unsealed", "bytes", "key id"):
        table.add_column(col, justify="right")
    table.add_row(str(summary.events), str(summary.hash_only), str(summary.checkpoints), str(summary.unsealed),
                  f"{summary.bytes:,}", signer.key_id)
    console.print(table)
    if summary.unsealed:
        console.print(f"[yellow]{summary.unsealed} events are after the last checkpoint (unsealed); "
                      "run `wib-hub audit checkpoint` first to seal them[/yellow]")


def checkpoint() -> None:
    """Sign a checkpoint of the chain head now (seals the events after the last checkpoint)."""
    from hub.audit import checkpoints
    settings = Settings()
    engine = _engine(settings)
    row = checkpoints.checkpoint_now(engine, checkpoints.ensure_key(settings.resolved_audit_key_file()))
    engine.dispose()
    console.print(f"checkpoint signed at sequence {row['seq']}" if row else "nothing unsealed: no checkpoint needed")


def public_key() -> None:
    """Print the audit key's public half (PEM), to pin it when verifying bundles."""
    from hub.audit import checkpoints
    print(checkpoints.ensure_key(Settings().resolved_audit_key_file()).public_pem(), end="")


def register(audit_app: typer.Typer) -> None:
    audit_app.command("verify")(verify)
    audit_app.command("export")(export)
    audit_app.command("checkpoint")(checkpoint)
    audit_app.command("public-key")(public_key)
