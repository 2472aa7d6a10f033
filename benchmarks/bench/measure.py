"""What the benchmarks measure with and print through: the machine, CPU time, percentiles.

Figures depend on the machine, so every benchmark reports it with them; CPU is read from /proc
because the hub, PostgreSQL and RabbitMQ are separate processes sharing the same cores.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from rich.console import Console

# rich wraps to the terminal; piped into a file, a width wide enough for the widest table
console = Console(width=None if sys.stdout.isatty() else 200)


def machine() -> dict[str, str]:
    """What the figures depend on, printed and saved with them."""
    info = {"cores": str(os.cpu_count()), "memory": "?", "python": platform.python_version(),
            "date": datetime.now(timezone.utc).date().isoformat(), "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["memory"] = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return info


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system, all threads) used so far by this process, or by process `pid`
    (Linux /proc; OSError once it is gone)."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()   # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The servers beside the hub, by process name: their share of the host's CPU is reported apart.
SERVICES = {"postgres": "pg", "beam.smp": "mq", "erl_child_setup": "mq"}


def _service_ticks() -> dict[int, tuple[str, int]]:
    """CPU ticks so far of every PostgreSQL and RabbitMQ process on the host, by pid."""
    out: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name in SERVICES:
            fields = text.rsplit(")", 1)[1].split()
            out[int(entry.name)] = (SERVICES[name], int(fields[11]) + int(fields[12]))
    return out


def _host_ticks() -> tuple[int, int] | None:
    """All CPU ticks of the host so far, and the idle ones among them (idle + iowait)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]


class CpuMeter:
    """CPU used over an interval by this process (all threads) and/or other processes, and by the host."""

    def __init__(self, include_self: bool = True, pids: Sequence[int] = ()) -> None:
        self.include_self, self.pids = include_self, list(pids)
        self.services0 = _service_ticks()
        self.proc0, self.host0, self.wall0 = self._procs(), _host_ticks(), time.perf_counter()

    def _procs(self) -> float | None:
        total = cpu_seconds() if self.include_self else 0.0
        for pid in self.pids:
            try:
                total += cpu_seconds(pid)
            except (OSError, ValueError, IndexError):   # gone, or /proc unreadable: no figure
                return None
        return total

    def stop(self) -> dict[str, float | None]:
        """py_cores: cores the processes used on average; host_busy_pct: of all the host's cores."""
        wall = time.perf_counter() - self.wall0
        proc1, host1 = self._procs(), _host_ticks()
        busy = None
        if self.host0 and host1:
            total, idle = host1[0] - self.host0[0], host1[1] - self.host0[1]
            busy = 100.0 * (total - idle) / total if total else None
        cores = (proc1 - self.proc0) / wall if wall and proc1 is not None and self.proc0 is not None else None
        services1, tick = _service_ticks(), os.sysconf("SC_CLK_TCK")
        used = {name: 0 for name in SERVICES.values()}
        for pid, (name, ticks) in services1.items():
            if pid in self.services0 and self.services0[pid][0] == name:
                used[name] += ticks - self.services0[pid][1]
        split = {f"{name}_cores": (n / tick / wall if wall else None) for name, n in used.items()}
        return {"py_cores": cores, "host_busy_pct": busy, **split}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt(value: float | None, spec: str = ".0f") -> str:
    """A figure for a table; "–" when there is none (None or NaN)."""
    if value is None or value != value:  # noqa: PLR0124 - NaN is the one value unequal to itself
        return "–"
    return format(value, spec)
