""".env: read by every service from its working directory and by `make run`, below the
environment; `.env.example` lists every setting, generated from the Settings classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from scripts import gen_env_example
from scripts.localrun import local_token, read_env_file
from tests.support.polling import eventually
from tests.support.probe import open_probe
from tests.support.system import free_port
from vsm.contract import topology
from vsm.contract.health import HealthReport

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_is_what_the_settings_classes_give() -> None:
    assert gen_env_example.unexplained() == []  # a new setting needs its line of meaning
    written = (ROOT / ".env.example").read_text()
    assert written == gen_env_example.render(), "run `make docs` (scripts/gen_env_example.py)"


def test_env_example_lists_every_setting_of_every_service() -> None:
    written = (ROOT / ".env.example").read_text()
    for service, settings in gen_env_example.settings_classes().items():
        for name, _ in gen_env_example.fields(settings):
            assert f"\n# {name}=" in written, f"{service}: {name}"


def settings_lines(text: str) -> dict[str, str]:
    """The `# NAME=value` lines of .env.example, uncommented, those with a value."""
    lines = [line[2:] for line in text.splitlines() if line.startswith("# ") and "=" in line]
    pairs = [line.split("=", 1) for line in lines if line.split("=", 1)[0].isupper()]
    return {name: value for name, value in pairs if value}


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of any service in the environment (a developer's own must not count)."""
    for settings in gen_env_example.settings_classes().values():
        for name, _ in gen_env_example.fields(settings):
            monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("bare_environment")
def test_every_default_of_env_example_uncommented_is_the_services_default(
    tmp_path: Path,
) -> None:
    example = (ROOT / ".env.example").read_text()
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{n}={v}\n" for n, v in settings_lines(example).items()))
    for service, settings in gen_env_example.settings_classes().items():
        from_file = settings(_env_file=env_file)  # type: ignore[call-arg]
        defaults = settings(_env_file=None)  # type: ignore[call-arg]
        for name, field in gen_env_example.fields(settings):
            own = gen_env_example.default_of(name, field)
            if own and own == settings_lines(example).get(name):
                attribute = next(a for a, f in settings.model_fields.items() if f is field)
                got, expected = getattr(from_file, attribute), getattr(defaults, attribute)
                assert got == expected, f"{service}: {name}"


def test_make_run_takes_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\nMCP_AUTH_TOKEN=from-the-env-file-1234\nLOG_FORMAT=json\n"
        "VSM_ALLOWED_HOSTS='[\"vsm.example.org\"]'\n"
    )
    environ = {"LOG_FORMAT": "console", "PATH": "/usr/bin"}
    assert read_env_file(env_file, environ) == ["MCP_AUTH_TOKEN", "VSM_ALLOWED_HOSTS"]
    assert environ["LOG_FORMAT"] == "console"  # the environment wins
    assert environ["VSM_ALLOWED_HOSTS"] == '["vsm.example.org"]'
    assert local_token(tmp_path / ".run" / "token", environ) == "from-the-env-file-1234"
    assert not (tmp_path / ".run").exists()  # the token came from .env: nothing generated
    assert read_env_file(tmp_path / "absent", environ) == []


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_control(directory: Path, **environment: str) -> subprocess.Popen[bytes]:
    """control in `directory`, with none of its settings in its environment but these."""
    settings = gen_env_example.settings_classes()["control"]
    names = {name for name, _ in gen_env_example.fields(settings)}
    environ = {k: v for k, v in os.environ.items() if k.upper() not in names} | environment
    with (directory / "control.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "vsm.control"],
            cwd=directory,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.integration
async def test_a_service_reads_env_file_in_its_working_directory(
    amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    """control, started with none of its settings in its environment but HTTP_PORT, finds
    the broker, its namespace and its metrics port in .env; HTTP_PORT in both: the
    environment's wins."""
    from_file, from_environment, metrics = free_port(), free_port(), free_port()
    (tmp_path / ".env").write_text(
        f"AMQP_URL={amqp_url}\nVSM_NAMESPACE={namespace}\nHTTP_PORT={from_file}\n"
        f"METRICS_PORT={metrics}\nHEALTH_INTERVAL=0.5\nLOG_FORMAT=json\n"
    )
    control = start_control(tmp_path, HTTP_PORT=str(from_environment))
    try:
        async with open_probe(amqp_url, namespace) as probe:
            heard = await probe.bind_queue("env-file-health", topology.HEALTH.name, "")

            async def ready() -> bool:
                assert control.poll() is None, (tmp_path / "control.log").read_text()
                return answers(f"http://127.0.0.1:{from_environment}/readyz")

            await eventually(ready, timeout=120.0, what="control ready on the environment's port")
            report = await probe.get_matching(heard, lambda m: m.type == HealthReport.TYPE, 30.0)
            # on the broker and in the namespace of .env, every HEALTH_INTERVAL of .env
            assert json.loads(report.body)["data"]["service"] == "control"
            assert json.loads(report.body)["data"]["interval_s"] == 0.5
            assert answers(f"http://127.0.0.1:{metrics}/metrics")  # METRICS_PORT of .env
            assert not answers(f"http://127.0.0.1:{from_file}/healthz")  # the environment won
    finally:
        control.terminate()
        control.wait(timeout=30)
