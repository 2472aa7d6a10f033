"""RabbitMQ nodes of our own on this machine, for the chaos harness: one node, or a 3-node cluster,
each on free ports, killed (SIGKILL of that node's beam.smp only) and started again at will.

    with RabbitNodes() as nodes:            # everything removed on exit (and atexit)
        [n] = nodes.start(1)                # one node: n.url is its amqp:// URL
        cluster = nodes.start(3)            # three nodes started in parallel, then joined to the first
        cluster[0].kill(); cluster[0].restart(); cluster[0].wait_ready()

Never touches the shared node (rabbit@localhost on 5672): each node has its own name
(`wibchaos<k>x<random>@localhost`), ports, directories, configuration file (the shared
/etc/rabbitmq/rabbitmq.conf binds 5672, so it is not read), env file, plugins file (`[].`: no
management listener on 15672) and Erlang cookie (its own HOME: a rabbitmqctl of ours cannot
authenticate to the shared node even if it named it). The nodes register with the machine's epmd,
which stays up (it is shared).

Run as root, `rabbitmq-server` would re-execute itself as the `rabbitmq` user; here the node is
started directly as that user (Popen user=/group=) in the foreground, its output (RABBITMQ_LOGS=-)
in a log file whose tail is raised when it fails to start. As any other user, the nodes run as
that user (it must be able to run erl).
"""
from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

