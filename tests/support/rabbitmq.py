"""A real RabbitMQ broker for the tests and the benchmarks.

`rabbitmq_url()` picks one: `AMQP_URL` when set, else a testcontainers broker when a Docker
engine answers, else a `PrivateRabbitMQ`, a node of our own started from the installed
`rabbitmq-server` package. The private node keeps everything (data, logs, config, Erlang
cookie) in a temporary directory and listens on free ports, so it never meets a broker
already running on the machine, and it can be killed, paused and restarted for the fault
tests. A `PrivateCluster` joins three such nodes into one RabbitMQ cluster.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aio_pika

# Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the `rabbitmq` user and
# writes to /var/log; the script behind it runs the node as whoever calls it.
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")
CONTAINER_IMAGE = "rabbitmq:3.13"


class RabbitMQNotInstalled(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "rabbitmq-server is not installed, and the tests need a real RabbitMQ broker. "
            "Install it with `sudo apt-get install rabbitmq-server` (Debian/Ubuntu), "
            "or set AMQP_URL to a broker that is already running."
        )


def find_server_script() -> str:
    for candidate in SERVER_SCRIPTS:
        if found := shutil.which(candidate):
            return found
    raise RabbitMQNotInstalled


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on the loopback that nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on `host:port`."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def amqp_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a full AMQP handshake (login included) succeeds at `url`.

    The probe runs on its own event loop in a worker thread, so that synchronous callers
    inside a running loop (async fixtures) can use it too. A TCP check comes first: it is
    quicker, and a refused connection makes aio-pika log an error.
    """
    address = urlsplit(url)
    if not port_open(address.port or 5672, address.hostname or "127.0.0.1"):
        return False

    async def probe() -> None:
        connection = await aio_pika.connect(url, timeout=timeout)
        await connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(lambda: asyncio.run(probe())).result()
        except Exception:
            return False
    return True


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc), parents first.

    The Erlang VM's helpers (erl_child_setup, inet_gethost, the disk monitor's shell) start
    sessions of their own, so killing the process group would miss them.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has just gone
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop(0)
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def peer_ports(pid: int) -> set[int]:
    """The remote ports of `pid`'s established TCP connections on the loopback (from /proc)."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:  # the process has gone
        return set()
    inodes = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    ports = set()
    for table in ("tcp", "tcp6"):
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and fields[9] in inodes:  # 01: established
                    ports.add(int(fields[2].rpartition(":")[2], 16))
    return ports


def alive(pid: int) -> bool:
    """True unless `pid` is gone or a zombie (orphans wait for init to reap them)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] != "Z"


