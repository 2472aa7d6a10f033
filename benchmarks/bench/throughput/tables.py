"""The tables a throughput run ends with: every run in detail, where a hub message waited, and
the summary with the hub's rate against each raw pika baseline (the target: at least 0.30)."""
from __future__ import annotations

import os

from rich.table import Table

from bench.measure import fmt
from bench.throughput.core import STAGES, Result

TARGET_RATIO = 0.30


def detail_table(results: list[Result]) -> Table:
    t = Table(title="Runs in detail", title_justify="left")
    for col in ("configuration", "msgs", "wall s", "msgs/s", "p50 ms", "p99 ms", "1-at-a-time p50 ms",
                "1-at-a-time p99 ms", "ingress/s", "in submit() p50 / p99 ms", "Python CPU (cores)", "host busy %",
                "host CPU ms/msg", "CPU ms/msg: Python · PG · MQ", "checks"):
        t.add_column(col, justify="left" if col in ("configuration", "checks") else "right")
    for r in results:
        checks = f"{r.notes['audit_events']} events, chain {r.notes['audit']}" if "audit" in r.notes else ""
        t.add_row(r.config, str(r.messages), fmt(r.wall_s, ".2f"), fmt(r.rate), fmt(r.p50_ms, ".1f"),
                  fmt(r.p99_ms, ".1f"), fmt(r.unloaded_p50_ms, ".1f"), fmt(r.unloaded_p99_ms, ".1f"),
                  fmt(r.ingress_rate), f"{fmt(r.submit_p50_ms, '.1f')} / {fmt(r.submit_p99_ms, '.1f')}",
                  fmt(r.py_cores, ".2f"),
                  fmt(r.host_busy_pct), fmt(host_ms_per_message(r), ".2f"), split_ms_per_message(r), checks)
    return t


def split_ms_per_message(r: Result) -> str:
    """CPU per message of the Python processes measured, PostgreSQL and RabbitMQ (ms each)."""
    def per(cores: float | None) -> str:
        return fmt(cores / r.rate * 1000 if cores is not None and r.rate else None, ".2f")
    return f"{per(r.py_cores)} · {per(r.pg_cores)} · {per(r.mq_cores)}"


def host_ms_per_message(r: Result) -> float | None:
    """CPU of the whole host per message: busy cores ÷ msgs/s."""
    if r.host_busy_pct is None or not os.cpu_count():
        return None
    return r.host_busy_pct / 100 * os.cpu_count() / r.rate * 1000


def stage_table(results: list[Result]) -> Table | None:
    hubs = [r for r in results if "stages" in r.notes]
    if not hubs:
        return None
    t = Table(title="Where a hub message waits (from its audit events; p50 / p99 ms, under the load)",
              title_justify="left")
    t.add_column("configuration")
    t.add_column("in submit() p50", justify="right")
    for _, _, label in STAGES:
        t.add_column(label, justify="right")
    for r in hubs:
        t.add_row(r.config, fmt(r.submit_p50_ms, ".1f"),
                  *(f"{fmt(p50, '.1f')} / {fmt(p99, '.1f')}" for p50, p99 in r.notes["stages"].values()))
    return t


def summary_table(results: list[Result]) -> Table:
    raw = {r.config: r for r in results if r.config.startswith("raw")}
    per_msg, batched = raw.get("raw pika, confirm/msg"), raw.get("raw pika, batched")
    t = Table(title=f"Summary (ratio = hub msgs/s ÷ raw pika msgs/s; target ≥ {TARGET_RATIO:.2f})",
              title_justify="left")
    for col in ("configuration", "messages", "msgs/s", "p50 ms", "p99 ms", "÷ raw confirm/msg", "÷ raw batched"):
        t.add_column(col, justify="left" if col == "configuration" else "right")
    for r in results:
        t.add_row(r.config, str(r.messages), fmt(r.rate), fmt(r.p50_ms, ".1f"), fmt(r.p99_ms, ".1f"),
                  _ratio(r, per_msg), _ratio(r, batched))
    return t


def _ratio(r: Result, base: Result | None) -> str:
    if base is None or r.config.startswith("raw"):
        return "–"
    ratio = r.rate / base.rate
    return f"[{'green' if ratio >= TARGET_RATIO else 'red'}]{ratio:.2f}[/]"