RABBITMQ_BIN = Path(os.environ.get("WIB_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
SHARED_PORTS = {5672, 15672, 25672, 4369}


def free_port(avoid: set[int] = frozenset()) -> int:
    """A port to listen on, below the ephemeral range (adapters.simulator.free_port says why); the
    distribution port is AMQP port + 20000 by default: both are kept clear of the shared node's."""
    from adapters.simulator import free_port as pick
    return pick(avoid=set(avoid) | SHARED_PORTS | {p - 20000 for p in SHARED_PORTS})


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _run_as() -> tuple[str | None, int, int]:
    """The user the nodes run as: `rabbitmq` when we are root, else ourselves."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("rabbitmq")
        return "rabbitmq", pw.pw_uid, pw.pw_gid
    return None, os.getuid(), os.getgid()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _environ(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class NodeError(RuntimeError):
    pass


@dataclass
class Node:
    name: str                 # short name; the node is name@localhost
    port: int                 # AMQP
    dist_port: int            # Erlang distribution
    home: Path                # the cookie's HOME, shared by the nodes of one RabbitNodes
    dir: Path                 # this node's directories and files
    proc: subprocess.Popen | None = None
    starts: list[float] = field(default_factory=list)   # seconds each start took (to AMQP answering)
    _log_file: object | None = None

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def log(self) -> Path:
        return self.dir / "node.log"

    def env(self) -> dict[str, str]:
        d = self.dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.home),
            LANG="C.UTF-8", LC_ALL="C.UTF-8",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_LOGS="-",
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(d / "node.pid"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(d / "feature_flags"),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(d / "plugins-expand"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def prepare(self, uid: int, gid: int) -> None:
        d = self.dir
        for sub in ("mnesia", "log", "plugins-expand"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = true\nlog.console.level = info\nlog.file = false\n"
            # the chaos runs kill nodes on purpose: a restarted node must not wait long for its peers
            "mnesia_table_loading_retry_timeout = 5000\nmnesia_table_loading_retry_limit = 20\n"
            "heartbeat = 10\n")
        (d / "advanced.config").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")
        for p in [d, *d.rglob("*")]:
            os.chown(p, uid, gid)

    def start(self) -> None:
        """Start the node in the foreground (returns at once; `wait_ready` waits for AMQP)."""
        if self.alive():
            raise NodeError(f"{self.nodename} is already running")
        user, uid, gid = _run_as()
        self._log_file = open(self.log, "ab")
        self._log_file.write(f"\n=== start {time.strftime('%H:%M:%S')} ===\n".encode())
        self._log_file.flush()
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self.env(), cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     user=user, group=gid if user else None, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Until the node answers an AMQP handshake; the seconds since its start."""
        import pika
        deadline = time.monotonic() + timeout
        params = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2&blocked_connection_timeout=2")
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise NodeError(f"{self.nodename} exited ({self.proc.returncode}) while starting:\n{self.log_tail()}")
            if port_open(self.port):
                try:
                    pika.BlockingConnection(params).close()
                    took = time.monotonic() - self._t0
                    self.starts.append(took)
                    return took
                except Exception:  # noqa: BLE001 - not ready yet
                    pass
            if time.monotonic() > deadline:
                raise NodeError(f"{self.nodename} did not answer on {self.port} within {timeout:.0f} s:\n"
                                f"{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def beam_pid(self) -> int | None:
        """The OS pid of THIS node's beam.smp: a child of our wrapper whose command line names the node."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        todo, seen = [self.proc.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            cmd = _cmdline(pid)
            # the node name is not on beam's command line (the node sets it at boot): it is in its
            # environment, which we gave it
            if cmd and cmd[0].endswith("beam.smp") and f"RABBITMQ_NODENAME={self.nodename}" in _environ(pid):
                return pid
            todo.extend(_children(pid))
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL this node's beam.smp (nothing else); the wrapper script then exits by itself."""
        pid = self.beam_pid()
        if pid is None:
            raise NodeError(f"{self.nodename}: no beam.smp found to kill")
        os.kill(pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)   # our own session (start_new_session)
            self.proc.wait(timeout=5)
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, timeout: float = 60.0) -> float:
        if self.alive():
            self.kill()
        self.start()
        return self.wait_ready(timeout)

    def stop(self) -> None:
        """Gone for good: SIGKILL (a throwaway node needs no graceful stop), its session included."""
        if self.proc is not None and self.proc.poll() is None:
            pid = self.beam_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmqctl against this node only (-n), with our cookie."""
        user, _, gid = _run_as()
        r = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.nodename, *args], env=self.env(),
                           cwd=self.dir, capture_output=True, text=True, timeout=timeout,
                           user=user, group=gid if user else None)
        if r.returncode != 0:
            raise NodeError(f"rabbitmqctl -n {self.nodename} {' '.join(args)}: exit {r.returncode}\n"
                            f"{r.stdout[-1500:]}{r.stderr[-1500:]}")
        return r.stdout


class RabbitNodes:
    """Our nodes; `close()` (also at exit, and on leaving the `with`) kills them and removes their files."""

    def __init__(self, base: Path | None = None) -> None:
        _, uid, gid = _run_as()
        self._uid, self._gid = uid, gid
        self.base = Path(base or tempfile.mkdtemp(prefix="wib-rmq-"))
        self.base.mkdir(parents=True, exist_ok=True)
        os.chown(self.base, uid, gid)
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper() + uuid.uuid4().hex.upper())
        os.chmod(cookie, 0o400)
        os.chown(cookie, uid, gid)
        self.tag = uuid.uuid4().hex[:6]
        self.nodes: list[Node] = []
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    def new_node(self) -> Node:
        with self._lock:
            used = {p for n in self.nodes for p in (n.port, n.dist_port)}
            port = free_port(used)
            dist = port + 20000
            if port_open(dist) or dist in used:
                dist = free_port(used | {port})
            k = len(self.nodes) + 1
            node = Node(f"wibchaos{k}x{self.tag}", port, dist, self.base, self.base / f"node{k}")
            self.nodes.append(node)
        node.prepare(self._uid, self._gid)
        return node

    def start(self, count: int = 1, timeout: float = 90.0) -> list[Node]:
        """`count` fresh nodes started in parallel; with more than one, the others joined to the first."""
        t0 = time.monotonic()
        nodes = [self.new_node() for _ in range(count)]
        for n in nodes:
            n.start()
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda n: n.wait_ready(timeout), nodes))
        self.timings[f"start_{count}_nodes_s"] = time.monotonic() - t0
        if count > 1:
            t1 = time.monotonic()
            first = nodes[0]
            # join one at a time (concurrent joins race on the schema), each stop/join/start in a row
            for n in nodes[1:]:
                n.ctl("stop_app")
                n.ctl("join_cluster", first.nodename)
                n.ctl("start_app")
            self.timings["join_s"] = time.monotonic() - t1
            for n in nodes:
                n.wait_ready(timeout)
            self.timings[f"cluster_{count}_s"] = time.monotonic() - t0
        return nodes

    def running(self, node: Node) -> list[str]:
        """The cluster members the node says are running (from its cluster_status)."""
        import json
        status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
        return sorted(status.get("running_nodes", []))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for n in self.nodes:
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - best effort, the rest must still go
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "RabbitNodes":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":   # a quick measure: python -m tests.support.rabbitnodes
    with RabbitNodes() as rn:
        t = time.monotonic()
        [one] = rn.start(1)
        print(f"single node: {time.monotonic() - t:.1f} s ({one.nodename} on {one.port})")
        t = time.monotonic()
        cl = rn.start(3)
        print(f"3-node cluster: {time.monotonic() - t:.1f} s {rn.timings}")
        print("running:", rn.running(cl[0]))
        t = time.monotonic()
        cl[0].kill()
        print(f"kill: {time.monotonic() - t:.1f} s; running per node2: {rn.running(cl[1])}")
        print(f"restart: {cl[0].restart():.1f} s; running: {rn.running(cl[1])}")
