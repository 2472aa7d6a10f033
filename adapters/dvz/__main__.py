"""`python -m adapters.dvz [--once]`: the DVZ back-office poller (settings: adapters/backoffice/settings.py, listed by --help)."""
import sys

from adapters.backoffice.cli import main
from adapters.dvz import ADAPTER, FLOWS, PARTY

sys.exit(main(lambda args: PARTY, FLOWS, prog="python -m adapters.dvz", adapter=ADAPTER.name))
