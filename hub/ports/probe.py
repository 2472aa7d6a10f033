"""Whether an endpoint takes a connection at all: one TCP connect with a short timeout, before a
conformance run, a doctor's check or anything else that would otherwise fail every step on the same
cause. Used by the adapters' conformance suites and by the CLI (hub.ports is what both may import)."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 3.0


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the URL's host and port take a TCP connection within `timeout`; else the reason, one
    phrase (connection refused at h:p, unknown host h, no answer from h:p within Ns, not a URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError as err:
        return f"not a URL ({err})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port is None:
        return "not an http(s) URL with a host"
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except socket.gaierror as err:
        return f"unknown host {parts.hostname} ({err.strerror or err})"
    except (socket.timeout, TimeoutError):
        return f"no answer from {parts.hostname}:{port} within {timeout:g}s"
    except ConnectionRefusedError:
        return f"connection refused at {parts.hostname}:{port}"
    except OSError as err:
        return f"{parts.hostname}:{port}: {err.strerror or err}"
    return None
