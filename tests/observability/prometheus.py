"""A private Prometheus server (the Debian package's binary) for the observability tests.

It gets a generated configuration that scrapes the given targets every second, keeps its
data in a temporary directory, listens on a free loopback port, and is stopped afterwards;
a Prometheus the machine may run elsewhere is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.rabbitmq import free_ports, tail

SCRAPE_INTERVAL = "1s"


class PrometheusNotInstalled(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "prometheus is not installed, and the observability tests run a real one. "
            "Install it with `make prometheus-package` (the Debian package `prometheus`)."
        )


def config(jobs: Mapping[str, Sequence[str]], metrics_path: str = "/metrics") -> str:
    """A prometheus.yml scraping each job's `host:port` targets (JSON is valid YAML)."""
    scrape_configs = [
        {"job_name": job, "metrics_path": metrics_path, "static_configs": [{"targets": list(t)}]}
        for job, t in jobs.items()
    ]
    document = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": scrape_configs,
    }
    return json.dumps(document, indent=2)


class PrivatePrometheus:
    def __init__(self, jobs: Mapping[str, Sequence[str]]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusNotInstalled
        self.binary = binary
        self.jobs = jobs
        (self.port,) = free_ports(1)
        self.directory = Path(tempfile.mkdtemp(prefix="vsm-prometheus-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configuration(self) -> str:
        """The prometheus.yml to run with (a subclass may scrape otherwise)."""
        return config(self.jobs)

    def start(self, timeout: float = 60) -> None:
        (self.directory / "prometheus.yml").write_text(self.configuration())
        with (self.directory / "prometheus.out").open("ab") as out:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{tail(self.directory / 'prometheus.out')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready after {timeout} s")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, else raises with the error."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as error:
            answer = json.load(error)
        if answer.get("status") != "success":
            raise PromQLError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as a one-element list) of `expr` now."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "vector":
            return list(result)
        return [{"metric": {}, "value": result}]

    def unhealthy_targets(self) -> list[str]:
        """Targets not scraped successfully yet (with the reason)."""
        targets = self.api("targets", state="active")["activeTargets"]
        return [
            f"{t['scrapeUrl']}: {t['health']} {t['lastError']}"
            for t in targets
            if t["health"] != "up"
        ]

    def wait_scraping(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while problems := self.unhealthy_targets():
            if time.monotonic() > deadline:
                raise TimeoutError("targets not scraped:\n" + "\n".join(problems))
            time.sleep(0.5)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

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


class PromQLError(RuntimeError):
    """Prometheus refused a query (bad syntax, unknown function, ...)."""
