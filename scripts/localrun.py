"""Run the seven services as local processes: `make run` and the integration tests use this.

Each service is `python -m vsm.<module>` with its configuration in the environment. The
launcher stops them all on Ctrl-C or SIGTERM (SIGTERM first, SIGKILL after the grace
period), and each child is told by the kernel to stop should the launcher itself die.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the launcher dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalSystem:
    env: Mapping[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {n: p for n, (_, p) in SERVICES.items()})
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, services: Iterable[str] = SERVICES) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in services:
            module, _ = SERVICES[name]
            env = {**os.environ, **self.env, "HTTP_PORT": str(self.ports[name])}
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
                        f"{name} exited with {process.returncode}; see {self.log(name)}"
                    )
                if self.ready(name):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout:g}s: {sorted(pending)}")

    def log(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

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
    args = parser.parse_args()
    system = LocalSystem(
        env={"LOG_FORMAT": os.environ.get("LOG_FORMAT", "console")}, log_dir=args.log_dir
    )
    stopping = False

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    system.start()
    try:
        system.wait_ready(timeout=60)
    except (RuntimeError, TimeoutError) as error:
        print(f"vsm: {error}", file=sys.stderr)
        system.stop()
        return 1
    print("vsm is running:")
    for name in SERVICES:
        print(f"  {name:<17} {system.url(name)}  (/healthz /readyz /metrics)")
    print(f"  status           {system.url('mcp-gateway')}/api/vsm/status")
    print(f"  logs             {args.log_dir}/<service>.log")
    print("Ctrl-C stops everything.")
    reported: set[str] = set()
    while not stopping:
        for name, process in system.processes.items():
            if process.poll() is not None and name not in reported:
                reported.add(name)
                print(f"vsm: {name} exited with {process.returncode}; see {system.log(name)}")
        time.sleep(0.5)
    codes = system.stop()
    print("vsm stopped: " + ", ".join(f"{n} {describe(c)}" for n, c in codes.items()))
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main())
