"""Run one back-office poller from environment settings (`python -m adapters.dvz`, `python -m adapters.regions`).

| variable | meaning |
|---|---|
| `HUB_URL` | the hub API (default http://127.0.0.1:8080) |
| `POLLER_CLIENT_ID` | the party's hub client id (default: the party id) |
| `POLLER_CLIENT_SECRET` | its hub client secret (required) |
| `BACKOFFICE_URL` | the back office's backoffice-v1 base URL (required) |
| `BACKOFFICE_API_KEY` | the static API key the back office issued (required) |
| `POLLER_STATE_DIR` | where the cursor and the rejected log are kept (default `var/pollers`) |
| `POLLER_INTERVAL_SECONDS` | wait between passes when idle (default 2) |
| `POLLER_PAGE_SIZE` | events / inbox items per request (default 100) |
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Mapping

from adapters.backoffice.client import BackOfficeClient, HubApi
from adapters.backoffice.poller import Poller


class SettingsError(ValueError):
    """A required setting is missing or not valid."""


def poller_from_env(party: str, flows: frozenset[str], env: Mapping[str, str] = os.environ) -> Poller:
    def need(name: str) -> str:
        value = env.get(name)
        if not value:
            raise SettingsError(f"{name} is required")
        return value

    try:
        interval, page = float(env.get("POLLER_INTERVAL_SECONDS", "2")), int(env.get("POLLER_PAGE_SIZE", "100"))
    except ValueError as err:
        raise SettingsError(str(err)) from err
    hub = HubApi(env.get("POLLER_CLIENT_ID", party), need("POLLER_CLIENT_SECRET"),
                 env.get("HUB_URL", "http://127.0.0.1:8080"))
    backoffice = BackOfficeClient(party, need("BACKOFFICE_URL"), need("BACKOFFICE_API_KEY"))
    return Poller(party, backoffice, hub, Path(env.get("POLLER_STATE_DIR", "var/pollers")), flows,
                  page_size=page, interval_s=interval)


def main(party_for: Callable[[argparse.Namespace], str], flows: frozenset[str], argv: list[str] | None = None, *, prog: str,
         regions: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Poll a back office and the hub, both ways.")
    if regions:
        parser.add_argument("--region", required=True, choices=regions)
    parser.add_argument("--once", action="store_true", help="one pass, print what it did, exit")
    args = parser.parse_args(argv)
    party = party_for(args)
    logging.basicConfig(level=os.environ.get("HUB_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format='{"level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}')
    try:
        poller = poller_from_env(party, flows)
    except SettingsError as err:
        parser.error(str(err))
    if args.once:
        print(poller.run_once())
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    poller.run(stop)
    return 0
