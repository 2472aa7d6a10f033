"""What the `wib-hub` subcommands share: reading a time option, and answering a refusal."""
from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console

from hub.domain.envelope import as_utc, utcnow
from hub.domain.errors import HubError

console = Console()


def iso_time(value: str | None, option: str, *, default_now: bool = False) -> datetime | None:
    """An ISO 8601 option as an aware UTC time (without an offset: UTC); absent: now or None.
    Anything else stops the command with exit 2, naming the option."""
    if not value:
        return utcnow() if default_now else None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {value[:40]!r}", param_hint=option) from None


def refused(err: HubError) -> typer.Exit:
    """A refusal the hub names (its code and detail), exit 2."""
    console.print(f"[red]{err.code}[/red]: {err.detail}")
    return typer.Exit(2)
