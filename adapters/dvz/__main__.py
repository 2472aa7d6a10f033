"""`python -m adapters.dvz [--once]`: the DVZ back-office poller (settings: adapters/backoffice/cli.py)."""
import sys

from adapters.backoffice.cli import main
from adapters.dvz import FLOWS, PARTY

sys.exit(main(lambda args: PARTY, FLOWS, prog="python -m adapters.dvz"))
