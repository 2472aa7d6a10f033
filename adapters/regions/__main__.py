"""`python -m adapters.regions --region flanders [--once]`: one region's back-office poller
(settings: adapters/backoffice/settings.py, listed by --help)."""
import sys

from adapters.backoffice.cli import main
from adapters.regions import ADAPTER, FLOWS, PARTIES

sys.exit(main(lambda args: PARTIES[args.region], FLOWS, prog="python -m adapters.regions",
              regions=sorted(PARTIES), adapter=ADAPTER.name))
