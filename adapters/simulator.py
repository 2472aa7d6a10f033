"""What every simulator shares: fault injection and a server thread.

A simulator is an ASGI app speaking exactly its source's contract over the synthetic population
(adapters/population.py). `Faults` wraps it: latency, 5xx, timeouts (a reply slower than any
client waits), malformed answers and a full outage, each drawn from a seeded generator so a run
can be replayed. Faults can be changed at run time with `POST /_sim/faults` (JSON body with the
fields of `Faults`) — how tests and the demo take a source down and bring it back.
"""
from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Awaitable, Callable

import uvicorn

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


@dataclass
class Faults:
    latency_ms: float = 0.0            # added to every answer
    jitter_ms: float = 0.0             # uniform extra latency
    error_rate: float = 0.0            # share of requests answered 503 (REST) or with a server fault
    timeout_rate: float = 0.0          # share of requests answered after `hang_s`
    malformed_rate: float = 0.0        # share of requests answered with a truncated body
    down: bool = False                 # every request 503: the source is down
    hang_s: float = 30.0
    seed: int = 7
    rng: random.Random = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)} - {"rng"}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        for k, v in changes.items():
            setattr(self, k, v)
        if "seed" in changes:
            self.rng = random.Random(self.seed)

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rng", None)
        return d


class FaultInjector:
    """ASGI middleware: applies `Faults` in front of a simulator app and serves /_sim/faults."""

    def __init__(self, app: ASGIApp, faults: Faults | None = None, *, fault_body: Callable[[], bytes] | None = None,
                 fault_type: str = "application/json",
                 fault_for: Callable[[dict], tuple[bytes, str] | None] | None = None):
        self.app, self.faults = app, faults or Faults()
        # what a failing request gets: a JSON problem by default; SOAP simulators pass a SOAP fault,
        # and an app speaking both picks per request with fault_for(scope) → (body, content type)
        self.fault_body = fault_body or (lambda: b'{"title":"Service unavailable","status":503}')
        self.fault_type = fault_type
        self.fault_for = fault_for

    def _fault(self, scope: dict) -> tuple[bytes, str]:
        chosen = self.fault_for(scope) if self.fault_for else None
        return chosen or (self.fault_body(), self.fault_type)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/_sim/faults":
            return await self._control(scope, receive, send)
        f = self.faults
        delay = f.latency_ms + (f.rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0.0)
        if delay:
            await asyncio.sleep(delay / 1000)
        draw = f.rng.random()
        if f.down or draw < f.error_rate:
            return await _reply(send, 503, *self._fault(scope))
        if draw < f.error_rate + f.timeout_rate:
            await asyncio.sleep(f.hang_s)
            return await _reply(send, 504, *self._fault(scope))
        if draw < f.error_rate + f.timeout_rate + f.malformed_rate:
            return await self._truncated(scope, receive, send)
        await self.app(scope, receive, send)

    async def _truncated(self, scope, receive, send) -> None:
        """The real answer, cut in half: a malformed body behind a 200."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        body = body[: len(body) // 2]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _control(self, scope, receive, send) -> None:
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                self.faults.update(json.loads(body or b"{}"))
            except (ValueError, TypeError) as err:
                return await _reply(send, 400, json.dumps({"error": "bad_faults", "detail": str(err)}).encode())
        await _reply(send, 200, json.dumps(self.faults.public()).encode())


async def _reply(send, status: int, body: bytes, content_type: str = "application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class RunningSimulator:
    name: str
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    injector: FaultInjector

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# Ports for a server to listen on are picked below the kernel's ephemeral range (32768-60999 by
# default), where no client socket takes one between the pick and the server's bind: a port the
# kernel hands out for port 0 is in that range, and an outgoing connection (to PostgreSQL, to
# RabbitMQ) may get the same number as its own local port a moment later ("address already in use").
LISTEN_PORTS = range(20000, 32700)
_RESERVED = frozenset({25672})   # RabbitMQ's distribution port (AMQP + 20000)
_pick = random.Random()


def free_port(host: str = "127.0.0.1", avoid: frozenset[int] | set[int] = frozenset()) -> int:
    """A port nothing listens on or is bound to now, below the ephemeral range (see LISTEN_PORTS)."""
    for _ in range(1000):
        port = _pick.randrange(LISTEN_PORTS.start, LISTEN_PORTS.stop)
        if port in _RESERVED or port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1}")


def serve_in_thread(name: str, app: FaultInjector, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Start `app` on its own uvicorn server in a daemon thread; returns once it accepts connections."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"simulator {name} did not start on port {port}")
        time.sleep(0.01)
    return RunningSimulator(name, f"http://{host}:{port}", server, thread, app)
