"""The runtime keeps its threads running: a crash is restarted with back-off, a thread that keeps
crashing is given up (and a vital one makes the process not live), a silent one is stuck; the relay
itself survives its store, its broker and its listener going away; and each outage is one log line
when it starts and one when it ends, not one per attempt."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from hub import runtime as rt
from hub.domain.retry import Backoff
from hub.messaging import relay as relay_module
from hub.messaging.relay import Relay
from hub.ports.oplog import Condition
from tests.support.served import wait_until


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(rt, "_RESTART", Backoff(base_s=0.0, cap_s=0.0, jitter=0.0))


def _runtime() -> rt.Runtime:
    parts = SimpleNamespace(wake=threading.Event(), enrich_wake=threading.Event(),
                            settings=SimpleNamespace(heartbeat_seconds=0))
    return rt.Runtime(parts)  # type: ignore[arg-type]


def test_a_crashed_thread_is_started_again(fast):
    runtime, runs = _runtime(), []

    def flaky(beat):
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        runtime.stopping.wait()

    with capture_logs() as logs:
        runtime._spawn("relay", flaky, vital=True)
        assert wait_until(lambda: len(runs) == 3, timeout=5)
    state = runtime.health()["relay"]
    assert state["alive"] and state["restarts"] == 2 and state["last_error"] == "RuntimeError"
    assert runtime.live() == (True, [])
    assert [e["event"] for e in logs].count("worker_thread_restarting") == 2
    runtime.stop()


def test_a_vital_thread_that_keeps_crashing_is_given_up_and_the_process_is_not_live(fast):
    runtime = _runtime()

    def broken(beat):
        raise OSError("no")

    runtime._spawn("router-0", broken, vital=True)
    assert runtime.failed.wait(5)
    live, wrong = runtime.live()
    assert not live and wrong == ["router-0 given up"]
    assert runtime.health()["router-0"]["restarts"] == rt.GIVE_UP - 1


def test_a_thread_that_is_not_vital_is_given_up_alone(fast):
    runtime = _runtime()
    runtime._spawn("clocks", lambda beat: 1 / 0)
    assert wait_until(lambda: runtime.threads["clocks"].given_up, timeout=5)
    assert not runtime.failed.is_set() and runtime.live() == (True, [])


def test_a_loop_that_ran_steadily_starts_its_count_again(fast, monkeypatch):
    monkeypatch.setattr(rt, "STEADY_S", 0.05)
    runtime, runs = _runtime(), []

    def slow_then_crash(beat):
        runs.append(1)
        time.sleep(0.06)   # steady: each crash is the first in a row
        raise RuntimeError

    runtime._spawn("relay", slow_then_crash, vital=True)
    assert wait_until(lambda: len(runs) > rt.GIVE_UP + 2, timeout=10)
    assert not runtime.failed.is_set()
    runtime.stop()


def test_a_loop_that_beats_and_falls_silent_is_stuck(monkeypatch):
    monkeypatch.setattr(rt, "STALE_S", 0.2)
    runtime, release = _runtime(), threading.Event()

    def hangs(beat):
        beat()
        release.wait()

    runtime._spawn("enricher", hangs, vital=True, beats=True)
    assert runtime.live()[0]
    assert wait_until(lambda: not runtime.live()[0], timeout=5)
    assert runtime.live()[1][0].startswith("enricher silent for")
    release.set()
    runtime.stop()


def test_a_one_off_task_that_returns_is_done_not_restarted(fast):
    runtime, runs = _runtime(), []
    runtime._spawn("queues", lambda beat: runs.append(1), once=True)
    assert wait_until(lambda: runtime.threads["queues"].done, timeout=5)
    time.sleep(0.1)
    assert runs == [1] and runtime.health()["queues"]["restarts"] == 0


def test_an_outage_is_two_lines_whatever_the_attempts():
    with capture_logs() as logs:
        c = Condition(__import__("structlog").get_logger("t"), "relay", queue="q")
        c.ok()                                    # nothing to say while it was never down
        for _ in range(50):
            c.failed(ConnectionRefusedError())
        c.failed(TimeoutError())                  # a new kind of error while down: one line more
        c.ok()
        c.ok()
    assert [(e["event"], e.get("error")) for e in logs] == [
        ("relay.unavailable", "ConnectionRefusedError"), ("relay.unavailable", "TimeoutError"),
        ("relay.recovered", None)]
    assert logs[-1]["failed_attempts"] == 51 and logs[0]["queue"] == "q"


class _Listener:
    """A LISTEN connection that dies on its first wait."""

    made = 0

    def __init__(self, *_):
        type(self).made += 1
        self.first = type(self).made == 1

    def wait(self, timeout: float) -> bool:
        if self.first:
            raise OSError("consuming input failed: server closed the connection unexpectedly")
        time.sleep(timeout)
        return False

    def close(self) -> None:
        pass


def test_the_relay_survives_its_store_and_its_listener(monkeypatch):
    """The reported crash: the listener's error escaped Relay.run and relaying stopped for ever."""
    monkeypatch.setattr(relay_module, "listener_for", lambda engine: _Listener())
    monkeypatch.setattr(relay_module, "_RELISTEN_S", 0.05)
    monkeypatch.setattr(relay_module, "_RETRY", Backoff(base_s=0.01, cap_s=0.01, jitter=0.0))
    _Listener.made = 0
    turns: list[str] = []

    def run_once() -> int:
        turns.append("turn")
        if 2 <= len(turns) <= 4:
            raise OSError("server closed the connection unexpectedly")
        return 0

    relay = Relay(SimpleNamespace(engine=None), SimpleNamespace(), batch=10)  # type: ignore[arg-type]
    relay.run_once = run_once  # type: ignore[method-assign]
    stop, beats = threading.Event(), []
    with capture_logs() as logs:
        t = threading.Thread(target=relay.run, args=(stop, threading.Event(), 0.02), kwargs={"beat": lambda: beats.append(1)})
        t.start()
        assert wait_until(lambda: len(turns) > 10 and _Listener.made >= 2, timeout=5)
        stop.set()
        t.join(5)
    assert not t.is_alive() and len(beats) >= len(turns)
    events = [e["event"] for e in logs]
    assert events.count("relay.unavailable") == 1 and events.count("relay.recovered") == 1
    assert events.count("relay.listener.unavailable") == 1 and events.count("relay.listener.recovered") == 1


def test_the_router_says_unavailable_when_the_store_is_away():
    """So that the transport retries without spending an attempt (no parking during an outage)."""
    from sqlalchemy.exc import OperationalError

    from hub.domain import samples
    from hub.domain.envelope import Envelope
    from hub.infra.transport import Delivery, Unavailable
    from hub.messaging.router import Router
    from hub.registry import load

    registry = load().registry

    class StoreAway:
        def write(self, fn):
            raise OperationalError("INSERT", {}, OSError("server closed the connection unexpectedly"))

    env = Envelope(message_id="m-1", flow_id="single-permit.application-submitted", sender="portal",
                   recipients=("region.flanders",), purpose="p", correlation_id="c",
                   payload=samples.synthetic_application(1))
    router = Router(registry, StoreAway(), SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        router.handle_batch([Delivery("hub.route", "m-1", env.to_bytes(), {}, 1, False)])