class PrivateRabbitMQ:
    """A RabbitMQ node of our own: free ports, a temporary directory, a unique node name.

    `start()` waits until the broker accepts a login; `kill()` SIGKILLs the node, and
    `restart()` brings it back on the same ports and data, so durable queues survive;
    `stop()` shuts it down cleanly (SIGKILL if it lingers) and removes the directory.
    """

    def __init__(self) -> None:
        self.script = find_server_script()
        self.port, self.dist_port = free_ports(2)
        self.nodename = f"vsm-test-{secrets.token_hex(4)}@localhost"
        self.directory: Path | None = None
        self.startup_s: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        if self.running:
            return
        directory = self.directory or self._prepare()
        began = time.monotonic()
        with (directory / "server.out").open("ab") as out:
            # A session of its own: a Ctrl-C meant for pytest does not reach the node.
            self._process = subprocess.Popen(
                [self.script],
                cwd=directory,
                env=self._environment(directory),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        while not amqp_answers(self.url):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ node {self.nodename} exited with {self._process.returncode} "
                    f"while starting:\n{tail(directory / 'server.out')}\n(logs: {directory})"
                )
            if time.monotonic() - began > timeout:
                self.kill()
                raise TimeoutError(f"RabbitMQ node {self.nodename} not up after {timeout} s")
            time.sleep(0.2)
        self.startup_s = time.monotonic() - began

    def ctl(self, *args: str, timeout: float = 60, tool: str = "rabbitmqctl") -> str:
        """`rabbitmqctl <args>` (or another of the broker's CLI tools: `rabbitmq-streams`,
        `rabbitmq-queues`) against this node (its cookie and name); its output."""
        if self.directory is None:
            raise RuntimeError("the node has not been started")
        script = Path(self.script).with_name(tool)
        done = subprocess.run(
            [str(script) if script.exists() else tool, "-n", self.nodename, "-q", *args],
            env=self._environment(self.directory),
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout.decode()

    def pids(self) -> list[int]:
        """The node's processes: the start script, the Erlang VM and the VM's helpers."""
        process = self._process
        return process_tree(process.pid) if process and process.poll() is None else []

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM and its helpers, as a crash would.

        Confirmed messages survive it, but a quorum queue declared less than about a second
        before may come back without a leader, for good (seen with RabbitMQ 3.10.8): Ra
        records its new member lazily. Give new quorum queues a moment before the kill.
        """
        if self._process is None:
            return
        # Freeze the tree first (a stopped process forks no new helper that could inherit the
        # listening socket); then kill every frozen one.
        frozen = self.pause()
        for pid in frozen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._process.wait()
        self._process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            any(alive(pid) for pid in frozen) or port_open(self.port)
        ):
            time.sleep(0.05)

    def pause(self) -> list[int]:
        """SIGSTOP the node's processes, as a VM that stops being scheduled would; the pids.

        Repeated until no new member appears: a process forked meanwhile is frozen too."""
        frozen: list[int] = []
        while fresh := [pid for pid in self.pids() if pid not in frozen]:
            for pid in fresh:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            frozen += fresh
        return frozen

    def resume(self) -> None:
        """SIGCONT every process of the node (after `pause()`)."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def restart(self, timeout: float = 60) -> None:
        """Start the node again on the same ports and data (after `kill()`, or stopping it)."""
        self._terminate()
        self.start(timeout)

    def stop(self, timeout: float = 30) -> None:
        """Stop the node cleanly (SIGKILL after `timeout`) and remove its directory."""
        self._terminate(timeout)
        atexit.unregister(self.stop)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _terminate(self, timeout: float = 30) -> None:
        if self._process is None:
            return
        self.resume()  # a paused VM would take SIGTERM only once woken
        # The script passes SIGTERM on to the VM, which then shuts RabbitMQ down cleanly.
        self._process.terminate()
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)
        self.kill()  # whatever is left of it

    def _prepare(self) -> Path:
        directory = Path(tempfile.mkdtemp(prefix="vsm-rabbitmq-"))
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        self.directory = directory
        return directory

    def _environment(self, directory: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        return env | {
            "HOME": str(directory),  # where Erlang keeps the node's cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            # Our own (empty) file instead of /etc/rabbitmq/rabbitmq-env.conf.
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        }

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ClusterNode(PrivateRabbitMQ):
    """A private node that shares its Erlang cookie with the other members of its cluster."""

    def __init__(self, cookie: str) -> None:
        super().__init__()
        self.cookie = cookie

    def _prepare(self) -> Path:
        directory = super()._prepare()
        cookie = directory / ".erlang.cookie"  # $HOME is the directory: the VM and the CLI
        cookie.write_text(self.cookie)  # read the cookie from here
        cookie.chmod(0o400)
        with (directory / "rabbitmq.conf").open("a") as conf:
            # What RabbitMQ advises for three nodes: a node cut off from the majority pauses
            # (and closes its clients' connections) until it sees the majority again.
            conf.write("cluster_partition_handling = pause_minority\n")
        return directory


class PrivateCluster:
    """Three private nodes joined into one RabbitMQ cluster, to kill, pause and restart.

    `url` lists every node's URL, comma-separated, as `AMQP_URL` takes them. The nodes start
    side by side; the second and third then join the first (`rabbitmqctl join_cluster`).
    `kill(i)`, `pause(i)`, `resume(i)`, `restart(i)` act on one node; `stop()` stops them all
    and removes their directories, so that nothing is left running.
    """

    def __init__(self, size: int = 3) -> None:
        cookie = secrets.token_hex(16)
        self.nodes = [ClusterNode(cookie) for _ in range(size)]
        self.paused: set[str] = set()
        """Nodes paused now: `ctl` does not wait for their answer."""

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 120) -> None:
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for started in [pool.submit(node.start, timeout) for node in self.nodes]:
                started.result()
        first, *others = self.nodes
        for node in others:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.nodename)
            node.ctl("start_app")
        self.wait_running(self.nodes, timeout)

    def pause(self, node: ClusterNode) -> None:
        """SIGSTOP `node` (see `PrivateRabbitMQ.pause`) until `resume(node)`."""
        self.paused.add(node.nodename)
        node.pause()

    def resume(self, node: ClusterNode) -> None:
        node.resume()
        self.paused.discard(node.nodename)

    def running(self) -> list[ClusterNode]:
        """The nodes whose VM runs and is not paused."""
        return [node for node in self.nodes if node.running and node.nodename not in self.paused]

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl <args>` against the first running node that answers."""
        errors = []
        for node in self.running():
            try:
                return node.ctl(*args, timeout=timeout)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                errors.append(error)
        raise RuntimeError(f"no node of the cluster answered rabbitmqctl {args}: {errors}")

    def wait_running(self, nodes: list[ClusterNode], timeout: float = 60) -> None:
        """Wait until the cluster counts every one of `nodes` as running."""
        wanted = {node.nodename for node in nodes}
        deadline = time.monotonic() + timeout
        while not wanted <= self.running_nodes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sorted(wanted)} not all running after {timeout} s")
            time.sleep(0.5)

    def running_nodes(self) -> set[str]:
        status = json.loads(self.ctl("cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def used_by(self, pid: int) -> list[ClusterNode]:
        """The nodes process `pid` has AMQP connections to."""
        ports = peer_ports(pid)
        return [node for node in self.nodes if node.port in ports]

    def node_of(self, nodename: str) -> ClusterNode:
        return next(node for node in self.nodes if node.nodename == nodename)

    def queues(self, namespace: str) -> list[dict[str, Any]]:
        """Name, type, leader, members and members online of every queue whose name starts
        with `namespace.`."""
        listed = json.loads(
            self.ctl(
                "list_queues", "name", "type", "leader", "members", "online", "--formatter", "json"
            )
        )
        return [queue for queue in listed if queue["name"].startswith(f"{namespace}.")]

    def leader(self, queue: str) -> ClusterNode:
        """The node that leads the quorum queue (or stream) named `queue`."""
        for listed in json.loads(self.ctl("list_queues", "name", "leader", "--formatter", "json")):
            if listed["name"] == queue:
                return self.node_of(listed["leader"])
        raise LookupError(f"no queue {queue!r} in the cluster")

    def stop(self) -> None:
        """Stop every node (side by side) and remove their directories."""
        self.paused.clear()  # a paused node is woken by its own stop
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for stopped in [pool.submit(node.stop) for node in self.nodes]:
                stopped.result()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def docker_answers() -> bool:
    """True when a Docker engine answers, within a few seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "info"], capture_output=True, timeout=5, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


@contextmanager
def rabbitmq_url() -> Iterator[str]:
    """The AMQP URL of a broker for this run: `AMQP_URL`, else a container, else our own node."""
    if url := os.environ.get("AMQP_URL"):
        yield url
    elif docker_answers():
        try:
            from testcontainers.community.rabbitmq import RabbitMqContainer
        except ImportError:  # older testcontainers
            from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer(CONTAINER_IMAGE) as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield f"amqp://{container.username}:{container.password}@{host}:{port}/"
    else:
        with PrivateRabbitMQ() as node:
            yield node.url


def local_ports(pid: int) -> set[int]:
    """The local ports of `pid`'s established TCP connections (from /proc): what the broker
    lists as its connections' `peer_port`."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return set()
    inodes = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    ports = set()
    for table in ("tcp", "tcp6"):
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and fields[9] in inodes:
                    ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


class ClusterTrace:
    """A fault test's notes (`note`), and what the cluster says about itself every `interval`
    s (none unless `interval` > 0), appended as JSON lines to `path` while in the `with`
    block: its queues (type, leader, members online, depth, consumers), connections (whose,
    and whether in flow control) and channels (unconfirmed publishes), asked of the first
    running node that answers. For reading a fault test's failure. Each question boots the
    CLI's Erlang VM: on a loaded 2-core machine that takes seconds, so polling is opt-in."""

    def __init__(
        self, cluster: PrivateCluster, path: Path, owners: dict[str, int], interval: float = 3.0
    ) -> None:
        self.cluster, self.path, self.owners, self.interval = cluster, path, owners, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.began = time.monotonic()

    def __enter__(self) -> Self:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def note(self, event: str, **fields: Any) -> None:
        with self.path.open("a") as out:
            out.write(
                json.dumps({"t": round(time.monotonic() - self.began, 1), "event": event} | fields)
                + "\n"
            )

    def _ask(self, *args: str) -> Any:
        try:
            return json.loads(self.cluster.ctl(*args, "--formatter", "json", timeout=20))
        except Exception as error:  # a trace records what it could not learn, and goes on
            return repr(error)[:300]

    def _run(self) -> None:
        while not self._stop.is_set():
            ports = {port: name for name, pid in self.owners.items() for port in local_ports(pid)}
            connections = self._ask("list_connections", "name", "peer_port", "state", "node")
            if isinstance(connections, list):
                for connection in connections:
                    connection["owner"] = ports.get(connection.get("peer_port"), "?")
            self.note(
                "cluster",
                running=[node.nodename for node in self.cluster.running()],
                queues=self._ask(
                    "list_queues", "name", "type", "leader", "online", "messages", "consumers"
                ),
                connections=connections,
                channels=self._ask(
                    "list_channels", "connection", "number", "messages_unconfirmed", "state"
                ),
            )
            self._stop.wait(self.interval)
