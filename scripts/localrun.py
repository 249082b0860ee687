"""Run the seven services as local processes: `make run` and the integration tests use this.

Each service is `python -m vsm.<module>` with its configuration in the environment. The
launcher stops them all on Ctrl-C or SIGTERM (SIGTERM first, SIGKILL after the grace
period), and each child is told by the kernel to stop should the launcher itself die.
`make run` then applies the default organisation (`--org`, off with `--org none` or
`VSM_DEFAULT_ORG=0`) and gives it an environment: a steady workload and an outside
service that fails in bursts (scripts/flaky_endpoint.py), so the loop runs on its own.
The gateway's bearer token is `MCP_AUTH_TOKEN` when set, else `.run/token` (generated once,
mode 0600), which the `vsm` CLI run from the same directory picks up by itself. Settings the
environment leaves unset are read from `.env` (as every service reads them), and the broker
is found or started (scripts/ensure-rabbitmq) with them.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

try:  # imported as `scripts.localrun` (tests, bench)
    from scripts.flaky_endpoint import FlakyEndpoint, Schedule
except ModuleNotFoundError:  # run as `python scripts/localrun.py`: scripts/ is on sys.path
    from flaky_endpoint import FlakyEndpoint, Schedule  # type: ignore[no-redef]

SERVICES: dict[str, tuple[str, int]] = {
    "queen": ("vsm.queen", 8005),
    "intelligence": ("vsm.intelligence", 8004),
    "control": ("vsm.control", 8003),
    "coordinator": ("vsm.coordinator", 8002),
    "operations": ("vsm.operations", 8001),
    "telegram-gateway": ("vsm.telegram_gateway", 8006),
    "mcp-gateway": ("vsm.mcp_gateway", 8000),
}
PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 180.0
"""Seven interpreters starting at once on a small, busy machine can need minutes."""
DEFAULT_ORGANISATION = "deploy/organisation/default.yaml"
ENDPOINT_PORT = 8007
"""Where default.yaml's api agents expect the flaky endpoint."""
ORGANISATION_ENV = {"ALGEDONIC_HALF_LIFE_S": "15"}
"""Pain fades in the quiet 30 s between bursts: each burst is one intervention and one recovery."""
TOKEN_FILE = Path(".run/token")
"""The gateway's operate token for `make run` (the CLI reads it from here too)."""
METRICS_PORTS = {"mcp-gateway": 9464}
"""The gateway's /metrics without a token (its own port wants one), as the chart has it."""
ENV_FILE = Path(".env")
"""Settings below the environment, for make run and every service (.env.example lists them)."""
ENSURE_RABBITMQ = Path(__file__).resolve().parent / "ensure-rabbitmq"


def read_env_file(
    path: Path = ENV_FILE, environ: MutableMapping[str, str] = os.environ
) -> list[str]:
    """Put the settings of `path` into `environ` where it has none (the environment wins, as
    for the services); the names taken from the file."""
    taken = {k: v for k, v in dotenv_values(path).items() if v is not None and k not in environ}
    environ.update(taken)
    return sorted(taken)


def local_token(path: Path = TOKEN_FILE, environ: Mapping[str, str] = os.environ) -> str:
    """`MCP_AUTH_TOKEN` when set; else the token stored at `path`, generated (mode 0600) on
    the first run and kept, so clients configured once go on working."""
    if token := environ.get("MCP_AUTH_TOKEN", "").strip():
        return token
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


