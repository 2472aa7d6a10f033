"""What the `wib-hub` commands share: the store they work on, contracts/ loaded and checked, reading
a time option or an option with a closed list of values, an id option given whole or by a prefix, the
console they print on, and answering a refusal in one line with exit 2."""
from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console, ConsoleDimensions

from hub.audit.query import EVENTS, OUTCOMES
from hub.domain.envelope import utcnow
from hub.domain.errors import HubError, RegistryError
from hub.domain.flows import REGION_PARTIES
from hub.domain.formats import FIRST_YEAR, LAST_YEAR, bounded_utc
from hub.infra.settings import Settings

if TYPE_CHECKING:   # the commands start without importing SQLAlchemy until they need the store
    from sqlalchemy import Column
    from sqlalchemy.engine import Engine

    from hub.domain.flows import Registry
    from hub.infra.store.unit_of_work import UnitOfWork
    from hub.registry import Contracts

# Output that is not a terminal (a pipe, a file, a test's runner) has no width to fit: printed that wide,
# tables keep whole ids and lines keep whole URLs. An explicit COLUMNS still rules.
NOT_A_TERMINAL_WIDTH = 4000


class CliConsole(Console):
    """A rich Console that, when its output is not a terminal, neither wraps nor cuts: the width is
    taken each time it prints, so the same console serves a terminal and a pipe."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(NOT_A_TERMINAL_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def cli_console(*, stderr: bool = False) -> Console:
    """The console a command prints on (stdout, or stderr for progress beside JSON on stdout)."""
    return CliConsole(stderr=stderr)


console = cli_console()


err_console = cli_console(stderr=True)


def where(settings: Settings) -> str:
    """`data directory: /abs/path` (and the store when it is a server or a file elsewhere)."""
    from hub.infra.settings import safe_url
    line = f"data directory: {settings.data_dir}"
    if settings.database_url:
        line += f" (store: {safe_url(settings.database_url)})"
    return line


def no_store_yet(settings: Settings) -> typer.Exit | None:
    """A SQLite store that does not exist yet: the one line that says so (on stderr), exit 2; None
    when it exists (or the store is a server, which answers for itself)."""
    path = settings.resolved_store_file()
    if path is None or path.is_file():
        return None
    hint = "set HUB_DATA_DIR" if settings.database_url is None else "check HUB_DATABASE_URL"
    from rich.markup import escape
    err_console.print(f"[red]no store yet[/red] at {escape(str(path))}: start `wib-hub serve` first, or {hint}",
                      soft_wrap=True, highlight=False)
    return typer.Exit(2)


@contextmanager
def store(settings: Settings | None = None, *, seal: bool = False,
          migrate_store: bool = False, create: bool = False) -> Iterator[UnitOfWork]:
    """The store of the settings behind its unit of work, closed afterwards. Every command that
    reads or writes the store opens it here; what it records goes through the unit of work. It
    says on stderr which data directory it works on (stdout stays clean for --json); a SQLite store
    that does not exist yet is not created (one line, exit 2) unless `create`: `serve`, `api` and
    `worker` create it, a command that reads it does not answer from an empty one.
    `seal`: sign checkpoints as it appends (commands that delete or export); `migrate_store`: bring
    the schema up to date first (commands that may be the first to touch a store)."""
    from hub.bootstrap import open_work
    settings = settings or Settings()
    from rich.markup import escape
    err_console.print(f"[dim]{escape(where(settings))}[/dim]", soft_wrap=True, highlight=False)
    if not create and (refusal := no_store_yet(settings)) is not None:
        raise refusal
    work = open_work(settings, seal=seal, migrate_store=migrate_store)
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


# An id option (a dossier id, a rights request id) may be given by the prefix a table shows on a terminal
# (hub/interfaces/cli/audit.py cuts ids to 8 characters): at least this many characters, and unique.
ID_PREFIX_MIN = 4
ID_MATCHES_SHOWN = 5


def resolve_id(reads: Engine, column: Column, value: str, what: str, noun: str | None = None) -> str:
    """The whole id in `column` that `value` names: the id itself, or the one id it is a prefix of
    (at least ID_PREFIX_MIN characters). None found: `unknown_<what>: no <noun> <value>`; several: one
    line listing up to ID_MATCHES_SHOWN of them; either exit 2. `noun` defaults to `what`."""
    from rich.markup import escape
    from sqlalchemy import select
    value = value.strip()
    with reads.connect() as conn:
        if conn.execute(select(column).where(column == value).limit(1)).first() is not None:
            return value
        found: list[str] = []
        if len(value) >= ID_PREFIX_MIN:
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = list(conn.execute(select(column).where(column.like(pattern, escape="\\")).distinct()
                                      .order_by(column).limit(ID_MATCHES_SHOWN + 1)).scalars())
    shown = escape(value[:40])
    if len(found) == 1:
        return found[0]
    if not found:
        hint = f" (a prefix needs at least {ID_PREFIX_MIN} characters)" if len(value) < ID_PREFIX_MIN else ""
        console.print(f"[red]unknown_{what}[/red]: no {noun or what} {shown}{hint}", soft_wrap=True, highlight=False)
    else:
        more = ", …" if len(found) > ID_MATCHES_SHOWN else ""
        console.print(f"[red]ambiguous_{what}[/red]: {shown} is the start of "
                      f"{'more than ' if more else ''}{min(len(found), ID_MATCHES_SHOWN)} {noun or what} ids: "
                      f"{', '.join(escape(f) for f in found[:ID_MATCHES_SHOWN])}{more}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


# What the audit trail records, the values `audit search` filters on (hub.audit.query)
AUDIT_EVENTS, AUDIT_OUTCOMES = EVENTS, OUTCOMES
# the regions of a --region option (the contracts' competent_region values), as the hub spells them
REGIONS: tuple[str, ...] = tuple(REGION_PARTIES)
REGION_HELP = f"{', '.join(REGIONS)} (german-speaking also accepted)"


def invalid_option(option: str, value: str, accepted: Collection[str]) -> typer.Exit:
    """An option's value outside its closed list: one line naming the option and what it accepts, exit 2."""
    from rich.markup import escape
    console.print(f"[red]invalid_option[/red]: {option} {escape(repr(value[:40]))} is not one of: "
                  f"{', '.join(accepted)}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


def choice(option: str, accepted: Collection[str],
           normalise: Callable[[str], str] = str.strip) -> Callable[[str | None], str | None]:
    """A typer callback for an option with a closed list of values: the value normalised, or exit 2."""
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        normal = normalise(value)
        if normal not in accepted:
            raise invalid_option(option, value, accepted)
        return normal
    return check


def region_name(value: str) -> str:
    """`German-Speaking`, `german-speaking`, `german_speaking` → `german_speaking`."""
    return value.strip().lower().replace("-", "_")


def party_id(value: str | None) -> str | None:
    """A party option as the registry spells it: the regions' party ids use hyphens
    (`region.german-speaking`), so `region.german_speaking` is taken for it."""
    if value is None:
        return None
    value = value.strip()
    return "region." + value[len("region."):].replace("_", "-") if value.startswith("region.") else value
