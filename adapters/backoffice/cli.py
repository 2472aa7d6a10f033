"""Run one back-office poller (`python -m adapters.dvz`, `python -m adapters.regions --region R`).

Its settings are environment variables, declared once in adapters/backoffice/settings.py
(`PollerSettings`) and listed by `--help`. Logs: JSON lines on stderr. `--once`: one pass, then a
table of what it did on stdout (`--json`: the same as one JSON object).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any, Callable, Mapping

from adapters.backoffice.client import BackOfficeClient, HubApi
from adapters.backoffice.logs import configure, get_logger
from adapters.backoffice.poller import PassResult, Poller
from adapters.backoffice.settings import PollerSettings, SettingsError, help_epilog
from hub.ports import SourceRefused, SourceUnavailable

__all__ = ["SettingsError", "build_parser", "main", "poller_from_env", "poller_from_settings", "pass_table"]

log = get_logger("wib_hub.poller")


def poller_from_settings(party: str, flows: frozenset[str], settings: PollerSettings) -> Poller:
    hub = HubApi(settings.client_id, settings.client_secret, settings.hub_url)
    backoffice = BackOfficeClient(party, settings.backoffice_url, settings.backoffice_api_key)
    return Poller(party, backoffice, hub, settings.state_dir, flows, page_size=settings.page_size,
                  interval_s=settings.interval_s)


def poller_from_env(party: str, flows: frozenset[str], env: Mapping[str, str] = os.environ, *,
                    sandbox: bool = False, adapter: str | None = None) -> Poller:
    return poller_from_settings(party, flows, PollerSettings.from_env(party, env, sandbox=sandbox, adapter=adapter))


def build_parser(prog: str, regions: list[str] | None = None, adapter: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Poll a back office and the hub, both ways: back-office\n"
                                     "events become hub messages, the party's hub inbox is delivered to the back office.",
                                     epilog=help_epilog(adapter=adapter), formatter_class=argparse.RawDescriptionHelpFormatter)
    if regions:
        parser.add_argument("--region", required=True, choices=regions)
    parser.add_argument("--once", action="store_true", help="one pass, print a table of what it did, exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the same as one JSON object")
    parser.add_argument("--sandbox", action="store_true",
                        help="against `wib-hub sandbox` and a local hub: default the back office's URL and API key "
                             "to the sandbox simulator's, the client secret to the hub's clients file")
    return parser


_ROWS = (("events", "events fetched from the back office"),
         ("sent", "submitted to the hub (new messages)"),
         ("duplicates", "already in the hub (sent before a restart)"),
         ("rejected", "refused for good (see <party>.rejected.jsonl)"),
         ("backoffice_acked", "events acknowledged to the back office"),
         ("delivered", "hub deliveries forwarded to the back office"),
         ("redelivered", "deliveries the back office already had"),
         ("acked", "deliveries acknowledged in the hub"))


def pass_table(party: str, result: PassResult, error: str | None = None) -> Any:
    """What one pass did, as a rich Table."""
    from rich.table import Table
    table = Table(title=f"poller pass: {party}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in _ROWS:
        table.add_row(label, str(getattr(result, key)))
        if key == "rejected":
            for code, n in sorted(result.refusals.items()):
                table.add_row(f"  refused: {code}", str(n))
    if error:
        table.add_row("pass failed", error)
    return table


def main(party_for: Callable[[argparse.Namespace], str], flows: frozenset[str], argv: list[str] | None = None, *,
         prog: str, regions: list[str] | None = None, adapter: str | None = None) -> int:
    parser = build_parser(prog, regions, adapter)
    args = parser.parse_args(argv)
    if args.json and not args.once:
        parser.error("--json goes with --once")
    party = party_for(args)
    try:
        settings = PollerSettings.from_env(party, os.environ, sandbox=args.sandbox, adapter=adapter)
    except SettingsError as err:
        parser.error(str(err))
    configure(settings.log_level)
    poller = poller_from_settings(party, flows, settings)
    log.info("poller starting", party=party, hub_url=settings.hub_url, backoffice_url=settings.backoffice_url,
             state_dir=str(settings.state_dir), once=args.once, sandbox=args.sandbox)
    if args.once:
        return _once(poller, as_json=args.json)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    poller.run(stop)
    log.info("poller stopped", party=party)
    return 0


def _once(poller: Poller, *, as_json: bool) -> int:
    result, error = PassResult(), None
    try:
        poller.run_once(result)
    except (SourceUnavailable, SourceRefused) as err:
        error = type(err).__name__
        log.error("poller pass failed", party=poller.party, error=error)
    log.info("poller pass", party=poller.party, **result.counts())
    if as_json:
        print(json.dumps({"party": poller.party, **result.counts(), "error": error}, sort_keys=False))
    else:
        from rich.console import Console
        Console(file=sys.stdout).print(pass_table(poller.party, result, error))
    return 1 if error else 0
