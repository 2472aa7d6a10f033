"""Several API processes on one port (`wib-hub api --processes N`): one Python process is bound to a
core by the GIL, so the API scales by processes, each with its own hub (store pool, broker
connection), sharing one listening socket that the kernel hands connections from.

The parent binds the socket, forks the children before it has built anything (no threads, no
connections to inherit), and then only watches: SIGINT/SIGTERM are passed on to every child; a
child that ends on its own (its hub failed, the store refused it) ends the others and the parent
with exit 1, for the process supervisor (systemd, Docker, Kubernetes) to start the set again.
"""
from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

__all__ = ["listen", "run_processes"]


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The one listening socket the processes share (inherited across fork)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run_processes(count: int, sock: socket.socket, child: Callable[[socket.socket], int]) -> int:
    """Fork `count` children, each running child(sock) and exiting with what it returns; wait for
    them. Returns 0 when they were stopped by a signal passed on from here, 1 when one ended on its own."""
    pids: list[int] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            _signal(pid, signum)

    for _ in range(count):
        pid = os.fork()
        if pid == 0:   # the child: its own hub, its own server, on the shared socket
            code = 1
            try:
                code = child(sock)
            finally:
                os._exit(code)
        pids.append(pid)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        alive = set(pids)
        while alive:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:   # pragma: no cover - PEP 475 retries waitpid itself
                continue
            alive.discard(pid)
            if not stopping:           # one ended on its own: the set goes, the supervisor starts it again
                failed = True
                stopping = True
                for other in alive:
                    _signal(other, signal.SIGTERM)
            elif os.waitstatus_to_exitcode(status) not in (0, -signal.SIGINT, -signal.SIGTERM):
                failed = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 1 if failed else 0


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
