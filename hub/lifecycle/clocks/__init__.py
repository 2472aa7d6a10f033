"""Statutory procedure clocks (issue 5 §2; Law of 15 December 1980 as amended in 2019: 61/27-4,
61/27-5, 61/29-4, 61/29-5).

    (the rules and the calendar: hub.domain.clocks; contracts/clocks.yaml read by hub.registry)
    sync.py    one pass: start, stop, expire (report or deemed authorisation), remind
    views.py   what is due, a dossier's clocks
"""
from hub.domain.clocks import Calendar, ClockRule, ClockRules
from hub.lifecycle.clocks.sync import SyncResult, sync
from hub.lifecycle.clocks.views import ClockView, clock_of, due, parse_duration

__all__ = ["Calendar", "ClockRule", "ClockRules", "ClockView", "SyncResult", "clock_of", "due",
           "parse_duration", "sync"]
