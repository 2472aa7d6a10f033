"""What the `wib-hub` commands share: the store they work on, contracts/ loaded and checked, reading
a time option, and answering a refusal in one line with exit 2."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from hub.domain.envelope import utcnow
from hub.domain.formats import FIRST_YEAR, LAST_YEAR, bounded_utc
from hub.domain.errors import HubError, RegistryError
from hub.infra.settings import Settings

if TYPE_CHECKING:   # the commands start without importing SQLAlchemy until they need the store
    from hub.domain.flows import Registry
    from hub.infra.store.unit_of_work import UnitOfWork
    from hub.registry import Contracts

console = Console()


@contextmanager
def store(settings: Settings | None = None, *, seal: bool = False,
          migrate_store: bool = False) -> Iterator[UnitOfWork]:
    """The store of the settings behind its unit of work, closed afterwards. Every command that
    reads or writes the store opens it here; what it records goes through the unit of work.
    `seal`: sign checkpoints as it appends (commands that delete or export); `migrate_store`: bring
    the schema up to date first (commands that may be the first to touch a store)."""
    from hub.bootstrap import open_work
    work = open_work(settings or Settings(), seal=seal, migrate_store=migrate_store)
    try:
        yield work
    finally:
        work.close()
        work.engine.dispose()


def contracts(contracts_dir: Path | None = None) -> Contracts:
    """contracts/ loaded and cross-checked as at start-up; a wrong file stops the command (exit 2)."""
    from hub.registry import load
    try:
        return load(contracts_dir or Settings().contracts_dir)
    except RegistryError as err:
        raise registry_refused(err) from err


def registry(contracts_dir: Path | None = None) -> Registry:
    """The flow registry alone (parties, flows, message contracts); a wrong file: exit 2."""
    from hub.registry import default_contracts_dir, load_registry
    try:
        return load_registry(contracts_dir or Settings().contracts_dir or default_contracts_dir())
    except RegistryError as err:
        raise registry_refused(err) from err


def registry_refused(err: RegistryError) -> typer.Exit:
    """A file of contracts/ is wrong: its name and field, exit 2."""
    console.print(f"[red]✗[/red] {err.file}: field [bold]{err.field}[/bold]: {err.message}")
    return typer.Exit(2)


def iso_time(value: str | None, option: str, *, default_now: bool = False) -> datetime | None:
    """An ISO 8601 option as an aware UTC time (without an offset: UTC); absent: now or None.
    Anything else stops the command with exit 2, naming the option."""
    if not value:
        return utcnow() if default_now else None
    try:
        return bounded_utc(datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time between the years {FIRST_YEAR} and {LAST_YEAR}: "
                                 f"{value[:40]!r}", param_hint=option) from None


def refused(err: HubError) -> typer.Exit:
    """A refusal the hub names (its code and detail), exit 2."""
    console.print(f"[red]{err.code}[/red]: {err.detail}")
    return typer.Exit(2)
