"""Agent hosts as processes of their own beside a launched system: `python -m vsm.agent run`
with the system's environment, each under its own instance id and port; and the REST calls
the tests make to the agents they host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.localrun import LocalSystem, _die_with_parent
from tests.support.system import free_port

ROOT = Path(__file__).resolve().parents[2]
VSM_AGENT = str(Path(sys.executable).with_name("vsm-agent"))
READY_WITHIN_S = 90.0


@dataclass
class Host:
    """One agent host process."""

    instance: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_ready(self, within_s: float = READY_WITHIN_S) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"host {self.instance} exited with {self.process.returncode}:\n{self.tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"host {self.instance} not ready after {within_s:g}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(unreadable: {error})"

    def text(self) -> str:
        """The whole log."""
        return self.log.read_text(errors="replace")

    def exited(self, within_s: float) -> int:
        """The exit code of a process that ends by itself within `within_s`."""
        try:
            return self.process.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"host {self.instance} still running:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; its connection drops at once."""
        self.process.kill()
        self.process.wait()

    def clean_exit(self, code: int) -> bool:
        """Whether it ended as a service ends on SIGTERM: its shutdown done (`service_stopped`
        logged), exit code 0 or uvicorn's re-raised SIGTERM (as tests/faults'
        test_graceful_shutdown judges every service)."""
        return code in (0, -signal.SIGTERM) and "service_stopped" in self.text()

    def stop(self, grace_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after `grace_s`; the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_host(
    system: LocalSystem,
    instance: str,
    targets: list[str],
    log_dir: Path,
    cwd: Path | None = None,
    **env: str,
) -> Host:
    """An agent host offering `targets` (modules or module:Class) to `system`, not yet ready:
    `python -m vsm.agent run`, or, from `cwd`, the console script `vsm-agent run` as a user
    starts it beside their modules. It dies with the test process."""
    port = free_port()
    environment = {
        **os.environ,
        **system.env,
        "HTTP_PORT": str(port),
        "INSTANCE_ID": instance,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    log = log_dir / f"host-{instance}.log"
    program = [VSM_AGENT] if cwd is not None else [sys.executable, "-m", "vsm.agent"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*program, "run", *targets],
            env=environment,
            cwd=cwd or ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe prctl only
        )
    return Host(instance, port, process, log, environment)


async def command(
    rest: httpx.AsyncClient,
    agent_id: str,
    kind: str,
    data: dict[str, Any],
    timeout_s: float = 60,
) -> dict[str, Any]:
    """The agent's answer to one command sent through the gateway's REST API."""
    response = await rest.post(
        f"/api/vsm/agents/{agent_id}/command",
        json={"type": kind, "data": data, "timeout_s": timeout_s},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def audit(
    rest: httpx.AsyncClient, agent_id: str, kind: str = "resource_audit"
) -> dict[str, Any]:
    """The agent's S3* audit report (`POST /audit/bypass`)."""
    response = await rest.post(
        "/api/vsm/audit/bypass", json={"agent_id": agent_id, "audit_type": kind, "timeout_s": 10}
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["report"])
