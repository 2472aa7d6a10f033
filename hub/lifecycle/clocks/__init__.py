"""Statutory procedure clocks (issue 5 §2; Law of 15 December 1980 as amended in 2019: 61/27-4,
61/27-5, 61/29-4, 61/29-5).

    rules.py   contracts/clocks.yaml: the rules, checked at start-up; Belgian calendar days
    sync.py    one pass: start, stop, expire (report or deemed authorisation), remind
    views.py   what is due, a dossier's clocks
"""
from hub.lifecycle.clocks.rules import Calendar, ClockRule, ClockRules, load_clocks
from hub.lifecycle.clocks.sync import SyncResult, sync
from hub.lifecycle.clocks.views import ClockView, clock_of, due, parse_duration

__all__ = ["Calendar", "ClockRule", "ClockRules", "ClockView", "SyncResult", "clock_of", "due", "load_clocks",
           "parse_duration", "sync"]
