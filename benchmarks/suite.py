#!/usr/bin/env python
"""How long the test suite takes, here and at a baseline revision, measured in the same run.

    .venv/bin/python benchmarks/suite.py [--baseline REV] [--runs N] [--pytest-args "..."]

Each revision is checked out in a temporary git worktree beside this one and runs the README's test
command as CI does: a fresh virtualenv, `pip install -e '.[test]'`, then `python -m pytest -q`. The
install and the tests are timed apart (wall clock), the pytest summary line is kept, and the runs
alternate between the revisions so that a machine that gets busier favours neither. The servers are
the tests' own (HUB_TEST_DATABASE_URL, HUB_TEST_AMQP_URL). Without --baseline only this checkout's
HEAD is measured.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()


@dataclass
class Timing:
    rev: str
    install_s: list[float] = field(default_factory=list)
    tests_s: list[float] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _run_once(tree: Path, pytest_args: list[str], timing: Timing) -> None:
    """The README's test command, install and tests timed apart."""
    venv = tree / ".venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", ".[test]"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    installed = time.perf_counter()
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *pytest_args], cwd=tree, capture_output=True, text=True)
    finished = time.perf_counter()
    lines = [ln for ln in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    timing.install_s.append(installed - start)
    timing.tests_s.append(finished - installed)
    timing.summary.append((lines[-1].strip("= ") if lines else f"exit {done.returncode}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a revision to compare with (e.g. the commit before a change)")
    parser.add_argument("--runs", type=int, default=1, help="runs per revision (alternating)")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, as one string")
    args = parser.parse_args()
    revs = [_git("rev-parse", "--short", "HEAD")]
    if args.baseline:
        revs.insert(0, _git("rev-parse", "--short", args.baseline))
    timings = {rev: Timing(rev) for rev in revs}
    with tempfile.TemporaryDirectory(prefix="wib-suite-") as tmp:
        trees = {}
        for rev in revs:
            trees[rev] = Path(tmp) / rev
            _git("worktree", "add", "--detach", str(trees[rev]), rev)
        try:
            for n in range(args.runs):
                for rev in revs:
                    console.print(f"run {n + 1}/{args.runs}: {rev} …")
                    _run_once(trees[rev], shlex.split(args.pytest_args), timings[rev])
        finally:
            for tree in trees.values():
                _git("worktree", "remove", "--force", str(tree))
    cpus = os.cpu_count()
    table = Table(title=f"README test command, {platform.node()}, {cpus} CPUs, {time.strftime('%Y-%m-%d')}")
    for col in ("revision", "install (s)", "tests (s)", "whole (s)", "pytest says"):
        table.add_column(col, justify="left" if col in ("revision", "pytest says") else "right")
    for t in timings.values():
        for i, s in enumerate(t.summary):
            table.add_row(t.rev, f"{t.install_s[i]:.0f}", f"{t.tests_s[i]:.0f}",
                          f"{t.install_s[i] + t.tests_s[i]:.0f}", s)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
