"""A real RabbitMQ broker for the tests and the benchmarks.

`rabbitmq_url()` picks one: `AMQP_URL` when set, else a testcontainers broker when a Docker
engine answers, else a `PrivateRabbitMQ`, a node of our own started from the installed
`rabbitmq-server` package. The private node keeps everything (data, logs, config, Erlang
cookie) in a temporary directory and listens on free ports, so it never meets a broker
already running on the machine, and it can be killed and restarted for the fault tests.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Self
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

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl <args>` against this node (its cookie and name); its output."""
        if self.directory is None:
            raise RuntimeError("the node has not been started")
        script = Path(self.script).with_name("rabbitmqctl")
        done = subprocess.run(
            [str(script) if script.exists() else "rabbitmqctl", "-n", self.nodename, "-q", *args],
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
        # listening socket), until no new member appears; then kill every frozen one.
        frozen: list[int] = []
        while fresh := [pid for pid in self.pids() if pid not in frozen]:
            for pid in fresh:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            frozen += fresh
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