def egress_allowance(*urls: str) -> dict[str, str]:
    """Operations' environment letting api and sensor agents call these URLs (and nothing
    else), their loopback endpoints included: as an operator names a local service."""
    return {
        "EGRESS_ALLOWED_URLS": json.dumps(list(urls)),
        "EGRESS_ALLOWED_PRIVATE": json.dumps([urlsplit(url).netloc for url in urls]),
    }


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the launcher dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalSystem:
    env: Mapping[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {n: p for n, (_, p) in SERVICES.items()})
    metrics_ports: dict[str, int] = field(default_factory=dict)
    """Services that also serve `GET /metrics` alone on a port of its own (`METRICS_PORT`)."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def scrape_address(self, service: str) -> str:
        """Where Prometheus reads the service's metrics without a token."""
        return f"127.0.0.1:{self.metrics_ports.get(service, self.ports[service])}"

    def start(self, services: Iterable[str] = SERVICES) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in services:
            module, _ = SERVICES[name]
            env = {**os.environ, **self.env, "HTTP_PORT": str(self.ports[name])}
            if name in self.metrics_ports:
                env["METRICS_PORT"] = str(self.metrics_ports[name])
            log = (self.log_dir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe prctl only
            )
            log.close()

    def ready(self, service: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url(service)}/readyz", timeout=1) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0, services: Iterable[str] | None = None) -> None:
        pending = set(services or self.processes)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}; see {self.log(name)}; "
                        f"its log ends with:\n{self.log_tail(name)}"
                    )
                if self.ready(name):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout:g}s: {sorted(pending)}")

    def log(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def log_tail(self, service: str, lines: int = 40) -> str:
        """The last `lines` of the service's log: why it stopped, where only the error is read."""
        try:
            text = self.log(service).read_text(errors="replace")
        except OSError as error:
            return f"(unreadable: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        self.processes[service].send_signal(sig)

    def stop(self, grace: float = 15.0) -> dict[str, int | None]:
        """SIGTERM every service, wait up to `grace`, SIGKILL what is left; the exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return {name: p.returncode for name, p in self.processes.items()}


class Workload:
    """Steady synthetic work for the default organisation, sent through the REST API with
    `token`.

    Every `interval_s`: a `process_data` and an `analyze` to the root's workers in turn, and
    a `call` through each api agent allowed to reach `endpoint`. Sequential on purpose: a
    throttled or slow system slows the workload instead of piling requests up.
    """

    def __init__(self, gateway: str, endpoint: str, token: str, interval_s: float = 1.0) -> None:
        self.gateway, self.endpoint, self.interval_s = gateway, endpoint, interval_s
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.stopped = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)

    def start(self) -> Workload:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=15)

    def _request(self, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own gateway on loopback
            f"{self.gateway}/api/vsm{path}", data, self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return json.load(answer)
        except (OSError, ValueError):
            return None

    def _command(self, agent: dict[str, Any], command: str, data: dict[str, Any]) -> None:
        body = {"type": command, "data": data, "timeout_s": 5}
        self._request(f"/agents/{agent['agent_id']}/command", body)
        self.sent += 1

    def _run(self) -> None:
        agents: list[dict[str, Any]] = []
        tick = 0
        while not self.stopped.wait(self.interval_s):
            if tick % 10 == 0:
                agents = self._request("/agents") or agents
            root = [a for a in agents if a.get("vsm_id", "root") == "root"]
            workers = [a for a in root if a["agent_type"] == "worker"]
            callers = [a for a in root if self.endpoint in a["config"].get("base_urls", [])]
            if workers:
                order = {"order": tick, "lines": [{"sku": f"p{tick % 7}", "qty": 1 + tick % 3}]}
                self._command(workers[tick % len(workers)], "process_data", {"data": order})
                series = [round(50 + 10 * math.sin((tick + i) / 3), 3) for i in range(24)]
                self._command(workers[(tick + 1) % len(workers)], "analyze", {"values": series})
            for caller in callers:
                self._command(caller, "call", {"url": "orders"})
            tick += 1


def organisation_file(choice: str) -> Path | None:
    """The file to apply, or None when switched off (`none`, or VSM_DEFAULT_ORG=0)."""
    if os.environ.get("VSM_DEFAULT_ORG", "1").lower() in ("0", "false", "no", "off"):
        return None
    return None if choice.lower() in ("", "none", "0") else Path(choice)


def apply_organisation(path: Path, gateway: str, token: str, attempts: int = 5) -> bool:
    """`vsm apply` once the services answer; retried while the system is still settling."""
    command = [sys.executable, "-m", "vsm.cli", "--url", gateway, "apply", "-f", str(path)]
    env = {**os.environ, "VSM_TOKEN": token}  # in the environment, not on a command line
    for _ in range(attempts):
        done = subprocess.run(command, check=False, env=env)  # noqa: S603 - our own CLI
        if done.returncode in (0, 2):  # applied, or a file that retrying cannot fix
            return done.returncode == 0
        time.sleep(2)
    return False


def bring_to_life(system: LocalSystem, path: Path, token: str) -> list[Workload | FlakyEndpoint]:
    """Apply the organisation, start its environment; what to stop at the end."""
    try:
        endpoint = FlakyEndpoint(Schedule(), port=ENDPOINT_PORT).start()
    except OSError as error:
        print(f"vsm: no flaky endpoint on port {ENDPOINT_PORT} ({error}); api agents will fail")
        endpoint = None
    if not apply_organisation(path, system.url("mcp-gateway"), token):
        print(f"vsm: {path} was not applied; the services run without an organisation")
        return [endpoint] if endpoint else []
    endpoint_url = f"http://127.0.0.1:{ENDPOINT_PORT}/"
    workload = Workload(system.url("mcp-gateway"), endpoint_url, token).start()
    if endpoint:
        endpoint.schedule.restart()
        print(f"  environment      {endpoint.url} fails 10s of every 40s (first in 10s)")
    print("  workload         process_data + analyze to the workers, api calls, every second")
    print("  try              uv run vsm status   uv run vsm watch")
    return [workload, *([endpoint] if endpoint else [])]


def desktop_config(gateway: str, token: str) -> str:
    """A stdio server for clients that start one (Claude Desktop): this checkout's `vsm mcp`,
    by its absolute path since such clients do not run in this directory."""
    vsm = str(Path(sys.executable).with_name("vsm"))
    server = {"command": vsm, "args": ["mcp"], "env": {"VSM_URL": gateway, "VSM_TOKEN": token}}
    return json.dumps({"mcpServers": {"vsm": server}}, indent=2)


def connecting(system: LocalSystem, token: str, from_environment: bool) -> str:
    """How to reach the gateway with its token: curl, the CLI, and MCP clients."""
    gateway, mcp = system.url("mcp-gateway"), f"{system.url('mcp-gateway')}/mcp"
    if from_environment:
        shell, cli = "$MCP_AUTH_TOKEN", 'VSM_TOKEN="$MCP_AUTH_TOKEN" uv run vsm status'
    else:
        shell, cli = f"$(cat {TOKEN_FILE})", f"uv run vsm status  (reads {TOKEN_FILE} itself)"
    header = {"Authorization": f"Bearer {token}"}
    servers = {"mcpServers": {"vsm": {"type": "http", "url": mcp, "headers": header}}}
    lines = [
        f"  token            {token}  ({'MCP_AUTH_TOKEN' if from_environment else TOKEN_FILE})",
        f'  REST             curl -H "Authorization: Bearer {shell}" {gateway}/api/vsm/status',
        f"  CLI              {cli}",
        "  Claude Desktop   claude_desktop_config.json (stdio, through `vsm mcp`):",
        *(f"    {line}" for line in desktop_config(gateway, token).splitlines()),
        f"  Claude Code      claude mcp add --transport http vsm {mcp} "
        f'--header "Authorization: Bearer {token}"',
        "  MCP clients      .mcp.json:",
        *(f"    {line}" for line in json.dumps(servers, indent=2).splitlines()),
        f"  gateway metrics  http://{system.scrape_address('mcp-gateway')}/metrics (no token)",
    ]
    return "\n".join(lines)


def describe(code: int | None) -> str:
    """uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the clean exit."""
    if code in (0, -signal.SIGTERM):
        return "(clean)"
    if code is not None and code < 0:
        return f"(killed by {signal.Signals(-code).name})"
    return f"(exit {code})"


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every vsm service as a local process.")
    parser.add_argument("--log-dir", type=Path, default=Path(".run/logs"))
    parser.add_argument(
        "--org", default=DEFAULT_ORGANISATION, help="organisation file to apply, or `none`"
    )
    args = parser.parse_args()
    if taken := read_env_file():
        print(f"vsm: from {ENV_FILE}: {', '.join(taken)}")
    if code := subprocess.run([ENSURE_RABBITMQ], check=False).returncode:  # noqa: S603
        return code
    organisation = organisation_file(args.org)
    token = local_token()
    env = {"LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"), "MCP_AUTH_TOKEN": token}
    if organisation is not None:
        env |= {k: v for k, v in ORGANISATION_ENV.items() if k not in os.environ}
        if "EGRESS_ALLOWED_URLS" not in os.environ:  # the organisation's flaky endpoint
            env |= egress_allowance(f"http://127.0.0.1:{ENDPOINT_PORT}/")
    system = LocalSystem(env=env, log_dir=args.log_dir, metrics_ports=METRICS_PORTS)
    stopping = False

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    system.start()
    try:
        system.wait_ready(timeout=READY_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as error:
        print(f"vsm: {error}", file=sys.stderr)
        system.stop()
        return 1
    print("vsm is running:")
    for name in SERVICES:
        print(f"  {name:<17} {system.url(name)}  (/healthz /readyz /metrics)")
    print(f"  logs             {args.log_dir}/<service>.log")
    print(connecting(system, token, from_environment=bool(os.environ.get("MCP_AUTH_TOKEN"))))
    print("Your own agents: `uv run vsm-agent run <your module>` in another terminal (README).")
    running = bring_to_life(system, organisation, token) if organisation else []
    print("Ctrl-C stops everything.")
    reported: set[str] = set()
    while not stopping:
        for name, process in system.processes.items():
            if process.poll() is not None and name not in reported:
                reported.add(name)
                print(f"vsm: {name} exited with {process.returncode}; see {system.log(name)}")
        time.sleep(0.5)
    for part in running:
        part.stop()
    codes = system.stop()
    print("vsm stopped: " + ", ".join(f"{n} {describe(c)}" for n, c in codes.items()))
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main())
